"""`fleming review show RUN` and `fleming review apply RUN`: work through a label check's review queue."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click
from rich.console import Console

from fleming.errors import DataError, StageError
from fleming.review import QUEUE, apply_decisions, queue_stages, read_decisions


def _run_dir(run: str, runs_dir: str) -> Path:
    """RUN is a run folder, or a recipe name under --runs-dir."""
    for path in (Path(run), Path(runs_dir) / run):
        if (path / "recipe.json").exists():
            return path
    raise DataError(f"no run folder '{run}' (looked for {run}/recipe.json and {Path(runs_dir) / run}/recipe.json)")


@click.group("review")
def review_command() -> None:
    """Work through the items a label check flagged (the review queue of a run)."""


@review_command.command("show")
@click.argument("run")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
def show_command(run: str, runs_dir: str) -> None:
    """Show each review queue of RUN: its files, and how many items are decided or pending."""
    run_dir = _run_dir(run, runs_dir)
    recorded = read_decisions(run_dir)
    stages = queue_stages(run_dir)
    if not stages:
        click.echo(f"{run_dir}: no review queue")
        return
    for stage_dir in stages:
        rows = [json.loads(line) for line in (stage_dir / f"{QUEUE}.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        done = Counter(recorded[r["id"]].decision for r in rows if r["id"] in recorded)
        pending = len(rows) - sum(done.values())
        parts = ", ".join(f"{n} {d}" for d, n in sorted(done.items()))
        click.echo(f"{stage_dir.name}: {len(rows)} item(s) in the queue, {pending} pending"
                   + (f", decided: {parts}" if parts else ""))
        for ext in ("jsonl", "csv", "html"):
            click.echo(f"  {stage_dir / f'{QUEUE}.{ext}'}")


@review_command.command("apply")
@click.argument("run")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-rerun", is_flag=True, help="Only record the decisions; do not re-run the stages.")
@click.option("--no-progress", is_flag=True, help="No progress bars (plain log lines only).")
def apply_command(run: str, runs_dir: str, no_rerun: bool, no_progress: bool) -> None:
    """Record the decisions made in RUN's review queue (JSONL or CSV) and re-run the stages they change."""
    from fleming.cli.run_cmd import _load
    from fleming.pipeline import RunContext, run_pipeline, stage_names

    run_dir = _run_dir(run, runs_dir)
    summary = apply_decisions(run_dir)
    click.echo(f"{run_dir}: {summary.changed} decision(s) changed, {len(summary.recorded)} recorded, "
               f"{summary.pending} item(s) still pending")
    if no_rerun:
        return
    recipe = json.loads((run_dir / "recipe.json").read_text(encoding="utf-8"))["path"]
    pm, registry, loaded = _load(recipe)
    console = Console(stderr=True)
    ctx = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=run_dir, console=console,
                     show_progress=not no_progress)
    names = stage_names(ctx)
    missing = [s for s in summary.stages if s not in names]
    if missing:
        raise StageError(f"recipe {recipe} has no stage {', '.join(missing)} any more; its review queue "
                         "cannot be applied")
    outcomes = []
    if summary.changed:  # redo the queue's stage (its model calls are cached), then whatever its output changes
        for stage in sorted(summary.stages, key=names.index):
            outcomes += run_pipeline(ctx, only=stage)
    outcomes += run_pipeline(ctx)
    ran = [o.name for o in outcomes if o.status == "ran"]
    click.echo(f"re-ran: {', '.join(ran) if ran else 'nothing (every stage is up to date)'}")
