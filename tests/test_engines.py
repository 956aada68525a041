"""Generation engines: the `hf` engine's contract on the tiny random model, its texts equal to a direct HF
`generate`, and `hard-mining` sampling through an engine (the built-in one, or a third-party one)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fleming import build_component, hookimpl
from fleming.components import build, build_named
from fleming.context import StageContext
from fleming.errors import RecipeError, StageError
from fleming.formats import chat_messages
from fleming.models import resolve_model
from fleming.plugins.curricula.hard_mining import HardMining
from fleming.plugins.engines.hf import HfEngine
from fleming.protocols import Engine
from fleming.recipe import Component
from fleming.testing import add_plugins, fresh_registry, make_item, perturbed, stage_ctx
from fleming.types import QAItem


@pytest.fixture
def tiny(model_cache: Path) -> str:
    return resolve_model("tiny-random").path


def _prompts(n: int = 3) -> list[list[dict[str, str]]]:
    return [chat_messages(make_item(i)) for i in range(n)]


def _ctx(tmp_path: Path, start: str) -> StageContext:
    return stage_ctx(tmp_path / "run" / "rl-stage", "rl-stage", seed=0, rollouts=4, start_model=start)


def direct_hf(model: str, prompts: Sequence[Sequence[dict[str, str]]], n: int, temperature: float,
              max_tokens: int, seed: int) -> list[list[str]]:
    """What hard-mining did before engines: one seed, one batch, transformers' generate called directly."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    policy.eval()
    torch.manual_seed(seed)
    texts = [tok.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True) for p in prompts]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    sample = temperature > 0
    kwargs: dict[str, Any] = ({"do_sample": True, "temperature": temperature, "num_return_sequences": n} if sample
                              else {"do_sample": False})
    with torch.no_grad():
        out = policy.generate(**enc, max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id, **kwargs)
    done = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    per = n if sample else 1
    return [done[j:j + per] * (1 if sample else n) for j in range(0, len(done), per)]


# ---------------------------------------------------------------- the hf engine's contract

def test_hf_engine_keeps_the_contract(tiny: str, tmp_path: Path) -> None:
    engine = build_component("engines", "hf")
    assert isinstance(engine, Engine) and engine._model is None  # the factory loads nothing
    engine.load(tiny)
    greedy = engine.generate(_prompts(), n=2, max_tokens=6)
    assert len(greedy) == 3 and all(len(g) == 2 and g[0] == g[1] for g in greedy)
    sampled = engine.generate(_prompts(), n=4, temperature=1.0, max_tokens=6, seed=3)
    assert len(sampled) == 3 and all(len(s) == 4 for s in sampled)
    assert engine.generate(_prompts(), n=4, temperature=1.0, max_tokens=6, seed=3) == sampled
    assert engine.generate(_prompts(), n=4, temperature=1.0, max_tokens=6, seed=4) != sampled
    alone = engine.generate(_prompts()[1:2], n=2, max_tokens=6)
    assert alone == greedy[1:2]  # in order: the second prompt's answers are the second list
    batched = build_component("engines", "hf", {"model": tiny, "batch_size": 2})  # loads on first generate
    assert batched.generate(_prompts(), n=2, max_tokens=6) == greedy

    engine.load(perturbed(tiny, tmp_path / "perturbed"))
    assert engine.generate(_prompts(), n=1, max_tokens=6) != [g[:1] for g in greedy]


def test_hf_engine_texts_equal_a_direct_hf_generate(tiny: str) -> None:
    engine = build_component("engines", "hf", {"model": tiny})
    prompts = _prompts(4)
    assert engine.generate(prompts, n=2, max_tokens=8) == direct_hf(tiny, prompts, 2, 0.0, 8, 0)
    assert engine.generate(prompts, n=3, temperature=1.0, max_tokens=8, seed=5) == \
        direct_hf(tiny, prompts, 3, 1.0, 8, 5)


