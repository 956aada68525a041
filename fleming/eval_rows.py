"""What one evaluation yields: a row per target × benchmark with its measures, the summary file and the console table.

``MEASURES`` is the one table of what a fleming task's log may report: each measure's field (in `EvalRow`, the
summary file and the leaderboard), the (score name, metric name) it is read from in the log's ``results.scores``
and, where the log has one, the metric holding its standard error. A log that lacks a measure leaves it None,
so older logs and summaries still load.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Measure:
    """One number a log may report: where it is read from and how it is shown."""

    field: str
    score: str
    metric: str
    label: str
    stderr: str | None = "stderr"
    lower_is_better: bool = False

    @property
    def stderr_field(self) -> str | None:
        """The field of its standard error, if the log reports one."""
        return f"{self.field}_stderr" if self.stderr else None


MEASURES = (
    Measure("strict", "strict", "accuracy", "strict acc"),
    Measure("lenient", "lenient", "accuracy", "lenient acc"),
    Measure("no_answer", "no_answer", "mean", "no answer", None, True),
    Measure("faithful_accuracy", "faithful_accuracy", "mean", "faithful acc"),
    Measure("path_recall", "path_recall", "mean", "path recall"),
    Measure("contradiction_rate", "contradiction_rate", "mean", "contradiction rate", lower_is_better=True),
    Measure("consistent", "strict", "consistent", "consistent", None),
    Measure("flip_rate", "strict", "flip_rate", "flip rate", None, True),
    Measure("reasoning_alone", "reasoning_alone", "mean", "reasoning alone"),
)
"""Every measure, in display order; the first three are always reported by fleming's multiple-choice task."""
ALWAYS = ("strict", "lenient", "no_answer")
OPTIONAL = tuple(m for m in MEASURES if m.field not in ALWAYS)
"""The measures a task reports only when asked (the reasoning audit, option-order consistency, reasoning alone)."""

HEADLINE = {**{(m.score, m.metric): m.field for m in MEASURES},
            **{(m.score, m.stderr): m.stderr_field for m in MEASURES if m.stderr}}
"""(score name, metric name) in a fleming task's log -> the field it fills in `EvalRow` and the leaderboard."""
FIELDS = tuple(HEADLINE.values())


@dataclass(frozen=True)
class EvalRow:
    """One finished (or failed) target × benchmark evaluation; optional measures are None where not measured."""

    label: str
    benchmark: str
    status: str
    samples: int
    strict: float | None
    strict_stderr: float | None
    lenient: float | None
    lenient_stderr: float | None
    no_answer: float | None
    log: str
    tag: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    data_sha256: str | None = None
    faithful_accuracy: float | None = None
    faithful_accuracy_stderr: float | None = None
    path_recall: float | None = None
    path_recall_stderr: float | None = None
    contradiction_rate: float | None = None
    contradiction_rate_stderr: float | None = None
    consistent: float | None = None
    flip_rate: float | None = None
    reasoning_alone: float | None = None
    reasoning_alone_stderr: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalRow:
        """Rebuild a row from its summary-file form; fields an older summary lacks are None, unknown ones ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("label", "benchmark", "status", "log"):
            values.setdefault(name, "")
        values.setdefault("samples", 0)
        return cls(**{**dict.fromkeys(FIELDS), **values})


def finite_number(value: Any) -> float | None:
    """Return a finite float, or None for a missing / NaN / non-numeric metric value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def headline_metrics(scores: Sequence[Any]) -> dict[str, float | None]:
    """Return every measure of `MEASURES` found in a log's ``results.scores`` (a missing, NaN or non-numeric
    value is None)."""
    out: dict[str, float | None] = dict.fromkeys(FIELDS)
    for score in scores:
        for metric, value in score.metrics.items():
            name = HEADLINE.get((score.name, metric))
            if name is not None:
                out[name] = finite_number(value.value)
    return out


def data_sha256_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The sha256 of the data file a log's task read (task metadata ``data_sha256``), or None."""
    value = (metadata or {}).get("data_sha256")
    return value if isinstance(value, str) and value else None


def row_from_log(log: Any) -> EvalRow:
    """Summarise one Inspect log (header only is enough)."""
    metadata = log.eval.metadata or {}
    tag = dict(metadata.get("fleming", {}))
    benchmark = tag.get("benchmark") or log.eval.task.split("/")[-1]
    samples = log.results.completed_samples if log.results else 0
    measures = headline_metrics(log.results.scores if log.results else [])
    return EvalRow(label=tag.get("model") or log.eval.model, benchmark=benchmark, status=log.status,
                   samples=samples, **measures,  # type: ignore[arg-type]
                   log=str(log.location), tag=tag, error=log.error.message if log.error else None,
                   data_sha256=data_sha256_of(metadata))


def write_summary(rows: Sequence[EvalRow], path: Path) -> None:
    """Write the rows as JSON (the run's ``eval/summary.json``)."""
    from fleming.pipeline.rundir import atomic_write_json

    atomic_write_json(path, [asdict(r) for r in rows])


def read_summary(path: Path) -> list[EvalRow]:
    """Read a summary file back into rows (one written before a measure existed reads it as None)."""
    return [EvalRow.from_dict(rec) for rec in json.loads(Path(path).read_text(encoding="utf-8"))]


def _fmt(value: float | None, err: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} ± {err:.3f}" if err is not None else f"{value:.3f}"


def measured(rows: Sequence[Any], measures: Sequence[Measure] = OPTIONAL) -> list[Measure]:
    """The optional measures at least one row (an `EvalRow` or a mapping) has a value for."""
    def value(row: Any, name: str) -> Any:
        return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)

    return [m for m in measures if any(value(r, m.field) is not None for r in rows)]


def print_rows(rows: Sequence[EvalRow], console: Any) -> None:
    """Print strict and lenient accuracy (never mixed) per model × benchmark on a rich console, then, in a
    table of their own, every optional measure that some row has."""
    from rich.table import Table

    table = Table(title="evaluation (strict = the <answer> tag; lenient = last option letter, reported apart)")
    for col in ("model", "benchmark", "n", "strict acc", "lenient acc", "no answer", "status"):
        table.add_column(col, justify="right" if col in ("n",) else "left", no_wrap=col != "model")
    for r in rows:
        table.add_row(r.label, r.benchmark, str(r.samples), _fmt(r.strict, r.strict_stderr),
                      _fmt(r.lenient, r.lenient_stderr), "—" if r.no_answer is None else f"{r.no_answer:.3f}",
                      r.status)
    console.print(table)
    extra = measured(rows)
    if not extra:
        return
    checks = Table(title="checks of the reasoning (where measured)")
    for col in ("model", "benchmark", *(m.label for m in extra)):
        checks.add_column(col, no_wrap=col != "model", overflow="fold")
    for r in rows:
        checks.add_row(r.label, r.benchmark, *(_fmt(getattr(r, m.field),
                                                    getattr(r, m.stderr_field) if m.stderr_field else None)
                                               for m in extra))
    console.print(checks)
