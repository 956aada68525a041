"""Tabulate the per-log rows: models x benchmarks (the paper's Table 3), each run's stage ablation
(Table 4) and accuracy-versus-step series.

Only logs with status ``success`` count. Strict accuracy is the headline; lenient accuracy and the
no-answer rate are tabulated separately, never mixed. A macro average is the mean over the benchmarks a
model has; rows record which benchmarks are missing, so a partial average is never passed off as a full
one. Its stderr assumes independent benchmarks: sqrt(sum of squared stderrs) / k.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fleming.data_pins import short
from fleming.leaderboard.pins import common_files

METRICS = {"strict": "strict accuracy", "lenient": "lenient accuracy", "no_answer": "no-answer rate"}


@dataclass(frozen=True)
class Cell:
    """One number in a table, with its stderr, sample count, a link to its samples and a note."""

    value: float | None
    stderr: float | None = None
    samples: int | None = None
    href: str | None = None
    note: str = ""
    data: str = ""
    data_differs: bool = False


@dataclass
class Row:
    """One table row: a label, a cell per benchmark, the macro average and the benchmarks it lacks."""

    label: str
    sub: str
    cells: dict[str, Cell]
    macro: Cell | None
    missing: list[str]
    delta: float | None = None
    gain: float | None = None
    key: str = ""


@dataclass
class Matrix:
    """A rows x benchmarks table of one metric."""

    metric: str
    benchmarks: list[str]
    rows: list[Row]
    data: dict[str, str] = field(default_factory=dict)


@dataclass
class RunTable:
    """One run's stage ablation: a row per stage in pipeline order."""

    run: str
    matrix: Matrix


@dataclass
class Series:
    """Strict accuracy of one benchmark over a run's checkpoints; points are (x, value, stderr, label)."""

    benchmark: str
    points: list[tuple[int, float, float | None, str]] = field(default_factory=list)


@dataclass
class RunSeries:
    """All of a run's checkpoints in global order (stage_index, then step) and a series per benchmark."""

    run: str
    checkpoints: list[tuple[str, int | None]]
    series: list[Series]


def stage_label(stage: str | None) -> str:
    """Return the display name of a pipeline stage: base, + cold start, + RL <name>."""
    if stage is None:
        return "—"
    if stage == "base":
        return "base"
    if stage == "cold_start":
        return "+ cold start"
    if stage.startswith("rl-"):
        return f"+ RL {stage[3:]}"
    return stage


def _opt(value: Any) -> Any:
    """Return None for pandas missing values, the plain Python value otherwise."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of `df` as plain dicts, with None for every missing value."""
    return [{k: _opt(v) for k, v in rec.items()} for rec in df.to_dict("records")]


