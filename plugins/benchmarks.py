"""Benchmarks: every entry of ``fleming.tasks.BENCHMARKS`` (the nine medical benchmarks and a run's held-out
splits), their aliases, and the suites (``med9``).

Each name builds the Inspect task of ``fleming.tasks`` with the same name; the recipe's ``args`` are the
task's arguments (``data_file``, ``shuffle_seed``, ``max_tokens``; ``options`` for medbullets,
``official_test`` for pubmedqa, ``run_dir`` / ``all_items`` for a run's splits, ``split`` for kg_heldout), plus
``limit`` (the first N items). ``kg-heldout`` is accepted for ``kg_heldout``; without ``run_dir`` it evaluates
the current run's held-out items (``kg_heldout_known`` and ``kg_dev`` its other splits; ``kg_heldout`` with
``split: known`` is shown as ``kg_heldout_known``). ``med9`` is the suite (``members``: the nine benchmarks in
the paper's order; args ``limit`` per member, ``missing: skip`` to evaluate only the members whose file is in
the benchmark folder, and ``permutations`` for every member).
Inspect is imported only when a task is built.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from fleming import hookimpl
from fleming.errors import RecipeError
from fleming.tasks import (ALIASES, BENCHMARKS, HELDOUT_SPLITS, SUITES, SuiteArgs, first_items, load_task,
                           missing_data)


class InspectBenchmark:
    """A benchmark component: builds the fleming Inspect task `name` with the recipe's args."""

    def __init__(self, name: str, limit: int | None = None, **args: Any) -> None:
        self.name = name
        self.limit = limit
        self.args = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}

    def task(self, data_dir: Path | None, limit: int | None) -> Any:
        """Return the Inspect task over the benchmark's items (the first `limit` of them when set)."""
        return self._build(data_dir, limit, self.args)

    def missing_data(self, data_dir: Path | None) -> list[str]:
        """Say what a run would fetch or miss: no benchmark folder (the hub copy is read), or no file in it."""
        if self.args.get("data_file"):
            return []
        if data_dir is None:
            return [f"no benchmark folder (eval.data_dir or FLEMING_DATA_DIR): {self.name} is read from the HF hub "
                    "(network)"]
        problem = missing_data(self.name, data_dir, self.args.get("options"))
        return [] if problem is None else [problem]

    def _build(self, data_dir: Path | None, limit: int | None, args: dict[str, Any]) -> Any:
        task = load_task(self.name, data_dir=data_dir, **args)
        limit = min((n for n in (limit, self.limit) if n is not None), default=None)
        return task if limit is None else first_items(task, limit)


class HeldoutBenchmark(InspectBenchmark):
    """The held-out items of a run; the pipeline passes the current run's folder as `run_dir`. A ``split`` arg
    (``kg_heldout``'s) makes it the benchmark of that split, shown by that benchmark's name."""

    def __init__(self, name: str, limit: int | None = None, split: str | None = None, **args: Any) -> None:
        super().__init__(HELDOUT_SPLITS[split] if split else name, limit, **args)

    def task(self, data_dir: Path | None, limit: int | None, run_dir: Path | None = None) -> Any:
        """Return the task over the held-out items of `run_dir` (the recipe's ``run_dir`` arg wins)."""
        args = dict(self.args)
        if args.get("run_dir") is None and not args.get("data_file") and run_dir is not None:
            args["run_dir"] = str(run_dir)
        return self._build(data_dir, limit, args)

    def missing_data(self, data_dir: Path | None) -> list[str]:
        """Nothing: the items are the run's own (written by its mix stage) or the given file."""
        return []


class Suite:
    """A named list of benchmarks; the evaluation stage expands it into its ``members``."""

    def __init__(self, name: str, members: list[str], limit: int | None = None,
                 missing: Literal["error", "skip"] = "error", permutations: int = 1) -> None:
        self.name = name
        self.members = list(members)
        self.limit = limit
        self.missing = missing
        self.member_args = {"permutations": permutations} if permutations > 1 else {}

    def task(self, data_dir: Path | None, limit: int | None) -> Any:
        """A suite has no single task: evaluate its ``members`` instead."""
        raise RecipeError(f"'{self.name}' is a suite of {len(self.members)} benchmarks "
                          f"({', '.join(self.members)}); build each member's task")

    def missing_data(self, data_dir: Path | None) -> list[str]:
        """Say what its members would fetch or miss (nothing when told to skip members without a file)."""
        if self.missing == "skip":
            return []
        if data_dir is None:
            return [f"no benchmark folder (eval.data_dir or FLEMING_DATA_DIR): {', '.join(self.members)} are read "
                    "from the HF hub (network)"]
        problems = (missing_data(member, data_dir) for member in self.members)
        return [problem for problem in problems if problem is not None]


def _factory(name: str) -> Callable[..., InspectBenchmark]:
    entry = BENCHMARKS[name]
    cls = HeldoutBenchmark if entry.reads_run else InspectBenchmark

    def make(**args: Any) -> InspectBenchmark:
        return cls(name, **args)

    make.Args = entry.args  # type: ignore[attr-defined]
    make.__name__ = f"{name}_benchmark"
    make.__doc__ = f"The `{name}` benchmark ({entry.task})."
    return make


def _suite(name: str, members: list[str]) -> Callable[..., Suite]:
    def make(**args: Any) -> Suite:
        return Suite(name, members, **args)

    make.Args = SuiteArgs  # type: ignore[attr-defined]
    make.__name__ = f"{name}_suite"
    make.__doc__ = f"The `{name}` suite: {', '.join(members)}."
    return make


@hookimpl
def register_benchmarks(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register every benchmark of ``fleming.tasks.BENCHMARKS``, its aliases, and the suites."""
    for name in BENCHMARKS:
        register(name, _factory(name))
    for alias, name in ALIASES.items():
        register(alias, _factory(name))
    for suite, members in SUITES.items():
        register(suite, _suite(suite, members))
