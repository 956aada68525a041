"""The reasoning and consistency table: strict accuracy beside every optional measure a log reports
(faithful accuracy, path recall, contradiction rate, consistency, flip rate, reasoning alone).

A column is shown only when some row of the table has it, and a row only when its log has at least one of
them, so a leaderboard whose logs report none of these shows no such table. Rows are one per model ×
benchmark (final checkpoints, as in the models table) or, for a run, one per stage × benchmark (each stage's
final checkpoint, as in its stage ablation).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fleming.eval_rows import MEASURES, OPTIONAL, Measure, measured
from fleming.leaderboard import tables

STRICT = next(m for m in MEASURES if m.field == "strict")


@dataclass
class MeasureRow:
    """One model (or stage) on one benchmark: a cell per shown measure."""

    label: str
    sub: str
    benchmark: str
    cells: dict[str, tables.Cell]
    key: str = ""


@dataclass
class MeasureTable:
    """Rows × (strict accuracy and the optional measures some row has)."""

    measures: list[Measure]
    rows: list[MeasureRow]


def _row(rec: Mapping[str, Any], links: Mapping[str, str], label: str, sub: str, key: str, note: str = "",
         shown: list[Measure] | None = None) -> MeasureRow:
    """The cells of one log row, for strict accuracy and every measure in `shown`."""
    cells = {m.field: tables.make_cell(rec, m.field, links, note) for m in [STRICT, *(shown or OPTIONAL)]}
    return MeasureRow(label=label, sub=sub, benchmark=str(rec["benchmark"]), cells=cells, key=key)


def _table(recs: list[tuple[dict[str, Any], str, str, str, str]], links: Mapping[str, str]) -> MeasureTable | None:
    """Build the table from (log row, label, sub, key, note), keeping rows that have an optional measure."""
    recs = [r for r in recs if any(r[0].get(m.field) is not None for m in OPTIONAL)]
    shown = measured([r[0] for r in recs])
    if not shown:
        return None
    rows = [_row(rec, links, label, sub, key, note, shown) for rec, label, sub, key, note in recs]
    return MeasureTable(measures=[STRICT, *shown], rows=rows)


def model_measures(df: pd.DataFrame, links: Mapping[str, str]) -> MeasureTable | None:
    """Every final checkpoint (latest log per model × benchmark) that reports an optional measure."""
    recs = tables.records(tables.headline_rows(df).sort_values(["model", "benchmark"], kind="stable"))
    out = []
    for rec in recs:
        sub = f"{rec['run']} · {tables.stage_label(rec['stage'])}" if rec.get("run") and rec.get("stage") else ""
        out.append((rec, str(rec["model"]), sub, str(rec["model_key"]), ""))
    return _table(out, links)


def stage_measures(df: pd.DataFrame, links: Mapping[str, str]) -> dict[str, MeasureTable]:
    """Run -> its stages × benchmarks (each stage's final checkpoint), for runs that report an optional measure."""
    ok = tables.successful(df)
    ok = ok[ok["run"].notna() & ok["stage"].notna()]
    out: dict[str, MeasureTable] = {}
    for run, group in sorted(ok.groupby("run"), key=lambda kv: str(kv[0])):
        recs = []
        for stage in tables.stage_order(group):
            for bench, logs in sorted(group[group["stage"] == stage].groupby("benchmark"), key=lambda kv: str(kv[0])):
                rec, note = tables.stage_checkpoint(logs)
                recs.append((rec, tables.stage_label(stage), str(stage), f"{stage}|{bench}", note))
        table = _table(recs, links)
        if table is not None:
            out[str(run)] = table
    return out
