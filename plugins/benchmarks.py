"""Benchmarks: the nine medical benchmarks, a run's held-out items, and the `med9` suite.

Each name builds the Inspect task of ``fleming.tasks`` with the same name; the recipe's ``args`` are the
task's arguments (``data_file``, ``shuffle_seed``, ``max_tokens``; ``options`` for medbullets,
``official_test`` for pubmedqa, ``run_dir`` / ``all_items`` for kg_heldout), plus ``limit`` (the first N
items). ``kg-heldout`` is an alias of ``kg_heldout``; without ``run_dir`` it evaluates the current run's
held-out items. ``med9`` is the suite (``members``: the nine benchmarks in the paper's order; args ``limit``
per member and ``missing: skip`` to evaluate only the members whose file is in the benchmark folder). Inspect is imported only when a task is built.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

from fleming import DataPath, ExistingPath, hookimpl
from fleming.errors import RecipeError


class TaskArgs(BaseModel):
    """The recipe args every benchmark takes: the task's own ``-T`` arguments (less ``data_dir``), and
    ``limit``, the first N items only (a fixed subset; the eval section's ``limit`` caps every benchmark)."""

    model_config = ConfigDict(extra="forbid")
    limit: PositiveInt | None = None
    data_file: ExistingPath | None = None
    shuffle_seed: int | None = None
    max_tokens: PositiveInt = 1024


class PubmedqaArgs(TaskArgs):
    """PubMedQA: ``official_test`` keeps the 500-item official test split."""

    official_test: bool = False


class MedbulletsArgs(TaskArgs):
    """Medbullets: 5 options (default) or 4."""

    options: Literal[4, 5] = 5


class HeldoutArgs(TaskArgs):
    """The held-out items: a run folder (default: the current run) and whether curated items count too."""

    run_dir: DataPath | None = None
    all_items: bool = False


ARGS: dict[str, type[TaskArgs]] = {"pubmedqa": PubmedqaArgs, "medbullets": MedbulletsArgs,
                                   "kg_heldout": HeldoutArgs}


class InspectBenchmark:
    """A benchmark component: builds the fleming Inspect task `name` with the recipe's args."""

    def __init__(self, name: str, limit: int | None = None, **args: Any) -> None:
        self.name = name
        self.limit = limit
        self.args = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}

    def task(self, data_dir: Path | None, limit: int | None) -> Any:
        """Return the Inspect task over the benchmark's items (the first `limit` of them when set)."""
        return self._build(data_dir, limit, self.args)

    def _build(self, data_dir: Path | None, limit: int | None, args: dict[str, Any]) -> Any:
        from fleming.evaluation import first_items
        from fleming.tasks import load_task

        task = load_task(self.name, data_dir=data_dir, **args)
        limit = min((n for n in (limit, self.limit) if n is not None), default=None)
        return task if limit is None else first_items(task, limit)


class HeldoutBenchmark(InspectBenchmark):
    """The held-out items of a run; the pipeline passes the current run's folder as `run_dir`."""

    def task(self, data_dir: Path | None, limit: int | None, run_dir: Path | None = None) -> Any:
        """Return the task over the held-out items of `run_dir` (the recipe's ``run_dir`` arg wins)."""
        args = dict(self.args)
        if args.get("run_dir") is None and not args.get("data_file") and run_dir is not None:
            args["run_dir"] = str(run_dir)
        return self._build(data_dir, limit, args)


class SuiteArgs(BaseModel):
    """A suite's recipe args: the first ``limit`` items of each member, and what to do with a member that has
    no file in the benchmark folder (``error``, the default, or ``skip`` it, saying so)."""

    model_config = ConfigDict(extra="forbid")
    limit: PositiveInt | None = None
    missing: Literal["error", "skip"] = "error"


class Suite:
    """A named list of benchmarks; the evaluation stage expands it into its ``members``."""

    def __init__(self, name: str, members: list[str], limit: int | None = None,
                 missing: Literal["error", "skip"] = "error") -> None:
        self.name = name
        self.members = list(members)
        self.limit = limit
        self.missing = missing

    def task(self, data_dir: Path | None, limit: int | None) -> Any:
        """A suite has no single task: evaluate its ``members`` instead."""
        raise RecipeError(f"'{self.name}' is a suite of {len(self.members)} benchmarks "
                          f"({', '.join(self.members)}); build each member's task")


def _factory(name: str) -> Callable[..., InspectBenchmark]:
    cls = HeldoutBenchmark if name == "kg_heldout" else InspectBenchmark

    def make(**args: Any) -> InspectBenchmark:
        return cls(name, **args)

    make.Args = ARGS.get(name, TaskArgs)  # type: ignore[attr-defined]
    make.__name__ = f"{name}_benchmark"
    make.__doc__ = f"The `{name}` benchmark (fleming.tasks.{name})."
    return make


def _suite(name: str, members: list[str]) -> Callable[..., Suite]:
    def make(**args: Any) -> Suite:
        return Suite(name, members, **args)

    make.Args = SuiteArgs  # type: ignore[attr-defined]
    make.__name__ = f"{name}_suite"
    return make


@hookimpl
def register_benchmarks(register: Any) -> None:
    """Register the ten benchmarks, the alias kg-heldout and the suite med9."""
    from fleming.tasks import ALIASES, BENCHMARKS, SUITES

    for name in BENCHMARKS:
        register(name, _factory(name))
    for alias, name in ALIASES.items():
        register(alias, _factory(name))
    for suite, members in SUITES.items():
        register(suite, _suite(suite, members))
