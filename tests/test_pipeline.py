"""The resumable pipeline: stage outputs and manifests, skipping, --from / --only, plugins, kill -9, secrets."""
from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _scripted_llm as scripted
import pytest
import yaml
from rich.console import Console

import fleming
from fleming import QAItem, Rejected
from fleming.errors import StageError
from fleming.pipeline import RunContext, StageOutcome, run_pipeline
from fleming.recipe import load_recipe
from fleming.testing import fresh_registry, make_item, write_jsonl

SECRET = "sk-test-0123456789abcdef"
MALFORMED_LINE = 6


# ---------------------------------------------------------------- helpers

def _source(folder: Path, n: int = 24) -> Path:
    """Write `n` valid items (8 answer entities) with one malformed line at line MALFORMED_LINE."""
    records: list[Any] = [make_item(i, entity=f"OMIM:{100 + i % 8}").to_record() for i in range(n)]
    records.insert(MALFORMED_LINE - 1, '{"id": "broken", "question": ')
    return write_jsonl(folder / "qa.jsonl", records)


def _recipe(folder: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {
        "name": "datarun", "seed": 0, "model": "tiny-random",
        "data": {"sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}], "mix": {"heldout_fraction": 0.3}},
    }
    data.update(changes)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _rl_section(steps: int, seconds_per_step: float = 0.0) -> dict[str, Any]:
    args: dict[str, Any] = {"steps": steps}
    if seconds_per_step:
        args["seconds_per_step"] = seconds_per_step
    return {
        "trainer": {"plugin": "acme-copy", "args": args},
        "rewards": [{"plugin": "acme-brevity", "args": {"weight": 0.5}}],
        "stages": [{"name": "s1", "curriculum": {"plugin": "acme-reverse"}},
                   {"name": "s2", "curriculum": {"plugin": "acme-reverse"}}],
    }


def _run(recipe: Path, runs_dir: Path, *plugins: Any, entry_points: bool = False,
         **options: Any) -> tuple[list[StageOutcome], str]:
    """Run the recipe in-process with a fresh registry; return the outcomes and the console output."""
    pm, registry = fresh_registry(*plugins, entry_points=entry_points)
    loaded = load_recipe(recipe, registry)
    out = io.StringIO()
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=runs_dir / loaded.recipe.name,
                     console=Console(file=out, width=200), show_progress=False)
    return run_pipeline(run, **options), out.getvalue()


def _status(outcomes: list[StageOutcome]) -> dict[str, str]:
    return {o.name: o.status for o in outcomes}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _manifest(stage_dir: Path) -> dict[str, Any]:
    return json.loads((stage_dir / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture
def data_run(tmp_path: Path, model_cache: Path) -> tuple[Path, Path]:
    """A data-only recipe over a source file with one malformed line; returns (recipe, runs dir)."""
    _source(tmp_path)
    return _recipe(tmp_path), tmp_path / "runs"


# ---------------------------------------------------------------- a data-only run

def test_data_recipe_writes_items_rejects_and_manifests(data_run: tuple[Path, Path], model_cache: Path) -> None:
    recipe, runs = data_run
    outcomes, output = _run(recipe, runs)
    assert _status(outcomes) == {"model": "ran", "collect": "ran", "mix": "ran"}
    run_dir = runs / "datarun"

    for stage in ("model", "collect", "mix"):
        m = _manifest(run_dir / stage)
        assert m["stage"] == stage
        assert len(m["fingerprint"]) == 16
        assert isinstance(m["seconds"], float) and m["seconds"] >= 0
        assert m["versions"]["fleming"] == fleming.__version__
        assert "torch" in m["packages"] and "transformers" in m["packages"]
        assert f"{stage}: running" in output

    model = json.loads((run_dir / "model" / "model.json").read_text())
    assert Path(model["path"]) == model_cache / "models" / "tiny-random"

    items = _jsonl(run_dir / "collect" / "items.jsonl")
    assert len(items) == 24
    for rec in items:
        assert set(rec) == {"id", "question", "options", "answer", "meta"}
        assert rec["answer"] in rec["options"]
        assert rec["meta"]["dataset"] == "qa"
    assert [r["meta"]["row"] for r in items[:7]] == [1, 2, 3, 4, 5, 7, 8]  # line 6 is the malformed one

    (reject,) = _jsonl(run_dir / "collect" / "rejects.jsonl")
    assert reject["where"] == f"{recipe.parent / 'qa.jsonl'}:{MALFORMED_LINE}"
    assert reject["reason"].startswith("invalid JSON")
    assert _manifest(run_dir / "collect")["counts"] == {"source:jsonl:0": 24, "items": 24, "rejected": 1}

    # the mix: every collected item is in exactly one of train / heldout / unused
    mix = run_dir / "mix"
    train, heldout, unused = (_jsonl(mix / f"{n}.jsonl") for n in ("train", "heldout", "unused"))
    assert sorted(r["id"] for r in train + heldout) + [u["record"]["id"] for u in unused] == \
        sorted(r["id"] for r in items)
    assert heldout and train
    assert not {r["meta"]["answer_entity"] for r in heldout} & {r["meta"]["answer_entity"] for r in train}
    counts = _manifest(mix)["counts"]
    assert (counts["train"], counts["heldout"], counts["unused"]) == (len(train), len(heldout), len(unused))


def test_rerun_skips_and_changes_rerun_only_what_they_touch(data_run: tuple[Path, Path]) -> None:
    recipe, runs = data_run
    _run(recipe, runs)

    outcomes, output = _run(recipe, runs)
    assert _status(outcomes) == {"model": "skipped", "collect": "skipped", "mix": "skipped"}
    for stage in ("model", "collect", "mix"):
        assert f"{stage}: skipped" in output

    _recipe(recipe.parent, data={"sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}],
                                 "mix": {"heldout_fraction": 0.6}})
    outcomes, _ = _run(recipe, runs)
    assert _status(outcomes) == {"model": "skipped", "collect": "skipped", "mix": "ran"}
    assert _manifest(runs / "datarun" / "mix")["config"]["mix"]["heldout_fraction"] == 0.6

    outcomes, _ = _run(recipe, runs, from_stage="collect")
    assert _status(outcomes) == {"model": "skipped", "collect": "ran", "mix": "ran"}

    outcomes, _ = _run(recipe, runs, only="mix")
    assert [(o.name, o.status) for o in outcomes] == [("mix", "ran")]

    outcomes, _ = _run(recipe, runs)
    assert set(_status(outcomes).values()) == {"skipped"}

    with open(recipe.parent / "qa.jsonl", "a", encoding="utf-8") as fh:  # the data changes, the recipe does not
        fh.write(json.dumps(make_item(99, entity="OMIM:999").to_record()) + "\n")
    outcomes, _ = _run(recipe, runs)
    assert _status(outcomes) == {"model": "skipped", "collect": "ran", "mix": "ran"}
    assert _manifest(runs / "datarun" / "collect")["counts"]["items"] == 25


def test_only_a_stage_whose_inputs_never_ran_names_the_missing_stage(data_run: tuple[Path, Path]) -> None:
    recipe, runs = data_run
    with pytest.raises(StageError, match="stage 'mix' needs 'collect'"):
        _run(recipe, runs, only="mix")
    assert not (runs / "datarun" / "mix").exists()


def test_a_second_run_on_the_same_folder_is_refused(data_run: tuple[Path, Path]) -> None:
    recipe, runs = data_run
    run_dir = runs / "datarun"
    run_dir.mkdir(parents=True)
    with open(run_dir / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another `fleming run` would
        with pytest.raises(StageError, match="another fleming run"):
            _run(recipe, runs)
        assert not (run_dir / "model").exists()
    outcomes, _ = _run(recipe, runs)  # the lock is free again
    assert len(outcomes) == 3


# ---------------------------------------------------------------- RL stages with a third-party plugin

class Observer:
    """An in-process observer plugin recording what the run announces."""

    def __init__(self) -> None:
        self.checkpoints: list[tuple[str, int, Path]] = []
        self.finished: list[str] = []

    @fleming.hookimpl
    def checkpoint_saved(self, checkpoint: fleming.Checkpoint, run: fleming.RunInfo) -> None:
        """Record each checkpoint; the run is the public RunInfo, never the pipeline's internal context."""
        assert isinstance(run, fleming.RunInfo) and (run.dir / "model").is_dir() and run.recipe.is_file()
        assert (Path(checkpoint.path) / "config.json").exists()
        self.checkpoints.append((checkpoint.stage, checkpoint.step, Path(checkpoint.path)))

    @fleming.hookimpl
    def stage_finished(self, stage: str, manifest: dict[str, Any], run: fleming.RunInfo) -> None:
        """Record each finished stage."""
        self.finished.append(stage)


def test_rl_stages_announce_every_checkpoint_and_chain_models(tmp_path: Path, model_cache: Path,
                                                              with_acme: None) -> None:
    _source(tmp_path)
    recipe = _recipe(tmp_path, name="rlrun", rl=_rl_section(steps=2))
    observer = Observer()
    outcomes, _ = _run(recipe, tmp_path / "runs", observer, entry_points=True)
    run_dir = tmp_path / "runs" / "rlrun"
    assert [o.name for o in outcomes] == ["model", "collect", "mix", "rl-s1", "rl-s2"]
    assert observer.finished == ["model", "collect", "mix", "rl-s1", "rl-s2"]
    assert [(s, n) for s, n, _ in observer.checkpoints] == [("rl-s1", 1), ("rl-s1", 2), ("rl-s2", 1), ("rl-s2", 2)]

    def trained_from(stage: str, step: int) -> Path:
        return Path(json.loads((run_dir / stage / "checkpoints" / "round-0" / f"step-{step}" / "acme.json")
                               .read_text())["trained_from"]).resolve()

    base = Path(json.loads((run_dir / "model" / "model.json").read_text())["path"]).resolve()
    s1_final = Path(json.loads((run_dir / "rl-s1" / "model.json").read_text())["path"]).resolve()
    assert s1_final == (run_dir / "rl-s1" / "final").resolve()
    assert (s1_final / "config.json").exists()
    assert trained_from("rl-s1", 1) == base
    assert trained_from("rl-s2", 1) == s1_final  # stage 2 starts from stage 1's final model

    train = _jsonl(run_dir / "mix" / "train.jsonl")
    for stage in ("rl-s1", "rl-s2"):
        m = _manifest(run_dir / stage)
        assert m["notes"]["curriculum"] == [
            {"round": 0, "items": len(train), "rollouts": 8, "reason": "hardest first"},
            {"round": 1, "decision": "end of stage", "reason": None},
        ]
        assert m["notes"]["acme"][0]["reward"] == 0.5  # brevity 1.0 times the recipe's weight 0.5
        assert m["counts"] == {"rounds": 1, "pool": len(train)}


class JobRecorder:
    """A curriculum that asks for one ordered round and then ends the stage saying why, and a trainer that
    records what the RL stage handed it."""

    class OneOrderedRound:
        def __init__(self) -> None:
            self.end_reason: str | None = None

        def select(self, pool: Any, round: int, last: Any, ctx: fleming.StageContext) -> Any:
            from fleming.protocols import Selection

            if round > 0:
                self.end_reason = "one round is enough"
                return None
            return Selection(items=list(pool)[:3][::-1], reason="three, reversed", ordered=True)

        def observe(self, step: int, group_rewards: Any) -> None:
            return None

    class Recorder:
        def train(self, job: Any, ctx: fleming.StageContext) -> fleming.Checkpoint:
            import shutil

            out = Path(job.output_dir) / "step-1"
            if not out.exists():
                shutil.copytree(job.model_path, out)
            job.notes["job"] = {"ordered": job.ordered, "items": [i.id for i in job.items],
                                "reward_specs": [(r.plugin, r.args, r.weight) for r in job.reward_specs],
                                "start_model": ctx.start_model, "rollouts": ctx.rollouts,
                                "base_model": ctx.base_model, "has_run": hasattr(ctx, "run")}
            return fleming.Checkpoint(out, job.stage, 1)

    @fleming.hookimpl
    def register_curricula(self, register: Any) -> None:
        """Register the one-round curriculum."""
        register("one-ordered-round", self.OneOrderedRound)

    @fleming.hookimpl
    def register_trainers(self, register: Any) -> None:
        """Register the recording trainer."""
        register("job-recorder", self.Recorder)


def test_an_rl_stage_hands_its_components_the_public_context_and_records_why_it_ended(
        tmp_path: Path, model_cache: Path) -> None:
    _source(tmp_path)
    rl = {"trainer": {"plugin": "job-recorder"},
          "rewards": [{"plugin": "format", "args": {"weight": 0.5}}, {"plugin": "answer"}],
          "stages": [{"name": "s1", "curriculum": {"plugin": "one-ordered-round"}, "rollouts": 6}]}
    _run(_recipe(tmp_path, name="jobrun", rl=rl), tmp_path / "runs", JobRecorder())
    run_dir = tmp_path / "runs" / "jobrun"
    base = json.loads((run_dir / "model" / "model.json").read_text())["path"]
    notes = _manifest(run_dir / "rl-s1")["notes"]
    train = [r["id"] for r in _jsonl(run_dir / "mix" / "train.jsonl")]
    specs = notes["job"].pop("reward_specs")
    assert [(plugin, weight) for plugin, _, weight in specs] == [("format", 0.5), ("answer", 1.0)]
    assert "eos_tokens" in specs[0][1]  # the validated args, defaults filled in, without the weight
    assert notes["job"] == {"ordered": True, "items": train[:3][::-1], "start_model": base, "rollouts": 6,
                            "base_model": base, "has_run": False}
    assert notes["ended"] == "one round is enough"
    assert notes["curriculum"][-1] == {"round": 1, "decision": "end of stage", "reason": "one round is enough"}


def _cli(recipe: Path, runs: Path) -> list[str]:
    return [sys.executable, "-m", "fleming", "run", str(recipe), "--runs-dir", str(runs), "--no-progress"]


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"fleming run exited ({proc.returncode}) before {path} appeared:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"{path} did not appear within {timeout:.0f} s:\n{log.read_text()}")
        time.sleep(0.02)


def test_kill_9_then_rerun_resumes_from_the_last_checkpoint(tmp_path: Path, model_cache: Path,
                                                            with_acme: None) -> None:
    _source(tmp_path)
    recipe = _recipe(tmp_path, name="killrun", rl=_rl_section(steps=3, seconds_per_step=1.5))
    runs = tmp_path / "runs"
    run_dir = runs / "killrun"
    env = {**os.environ, "COLUMNS": "200"}
    step1 = run_dir / "rl-s1" / "checkpoints" / "round-0" / "step-1"
    log = tmp_path / "first.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(_cli(recipe, runs), stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_for(step1 / "config.json", proc, log)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "rl-s1" / "manifest.json").exists()
    assert not (run_dir / "rl-s2").exists()
    mtimes = {p.name: p.stat().st_mtime_ns for p in step1.iterdir()}

    second = subprocess.run(_cli(recipe, runs), capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    for stage in ("model", "collect", "mix"):
        assert f"{stage}: skipped" in second.stderr
    assert "rl-s1: resuming" in second.stderr
    assert "rl-s2: running" in second.stderr
    assert {p.name: p.stat().st_mtime_ns for p in step1.iterdir()} == mtimes  # step 1 was kept, not redone
    for stage in ("model", "collect", "mix", "rl-s1", "rl-s2"):
        assert (run_dir / stage / "manifest.json").exists(), stage
    assert _manifest(run_dir / "rl-s1")["resumed"] is True
    assert sorted(p.name for p in (run_dir / "rl-s1" / "checkpoints" / "round-0").iterdir()) == \
        ["step-1", "step-2", "step-3"]


# ---------------------------------------------------------------- secrets

class LeakySource:
    """A careless data source: it logs the provider key and writes it into an item, notes and a reject."""

    def __init__(self) -> None:
        self.key = os.environ["FAKE_PROVIDER_API_KEY"]

    def items(self, ctx: Any) -> Iterator[QAItem | Rejected]:
        """Yield four items and one reject that all carry the key."""
        ctx.log(f"calling the provider with key {self.key}")
        ctx.notes["request"] = {"headers": {"Authorization": f"Bearer {self.key}"}}
        for i in range(4):
            yield QAItem(id=f"leak-{i}", question=f"Which key is {self.key}?", options={"A": self.key, "B": "none"},
                         answer="A", source="leaky", provenance={"request": f"key={self.key}",
                                                                 "answer_entity": f"E:{i}"})
        yield Rejected(f"provider refused key {self.key}", "leaky:2", {"key": self.key})

    def graph(self, ctx: Any) -> None:
        """No knowledge graph."""
        return None


class LeakyPlugin:
    """Registers the careless source."""

    @fleming.hookimpl
    def register_data_sources(self, register: Any) -> None:
        """Register `leaky`."""
        register("leaky", LeakySource)


def _leaks(path: Path) -> list[str]:
    """Where the secret occurs in a file; an Inspect ``.eval`` log is a zip archive, searched member by member."""
    if path.suffix == ".eval":
        with zipfile.ZipFile(path) as archive:
            return [f"{path}:{name}" for name in archive.namelist() if SECRET.encode() in archive.read(name)]
    return [str(path)] if SECRET.encode() in path.read_bytes() else []


def test_secrets_never_reach_the_run_folder_the_caches_or_the_console(tmp_path: Path, model_cache: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from fleming.models import resolve_model

    resolve_model("tiny-random")  # built once in the session's cache, shared below
    cache = tmp_path / "cache"  # a fresh cache for the model calls
    cache.mkdir()
    (cache / "models").symlink_to(model_cache / "models", target_is_directory=True)
    monkeypatch.setenv("FLEMING_CACHE", str(cache))
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", SECRET)
    scripted.reset({"Which key is": [f"Calling with key {SECRET}. <answer>A</answer>"]})  # a careless provider
    recipe = _recipe(tmp_path, name="leaky", data={
        "sources": [{"plugin": "leaky"}], "mix": {"heldout_fraction": 0.5},
        "verify": [{"plugin": "label-check", "args": {"model": "fleming-scripted/echo", "trials": 1,
                                                      "policy": "flag"}}]},
        eval={"benchmarks": [{"plugin": "kg-heldout", "args": {"all_items": True}}], "limit": 1, "max_tokens": 4})
    outcomes, output = _run(recipe, tmp_path / "runs", LeakyPlugin())
    assert set(_status(outcomes).values()) == {"ran"} and "eval" in _status(outcomes)
    assert scripted.CALLS["Which key is"] > 0
    files = [p for p in [*(tmp_path / "runs").rglob("*"), *(cache / "llm").rglob("*")] if p.is_file()]
    assert any(p.suffix == ".arrow" for p in files)
    assert any(p.suffix == ".eval" for p in files)
    assert any(p.suffix == ".json" and p.is_relative_to(cache / "llm") for p in files)  # the model-call cache
    assert [leak for p in files for leak in _leaks(p)] == []
    assert SECRET not in output and "calling the provider with key ***" in output
    items = _jsonl(tmp_path / "runs" / "leaky" / "mix" / "train.jsonl")  # redacted, not dropped
    assert items and all(item["question"] == "Which key is ***?" for item in items)


def test_cli_error_line_redacts_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", SECRET)
    recipe = _recipe(tmp_path, data={"sources": [{"plugin": "jsonl", "args": {"path": f"{SECRET}.jsonl"}}]})
    got = subprocess.run(_cli(recipe, tmp_path / "runs"), capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert got.returncode == 1
    assert SECRET not in got.stderr + got.stdout
    (line,) = got.stderr.strip().splitlines()
    assert line.startswith("error: ") and "***.jsonl" in line and "file not found" in line
