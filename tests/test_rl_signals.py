"""RL's own signals: the per-step record and the curriculum's decisions in an RL stage's folder (written by the
`trl` trainer and the stage, crash-safe, never twice on resume), and their charts on the leaderboard's run page."""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from _hand_logs import BASIC, write_log
from rich.console import Console

import fleming
from fleming.errors import StageError
from fleming.leaderboard import build_site
from fleming.leaderboard.site import run_page
from fleming.models import resolve_model
from fleming.pipeline import RunContext, run_pipeline
from fleming.plugins.curricula.difficulty_mix import DifficultyMix
from fleming.plugins.curricula.hard_mining import HardMining
from fleming.protocols import Selection, TrainJob
from fleming.recipe import load_recipe
from fleming.rl_signals import EVENTS, STEPS, SignalLog, partial_path, read_signals
from fleming.testing import fresh_registry, make_item, stage_ctx, write_jsonl
from fleming.types import Checkpoint, QAItem

FIELDS = {"step", "round", "rewards", "reward", "frac_reward_zero_std", "completion_length", "clipped_ratio", "loss"}
SCRIPT = "<script>alert(1)</script>"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _step(log: SignalLog, step: int, value: float = 0.5) -> None:
    log.step(step, {"answer": value}, value, 0.5, 30.0, 0.1, 0.01)


# ---------------------------------------------------------------- the record itself

def test_the_log_is_partial_until_the_stage_finishes_and_a_step_recorded_again_replaces_the_rest(
        tmp_path: Path) -> None:
    log = SignalLog(tmp_path).open()
    log.event("round_start", 0, 0, items=4, rollouts=2, reason="first", stats={"sparse_threshold": 0.8})
    for s in (1, 2, 3):
        _step(log, s, value=s / 10)
    assert not (tmp_path / STEPS).exists()  # a running (or killed) stage has only hidden partial files
    partial = read_signals(tmp_path)
    assert partial is not None and not partial.finished and [r["step"] for r in partial.steps] == [1, 2, 3]
    # resumed from the checkpoint of step 1: steps 2 and 3 are trained again and replace the old ones
    log.rewind(1)
    _step(log, 2, value=0.9)
    # a kill in the middle of a line leaves it cut short; taking the log up again drops it
    with open(log.steps_path, "a", encoding="utf-8") as fh:
        fh.write('{"step": 3, "rou')
    log = SignalLog(tmp_path).open()
    _step(log, 3, value=1.0)
    _step(log, 2, value=0.7)  # recorded again without a rewind: replaces 2 and drops 3
    log.event("round_start", 2, 1, items=3, rollouts=4, reason="second", stats={"mined": 2})
    log.event("round_start", 2, 1, items=3, rollouts=4, reason="second, again", stats={"mined": 2})
    log.event("stage_end", 2, 2, reason="rewards sparse: 100% of groups")
    log.finish()
    done = read_signals(tmp_path)
    assert done is not None and done.finished and not log.steps_path.exists()
    assert [(r["step"], r["reward"], r["round"]) for r in done.steps] == [(1, 0.1, 0), (2, 0.7, 0)]
    assert set(done.steps[0]) == FIELDS
    assert [(e["kind"], e.get("reason")) for e in done.events] == [
        ("round_start", "first"), ("round_start", "second, again"), ("stage_end", "rewards sparse: 100% of groups")]
    assert done.sparse_threshold() == 0.8 and done.reward_names() == ["answer"]
    # the stage runs again (resumed): its finished files become partial until it finishes anew
    SignalLog(tmp_path).open()
    assert not (tmp_path / STEPS).exists() and not read_signals(tmp_path).finished  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown signals event kind 'nope'"):
        log.event("nope", 0, 0)


