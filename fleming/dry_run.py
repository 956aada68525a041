"""`fleming run --dry-run`: what a run would do, without running or writing anything.

For each planned stage: whether a real run would skip it, resume it or run it (the runner's own decision,
`fleming.pipeline.runner.plan_run`), its components with their validated args, and the commands its trainer
says the stage's first job would launch (``planned_commands``, an optional method in ``fleming.protocols``).
The run's generation engine (``auto`` resolved here, saying what it passed over and why) and each use's own
engine (``eval.engine``, a component's ``engine`` arg), with ``--engine`` applied. Then what a real run needs
that this machine lacks (`fleming.preflight`). Components are built (factories are
cheap) but nothing is run or called: no model download or conversion, no LLM call, no training, no evaluation.
"""
from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fleming.components import build_at, split_weight
from fleming.engines import AUTO, EngineChoice, resolve
from fleming.io import redact
from fleming.models import ALIASES
from fleming.paths import cache_dir
from fleming.pipeline.context import RunContext
from fleming.pipeline.runner import PlannedStage, plan_run
from fleming.preflight import check, engine_uses
from fleming.protocols import PlannedCommand, PlansCommands, TrainJob
from fleming.recipe_file import SECRET_KEY

MAX_VALUE = 240  # characters of one arg value shown; longer values are cut


@dataclass(frozen=True)
class StageReport:
    """One planned stage: its action and why, its components (field, plugin, args) and commands."""

    name: str
    action: str
    reason: str
    components: list[tuple[str, str, str]] = field(default_factory=list)
    commands: list[PlannedCommand] = field(default_factory=list)


@dataclass(frozen=True)
class DryRun:
    """The whole plan and the warnings (what a real run needs that is missing here)."""

    stages: list[StageReport]
    warnings: list[str]
    engines: list[tuple[str, str, str]] = field(default_factory=list)  # (field, engine and args, why)


def dry_run(run: RunContext, from_stage: str | None = None, only: str | None = None) -> DryRun:
    """Plan `run` (with `from_stage` / `only` as `fleming run` takes them) and check what it needs."""
    warnings = check(run.loaded, run.registry, run.engine_override)
    stages = []
    shown: dict[str, str] = {}  # field path -> the stage that listed its args first
    for planned in plan_run(run, from_stage, only):
        commands = list(_commands(run, planned))
        warnings += [c.problem for c in commands if c.problem]
        components = []
        for where, plugin, args in _components(run, planned):
            components.append((where, plugin, f"(as in {shown[where]})" if where in shown else args))
            shown.setdefault(where, planned.stage.name)
        stages.append(StageReport(planned.stage.name, planned.action, planned.reason, components, commands))
        if planned.action == "blocked":
            warnings.append(f"{planned.stage.name}: {planned.reason} (a real run stops there)")
    return DryRun(stages, warnings, _engines(run))


def _engines(run: RunContext) -> list[tuple[str, str, str]]:
    """The run's engine and each use's own: (field, the engine it samples with and its args, why that one)."""
    override = run.engine_override
    why = ""
    if override:
        why = f"--engine {override}"
    elif run.loaded.recipe.engine.name == AUTO:
        why = (run.engine_note or "auto: the first engine that can run here").replace("engine auto: ", "auto: ")
    rows = [("engine", engine_text(run.engine), why)]
    for where, name, args in engine_uses(run.loaded):
        if where == "engine":
            continue
        used, note = resolve(EngineChoice(name, args), override, run.registry)
        said = engine_text(EngineChoice(name, args))
        rows.append((where, engine_text(used), f"--engine {override} (the recipe says {said})" if override
                     else (note or "").replace("engine auto: ", "auto: ")))
    return rows


def engine_text(choice: EngineChoice) -> str:
    """An engine as the dry run shows it: its name, then its args (``vllm (gpu_memory_utilization=0.8)``)."""
    return f"{choice.name} ({format_args(dict(choice.args))})" if choice.args else choice.name


# ---------------------------------------------------------------- components and their args

def _settings(run: RunContext, name: str) -> tuple[str, dict[str, Any]] | None:
    """The stage settings that are not components (the model, the mix, rollouts, evaluation options), with the
    recipe field they come from."""
    recipe = run.loaded.recipe
    if name == "model":
        return "model", {"model": recipe.model}
    if name == "mix":
        return "data.mix", {**(recipe.data.mix.model_dump() if recipe.data.mix else {}), "seed": recipe.seed}
    if name.startswith("rl-") and recipe.rl:
        i = [f"rl-{s.name}" for s in recipe.rl.stages].index(name)
        return f"rl.stages[{i}]", {"rollouts": recipe.rl.stages[i].rollouts, "max_steps": recipe.rl.stages[i].max_steps}
    if name == "eval" and recipe.eval:
        return "eval", recipe.eval.model_dump(exclude={"benchmarks"})
    if name == "leaderboard" and recipe.leaderboard:
        return "leaderboard", recipe.leaderboard.model_dump()
    return None


def _components(run: RunContext, planned: PlannedStage) -> Iterator[tuple[str, str, str]]:
    settings = _settings(run, planned.stage.name)
    if settings is not None:
        yield settings[0], "", format_args(settings[1])
    prefixes = planned.stage.arg_paths
    for kind, where, comp in run.loaded.recipe.components():
        if prefixes and where.startswith(prefixes):
            args = dict(run.loaded.args.get(where, comp.args))
            if kind == "rewards":
                args = {"weight": split_weight(kind, dict(comp.args), where)[1], **args}
            yield where, comp.plugin, format_args(args)


