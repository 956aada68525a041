"""What a component sees of the stage that calls it: the ``ctx`` argument of every contract method.

A component may use exactly what ``StageContext`` documents below; the recipe and the run's other folders
are the pipeline's business, not a component's. Tests build one directly (see ``fleming.testing.stage_ctx``).
``EngineChoice``, the type of ``StageContext.engine``, is importable from here.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fleming.engines import AUTO, EngineChoice, resolve
from fleming.io import redact
from fleming.types import Checkpoint

if TYPE_CHECKING:
    from fleming.kg import KnowledgeGraph
    from fleming.review import Decision

T = TypeVar("T")
ANNOUNCED = "announced.jsonl"


def _stderr_console() -> Console:
    return Console(stderr=True)


def _ignore(checkpoint: Checkpoint) -> None:
    return None


def _resolve_engine(choice: EngineChoice, where: str) -> EngineChoice:
    """Outside a run: ``auto`` resolved with every installed plugin, no ``--engine``."""
    return resolve(choice)[0]


@dataclass(frozen=True)
class RunInfo:
    """A run as the observer hooks (``checkpoint_saved``, ``stage_finished``, ``eval_finished``) see it.

    :param name: the recipe's (and the run's) name.
    :param dir: the run's folder (one subfolder per stage).
    :param seed: the recipe's seed.
    :param recipe: the recipe file the run was started from.
    """

    name: str
    dir: Path
    seed: int
    recipe: Path


@dataclass
class StageContext:
    """One stage of a run, as its components see it.

    :param stage: the stage's name (``collect``, ``cold_start``, ``rl-<name>`` ...).
    :param dir: the stage's own folder; a component may write files under it (kept across a killed run).
    :param seed: the recipe's seed.
    :param run_name: the recipe's (and the run's) name.
    :param base_model: the run's resolved base model (a local folder or hub id), or None before it is known.
    :param start_model: for a training stage, the model it starts from (the base model or the previous
        training stage's final checkpoint); None elsewhere.
    :param rollouts: for an RL stage, the recipe's rollouts per prompt for this stage; None elsewhere.
    :param engine: the run's generation engine (``name``, ``args``): the recipe's ``engine`` with
        ``fleming run --engine`` applied and ``auto`` resolved once at run start (outside a run, ``auto`` is
        resolved on use). A use with its own engine (a component's ``engine`` arg) asks ``engine_for``.
    :param notes: free-form facts recorded under ``notes`` in the stage's ``manifest.json``.
    :param counts: numbers recorded under ``counts`` in the manifest (and printed when the stage ends).
    :param console: where output goes; use it for progress displays of your own.
    :param show_progress: whether progress bars and spinners are drawn (off in tests and ``--quiet`` runs).
    :param on_checkpoint: set by the pipeline: tells every plugin a checkpoint was saved. Call ``announce``.
    :param graph_loader: set by the pipeline: loads the sources' graphs. Call ``graphs``.
    :param decision_loader: set by the pipeline: reads the run's review decisions. Call ``review_decisions``.
    :param engine_resolver: set by the pipeline: applies ``--engine`` and resolves ``auto``. Call ``engine_for``.
    """

    stage: str
    dir: Path
    seed: int = 0
    run_name: str = ""
    base_model: str | None = None
    start_model: str | None = None
    rollouts: int | None = None
    engine: EngineChoice = field(default_factory=EngineChoice)
    notes: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    console: Console = field(default_factory=_stderr_console)
    show_progress: bool = True
    on_checkpoint: Callable[[Checkpoint], None] = field(default=_ignore, repr=False)
    graph_loader: Callable[[], dict[str, KnowledgeGraph]] = field(default=dict, repr=False)
    decision_loader: Callable[[], dict[str, Decision]] = field(default=dict, repr=False)
    engine_resolver: Callable[[EngineChoice, str], EngineChoice] = field(default=_resolve_engine, repr=False)

    def engine_for(self, name: str | None = None, args: Mapping[str, Any] | None = None,
                   where: str = "engine") -> EngineChoice:
        """The concrete engine a use samples with: engine `name` with its `args` (None: the run's ``engine``),
        ``fleming run --engine`` applied, ``auto`` resolved. `where` names the use in notes and errors."""
        if name is None:
            return self.engine if self.engine.name != AUTO else self.engine_resolver(self.engine, where)
        return self.engine_resolver(EngineChoice.parse({"name": name, "args": dict(args or {})}, where), where)

    def graphs(self) -> dict[str, KnowledgeGraph]:
        """The knowledge graphs of the recipe's sources, keyed by source plugin name (a second source of the
        same plugin gets ``#<index>``); empty when no source has one. Loaded once per stage, on first use."""
        return self.graph_loader()

    def review_decisions(self) -> dict[str, Decision]:
        """The decisions a reviewer recorded for this run with ``fleming review``, by item id."""
        return self.decision_loader()

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
        self.on_checkpoint(checkpoint)

    def log(self, message: str) -> None:
        """Print a line under the stage's name (secrets redacted)."""
        self.console.print(f"  [dim]{self.stage}:[/dim] {escape(redact(message))}", highlight=False)

    def progress(self, iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
        """Iterate with a rich progress bar (a spinner when the total is unknown)."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        if not self.show_progress:
            yield from iterable
            return
        columns = [SpinnerColumn(), TextColumn(f"{self.stage}: {description or 'working'}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task("", total=total)
            for x in iterable:
                yield x
                bar.advance(task)

    @contextlib.contextmanager
    def spinner(self, description: str) -> Iterator[None]:
        """Show a spinner with elapsed time while a step of unknown length runs."""
        if not self.show_progress:
            self.log(description)
            yield
            return
        columns = [SpinnerColumn(), TextColumn(f"{self.stage}: {escape(description)}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as bar:
            bar.add_task("", total=None)
            yield

    def timed(self, name: str) -> Callable[[], None]:
        """Start a named timer; calling the result records the seconds under ``notes["timings"]``."""
        start = time.perf_counter()

        def stop() -> None:
            self.notes.setdefault("timings", {})[name] = round(time.perf_counter() - start, 3)

        return stop
