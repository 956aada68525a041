"""Pinned benchmark data: say when a new evaluation reads a different file than earlier logs of the same benchmark.

Every task built by ``fleming.tasks.mcq_task`` records the sha256 of the file it read as task metadata
``data_sha256`` (None for a hub copy or items in memory), so every log carries it. Before a benchmark is evaluated
into a log folder, the folder's earlier logs of that benchmark are read (headers only) and a changed file is
reported in one line, naming the most recent log that used another file.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleming.eval_rows import data_sha256_of

SHORT = 12
"""Characters of a sha256 shown where a short form is enough."""


@dataclass(frozen=True)
class Pin:
    """The data file one earlier log used: its benchmark, sha256, log file name and creation time."""

    benchmark: str
    sha256: str
    log: str
    created: str


def short(sha256: str | None) -> str:
    """The first `SHORT` characters of a sha256 ('' for None)."""
    return (sha256 or "")[:SHORT]


def benchmark_of(metadata: Mapping[str, Any] | None, task: str) -> str:
    """The benchmark a log or task is shown as: its ``fleming`` tag, else its ``benchmark`` metadata, else the
    task's name without its namespace."""
    meta = metadata or {}
    tag = meta.get("fleming")
    named = tag.get("benchmark") if isinstance(tag, Mapping) else None
    return str(named or meta.get("benchmark") or task.split("/")[-1])


def earlier_pins(log_dir: Path) -> list[Pin]:
    """The data files the logs already in `log_dir` used (logs that recorded none, or cannot be read, are
    skipped), oldest first."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    if not Path(log_dir).is_dir():
        return []
    pins = []
    for info in list_eval_logs(str(log_dir), recursive=True):
        try:
            spec = read_eval_log(info, header_only=True).eval
        except Exception:  # a damaged log pins nothing; the leaderboard lists it as unreadable
            continue
        sha = data_sha256_of(spec.metadata)
        if sha:
            name = info.name.replace("\\", "/").rsplit("/", 1)[-1]
            pins.append(Pin(benchmark_of(spec.metadata, spec.task), sha, name, str(spec.created or "")))
    return sorted(pins, key=lambda p: (p.created, p.log))


def data_changes(tasks: Iterable[Any], earlier: Iterable[Pin]) -> list[str]:
    """One line per task whose data file differs from the one the most recent earlier log of its benchmark
    used; a task that recorded no file, or a benchmark without earlier logs, says nothing."""
    latest = {p.benchmark: p for p in earlier}  # oldest first: the last one of each benchmark stays
    lines = []
    for task in tasks:
        metadata = getattr(task, "metadata", None) or {}
        sha = data_sha256_of(metadata)
        bench = benchmark_of(metadata, str(getattr(task, "name", "") or ""))
        last = latest.get(bench)
        if sha and last is not None and last.sha256 != sha:
            lines.append(f"{bench}: data file differs from the one log {last.log} used "
                         f"(sha256 {short(sha)}… vs {short(last.sha256)}…)")
    return lines
