"""`fleming eval`: evaluate a model or checkpoint on benchmarks through Inspect."""
from __future__ import annotations

import click

from fleming.errors import StageError
from fleming.models import check_model_spec
from fleming.plugin_manager import load_registry


@click.command("eval")
@click.argument("model")
@click.option("--benchmarks", default="med9", show_default=True, help="Comma-separated benchmark names.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate at most N items per benchmark.")
def eval_command(model: str, benchmarks: str, limit: int | None) -> None:
    """Evaluate MODEL (alias, checkpoint folder or hub id) on the named benchmarks."""
    check_model_spec(model)
    _, registry = load_registry()
    for name in (b.strip() for b in benchmarks.split(",") if b.strip()):
        registry.get("benchmarks", name)
    raise StageError("no evaluation backend is installed yet: benchmarks resolve, but the Inspect "
                     "evaluation runner is not part of this version")
