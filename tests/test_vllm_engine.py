"""The `vllm` engine's contract, against a fake `vllm` module (CI has no GPU and never installs vLLM): prompts
posed with the chat template and answered in order, n per prompt, greedy copies, the sampling params, weights
updated in place on a second `load` (through the worker extension, as vLLM runs it) and from memory, and the
reasons `unavailable()` gives."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from fleming import build_component
from fleming.engines import EngineChoice, resolve
from fleming.errors import MissingDependencyError, RecipeError, StageError
from fleming.formats import chat_messages
from fleming.plugins.engines import vllm as engine_module
from fleming.plugins.engines.vllm import VllmEngine, WeightLoader
from fleming.protocols import Engine
from fleming.testing import make_item

BOS = 1


class FakeTokenizer:
    """Characters as token ids; the chat template tags each message."""

    chat_template = "tagged"

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return ([BOS] if add_special_tokens else []) + [ord(c) for c in text]


class FakeModel:
    """A worker's model: `load_weights` records what it was given."""

    def __init__(self) -> None:
        self.loaded: dict[str, torch.Tensor] = {}

    def load_weights(self, weights: Any) -> set[str]:
        for name, tensor in weights:
            self.loaded[name] = tensor.clone()
        return set(self.loaded)


class FakeWorker(WeightLoader):
    """A vLLM worker with fleming's extension mixed in, as ``worker_extension_cls`` makes it."""

    def __init__(self) -> None:
        self.model_runner = SimpleNamespace(model=FakeModel())
        self.device = "cpu"


class FakeLLM:
    """Records its constructor args, generate calls and RPCs; answers name the prompt and the sample."""

    built: list[FakeLLM] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model, self.kwargs = model, kwargs
        self.calls: list[tuple[list[Any], list[Any]]] = []
        self.rpcs: list[str] = []
        self.resets = 0
        self.shut = False
        self.worker = FakeWorker()
        self.llm_engine = SimpleNamespace(engine_core=SimpleNamespace(shutdown=self._shutdown))
        FakeLLM.built.append(self)

    def _shutdown(self) -> None:
        self.shut = True

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(self, prompts: list[Any], params: Any, use_tqdm: bool = True) -> list[Any]:
        assert use_tqdm is False
        params = params if isinstance(params, list) else [params] * len(prompts)
        self.calls.append((prompts, params))
        out = []
        for prompt, p in zip(prompts, params):
            text = "".join(chr(t) for t in prompt["prompt_token_ids"])
            question = text.split("Question number ")[1].split("?")[0] if "Question number " in text else text[:8]
            out.append(SimpleNamespace(outputs=[SimpleNamespace(text=f"q{question} s{j} t{p.temperature}")
                                                for j in range(p.n)]))
        return out

    def collective_rpc(self, method: str, args: tuple[Any, ...] = ()) -> list[Any]:
        self.rpcs.append(method)
        return [getattr(self.worker, method)(*args)]

    def reset_prefix_cache(self) -> None:
        self.resets += 1


class FakeSamplingParams:
    def __init__(self, n: int = 1, temperature: float = 1.0, max_tokens: int = 16, seed: int | None = None,
                 **filters: Any) -> None:
        self.n, self.temperature, self.max_tokens, self.seed, self.filters = n, temperature, max_tokens, seed, filters


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.built = []
    return module


def _prompts(n: int = 3) -> list[list[dict[str, str]]]:
    return [chat_messages(make_item(i)) for i in range(n)]


def _folder(path: Path, value: float, hidden: int = 4) -> str:
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": hidden,
                                                  "num_hidden_layers": 1, "vocab_size": 8}))
    save_file({"model.embed_tokens.weight": torch.full((8, hidden), value),
               "model.norm.weight": torch.full((hidden,), value)}, str(path / "model.safetensors"))
    return str(path)


# ---------------------------------------------------------------- generate

def test_vllm_engine_keeps_the_contract(fake_vllm: types.ModuleType, tmp_path: Path) -> None:
    engine = build_component("engines", "vllm", {"dtype": "bfloat16", "max_model_len": 2048})
    assert isinstance(engine, Engine) and FakeLLM.built == []  # the factory loads nothing
    engine.load(_folder(tmp_path / "m", 0.0))
    llm = FakeLLM.built[0]
    assert llm.model == str(tmp_path / "m")
    assert llm.kwargs == {"gpu_memory_utilization": 0.5, "dtype": "bfloat16", "enforce_eager": False,
                          "tensor_parallel_size": 1, "max_model_len": 2048,
                          "worker_extension_cls": "fleming.plugins.engines.vllm.WeightLoader"}

    sampled = engine.generate(_prompts(), n=4, temperature=0.7, max_tokens=9, seed=3)
    assert sampled == [[f"q{i} s{j} t0.7" for j in range(4)] for i in range(3)]  # in order, n per prompt
    prompts, params = llm.calls[-1]
    assert len(llm.calls) == 1 and len(prompts) == 3  # one generate call for all prompts
    want = FakeTokenizer().apply_chat_template(_prompts()[1], add_generation_prompt=True)
    assert prompts[1]["prompt_token_ids"] == [ord(c) for c in want]  # chat template, no special tokens added
    assert [(p.n, p.temperature, p.max_tokens, p.filters) for p in params] == [(4, 0.7, 9, {"top_k": 50})] * 3
    seeds = [p.seed for p in params]
    assert len(set(seeds)) == 3  # each prompt its own random stream
    engine.generate(_prompts(), n=4, temperature=0.7, max_tokens=9, seed=3)
    assert [p.seed for p in llm.calls[-1][1]] == seeds  # the same seed, the same streams
    engine.generate(_prompts(), n=4, temperature=0.7, max_tokens=9, seed=4)
    assert [p.seed for p in llm.calls[-1][1]] != seeds

    greedy = engine.generate(_prompts(), n=3, max_tokens=5)
    assert greedy == [[f"q{i} s0 t0.0"] * 3 for i in range(3)]  # generated once, copied n times
    assert [(p.n, p.temperature, p.max_tokens, p.filters) for p in llm.calls[-1][1]] == [(1, 0.0, 5, {})] * 3
    assert engine.generate([], n=2) == []


