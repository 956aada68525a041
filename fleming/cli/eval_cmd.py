"""`fleming eval`: evaluate a model or checkpoint on benchmarks through Inspect."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from fleming.errors import RecipeError
from fleming.benchmarks import benchmark_names, component_builder, task_makers
from fleming.engines import EngineChoice, check_name
from fleming.evaluation import EvalTarget, check_rows, evaluate, print_rows, write_summary
from fleming.models import check_model_spec, resolve_model


def _task_args(pairs: tuple[str, ...], benchmarks: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``-T key=value`` (every benchmark) and ``-T bench.key=value`` (one benchmark)."""
    import yaml

    out: dict[str, dict[str, Any]] = {b: {} for b in benchmarks}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecipeError(f"-T {pair!r}: expected key=value or benchmark.key=value")
        parsed = yaml.safe_load(value) if value else ""
        bench, dot, name = key.partition(".")
        if dot:
            if bench not in out:
                raise RecipeError(f"-T {pair!r}: '{bench}' is not among the benchmarks being run "
                                  f"({', '.join(benchmarks)})")
            out[bench][name] = parsed
        else:
            for b in out:
                out[b][key] = parsed
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


@click.command("eval")
@click.argument("model")
@click.option("--benchmarks", default="med9", show_default=True,
              help="Comma-separated benchmark names (any registered benchmark, see `fleming plugins`); "
              "suites (med9) are expanded.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate the first N items of each benchmark.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder of uniform JSONL benchmark files "
              "(default: $FLEMING_DATA_DIR; without one, the benchmarks' hub ids are used).")
@click.option("--log-dir", type=click.Path(file_okay=False),
              help="Where Inspect logs go (default: runs/<model>/eval, which `fleming leaderboard` reads).")
@click.option("--engine", metavar="NAME", default="auto", show_default=True,
              help="Generation engine that answers (auto, hf, openvino, vllm, ...); auto takes the first that "
              "can run here (vllm, then openvino, then hf).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Generation budget per answer.")
@click.option("--label", help="Display name of the model in tables (default: the model argument).")
@click.option("-T", "task_arg", multiple=True, metavar="[BENCH.]KEY=VALUE", help="Task argument (repeatable).")
@click.option("-M", "model_arg", multiple=True, metavar="KEY=VALUE", help="Inspect model argument (repeatable).")
def eval_command(model: str, benchmarks: str, limit: int | None, data_dir: str | None, log_dir: str | None,
                 engine: str, max_tokens: int | None, label: str | None, task_arg: tuple[str, ...],
                 model_arg: tuple[str, ...]) -> None:
    """Evaluate MODEL (alias, checkpoint folder or hub id) on the named benchmarks."""
    check_model_spec(model, Path.cwd())
    check_name(engine, "--engine")
    build = component_builder(base_dir=Path.cwd())
    names = benchmark_names(benchmarks, build)
    targs = _task_args(task_arg, names)
    margs = {k: v for k, v in ((p.split("=", 1) + [""])[:2] for p in model_arg)}
    console = Console(stderr=True)
    resolved = resolve_model(model, Path.cwd(), status=lambda m: console.print(f"[dim]{m}[/]"))
    target = EvalTarget(label=label or model, path=resolved.path, stage="base", stage_index=0)
    out = Path(log_dir) if log_dir else Path("runs") / _slug(target.label) / "eval"
    makers = task_makers(names, data_dir or os.environ.get("FLEMING_DATA_DIR"), targs, build=build)
    rows = evaluate([target], makers, out, limit=limit, engine=EngineChoice(engine), model_args=margs,
                    max_tokens=max_tokens, status=lambda m: console.print(f"[dim]{m}[/]"))
    write_summary(rows, out / "summary.json")
    print_rows(rows, Console() if sys.stdout.isatty() else Console(width=140))
    check_rows(rows)
    click.echo(f"logs: {out}  (build the site with: fleming leaderboard {out})")
