"""The `openvino` engine: its contract on the tiny random model (greedy texts equal to the `hf` engine's in f32,
n seeded samples per prompt), and the converted-model cache (reused, rebuilt when half-written, keyed by the
checkpoint's content)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fleming.engines import EngineChoice, open_engine, resolve
from fleming.formats import chat_messages
from fleming.models import resolve_model
from fleming.testing import make_item

pytest.importorskip("openvino_genai", reason="OpenVINO GenAI is not installed (pip install 'fleming-med[cpu]')")

from fleming.plugins.engines.openvino import _convert  # noqa: E402
from fleming.plugins.engines.openvino.engine import OpenVinoEngine  # noqa: E402


@pytest.fixture
def tiny(model_cache: Path) -> str:
    return resolve_model("tiny-random").path


def _prompts(n: int = 3) -> list[list[dict[str, str]]]:
    return [chat_messages(make_item(i)) for i in range(n)]


def test_greedy_texts_equal_the_hf_engine_in_f32(tiny: str) -> None:
    hf = open_engine(EngineChoice("hf"), tiny).generate(_prompts(), n=2, max_tokens=12)
    ov = open_engine(EngineChoice("openvino", {"precision": "f32"}), tiny).generate(_prompts(), n=2, max_tokens=12)
    assert ov == hf
    assert all(len(group) == 2 and group[0] == group[1] for group in ov)


def test_samples_are_n_per_prompt_seeded_and_differ_across_seeds(tiny: str) -> None:
    engine = OpenVinoEngine(tiny)
    first = engine.generate(_prompts(2), n=3, temperature=1.0, max_tokens=10, seed=5)
    again = engine.generate(_prompts(2), n=3, temperature=1.0, max_tokens=10, seed=5)
    other = engine.generate(_prompts(2), n=3, temperature=1.0, max_tokens=10, seed=6)
    assert [len(g) for g in first] == [3, 3]
    assert first == again
    assert first != other
    assert len(set(first[0])) > 1  # the samples of one prompt are not copies of each other


def test_auto_picks_openvino_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEMING_ENGINE")
    choice, note = resolve(EngineChoice("auto"))
    assert choice.name == "openvino"
    assert note and "vllm" in note  # it says why vLLM was passed over


def test_unavailable_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino_genai" else real(name, *a))
    why = OpenVinoEngine.unavailable()
    assert why and "fleming-med[cpu]" in why


def test_conversion_is_cached_rebuilt_when_half_written_and_keyed_by_content(tiny: str, tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = _convert.convert
    monkeypatch.setattr(_convert, "convert", lambda src, out, weights="fp16": (calls.append(out), real(src, out, weights)))
    first = _convert.converted(tiny)
    assert (first / _convert.DONE).exists() and (first / "openvino_model.xml").exists()
    assert _convert.converted(tiny) == first and len(calls) <= 1  # reused (converted once in this session)
    before = len(calls)
    (first / _convert.DONE).unlink()  # as if killed before it finished
    assert _convert.converted(tiny) == first and (first / _convert.DONE).exists()
    assert len(calls) == before + 1
    copy = tmp_path / "changed"
    shutil.copytree(tiny, copy)
    (copy / "generation_config.json").write_text('{"eos_token_id": 2, "top_k": 7}')
    assert _convert.content_key(copy, "fp16") != _convert.content_key(Path(tiny), "fp16")
    assert _convert.content_key(Path(tiny), "fp32") != _convert.content_key(Path(tiny), "fp16")


def test_the_cache_keeps_only_the_most_recently_used_conversions(tmp_path: Path) -> None:
    import os

    for i in range(5):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        (folder / _convert.DONE).write_text("{}")
        os.utime(folder / _convert.DONE, (1000 + i, 1000 + i))
    (tmp_path / "half").mkdir()  # no mark: not a finished conversion, left for converted() to rebuild
    _convert._prune(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c3", "c4", "half"]
