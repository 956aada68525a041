"""`fleming plugins`: every registered component by kind, with the module behind it and its distribution."""
from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from fleming.plugin_manager import KINDS, load_registry

COLUMNS = ("kind", "name", "module", "plugin", "distribution")


def factory_module(factory: Any) -> str:
    """The module that defines a component's factory (for an object without ``__module__``, its class's)."""
    return getattr(factory, "__module__", None) or type(factory).__module__


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List every registered component by kind, with its module, plugin and distribution."""
    _, registry = load_registry()
    rows = [{"kind": KINDS[r.kind], "name": r.name, "module": factory_module(r.factory), "plugin": r.plugin,
             "distribution": r.dist} for r in registry]
    if as_json:
        click.echo(json.dumps({"components": rows, "failed_to_load": registry.broken}, indent=2))
        return
    table = Table(title="fleming components")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in COLUMNS))
    console = Console()
    console.print(table)
    for name, err in registry.broken.items():
        console.print(f"[yellow]plugin '{name}' failed to load:[/yellow] {err}")