def test_the_curricula_give_the_numbers_behind_their_choice(tmp_path: Path) -> None:
    ctx = stage_ctx(tmp_path / "rl-stage", "rl-stage", rollouts=4, start_model="/models/cold")
    mix = DifficultyMix(sparse_threshold=0.75).select([make_item(i, difficulty="easy") for i in range(4)], 0,
                                                       None, ctx)
    assert mix is not None and mix.stats == {"easy": 4, "moderate": 0, "sparse_threshold": 0.75}

    class Scripted(HardMining):
        def pass_rates(self, model: str, items: Any, seed: int, ctx: Any) -> dict[str, float]:
            return {it.id: 0.0 if i < 3 else 1.0 for i, it in enumerate(items)}

    mined = Scripted(pool_limit=8).select([make_item(i) for i in range(10)], 0, None, ctx)
    assert mined is not None and mined.stats == {"mined": 3, "solved_kept": 1, "evaluated": 8, "pool": 10}


# ---------------------------------------------------------------- the trl trainer writes it

class NamedReward:
    """A reward the trainer knows by its recipe name: the completion's length modulo 3."""

    fleming_name = "length"

    def __call__(self, completions: Sequence[str], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        return [float(len(c) % 3) for c in completions]


class Half:
    fleming_name = "half"

    def __call__(self, completions: Sequence[str], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        return [float(i % 2) for i in range(len(completions))]


def _grpo(tiny: str, out: Path, signals: SignalLog, max_steps: int) -> Checkpoint:
    _, registry = fresh_registry()
    trainer = registry.get("trainers", "trl").factory(max_completion_length=6, batch_size=2, save_steps=1)
    job = TrainJob(kind="grpo", model_path=tiny, items=[make_item(i) for i in range(4)], output_dir=out, seed=0,
                   stage="rl-stage1", rewards=[(NamedReward(), 1.0), (Half(), 0.5)], rollouts=2,
                   max_steps=max_steps, signals=signals)
    return trainer.train(job, None)


def test_a_grpo_round_records_every_step_once_even_when_resumed(model_cache: Path, tmp_path: Path) -> None:
    tiny = resolve_model("tiny-random").path
    stage = tmp_path / "rl-stage1"
    log = SignalLog(stage).open()
    for s in (1, 2):  # round 0 ended at step 2 (its record and its folder's marker, written by hand)
        _step(log, s)
    (stage / "checkpoints" / "round-0").mkdir(parents=True)
    (stage / "checkpoints" / "round-0" / "fleming-trl.json").write_text('{"step": 2}')
    log.event("round_start", 2, 1, items=4, rollouts=2, reason="r1")
    out = stage / "checkpoints" / "round-1"
    _grpo(tiny, out, log, max_steps=2)
    steps = _lines(log.steps_path)
    assert [(r["step"], r["round"]) for r in steps] == [(1, 0), (2, 0), (3, 1), (4, 1)]  # the stage's step count
    for r in steps[2:]:
        assert set(r) >= FIELDS and set(r["rewards"]) == {"length", "half"} and r["rewards"]["half"] == 0.5
        assert r["reward"] == pytest.approx(r["rewards"]["length"] + 0.5 * r["rewards"]["half"])
        assert 0 <= r["frac_reward_zero_std"] <= 1 and 0 <= r["clipped_ratio"] <= 1
        assert r["completion_length"] > 0 and isinstance(r["loss"], float)
    # killed after the round's first step was saved: the resumed round records its second step again, once
    (out / "fleming-trl.json").unlink()
    shutil.rmtree(out / "checkpoint-2")
    _grpo(tiny, out, SignalLog(stage).open(), max_steps=2)
    again = _lines(log.steps_path)
    assert [(r["step"], r["round"]) for r in again] == [(1, 0), (2, 0), (3, 1), (4, 1)] and again[2] == steps[2]


# ---------------------------------------------------------------- the RL stage writes the events

class TwoRounds:
    """Two rounds, the second with a mined set; then the stage ends saying why."""

    def __init__(self) -> None:
        self.end_reason: str | None = None

    def select(self, pool: Any, round: int, last: Any, ctx: Any) -> Selection | None:
        if round >= 2:
            self.end_reason = "rewards sparse: 100% of groups had zero variance"
            return None
        stats = {"sparse_threshold": 0.8} if round == 0 else {"mined": 2, "pool": len(pool)}
        return Selection(items=list(pool)[:2 + round], rollouts=2 + 2 * round, reason=f"round {round}", stats=stats)

    def observe(self, step: int, group_rewards: Any) -> None:
        return None


class StepWriter:
    """Records two steps per round through ``job.signals``; fails in round 1 while `fail` is set."""

    fail = False

    def train(self, job: TrainJob, ctx: fleming.StageContext) -> fleming.Checkpoint:
        out = Path(job.output_dir)
        offset = 0 if out.name == "round-0" else 2
        for s in (offset + 1, offset + 2):
            job.signals.step(s, {"answer": s / 10}, s / 10, 0.5, 20.0, 0.0, 0.1)  # type: ignore[union-attr]
            if self.fail and out.name == "round-1":
                raise RuntimeError("killed")
        target = out / "final"
        if not target.exists():
            shutil.copytree(job.model_path, target)
        return fleming.Checkpoint(target, job.stage, offset + 2)


class Plugins:
    @fleming.hookimpl
    def register_curricula(self, register: Any) -> None:
        """Register the two-round curriculum."""
        register("two-rounds", TwoRounds)

    @fleming.hookimpl
    def register_trainers(self, register: Any) -> None:
        """Register the step-writing trainer."""
        register("step-writer", StepWriter)


def _run_stage(folder: Path) -> RunContext:
    write_jsonl(folder / "qa.jsonl", [make_item(i).to_record() for i in range(6)])
    recipe = {"name": "sigrun", "seed": 0, "model": "tiny-random",
              "data": {"sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}],
                       "mix": {"heldout_fraction": 0.3}},
              "rl": {"trainer": {"plugin": "step-writer"}, "rewards": [{"plugin": "answer"}],
                     "stages": [{"name": "s1", "curriculum": {"plugin": "two-rounds"}}]}}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    pm, registry = fresh_registry(Plugins())
    loaded = load_recipe(folder / "recipe.yaml", registry)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=folder / "runs" / "sigrun",
                     console=Console(file=open(folder / "console.txt", "w")), show_progress=False)
    run_pipeline(run)
    return run


def test_an_rl_stage_records_round_starts_mined_sets_and_why_it_ended_once_across_a_kill(
        tmp_path: Path, model_cache: Path) -> None:
    StepWriter.fail = True
    try:
        with pytest.raises(StageError, match="killed"):
            _run_stage(tmp_path)
    finally:
        StepWriter.fail = False
    stage = tmp_path / "runs" / "sigrun" / "rl-s1"
    killed = read_signals(stage)
    assert killed is not None and not killed.finished and not (stage / STEPS).exists()
    assert [r["step"] for r in killed.steps] == [1, 2, 3]
    _run_stage(tmp_path)  # resumed: round 0 is done, round 1 runs again
    done = read_signals(stage)
    assert done is not None and done.finished and (stage / "manifest.json").exists()
    assert [(r["step"], r["round"]) for r in done.steps] == [(1, 0), (2, 0), (3, 1), (4, 1)]
    assert [(e["kind"], e["step"], e["round"]) for e in done.events] == [
        ("round_start", 0, 0), ("round_start", 2, 1), ("stage_end", 4, 2)]
    first, second, end = done.events
    assert (first["items"], first["rollouts"], first["reason"]) == (2, 2, "round 0")
    assert second["stats"]["mined"] == 2 and second["rollouts"] == 4
    assert end["reason"].startswith("rewards sparse")
    assert not any(p.name.endswith(".part") for p in stage.iterdir())
    assert {STEPS, EVENTS} <= {p.name for p in stage.iterdir()}


# ---------------------------------------------------------------- the run page charts them

def _hand_stage(stage: Path, reward_name: str) -> None:
    stage.mkdir(parents=True)
    steps = [{"step": s, "round": 0 if s <= 3 else 1, "rewards": {reward_name: s / 10, "format": 0.5},
              "reward": s / 10 + 0.25, "frac_reward_zero_std": 1 - s / 10, "completion_length": 20.0 + s,
              "clipped_ratio": 0.1, "loss": 0.01} for s in range(1, 7)]
    events = [{"kind": "round_start", "step": 0, "round": 0, "items": 6, "rollouts": 4, "reason": f"mix {SCRIPT}",
               "stats": {"sparse_threshold": 0.8}},
              {"kind": "round_start", "step": 3, "round": 1, "items": 5, "rollouts": 8, "reason": "mined",
               "stats": {"mined": 12, "pool": 40}},
              {"kind": "stage_end", "step": 6, "round": 2, "reason": "rewards sparse: 90% of groups"}]
    (stage / STEPS).write_text("".join(json.dumps(r) + "\n" for r in steps), encoding="utf-8")
    (stage / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")


def test_the_run_page_charts_each_rl_stage_with_the_curriculums_decisions(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "gamma"
    _hand_stage(run_dir / "rl-stage1", f"answer{SCRIPT}")
    tag = {"run": "gamma", "stage": "rl-stage1", "stage_index": 1, "step": 6, "final": True, "model": "gamma s1",
           "model_path": str(run_dir / "rl-stage1" / "final")}
    write_log(run_dir / "eval" / "logs", "medqa", BASIC, fleming=tag)
    # a run whose folder is not on this machine: its page has no RL charts, and the build does not fail
    elsewhere = {**tag, "run": "delta", "model_path": "/nowhere/delta/rl-stage1/final"}
    write_log(tmp_path / "plain", "medqa", BASIC, fleming=elsewhere)
    # logs moved away from their run: the evaluated checkpoint's path still leads to the run folder
    _hand_stage(tmp_path / "kept" / "eps" / "rl-s1", "answer")
    for name in (STEPS, EVENTS):  # and that stage was killed: its record is partial
        (tmp_path / "kept" / "eps" / "rl-s1" / name).rename(partial_path(tmp_path / "kept" / "eps" / "rl-s1" / name))
    moved = {**tag, "run": "eps", "stage": "rl-s1", "model_path": str(tmp_path / "kept" / "eps" / "rl-s1" / "final")}
    write_log(tmp_path / "plain", "pubmedqa", BASIC, fleming=moved)
    build_site([run_dir, tmp_path / "plain"], tmp_path / "site")
    page = (tmp_path / "site" / run_page("gamma")).read_text(encoding="utf-8")
    section = page[page.index('id="rl-signals"'):page.index("Logs of this run")]
    assert section.count("<svg") == 4
    for title in ("Mean reward", "Groups whose rewards are all equal", "Mean completion length (tokens)",
                  "Completions clipped at the length limit"):
        assert f">{title}</text>" in section
    assert section.count('class="marker round-start"') == 8 and section.count('class="marker stage-end"') == 4
    assert "R1 mined 12" in section and "end: rewards sparse" in section and "stage ends at ≥ 80%" in section
    assert "step 3: round 1 starts with 5 items × 8 rollouts (mined 12, pool 40): mined" in section
    assert SCRIPT not in page and "&lt;script&gt;" in section
    assert len(re.findall(r'class="series s\d"', section)) >= 3  # a line per reward and the weighted total
    other = (tmp_path / "site" / run_page("delta")).read_text(encoding="utf-8")
    assert 'id="rl-signals"' not in other
    eps = (tmp_path / "site" / run_page("eps")).read_text(encoding="utf-8")
    assert eps.count('class="marker stage-end"') == 4 and "This stage has not finished" in eps
    assert "This stage has not finished" not in section
