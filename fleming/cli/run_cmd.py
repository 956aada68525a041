"""`fleming run` and `fleming validate`."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import pluggy
from rich.console import Console

from fleming.engines import check_name
from fleming.pipeline import RunContext, check_stage_options, run_pipeline, stage_names
from fleming.plugin_manager import Registry, load_registry
from fleming.recipe import LoadedRecipe, load_recipe
from fleming.recipe_file import read_recipe_data


def _load(recipe: str) -> tuple[pluggy.PluginManager, Registry, LoadedRecipe]:
    """Read the recipe file (a malformed or hostile YAML fails before any plugin loads), load the plugins,
    then fully validate the recipe against them."""
    read_recipe_data(Path(recipe))
    pm, registry = load_registry()
    return pm, registry, load_recipe(recipe, registry)


@click.command("validate")
@click.argument("recipe", type=click.Path(dir_okay=False))
def validate_command(recipe: str) -> None:
    """Check RECIPE (fields, plugin names, plugin args, data files, model) without running anything."""
    pm, registry, loaded = _load(recipe)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=Path("runs") / loaded.recipe.name)
    stages = stage_names(run)
    click.echo(f"{recipe}: ok — recipe '{loaded.recipe.name}', stages: {' → '.join(stages)}")


@click.command("run")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder holding one run folder per recipe name.")
@click.option("--from", "from_stage", metavar="STAGE", help="Redo STAGE and every stage after it.")
@click.option("--only", metavar="STAGE", help="Run only STAGE (its inputs must have finished).")
@click.option("--no-progress", is_flag=True, help="No progress bars (plain log lines only).")
@click.option("--engine", metavar="NAME",
              help="Generation engine for every stage that samples (auto, hf, openvino, vllm, ...), instead of "
                   "the recipe's engine and every use's own (eval.engine, a curriculum's engine).")
@click.option("--dry-run", is_flag=True,
              help="Validate, then print what a run would do (skip / resume / run each stage, components and "
                   "their args, engines, OpenRLHF commands) and what it needs that is missing here; run and write "
                   "nothing.")
def run_command(recipe: str, runs_dir: str, from_stage: str | None, only: str | None, no_progress: bool,
                engine: str | None, dry_run: bool) -> None:
    """Run RECIPE's stages; stages already finished with the same inputs and config are skipped."""
    if from_stage and only:
        raise click.UsageError("give --from or --only, not both")
    pm, registry, loaded = _load(recipe)
    console = Console(stderr=True)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=Path(runs_dir) / loaded.recipe.name,
                     console=console, show_progress=not no_progress,
                     engine_override=check_name(engine, "--engine", registry) if engine else None)
    check_stage_options(run, from_stage, only)  # before any output: a bad stage name is one error line
    if dry_run:
        from fleming.dry_run import dry_run as plan_dry_run, print_dry_run

        report = plan_dry_run(run, from_stage=from_stage, only=only)
        print_dry_run(report, Console() if sys.stdout.isatty() else Console(width=160), recipe, run.run_dir)
        return
    console.print(f"[bold]fleming run[/bold] {recipe} → {run.run_dir} (engine {run.engine.name})")
    outcomes = run_pipeline(run, from_stage=from_stage, only=only)
    ran = sum(o.status == "ran" for o in outcomes)
    console.print(f"[bold green]done[/bold green]: {ran} stage(s) ran, {len(outcomes) - ran} skipped; "
                  f"outputs in {run.run_dir}")
    site = run.run_dir / "leaderboard" / "site" / "index.html"
    if any(o.name == "leaderboard" for o in outcomes) and site.exists():
        # no wrapping: the path must stay whole to be copied
        console.print(f"[bold]leaderboard[/bold]: {site}  (open {site.resolve().as_uri()} in a browser)",
                      soft_wrap=True)