def successful(df: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of logs that finished (status ``success``)."""
    return df[df["status"] == "success"]


def failures(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the logs that do not count in tables (error, cancelled, started, unreadable, invalid)."""
    return records(df[df["status"] != "success"])


def _latest(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Keep the most recently created log for each combination of `keys`."""
    return df.sort_values(["created", "log"], kind="stable").groupby(keys, dropna=False, sort=False).tail(1)


def make_cell(rec: Mapping[str, Any], metric: str, links: Mapping[str, str], note: str = "") -> Cell:
    """Build the cell of `metric` from one log row."""
    stderr_col = f"{metric}_stderr"
    return Cell(value=_opt(rec.get(metric)), stderr=_opt(rec.get(stderr_col)) if stderr_col in rec else None,
                samples=_opt(rec.get("samples")), href=links.get(rec["log"]), note=note,
                data=short(_opt(rec.get("data_sha256"))), data_differs=bool(_opt(rec.get("data_differs"))))


def data_pins(df: pd.DataFrame) -> dict[str, str]:
    """Benchmark -> the short sha256 of the data file most of its logs read."""
    return {bench: short(sha) for bench, sha in common_files(df).items()}


def macro(cells: list[Cell]) -> Cell | None:
    """Mean of the cells that have a value; stderr combined as if independent (None if any is missing)."""
    have = [c for c in cells if c.value is not None]
    if not have:
        return None
    k = len(have)
    value = sum(c.value for c in have) / k  # type: ignore[misc]
    stderrs = [c.stderr for c in have]
    stderr = math.sqrt(sum(s * s for s in stderrs)) / k if all(s is not None for s in stderrs) else None  # type: ignore[operator]
    return Cell(value=value, stderr=stderr, samples=sum(c.samples or 0 for c in have))


def _finish_row(label: str, sub: str, cells: dict[str, Cell], benchmarks: list[str]) -> Row:
    """Compute a row's macro average and its missing benchmarks."""
    present = [cells[b] for b in benchmarks if b in cells and cells[b].value is not None]
    missing = [b for b in benchmarks if b not in cells or cells[b].value is None]
    return Row(label=label, sub=sub, cells=cells, macro=macro(present), missing=missing)


def headline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows for the models table: successful logs of final checkpoints (or without fleming metadata)."""
    ok = successful(df)
    ok = ok[ok["final"].fillna(True).astype(bool)]
    return _latest(ok, ["model_key", "benchmark"])


def model_matrix(df: pd.DataFrame, metric: str, links: Mapping[str, str],
                 order: list[str] | None = None) -> Matrix:
    """The models x benchmarks table of `metric` (Table 3 shape).

    Rows come in `order` (model keys) when given, else best-covered first, then by macro average.
    """
    rows_df = headline_rows(df)
    benchmarks = sorted(rows_df["benchmark"].unique().tolist())
    rows: list[Row] = []
    for key, group in rows_df.groupby("model_key", sort=False):
        recs = records(group)
        cells = {r["benchmark"]: make_cell(r, metric, links) for r in recs}
        where = sorted({f"{r['run']} · {stage_label(r['stage'])}" for r in recs if r["run"] and r["stage"]})
        row = _finish_row(recs[0]["model"], ", ".join(where), cells, benchmarks)
        row.key = str(key)
        rows.append(row)
    if order is not None:
        rank = {k: i for i, k in enumerate(order)}
        rows.sort(key=lambda r: rank.get(r.key, len(rank)))
    else:
        rows.sort(key=_rank)
    return Matrix(metric=metric, benchmarks=benchmarks, rows=rows, data=data_pins(df))


def _rank(row: Row) -> tuple[int, float, str]:
    """Sort key: fewest missing benchmarks, then highest macro average, then label."""
    value = row.macro.value if row.macro and row.macro.value is not None else -1.0
    return (len(row.missing), -value, row.label)


def model_tables(df: pd.DataFrame, links: Mapping[str, str]) -> dict[str, Matrix]:
    """The strict, lenient and no-answer tables, all with the strict table's row order."""
    strict = model_matrix(df, "strict", links)
    order = [r.key for r in strict.rows]
    return {"strict": strict, **{m: model_matrix(df, m, links, order) for m in ("lenient", "no_answer")}}


def stage_tables(df: pd.DataFrame, links: Mapping[str, str], metric: str = "strict") -> list[RunTable]:
    """Each run's stage ablation (Table 4 shape): one row per stage from its final checkpoint."""
    ok = successful(df)
    ok = ok[ok["run"].notna() & ok["stage"].notna()]
    tables = []
    for run, group in sorted(ok.groupby("run"), key=lambda kv: str(kv[0])):
        benchmarks = sorted(group["benchmark"].unique().tolist())
        rows: list[Row] = []
        for stage in stage_order(group):
            cells = {}
            for bench, runs_of in group[group["stage"] == stage].groupby("benchmark"):
                rec, note = stage_checkpoint(runs_of)
                cells[bench] = make_cell(rec, metric, links, note)
            rows.append(_finish_row(stage_label(stage), stage, cells, benchmarks))
        _deltas(rows)
        tables.append(RunTable(run=str(run), matrix=Matrix(metric=metric, benchmarks=benchmarks, rows=rows,
                                                           data=data_pins(df))))
    return tables


def stage_order(group: pd.DataFrame) -> list[Any]:
    """A run's stages in pipeline order (stage_index, then name)."""
    stages = group.groupby("stage")["stage_index"].min()
    return sorted(stages.index, key=lambda s: (_opt(stages[s]) if _opt(stages[s]) is not None else 1 << 30, s))


def _deltas(rows: list[Row]) -> None:
    """Set each stage's change from the stage above and, as the paper's Table 4 does, its gain over the base
    model (both only between rows that cover every benchmark)."""
    complete = [r.macro is not None and not r.missing for r in rows]
    for (before, ok_before), (after, ok_after) in zip(zip(rows, complete), zip(rows[1:], complete[1:])):
        if ok_before and ok_after:
            after.delta = after.macro.value - before.macro.value  # type: ignore[operator, union-attr]
    if rows and rows[0].sub == "base" and complete[0]:
        for row, ok in zip(rows, complete):
            if ok:
                row.gain = row.macro.value - rows[0].macro.value  # type: ignore[operator, union-attr]


def stage_checkpoint(logs: pd.DataFrame) -> tuple[dict[str, Any], str]:
    """Pick a stage's final checkpoint (latest log); without one, its highest step, with a note saying so."""
    final = logs[logs["final"].fillna(False).astype(bool)]
    if len(final):
        return records(_latest(final, ["benchmark"]))[0], ""
    ordered = logs.assign(_step=logs["step"].fillna(-1)).sort_values(["_step", "created"], kind="stable")
    rec = records(ordered)[-1]
    step = _opt(rec["step"])
    return rec, f"no final checkpoint; step {step}" if step is not None else "no final checkpoint"


def step_series(df: pd.DataFrame) -> list[RunSeries]:
    """Per run, strict accuracy of every checkpoint per benchmark; x is the checkpoint's global order."""
    ok = successful(df)
    ok = ok[ok["run"].notna() & ok["stage"].notna()]
    out = []
    for run, group in sorted(ok.groupby("run"), key=lambda kv: str(kv[0])):
        group = _latest(group, ["stage", "step", "benchmark"])
        keys = {(_opt(r["stage_index"]), r["stage"], _opt(r["step"])) for r in records(group)}
        ordered = sorted(keys, key=lambda k: (k[0] if k[0] is not None else 1 << 30, k[1],
                                              k[2] if k[2] is not None else -1))
        index = {(k[1], k[2]): i for i, k in enumerate(ordered)}
        series = []
        for bench, logs in sorted(group.groupby("benchmark"), key=lambda kv: str(kv[0])):
            points = []
            for rec in records(logs):
                value = _opt(rec["strict"])
                if value is None:
                    continue
                step = _opt(rec["step"])
                label = f"{stage_label(rec['stage'])}" + (f", step {step}" if step is not None else "")
                points.append((index[(rec["stage"], step)], value, _opt(rec["strict_stderr"]), label))
            series.append(Series(benchmark=str(bench), points=sorted(points)))
        out.append(RunSeries(run=str(run), checkpoints=[(k[1], k[2]) for k in ordered], series=series))
    return out
