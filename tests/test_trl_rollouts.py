"""GRPO rollouts through a generation engine: TRL's prompts reach the engine once per prompt with n samples,
the engine gets the policy's weights whenever the policy moved, and the round's record says what it cost."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fleming import hookimpl
from fleming.models import resolve_model
from fleming.protocols import TrainJob
from fleming.testing import add_plugins, fresh_registry, make_item
from fleming.types import Checkpoint, QAItem

FAST = dict(max_completion_length=6, batch_size=2, save_steps=1, learning_rate=1e-4)


class CountingEngine:
    """Answers every prompt with fixed texts and records what it was asked and which weights it holds."""

    log: list[tuple[str, Any]] = []

    def __init__(self) -> None:
        self.model: str | None = None

    def load(self, model_path: str) -> None:
        assert (Path(model_path) / "config.json").exists()
        self.log.append(("load", Path(model_path).name))

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        self.log.append(("generate", (len(prompts), n, temperature, max_tokens)))
        return [[f"<answer>{'AB'[j % 2]}</answer>" for j in range(n)] for _ in prompts]


class Engines:
    @hookimpl
    def register_engines(self, register: Any) -> None:
        register("counting", CountingEngine)


class Correct:
    def __call__(self, completions: Sequence[str], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        return [float(f"<answer>{it.answer}</answer>" in c) for c, it in zip(completions, items)]


@pytest.fixture(autouse=True)
def _engine_as_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollout engine each test names, not the suite's reference engine."""
    monkeypatch.delenv("FLEMING_ENGINE", raising=False)


@pytest.fixture
def tiny(model_cache: Path) -> str:
    return resolve_model("tiny-random").path


def _train(tiny: str, out: Path, **args: Any) -> tuple[Checkpoint, TrainJob]:
    _, registry = fresh_registry(Engines())
    items = [make_item(i, answer="AB"[i % 2]) for i in range(4)]
    job = TrainJob(kind="grpo", model_path=tiny, items=items, output_dir=out, seed=0, stage="rl-stage1",
                   rollouts=2, max_steps=2, announce=lambda c: None, notes={}, rewards=[(Correct(), 1.0)])
    trainer = registry.get("trainers", "trl").factory(**{**FAST, **args})
    return trainer.train(job, None), job


def test_rollouts_sample_through_the_engine_with_a_weight_sync_per_step(tiny: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    CountingEngine.log = []
    add_plugins(monkeypatch, Engines())
    ckpt, job = _train(tiny, tmp_path / "round-0", rollout_engine="counting")
    loads = [x for kind, x in CountingEngine.log if kind == "load"]
    calls = [x for kind, x in CountingEngine.log if kind == "generate"]
    assert loads == ["step-0", "step-1"]  # the start weights, then the weights after step 1
    assert calls == [(2, 2, 1.0, 6), (2, 2, 1.0, 6)]  # 2 prompts × 2 rollouts, TRL's temperature and budget
    record = job.notes["trl"][-1]["rollout_engine"]
    assert record["engine"] == {"name": "counting", "args": {}} and record["syncs"] == 2 and record["calls"] == 2
    assert record["sync_s"] > 0 and record["generate_s"] >= 0
    assert not (tmp_path / "round-0" / ".rollout-weights").exists()  # scratch weights removed
    assert json.loads((Path(ckpt.path) / "trainer_state.json").read_text())["global_step"] == 2


def test_hf_keeps_trls_own_generate(tiny: str, tmp_path: Path) -> None:
    _, job = _train(tiny, tmp_path / "round-0", rollout_engine="hf", max_steps=1)
    assert job.notes["trl"][-1]["rollout_engine"]["engine"]["name"] == "hf"


def test_openvino_rollouts_train_and_report(tiny: str, tmp_path: Path) -> None:
    pytest.importorskip("openvino_genai", reason="OpenVINO GenAI is not installed (pip install 'fleming-med[cpu]')")
    _, job = _train(tiny, tmp_path / "round-0", rollout_engine={"name": "openvino"}, max_steps=2)
    record = job.notes["trl"][-1]
    assert record["global_step"] == 2 and record["rollout_engine"]["syncs"] == 2


def test_a_bad_rollout_engine_is_a_one_line_error() -> None:
    from fleming.errors import RecipeError
    from fleming.components import validate_args

    _, registry = fresh_registry()
    with pytest.raises(RecipeError, match="rollout_engine"):
        validate_args(registry.get("trainers", "trl"), {"rollout_engine": 3}, "rl.trainer", Path.cwd())
