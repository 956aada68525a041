"""The `fleming` command line. Every failure is one line on stderr (a recipe's problems one line each);
`--debug` shows the traceback."""
from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
import warnings

import click

from fleming.cli.plugins_cmd import plugins_command
from fleming.cli.run_cmd import run_command, validate_command
from fleming.cli.eval_cmd import eval_command
from fleming.cli.leaderboard_cmd import leaderboard_command
from fleming.cli.review_cmd import review_command
from fleming.errors import FlemingError
from fleming.pipeline.rundir import redact


def _exit_interrupted() -> None:
    """Exit 130. When other threads are alive (a generation engine's native worker may still be mid-call),
    leave without interpreter finalization, which would tear modules down under them and can crash; the run's
    files are already whole (every write is atomic and the stack has unwound)."""
    if threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(130)


class _Group(click.Group):
    """A click group that turns any exception into one clean line (or a traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            _exit_interrupted()
        except Exception as exc:
            debug = bool(ctx.obj and ctx.obj.get("debug"))
            if debug:
                click.echo(redact(traceback.format_exc()), err=True)
            if isinstance(exc, FlemingError):
                lines = str(exc).splitlines() or [""]  # several recipe problems: one line each
            else:
                lines = [f"{type(exc).__name__}: {' '.join(str(exc).split())}"]
                if not debug:
                    lines[0] += " (run with --debug for the traceback)"
            for line in lines:
                click.echo(redact(f"error: {line}"), err=True)
            sys.exit(1)


def _one_line_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
    """Format a warning as one line (plugin load failures and the like)."""
    return redact(f"warning: {message}") + "\n"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.version_option(package_name="fleming-med", prog_name="fleming")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """fleming: build verifiable medical reasoning models (Fleming-R1 recipe)."""
    ctx.obj = {"debug": debug}
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    if not debug:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)


cli.add_command(run_command)
cli.add_command(validate_command)
cli.add_command(plugins_command)
cli.add_command(eval_command)
cli.add_command(leaderboard_command)
cli.add_command(review_command)


def main() -> None:
    """Entry point of the `fleming` script."""
    cli(prog_name="fleming")
