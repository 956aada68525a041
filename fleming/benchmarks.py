"""From benchmark names to Inspect tasks, through the one component registry (kind ``benchmarks``).

A name is whatever a plugin registered (fleming's own, an alias, a suite, a third-party benchmark); a
component's optional ``name`` attribute is the name it is shown by (an alias shows the name it stands for),
else its registered name is. A suite is a component with ``members`` (benchmark names), expanded here.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fleming.components import instantiate, validate_args
from fleming.errors import FlemingError, RecipeError, UnknownComponentError
from fleming.plugin_manager import Registry, load_registry
from fleming.tasks import first_items  # the first N items, all the option orders of each

TaskMaker = tuple[str, Callable[[], Any]]  # (benchmark name, a function returning a fresh Inspect task)
Builder = Callable[[str, Mapping[str, Any]], Any]  # (benchmark name, args) -> the component


def component_builder(registry: Registry | None = None, base_dir: Path | None = None) -> Builder:
    """Return a function that builds benchmark component `name` from `args` (validated against its args model,
    paths read relative to `base_dir`; a bad arg is one line naming ``-T name.arg``)."""
    if registry is None:
        _, registry = load_registry()
    folder = base_dir or Path.cwd()

    def build(name: str, args: Mapping[str, Any]) -> Any:
        reg, where = registry.get("benchmarks", name), f"benchmark '{name}'"
        return instantiate(reg, validate_args(reg, dict(args), where, folder, prefix=f"-T {name}"), where)

    return build


def shown_name(bench: Any, registered: str) -> str:
    """Return the one name a benchmark is shown by: its ``name`` attribute, else its registered name."""
    name = getattr(bench, "name", None)
    return name if isinstance(name, str) and name else registered


def shown_names(names: Iterable[str], registry: Registry | None = None) -> dict[str, str]:
    """Return each name -> the name its benchmark is shown by (an alias -> what it stands for); a name that no
    loaded plugin registers, or whose component needs args, is kept as it is (old logs stay readable)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    build = component_builder(registry)
    out: dict[str, str] = {}
    for name in wanted:
        try:
            out[name] = shown_name(build(name, {}), name)
        except FlemingError:
            out[name] = name
    return out


def benchmark_names(spec: str | Sequence[str], build: Builder) -> list[str]:
    """Return the benchmark names in `spec` (comma-separated and/or a list), each by the name it is shown by,
    suites expanded into their members, duplicates dropped."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for raw in (r.strip() for part in parts for r in str(part).split(",")):
        if raw:
            for name in _leaves(raw, build, ()):
                if name not in names:
                    names.append(name)
    if not names:
        raise RecipeError("no benchmarks given (--benchmarks NAME[,NAME...])")
    return names


def _leaves(name: str, build: Builder, seen: tuple[str, ...]) -> list[str]:
    if name in seen:
        raise RecipeError(f"suite '{seen[0]}' contains itself (through {' -> '.join([*seen, name])})")
    try:
        bench = build(name, {})
    except UnknownComponentError:
        raise
    except RecipeError:  # required args: a single benchmark, built again below with its -T args
        return [name]
    members = getattr(bench, "members", None)
    if not members:
        return [shown_name(bench, name)]
    return [leaf for member in members for leaf in _leaves(member, build, (*seen, name))]


def task_makers(benchmarks: Sequence[str], data_dir: str | None = None,
                task_args: Mapping[str, Mapping[str, Any]] | None = None, limit: int | None = None,
                build: Builder | None = None) -> list[TaskMaker]:
    """Return makers for the named benchmarks (suites already expanded) with their args (the first `limit` items)."""
    build = build or component_builder()
    makers: list[TaskMaker] = []
    for name in benchmarks:
        bench = build(name, (task_args or {}).get(name, {}))
        makers += benchmark_makers(bench, name, data_dir, None, build=build)
    if limit is None:
        return makers
    return [(name, _first(make, limit)) for name, make in makers]


def _first(make: Callable[[], Any], limit: int) -> Callable[[], Any]:
    return lambda: first_items(make(), limit)


def benchmark_makers(bench: Any, name: str, data_dir: str | None, run_dir: Path | None,
                     log: Callable[[str], None] | None = None, build: Builder | None = None,
                     registry: Registry | None = None) -> list[TaskMaker]:
    """Return makers for a benchmark component. A suite (``members``) expands to its members, each built by
    `build` (default: from `registry`), leaving out, with a line to `log`, those whose optional
    ``missing_data`` reports a problem when it says ``missing: skip``; its optional ``member_args`` are given to
    every member. A benchmark whose ``task`` takes
    ``run_dir`` (a run's held-out items) is given the run folder."""
    folder = Path(data_dir) if data_dir else None
    members = getattr(bench, "members", None)
    if members:
        build = build or component_builder(registry)
        built = [(m, build(m, dict(getattr(bench, "member_args", None) or {}))) for m in members]
        if getattr(bench, "missing", "error") == "skip":
            absent = {m: why for m, b in built if (why := _missing(b, folder))}
            if absent and log is not None:
                log(f"{shown_name(bench, name)}: skipping {len(absent)} of {len(built)} benchmark(s) with no "
                    f"local data ({', '.join(absent)}); first: {next(iter(absent.values()))}")
            built = [(m, b) for m, b in built if m not in absent]
        makers = [mk for m, b in built for mk in benchmark_makers(b, m, data_dir, run_dir, log, build)]
        limit = getattr(bench, "limit", None)
        return makers if limit is None else [(n, _first(make, limit)) for n, make in makers]
    kwargs: dict[str, Any] = {}
    if "run_dir" in inspect.signature(bench.task).parameters:
        kwargs["run_dir"] = run_dir
    return [(shown_name(bench, name), lambda: bench.task(folder, None, **kwargs))]


def _missing(bench: Any, data_dir: Path | None) -> str:
    check = getattr(bench, "missing_data", None)  # optional: a benchmark without it is always kept
    return "; ".join(check(data_dir)) if callable(check) else ""
