"""What a stage (and the components it calls) can see of the run."""
from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pluggy
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fleming.components import build, instantiate
from fleming.pipeline.rundir import redact
from fleming.plugin_manager import Registry
from fleming.recipe import LoadedRecipe
from fleming.types import Checkpoint

T = TypeVar("T")
ANNOUNCED = "announced.jsonl"
log = logging.getLogger("fleming")


@dataclass
class RunContext:
    """One `fleming run`: the recipe, the plugins, the run folder and the console."""

    loaded: LoadedRecipe
    registry: Registry
    pm: pluggy.PluginManager
    run_dir: Path
    console: Console = field(default_factory=lambda: Console(stderr=True))
    show_progress: bool = True

    @property
    def name(self) -> str:
        """The recipe's (and the run's) name."""
        return self.loaded.recipe.name

    def build(self, kind: str, where: str, spec: Any) -> Any:
        """Instantiate the component named at field path `where`, reusing the args the loader validated."""
        validated = self.loaded.args.get(where)
        if validated is None:
            return build(self.registry, kind, spec, where, self.loaded.base_dir)
        return instantiate(self.registry.get(kind, spec.plugin), validated, where)

    def announce_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Tell every plugin that a checkpoint was saved (evaluation listens here)."""
        self.pm.hook.checkpoint_saved(checkpoint=checkpoint, run=self)


@dataclass
class StageContext:
    """One stage's view: its folder, a persistent work folder for resumable state, and helpers."""

    run: RunContext
    stage: str
    dir: Path
    inputs: tuple[str, ...] = ()
    config: Any = None
    notes: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The recipe's seed."""
        return self.run.loaded.recipe.seed

    @property
    def checkpoints_dir(self) -> Path:
        """Where trainers keep checkpoints; kept across a killed run so training resumes."""
        path = self.dir / "checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def announce(self, checkpoint: Checkpoint) -> None:
        """Record a checkpoint a trainer saved (``checkpoints/announced.jsonl``, kept across a killed run, is
        what the eval stage evaluates), then tell every plugin through the ``checkpoint_saved`` hook."""
        record = {"path": str(checkpoint.path), "stage": checkpoint.stage, "step": checkpoint.step,
                  "metrics": dict(checkpoint.metrics or {})}
        with open(self.checkpoints_dir / ANNOUNCED, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
        self.run.announce_checkpoint(checkpoint)

    def log(self, message: str) -> None:
        """Print a line under the stage's name."""
        self.run.console.print(f"  [dim]{self.stage}:[/dim] {escape(redact(message))}", highlight=False)

    def progress(self, iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
        """Iterate with a rich progress bar (a spinner when the total is unknown)."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        if not self.run.show_progress:
            yield from iterable
            return
        columns = [SpinnerColumn(), TextColumn(f"{self.stage}: {description or 'working'}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=self.run.console, transient=True) as bar:
            task = bar.add_task("", total=total)
            for x in iterable:
                yield x
                bar.advance(task)

    @contextlib.contextmanager
    def spinner(self, description: str) -> Iterator[None]:
        """Show a spinner with elapsed time while a step of unknown length runs."""
        if not self.run.show_progress:
            self.log(description)
            yield
            return
        columns = [SpinnerColumn(), TextColumn(f"{self.stage}: {escape(description)}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.run.console, transient=True) as bar:
            bar.add_task("", total=None)
            yield

    def timed(self, name: str) -> Callable[[], None]:
        """Start a named timer; calling the result records the seconds in the manifest's notes."""
        start = time.perf_counter()

        def stop() -> None:
            self.notes.setdefault("timings", {})[name] = round(time.perf_counter() - start, 3)

        return stop
