"""`fleming leaderboard`: build the static HTML site from evaluation logs."""
from __future__ import annotations

import click

from fleming.errors import StageError


@click.command("leaderboard")
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--out", default="leaderboard", show_default=True, type=click.Path(file_okay=False))
def leaderboard_command(runs: tuple[str, ...], out: str) -> None:
    """Build the static HTML leaderboard from the evaluation logs of RUNS."""
    raise StageError("the leaderboard renderer is not part of this version; no evaluation logs can be read yet")