def test_hf_engine_runs_on_the_cpu_without_a_gpu_and_a_gpu_asked_for_is_one_line(
        tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    engine = HfEngine(tiny)
    engine.load(tiny)
    assert engine._model.device.type == "cpu"
    with pytest.raises(StageError, match="engine 'hf': device 'cuda:1' asked for, but no CUDA GPU is visible"):
        HfEngine(device="cuda:1").load(tiny)
    with pytest.raises(RecipeError, match="device"):
        build_named(fresh_registry()[1], "engines", "hf", {"device": "gpu"}, "engine", Path.cwd())


def test_hf_engine_without_a_model_says_so() -> None:
    with pytest.raises(StageError, match="engine 'hf': no model to generate with"):
        build_component("engines", "hf").generate(_prompts(1))


# ---------------------------------------------------------------- hard-mining through an engine

def test_hard_mining_samples_what_it_sampled_before_engines(tiny: str, tmp_path: Path) -> None:
    pool = [make_item(i, answer="ABCD"[i % 4]) for i in range(5)]
    cur = HardMining(k=3, max_tokens=8, batch_size=8, temperature=1.0)
    rates = cur.pass_rates(tiny, pool, 7, _ctx(tmp_path, tiny))
    from fleming.answers import extract_answer

    texts = direct_hf(tiny, [chat_messages(i) for i in pool], 3, 1.0, 8, 7)
    want = {i.id: sum(extract_answer(t, list(i.options)) == i.answer for t in got) / 3 for i, got in zip(pool, texts)}
    assert rates == want


class ScriptedEngine:
    """A third-party engine: answers come from a script (item number -> the letters of its k answers)."""

    script: dict[int, str] = {}
    loaded: list[str] = []

    def __init__(self, style: str = "tag") -> None:
        self.style = style

    def load(self, model_path: str) -> None:
        ScriptedEngine.loaded.append(model_path)

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        out = []
        for messages in prompts:
            number = int(messages[-1]["content"].split("Question number ")[1].split("?")[0])
            out.append([f"<answer>{letter}</answer>" for letter in self.script[number][:n]])
        return out


class ScriptedEnginePlugin:
    @hookimpl
    def register_engines(self, register: Any) -> None:
        register("acme-scripted", ScriptedEngine)


def _with_scripted_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the scripted engine in-process, for every registry fleming loads in this test."""
    add_plugins(monkeypatch, ScriptedEnginePlugin())


def test_hard_mining_uses_a_third_party_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _with_scripted_engine(monkeypatch)
    ScriptedEngine.script = {0: "BBBB", 1: "BACD", 2: "AAAA", 3: "BBAA", 4: "CCCB"}
    ScriptedEngine.loaded = []
    pool: list[QAItem] = [make_item(i) for i in range(5)]  # every answer is B
    cur = HardMining(k=4, batch_size=2, engine="acme-scripted", engine_args={"style": "tag"})
    ctx = _ctx(tmp_path, "/models/start")
    cur.select(pool, 0, None, ctx)
    rates = json.loads((ctx.dir / "mining" / "round-0.json").read_text())["rates"]
    assert rates == {"fixture-0": 1.0, "fixture-1": 0.25, "fixture-2": 0.0, "fixture-3": 0.5, "fixture-4": 0.25}
    assert ScriptedEngine.loaded == ["/models/start"]
    assert ctx.notes["hard-mining"]["rounds"][0]["hard"] == 3


def test_an_unknown_engine_is_a_one_line_error_naming_the_field() -> None:
    _, reg = fresh_registry()
    with pytest.raises(RecipeError) as err:
        build(reg, "curricula", Component(plugin="hard-mining", args={"engine": "hff"}), "rl.stages[1].curriculum",
              Path("."))
    assert str(err.value).startswith("rl.stages[1].curriculum.args.engine: unknown engine 'hff'")
    assert "'hf'" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RecipeError, match=r"args.engine_args: dtype: "):
        build(reg, "curricula", Component(plugin="hard-mining", args={"engine": "hf", "engine_args": {"dtype": "fp8"}}),
              "rl.stages[1].curriculum", Path("."))
    with pytest.raises(RecipeError, match=r"args.engine_args: engine args need a named engine"):  # default: the run's
        build(reg, "curricula", Component(plugin="hard-mining", args={"engine_args": {"dtype": "bfloat16"}}),
              "rl.stages[1].curriculum", Path("."))


def test_fleming_plugins_lists_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from fleming.cli import cli

    got = CliRunner().invoke(cli, ["plugins", "--json"], catch_exceptions=False)
    assert got.exit_code == 0, got.output
    rows = {(c["kind"], c["name"]): c["module"] for c in json.loads(got.output)["components"]}
    assert rows[("engine", "hf")] == "fleming.plugins.engines.hf"