def format_args(args: dict[str, Any]) -> str:
    """Return `args` as ``key=value`` pairs (values as compact JSON, long ones cut; secrets masked)."""
    parts = []
    for key, value in args.items():
        if isinstance(key, str) and SECRET_KEY.match(key) and value not in (None, ""):
            text = "***"
        else:
            text = json.dumps(_plain(value), ensure_ascii=False, default=str)
            if len(text) > MAX_VALUE:
                text = f"{text[:MAX_VALUE]}… ({len(text)} characters)"
        parts.append(f"{key}={text}")
    return redact(", ".join(parts))


def _plain(value: Any) -> Any:
    """JSON-able form of a validated arg: paths as strings, pydantic models without their defaults."""
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(exclude_defaults=True))
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): "***" if SECRET_KEY.match(str(k)) and v not in (None, "") else _plain(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- commands (trainers that plan them)

def _base_model(run: RunContext) -> str:
    """Where the model stage would put the base model, without building or downloading it."""
    spec = run.loaded.recipe.model
    if spec in ALIASES:
        return str(cache_dir() / "models" / spec)
    local = run.loaded.base_dir / spec
    return str(local.resolve()) if local.exists() else spec


def _commands(run: RunContext, planned: PlannedStage) -> Iterator[PlannedCommand]:
    recipe, stage = run.loaded.recipe, planned.stage
    if planned.action in ("skip", "not selected"):
        return
    if stage.name == "cold_start" and recipe.cold_start:
        where, spec, kind, rollouts, max_steps = "cold_start.trainer", recipe.cold_start.trainer, "sft", 8, None
        out = run.run_dir / stage.name / "checkpoints"
    elif stage.name.startswith("rl-") and recipe.rl:
        st = next(s for s in recipe.rl.stages if f"rl-{s.name}" == stage.name)
        where, spec, kind, rollouts, max_steps = "rl.trainer", recipe.rl.trainer, "grpo", st.rollouts, st.max_steps
        out = run.run_dir / stage.name / "checkpoints" / "round-0"
    else:
        return
    trainer = build_at(run.loaded, run.registry, "trainers", where, spec)
    if not isinstance(trainer, PlansCommands):
        return
    source = stage.inputs[0]
    model = _base_model(run) if source == "model" else str(run.run_dir / source / "final")
    job = TrainJob(kind=kind, model_path=model, items=[], output_dir=out, seed=recipe.seed, stage=stage.name,
                   rollouts=rollouts, max_steps=max_steps)
    for cmd in trainer.planned_commands(job):
        if kind == "grpo":
            cmd = replace(cmd, label=f"{cmd.label} (round 0; later rounds differ in data, seed and rollouts)")
        yield replace(cmd, problem=f"{where}: {cmd.problem}") if cmd.problem else cmd


# ---------------------------------------------------------------- printing

def shell_lines(argv: list[str]) -> str:
    """Return `argv` shell-quoted, one ``--flag value`` per line after the ``-m module`` part."""
    start = argv.index("-m") + 2 if "-m" in argv else len(argv)
    lines: list[list[str]] = [[]]
    for i, token in enumerate(argv):
        if i >= start and token.startswith("--") and token != "--":
            lines.append([])
        lines[-1].append(shlex.quote(token))
    return " \\\n  ".join(" ".join(line) for line in lines if line)


def _check_note(cmd: PlannedCommand) -> str:
    if not cmd.check:
        return ""
    if cmd.checked:
        return f"accepted by {cmd.check}"
    return f"refused by {cmd.check}" if cmd.problem else f"not checked against {cmd.check}"


def print_dry_run(report: DryRun, console: Console, recipe: str, run_dir: Path) -> None:
    """Print the plan, each stage's components and commands, then the warnings."""
    console.print(f"[bold]fleming run --dry-run[/bold] {escape(recipe)} → {escape(str(run_dir))} "
                  "(nothing is run and nothing is written)")
    plan = Table(title="plan", title_justify="left")
    for col in ("stage", "would", "why"):
        plan.add_column(col, no_wrap=col != "why")
    for st in report.stages:
        plan.add_row(st.name, st.action, escape(st.reason))
    console.print(plan)
    engines = Table(title="generation engines (the stages that sample use them)", title_justify="left")
    for col in ("field", "engine", "why"):
        engines.add_column(col, no_wrap=col == "field", overflow="fold")
    for where, engine, why in report.engines:
        engines.add_row(where, escape(engine), escape(why))
    console.print(engines)
    parts = Table(title="components (validated args)", title_justify="left")
    for col in ("stage", "field", "plugin", "args"):
        parts.add_column(col, no_wrap=col in ("stage", "plugin"), overflow="fold")
    for st in report.stages:
        for where, plugin, args in st.components:
            parts.add_row(st.name, where, plugin, escape(args))
    console.print(parts)
    for st in report.stages:
        for cmd in st.commands:
            notes = [_check_note(cmd), cmd.note]
            console.print(f"[bold]{st.name}[/bold] would submit {escape(cmd.label)}"
                          + "".join(f"; {escape(n)}" for n in notes if n) + ":")
            console.print(redact(shell_lines(cmd.argv)), markup=False, highlight=False, soft_wrap=True)
    if report.warnings:
        console.print(f"[bold yellow]{len(report.warnings)} warning(s)[/bold yellow]: what a real run needs that "
                      "is missing here (the dry run does not fail on them)")
        for w in report.warnings:
            console.print(f"warning: {redact(w)}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print("no warnings: everything a real run needs was found here")
