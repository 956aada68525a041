"""Interrupts on the real paths: `fleming run` with the `trl` trainer on tiny-random, stopped by kill -9 mid-step,
by Ctrl-C (SIGINT) in the middle of a checkpoint save, and by either during the evaluation; each rerun finishes,
resuming from the newest complete checkpoint, with every output in place."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from inspect_ai.log import list_eval_logs, read_eval_log

from fleming.testing import make_item, write_jsonl

STAGES = ("model", "collect", "mix", "rl-s1", "eval")
STEPS = 3

# Loaded by the first run only (through PYTHONPATH): holds TRL's save of checkpoint-2 open right before it writes
# trainer_state.json (weights and optimizer already on disk), after touching a file the test waits for.
SLOW_SAVE = textwrap.dedent('''
    import importlib.abc, importlib.machinery, os, sys, time

    def _patch(state_cls):
        original = state_cls.save_to_json
        def save_to_json(self, json_path):
            if os.path.basename(os.path.dirname(json_path)) == "checkpoint-2":
                open(os.environ["SLOW_SAVE_STARTED"], "w").close()
                time.sleep(120)
            return original(self, json_path)
        state_cls.save_to_json = save_to_json

    class _Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "transformers.trainer_callback":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            run = spec.loader.exec_module
            def exec_module(module):
                run(module)
                _patch(module.TrainerState)
            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Hook())
''')


@pytest.fixture
def recipe(tmp_path: Path, model_cache: Path) -> Path:
    """A run of every kind of stage, fast on two cores: 16 items, one GRPO round of 3 steps, a checkpoint per step,
    every checkpoint evaluated on 2 held-out items."""
    write_jsonl(tmp_path / "qa.jsonl", [make_item(i, answer="ABCD"[i % 4], entity=f"OMIM:{100 + i % 6}").to_record()
                                        for i in range(16)])
    data = {
        "name": "interrupted", "seed": 0, "model": "tiny-random",
        "data": {"sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}], "mix": {"heldout_fraction": 0.25}},
        "rl": {"trainer": {"plugin": "trl", "args": {"batch_size": 2, "max_completion_length": 8, "save_steps": 1,
                                                      "learning_rate": 1.0e-5}},
               "rewards": [{"plugin": "answer"}, {"plugin": "format", "args": {"weight": 0.5}}],
               "stages": [{"name": "s1", "curriculum": {"plugin": "difficulty-mix", "args": {"size": 4}},
                           "rollouts": 2, "max_steps": STEPS}]},
        "eval": {"benchmarks": [{"plugin": "kg-heldout", "args": {"all_items": True}}], "limit": 2, "max_tokens": 8},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _cli(recipe: Path) -> list[str]:
    return [sys.executable, "-m", "fleming", "run", str(recipe), "--runs-dir", str(recipe.parent / "runs"),
            "--no-progress"]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", **extra}


def _interrupt(recipe: Path, ready: Callable[[], bool], sig: int, env: dict[str, str]) -> str:
    """Start `fleming run`, send `sig` once `ready()` holds, wait for the process to end; return its output."""
    log = recipe.parent / "first.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(_cli(recipe), stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while not ready():
                if proc.poll() is not None:
                    pytest.fail(f"fleming run exited ({proc.returncode}) too early:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the interrupt point was not reached in 120 s:\n{log.read_text()}")
                time.sleep(0.02)
            os.kill(proc.pid, sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), log.read_text()
    return log.read_text()


def _rerun(recipe: Path) -> str:
    got = subprocess.run(_cli(recipe), capture_output=True, text=True, env=_env(), timeout=300)
    assert got.returncode == 0, got.stderr
    return got.stderr


def _round(recipe: Path) -> Path:
    return recipe.parent / "runs" / "interrupted" / "rl-s1" / "checkpoints" / "round-0"


def _exists(folder: Path, pattern: str) -> bool:
    """Whether a file matching `pattern` is somewhere under `folder` (which the run is changing meanwhile)."""
    try:
        return any(folder.rglob(pattern))
    except OSError:
        return False


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def _assert_complete(recipe: Path) -> dict[str, Any]:
    """Every stage finished; every announced checkpoint once, complete, and evaluated once; return the RL record."""
    run_dir = recipe.parent / "runs" / "interrupted"
    for stage in STAGES:
        assert (run_dir / stage / "manifest.json").exists(), stage
    announced = [json.loads(line) for line in
                 (run_dir / "rl-s1" / "checkpoints" / "announced.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted({r["step"] for r in announced}) == list(range(1, STEPS + 1))
    for step in range(1, STEPS + 1):
        assert (_round(recipe) / f"checkpoint-{step}" / "fleming-saved.json").exists()
    logs = [read_eval_log(p, header_only=True) for p in list_eval_logs(str(run_dir / "eval" / "logs"))]
    assert all(log.status == "success" for log in logs)
    evaluated = sorted((log.eval.metadata["fleming"]["stage"], log.eval.metadata["fleming"]["step"]) for log in logs)
    assert evaluated == [("base", 0)] + [("rl-s1", s) for s in range(1, STEPS + 1)]
    manifest = json.loads((run_dir / "rl-s1" / "manifest.json").read_text(encoding="utf-8"))
    return manifest["notes"]["trl"][-1]


def test_kill_9_mid_step_then_rerun_resumes_from_the_last_checkpoint(recipe: Path) -> None:
    first = _round(recipe) / "checkpoint-1"
    _interrupt(recipe, lambda: (first / "fleming-saved.json").exists(), signal.SIGKILL, _env())
    assert not (recipe.parent / "runs" / "interrupted" / "rl-s1" / "manifest.json").exists()
    kept = _mtimes(first)
    output = _rerun(recipe)
    assert "rl-s1: resuming" in output and "collect: skipped" in output
    record = _assert_complete(recipe)
    assert record["resumed_from"] is not None  # not restarted from scratch
    assert _mtimes(first) == kept


def test_sigint_mid_checkpoint_save_then_rerun_drops_the_cut_checkpoint_and_resumes(recipe: Path) -> None:
    hook = recipe.parent / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_SAVE, encoding="utf-8")
    started = recipe.parent / "save-started"
    env = _env(PYTHONPATH=os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
               SLOW_SAVE_STARTED=str(started))
    output = _interrupt(recipe, started.exists, signal.SIGINT, env)
    assert "interrupted" in output
    cut = _round(recipe) / "checkpoint-2"
    assert (cut / "model.safetensors").exists() and not (cut / "trainer_state.json").exists()
    kept = _mtimes(_round(recipe) / "checkpoint-1")
    output = _rerun(recipe)
    assert ("rl-s1: removed incomplete checkpoint-2 (no trainer_state.json; interrupted while saving); "
            "resuming from checkpoint-1") in " ".join(output.split())
    record = _assert_complete(recipe)
    assert record["resumed_from"] == str(_round(recipe) / "checkpoint-1")
    assert _mtimes(_round(recipe) / "checkpoint-1") == kept


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "kill-9"])
def test_an_interrupted_evaluation_reruns_only_the_evaluation(recipe: Path, sig: int) -> None:
    runs = recipe.parent / "runs"
    _interrupt(recipe, lambda: _exists(runs, "*.eval"), sig, _env())
    assert not (runs / "interrupted" / "eval" / "manifest.json").exists()
    output = _rerun(recipe)
    for stage in STAGES[:-1]:
        assert f"{stage}: skipped" in output
    _assert_complete(recipe)
