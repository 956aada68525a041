"""Training end to end on tiny-random: cold start → RL stage 1 → RL stage 2, every checkpoint evaluated; and a
third-party reward and curriculum swapped in from the recipe alone."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from inspect_ai.log import list_eval_logs, read_eval_log
from rich.console import Console

from fleming.pipeline import RunContext, run_pipeline
from fleming.recipe import load_recipe
from fleming.testing import fresh_registry

REPO = Path(__file__).resolve().parents[1]


def _run(recipe: Path, runs: Path, entry_points: bool = False) -> tuple[RunContext, list[Any]]:
    pm, registry = fresh_registry(entry_points=entry_points)
    loaded = load_recipe(recipe, registry)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=runs / loaded.recipe.name,
                     console=Console(file=open(os.devnull, "w")), show_progress=False)
    return run, run_pipeline(run)


def _manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _announced(folder: Path) -> list[dict[str, Any]]:
    path = folder / "checkpoints" / "announced.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, _session_model_cache: Path) -> Iterator[RunContext]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLEMING_CACHE", str(_session_model_cache))
        mp.setenv("FLEMING_PLUGINS", "")
        run, outcomes = _run(REPO / "recipes" / "train-tiny.yaml", tmp_path_factory.mktemp("runs"))
        assert [o.name for o in outcomes] == ["model", "collect", "synthesize", "mix", "cold_start", "rl-stage1",
                                              "rl-stage2", "eval"]
        yield run


def test_every_stage_trains_from_the_last_and_every_checkpoint_is_evaluated(tiny_run: RunContext) -> None:
    run_dir = tiny_run.run_dir
    announced = {s: _announced(run_dir / s) for s in ("cold_start", "rl-stage1", "rl-stage2")}
    assert all(announced.values())
    for stage, records in announced.items():
        steps = [r["step"] for r in records]
        assert steps == sorted(steps) and len(set(steps)) == len(steps), stage
        assert all((Path(r["path"]) / "config.json").exists() for r in records)
    logs = [read_eval_log(p, header_only=True) for p in list_eval_logs(str(run_dir / "eval" / "logs"))]
    assert all(log.status == "success" for log in logs)
    evaluated = {(log.eval.metadata["fleming"]["stage"], log.eval.metadata["fleming"]["step"]) for log in logs}
    expected = {("base", 0)} | {(s, r["step"]) for s, recs in announced.items() for r in recs}
    assert evaluated == expected
    finals = sorted(log.eval.metadata["fleming"]["stage_index"] for log in logs if log.eval.metadata["fleming"]["final"])
    assert finals == [0, 1, 2, 3]  # base → cold start → stage 1 → stage 2, one final each


def test_the_manifests_explain_each_curriculum_decision(tiny_run: RunContext) -> None:
    run_dir = tiny_run.run_dir
    stage1 = _manifest(run_dir / "rl-stage1")["notes"]
    assert stage1["curriculum"][0]["items"] > 0 and stage1["curriculum"][0]["reason"]
    assert stage1["curriculum"][-1]["decision"] == "end of stage" and stage1["curriculum"][-1]["reason"]
    assert "difficulty-mix" in stage1
    stage2 = _manifest(run_dir / "rl-stage2")["notes"]
    first = stage2["curriculum"][0]
    assert first["rollouts"] > stage1["curriculum"][0]["rollouts"]  # stage 2 raises the rollouts per prompt
    assert "hard-mining" in stage2 and stage2["curriculum"][-1]["reason"]
    assert stage1["ended"] == stage1["curriculum"][-1]["reason"]  # why each curriculum ended its stage
    assert stage2["ended"] == stage2["curriculum"][-1]["reason"]
    sft = _manifest(run_dir / "cold_start")
    assert sft["counts"]["sft_items"] > 0


def test_each_rl_stage_records_its_signals_per_step_and_the_curriculums_decisions(tiny_run: RunContext) -> None:
    from fleming.rl_signals import read_signals

    for stage in ("rl-stage1", "rl-stage2"):
        signals = read_signals(tiny_run.run_dir / stage)
        announced = _announced(tiny_run.run_dir / stage)
        assert signals is not None and signals.finished, stage
        assert [r["step"] for r in signals.steps] == list(range(1, announced[-1]["step"] + 1))
        assert all(set(r["rewards"]) == {"answer", "format"} and r["completion_length"] for r in signals.steps)
        kinds = [e["kind"] for e in signals.events]
        assert kinds[0] == "round_start" and kinds[-1] == "stage_end" and signals.events[-1]["reason"], stage
    assert read_signals(tiny_run.run_dir / "rl-stage1").sparse_threshold() == 0.8  # type: ignore[union-attr]
    assert "mined" in read_signals(tiny_run.run_dir / "rl-stage2").events[0]["stats"]  # type: ignore[union-attr]


def test_a_third_party_reward_and_curriculum_swap_in_from_the_recipe(tmp_path: Path, model_cache: Path,
                                                                     with_acme: None) -> None:
    recipe = yaml.safe_load((REPO / "recipes" / "train-tiny.yaml").read_text(encoding="utf-8"))
    recipe["name"] = "train-acme"
    recipe.pop("cold_start")
    recipe.pop("eval")
    recipe["rl"]["rewards"] = [{"plugin": "acme-brevity", "args": {"max_chars": 10_000}}]
    recipe["rl"]["stages"] = [{"name": "acme", "curriculum": {"plugin": "acme-reverse", "args": {"limit": 2}},
                               "rollouts": 2, "max_steps": 1}]
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    run, outcomes = _run(path, tmp_path / "runs", entry_points=True)
    notes = _manifest(run.run_dir / "rl-acme")["notes"]
    assert notes["curriculum"][0] == {"round": 0, "items": 2, "rollouts": 2, "reason": "hardest first"}
    metrics = {k: v for r in _announced(run.run_dir / "rl-acme") for k, v in r["metrics"].items()}
    brevity = [v for k, v in metrics.items() if "acme-brevity" in k and k.endswith("mean")]
    assert brevity and brevity[0] == pytest.approx(1.0)  # short completions: the third-party reward's full score
