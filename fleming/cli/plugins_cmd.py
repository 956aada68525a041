"""`fleming plugins`: every registered component by kind, with the distribution that provides it."""
from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from fleming.plugin_manager import KINDS, load_registry


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List every registered component by kind, with its plugin and distribution."""
    _, registry = load_registry()
    rows = [{"kind": KINDS[r.kind], "name": r.name, "plugin": r.plugin, "distribution": r.dist}
            for r in registry]
    if as_json:
        click.echo(json.dumps({"components": rows, "failed_to_load": registry.broken}, indent=2))
        return
    table = Table(title="fleming components")
    for col in ("kind", "name", "plugin", "distribution"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(row[c] for c in ("kind", "name", "plugin", "distribution")))
    console = Console()
    console.print(table)
    for name, err in registry.broken.items():
        console.print(f"[yellow]plugin '{name}' failed to load:[/yellow] {err}")