def test_sampling_filters_follow_the_checkpoints_generation_config(fake_vllm: types.ModuleType,
                                                                    tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m", 0.0)
    (Path(folder) / "generation_config.json").write_text(json.dumps({"top_k": 0, "top_p": 0.9,
                                                                     "repetition_penalty": 1.1}))
    engine = build_component("engines", "vllm", {"model": folder})
    engine.generate(_prompts(1), n=2, temperature=1.0)
    assert FakeLLM.built[0].calls[-1][1][0].filters == {"top_p": 0.9, "repetition_penalty": 1.1}


def test_vllm_engine_loads_its_model_on_first_generate(fake_vllm: types.ModuleType, tmp_path: Path) -> None:
    engine = build_component("engines", "vllm", {"model": _folder(tmp_path / "m", 0.0), "enforce_eager": True,
                                                 "gpu_memory_utilization": 0.3, "tensor_parallel_size": 2})
    assert engine.generate(_prompts(1), n=2)[0] == ["q0 s0 t0.0"] * 2
    assert FakeLLM.built[0].kwargs["enforce_eager"] is True
    assert FakeLLM.built[0].kwargs["gpu_memory_utilization"] == 0.3
    assert FakeLLM.built[0].kwargs["tensor_parallel_size"] == 2
    with pytest.raises(StageError, match="engine 'vllm': no model to generate with"):
        build_component("engines", "vllm").generate(_prompts(1))


# ---------------------------------------------------------------- new weights

def test_a_second_load_of_the_same_architecture_updates_the_weights_in_place(fake_vllm: types.ModuleType,
                                                                               tmp_path: Path) -> None:
    engine = build_component("engines", "vllm")
    engine.load(_folder(tmp_path / "step-0", 0.0))
    llm = FakeLLM.built[0]
    engine.load(_folder(tmp_path / "step-1", 2.5))
    assert FakeLLM.built == [llm] and engine.model_path == str(tmp_path / "step-1")
    assert llm.rpcs == ["fleming_load_folder", "fleming_weights_loaded"] and llm.resets == 1
    loaded = llm.worker.model_runner.model.loaded
    assert set(loaded) == {"model.embed_tokens.weight", "model.norm.weight"}
    assert all(bool((t == 2.5).all()) for t in loaded.values())

    engine.load(_folder(tmp_path / "wider", 1.0, hidden=6))  # another architecture: a new LLM
    assert len(FakeLLM.built) == 2 and llm.shut and FakeLLM.built[1].model == str(tmp_path / "wider")


def test_load_state_dict_pushes_weights_from_memory(fake_vllm: types.ModuleType, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    engine = build_component("engines", "vllm")
    with pytest.raises(StageError, match="call load"):
        engine.load_state_dict({"model.norm.weight": torch.ones(4)})
    engine.load(_folder(tmp_path / "m", 0.0))
    llm = FakeLLM.built[0]
    monkeypatch.setattr(engine_module, "CHUNK_BYTES", 40)  # about one tensor per call
    weights = {"model.embed_tokens.weight": torch.full((8, 4), 3.0, requires_grad=True),
               "model.norm.weight": torch.full((4,), 3.0)}
    engine.load_state_dict(weights)
    assert llm.rpcs == ["fleming_load_tensors", "fleming_load_tensors", "fleming_weights_loaded"]
    assert llm.resets == 1 and len(FakeLLM.built) == 1
    loaded = llm.worker.model_runner.model.loaded
    assert set(loaded) == set(weights) and all(bool((t == 3.0).all()) for t in loaded.values())


# ---------------------------------------------------------------- where it can run

def test_unavailable_says_why(monkeypatch: pytest.MonkeyPatch, fake_vllm: types.ModuleType) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert VllmEngine.unavailable() is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert VllmEngine.unavailable() == "no CUDA GPU is visible (vLLM runs on GPUs only)"
    monkeypatch.setitem(sys.modules, "vllm", None)  # not installed
    why = VllmEngine.unavailable()
    assert why is not None and "not installed" in why and "pip install 'fleming-med[vllm]'" in why
    monkeypatch.delenv("FLEMING_ENGINE", raising=False)  # auto as a user's machine reads it
    choice, note = resolve(EngineChoice())
    assert choice.name != "vllm" and note is not None and "vllm: vllm is not installed" in note


def test_without_vllm_loading_says_which_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'fleming-med\[vllm\]'"):
        build_component("engines", "vllm").load(str(tmp_path))


def test_bad_args_are_recipe_errors() -> None:
    for args in ({"gpu_memory_utilization": 1.5}, {"dtype": "fp8"}, {"tensor_parallel_size": 0}):
        with pytest.raises(RecipeError):
            build_component("engines", "vllm", args)


def test_fleming_plugins_lists_the_vllm_engine() -> None:
    from click.testing import CliRunner

    from fleming.cli import cli

    got = CliRunner().invoke(cli, ["plugins", "--json"], catch_exceptions=False)
    rows = {(c["kind"], c["name"]): c["module"] for c in json.loads(got.output)["components"]}
    assert rows[("engine", "vllm")] == "fleming.plugins.engines.vllm"
