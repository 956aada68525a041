"""`fleming leaderboard`: build the static HTML site from evaluation logs."""
from __future__ import annotations

from pathlib import Path

import click

DEFAULT_OUT = "runs/leaderboard"


@click.command("leaderboard")
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "out", default=DEFAULT_OUT, show_default=True, type=click.Path(path_type=Path),
              help="Folder to write the site into (replaced on each build).")
@click.option("--title", default=None, help="Page title.  [default: fleming leaderboard]")
@click.option("--max-samples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Most samples shown per log on the sample pages.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def leaderboard_command(sources: tuple[Path, ...], out: Path, title: str | None, max_samples: int,
                        no_progress: bool) -> None:
    """Build the leaderboard from SOURCES: run folders (runs/NAME/), folders of Inspect logs or log files.

    With no SOURCES, every runs/*/eval folder is read. Only logs with status success count in the tables;
    the others are listed as not counted.
    """
    from fleming.leaderboard import DEFAULT_TITLE, build_site

    index = build_site(list(sources), out, title or DEFAULT_TITLE, max_samples=max_samples,
                       progress=not no_progress)
    click.echo(index.resolve().as_uri())
