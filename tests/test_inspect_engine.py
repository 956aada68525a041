"""The `fleming/<label>` Inspect provider: the engine's texts reach Inspect unchanged, concurrent requests share
engine calls, evaluation through an engine scores as Inspect's hf provider did, and the verifiers sample a local
model through an engine."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import read_eval_log

import fleming.inspect_engine  # noqa: F401  (registers the provider, as the inspect_ai entry point does)
from fleming import build_component, hookimpl
from fleming.engines import EngineChoice
from fleming.evaluation import EvalTarget, evaluate
from fleming.inspect_engine import chat_dicts
from fleming.models import resolve_model
from fleming.plugins.verifiers.label_check import LabelCheck
from fleming.plugins.verifiers.pass_rate import PassRateAnnotator
from fleming.tasks import mcq_task
from fleming.testing import add_plugins, make_item, perturbed, stage_ctx


class CountingEngine:
    """A third-party engine that answers ``<answer>X</answer>`` from a script and records every call."""

    calls: list[dict[str, Any]] = []
    loaded: list[str] = []
    closed: list[str] = []
    script: dict[int, str] = {}
    fail = False

    def __init__(self, tag: str = "") -> None:
        self.tag, self.model_path = tag, ""

    def load(self, model_path: str) -> None:
        CountingEngine.loaded.append(model_path)
        self.model_path = model_path

    def close(self) -> None:
        CountingEngine.closed.append(self.model_path)

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        CountingEngine.calls.append({"size": len(prompts), "n": n, "temperature": temperature,
                                     "max_tokens": max_tokens, "seed": seed})
        if CountingEngine.fail:
            raise RuntimeError("out of memory")
        out = []
        for messages in prompts:
            text = messages[-1]["content"]
            if "Question number " in text and CountingEngine.script:
                number = int(text.split("Question number ")[1].split("?")[0])
                out.append([f"<answer>{letter}</answer>" for letter in CountingEngine.script[number][:n]])
            else:
                out.append([f"{self.tag}{text}#{j}" for j in range(n)])
        return out


class CountingPlugin:
    @hookimpl
    def register_engines(self, register: Any) -> None:
        register("acme-counting", CountingEngine)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingEngine]:
    """Register the counting engine in-process, for every registry fleming loads in this test."""
    add_plugins(monkeypatch, CountingPlugin())
    CountingEngine.calls, CountingEngine.loaded, CountingEngine.closed = [], [], []
    CountingEngine.script, CountingEngine.fail = {}, False
    return CountingEngine


@pytest.fixture
def tiny(model_cache: Path) -> str:
    return resolve_model("tiny-random").path


def _model(label: str = "fake", **args: Any) -> Any:
    from inspect_ai.model import get_model

    return get_model(f"fleming/{label}", memoize=False, **{"model_path": "/models/fake", "engine": "acme-counting",
                                                           **args})


# ---------------------------------------------------------------- the provider

def test_the_provider_returns_exactly_the_engines_texts(tiny: str, tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval

    items = [make_item(i, answer="ABCD"[i % 4]) for i in range(5)]
    task = mcq_task(items, name="probe", max_tokens=6)
    tiny = perturbed(tiny, tmp_path / "noisy")
    logs = inspect_eval(task, model="fleming/tiny", model_args={"model_path": tiny, "engine": "hf"},
                        log_dir=str(tmp_path / "logs"), display="none")
    assert logs[0].status == "success", logs[0].error
    samples = read_eval_log(logs[0].location).samples or []
    engine = build_component("engines", "hf", {"model": tiny})
    assert len({s.output.completion for s in samples}) > 1
    for sample in samples:
        asked = chat_dicts([m for m in sample.messages if m.role != "assistant"])
        assert asked[0]["role"] == "system" and "Question number" in asked[-1]["content"]
        assert sample.output.completion == engine.generate([asked], n=1, max_tokens=6)[0][0]
        assert sample.output.stop_reason == "unknown" and sample.output.usage is None
    assert logs[0].eval.model_args == {"model_path": tiny, "engine": "hf"}


def test_concurrent_requests_share_engine_calls(counting: type[CountingEngine]) -> None:
    from inspect_ai.model import ChatMessageUser, GenerateConfig

    model = _model(batch_size=4)

    async def ask(i: int, **config: Any) -> Any:
        return await model.generate([ChatMessageUser(content=f"q{i}")], config=GenerateConfig(**config))

    async def run() -> list[Any]:
        greedy = [ask(i, max_tokens=5) for i in range(10)]
        sampled = [ask(i, max_tokens=5, temperature=0.7, seed=3, num_choices=2) for i in range(10, 13)]
        return await asyncio.gather(*greedy, *sampled)

    outs = asyncio.run(run())
    assert [o.completion for o in outs[:10]] == [f"q{i}#0" for i in range(10)]  # each caller its own text
    assert [[c.message.text for c in o.choices] for o in outs[10:]] == [[f"q{i}#0", f"q{i}#1"] for i in range(10, 13)]
    greedy = [c for c in counting.calls if c["temperature"] == 0.0]
    sampled = [c for c in counting.calls if c["temperature"] == 0.7]
    assert [c["size"] for c in greedy] == [4, 4, 2]  # at most batch_size prompts per call
    assert sampled == [{"size": 3, "n": 2, "temperature": 0.7, "max_tokens": 5, "seed": 3}]
    assert {c["seed"] for c in greedy} == {0} and counting.loaded == ["/models/fake"]  # loaded once


def test_sampling_without_a_seed_gives_each_engine_call_its_own(counting: type[CountingEngine]) -> None:
    from inspect_ai.model import ChatMessageUser, GenerateConfig

    model = _model(batch_size=2)

    async def run() -> list[Any]:
        return await asyncio.gather(*(model.generate([ChatMessageUser(content="q")],
                                                     config=GenerateConfig(temperature=1.0)) for _ in range(4)))

    asyncio.run(run())
    assert [(c["size"], c["seed"]) for c in counting.calls] == [(2, 0), (2, 1)]


def test_an_inspect_eval_is_answered_in_batches(counting: type[CountingEngine], tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval

    task = mcq_task([make_item(i) for i in range(12)], name="probe", max_tokens=7)
    counting.script = {i: "B" for i in range(12)}
    logs = inspect_eval(task, model=_model(batch_size=8), log_dir=str(tmp_path), display="none",
                        max_connections=8)
    assert logs[0].status == "success" and logs[0].results.scores[0].metrics["accuracy"].value == 1.0
    sizes = [c["size"] for c in counting.calls]
    assert sum(sizes) == 12 and max(sizes) == 8 and len(sizes) <= 3, sizes
    assert {c["max_tokens"] for c in counting.calls} == {7}


def test_an_engine_failure_reaches_every_caller_of_its_batch(counting: type[CountingEngine]) -> None:
    from inspect_ai.model import ChatMessageUser

    counting.fail = True
    model = _model()

    async def run() -> list[Any]:
        return await asyncio.gather(*(model.api.generate([ChatMessageUser(content=f"q{i}")], [], "auto",
                                                         model.config) for i in range(3)),
                                    return_exceptions=True)

    outs = asyncio.run(run())
    assert all(isinstance(o, RuntimeError) and "out of memory" in str(o) for o in outs)
    assert [c["size"] for c in counting.calls] == [3]


def test_a_cancelled_request_leaves_the_others_answered(counting: type[CountingEngine]) -> None:
    """A sample cancelled (a time limit) while it gathers a batch hands the gathering on."""
    from inspect_ai.model import ChatMessageUser

    model = _model()

    async def run() -> list[Any]:
        tasks = [asyncio.create_task(model.api.generate([ChatMessageUser(content=f"q{i}")], [], "auto",
                                                        model.config)) for i in range(3)]
        await asyncio.sleep(0.01)
        tasks[0].cancel()  # the first request leads the gathering of the batch
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, *rest = asyncio.run(run())
    assert isinstance(first, asyncio.CancelledError) and [o.completion for o in rest] == ["q1#0", "q2#0"]
    assert [c["size"] for c in counting.calls] == [2]


def test_unknown_model_args_and_engines_are_one_line_errors(counting: type[CountingEngine]) -> None:
    with pytest.raises(ValueError, match=r"fleming/fake: unknown model arg\(s\) device \(known: model_path"):
        _model(device="cpu")
    with pytest.raises(Exception, match="unknown engine 'hff'"):
        _model(engine="hff")


# ---------------------------------------------------------------- evaluation

def test_evaluation_through_the_hf_engine_scores_as_inspects_hf_provider_did(tiny: str, tmp_path: Path) -> None:
    """The old path (Inspect's hf provider, greedy) and the engine path give the same completions and scores."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from fleming.evaluation import _register_info

    items = [make_item(i, answer="ABCD"[i % 4]) for i in range(6)]
    tiny = perturbed(tiny, tmp_path / "noisy")
    rows = evaluate([EvalTarget(label="tiny", path=tiny)], [("probe", lambda: mcq_task(items, name="probe"))],
                    tmp_path / "engine", engine=EngineChoice("hf"), max_tokens=8, display="none")
    assert rows[0].status == "success" and rows[0].tag["engine"] == {"name": "hf", "args": {}}
    new = read_eval_log(rows[0].log)
    _register_info("hf/tiny", tiny)  # else Inspect looks hf/tiny up on the hub
    old = inspect_eval(mcq_task(items, name="probe"), log_dir=str(tmp_path / "hf"), display="none", max_tokens=8,
                       model=get_model("hf/tiny", model_path=tiny, do_sample=False, device="cpu"))[0]
    old = read_eval_log(old.location)
    assert len({s.output.completion for s in old.samples or []}) > 1  # the comparison can tell answers apart
    assert {s.id: s.output.completion for s in new.samples or []} == \
        {s.id: s.output.completion for s in old.samples or []}
    scores = [(s.name, m, v.value) for s in new.results.scores for m, v in s.metrics.items()]
    assert scores == [(s.name, m, v.value) for s in old.results.scores for m, v in s.metrics.items()]


def test_evaluate_names_the_engine_and_frees_each_model_after_it(counting: type[CountingEngine],
                                                                   tmp_path: Path) -> None:
    counting.script = {i: "BBB" for i in range(5)}
    targets = [EvalTarget(label=f"ckpt{i}", path=f"/models/ckpt{i}", stage="s", step=i) for i in range(2)]
    notes: list[str] = []
    rows = evaluate(targets, [("probe", lambda: mcq_task([make_item(i) for i in range(5)], name="probe"))],
                    tmp_path, engine=EngineChoice("acme-counting", {"tag": "t"}), model_args={"batch_size": 3},
                    display="none", status=notes.append, limit=4)
    assert [(r.label, r.status, r.samples, r.strict) for r in rows] == [("ckpt0", "success", 4, 1.0),
                                                                      ("ckpt1", "success", 4, 1.0)]
    assert all(r.tag["engine"] == {"name": "acme-counting", "args": {"tag": "t"}} for r in rows)
    assert counting.loaded == ["/models/ckpt0", "/models/ckpt1"]
    assert max(c["size"] for c in counting.calls) == 3 and "with engine acme-counting (tag=t)" in notes[-1]
    assert counting.closed == ["/models/ckpt0", "/models/ckpt1"]  # each model's engine closed after its eval


# ---------------------------------------------------------------- verifiers with a local model

def test_pass_rate_on_a_local_model_samples_through_the_engine(counting: type[CountingEngine],
                                                              tmp_path: Path, own_cache: Path) -> None:
    counting.script = {0: "BBBB", 1: "BACD", 2: "AAAA", 3: "BBAA"}  # every answer is B
    items = [make_item(i) for i in range(4)]
    ctx = stage_ctx(tmp_path / "a", "annotate", engine="acme-counting", base_model="/models/policy", seed=5)
    verdicts = PassRateAnnotator(k=4, batch_size=3).verify(items, ctx)
    assert [v.item.provenance["pass_rate"]["rate"] for v in verdicts] == [1.0, 0.25, 0.0, 0.5]
    assert [v.item.difficulty for v in verdicts] == ["easy", "difficult", "difficult", "moderate"]
    assert verdicts[0].item.provenance["pass_rate"]["engine"] == {"name": "acme-counting", "args": {}}
    assert counting.loaded == ["/models/policy"]
    assert [(c["size"], c["n"], c["temperature"]) for c in counting.calls] == [(3, 4, 1.0), (1, 4, 1.0)]
    assert counting.calls[0]["seed"] == 5 and counting.calls[1]["seed"] != 5  # batch 0 takes the seed
    assert ctx.notes["pass-rate"]["engine"] == {"name": "acme-counting", "args": {}}
    assert ctx.notes["pass-rate"]["calls"] == 2 and ctx.notes["pass-rate"]["cached"] == 0
    # a re-run takes every answer from the cache: the model is not even loaded
    counting.calls.clear()
    again = stage_ctx(tmp_path / "b", "annotate", engine="acme-counting", base_model="/models/policy", seed=5)
    assert [v.item.difficulty for v in PassRateAnnotator(k=4, batch_size=3).verify(items, again)] == \
        [v.item.difficulty for v in verdicts]
    assert counting.calls == [] and again.notes["pass-rate"]["cached"] == 16
    # the annotator's own engine and args win over the run's
    counting.loaded.clear()
    own = PassRateAnnotator(model="hf/policy", model_args={"model_path": "/models/other"}, k=4,
                            engine="acme-counting", engine_args={"tag": "x"}, cache=False)
    got = own.verify(items, stage_ctx(tmp_path / "c", "annotate", engine="hf"))
    assert got[0].details["engine"] == {"name": "acme-counting", "args": {"tag": "x"}}
    assert counting.loaded == ["/models/other"]


def test_label_check_on_a_local_model_samples_through_the_engine(counting: type[CountingEngine],
                                                                tmp_path: Path, own_cache: Path) -> None:
    counting.script = {0: "BBBBB", 1: "AAAAA", 2: "CBCCC"}
    items = [make_item(i) for i in range(3)]
    check = LabelCheck(model="hf/checker", model_args={"model_path": "/models/checker"}, policy="flag")
    ctx = stage_ctx(tmp_path, "verify", engine="acme-counting")
    verdicts = check.verify(items, ctx)
    assert [v.status for v in verdicts] == ["pass", "flag", "pass"]
    assert [v.details["correct"] for v in verdicts] == [5, 0, 1]
    assert verdicts[1].item.provenance["label_check"]["engine"] == {"name": "acme-counting", "args": {}}
    assert [(c["size"], c["n"], c["temperature"]) for c in counting.calls] == [(3, 5, 0.7)]
    assert ctx.notes["label-check"]["model"] == "/models/checker"


def test_a_verifiers_engine_args_are_checked_when_it_is_built(counting: type[CountingEngine]) -> None:
    with pytest.raises(ValueError, match="engine_args needs engine"):
        PassRateAnnotator(engine_args={"dtype": "bfloat16"})
    with pytest.raises(Exception, match="unknown engine 'hff'"):
        LabelCheck(model="tiny-random", engine="hff")
    with pytest.raises(Exception, match="dtype"):
        PassRateAnnotator(engine="hf", engine_args={"dtype": "fp8"})
