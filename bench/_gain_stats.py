"""The statistics of `quickstart_gain.py`, as pure functions over plain dicts and lists (no Inspect logs).

Per-stage scores are ``(stage, {metric: {item id: value}})`` pairs in stage order; a step is a
``steps.jsonl`` record (see `fleming.rl_signals`).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

SPLITS: tuple[tuple[str, str], ...] = (
    ("kg_heldout", "unseen diagnoses"),
    ("kg_heldout_known", "new questions about trained diagnoses"),
    ("kg_dev", "dev: the split settings are chosen on"),
)
"""A run's held-out benchmarks, in report order, with what each measures (`fleming.tasks.HELDOUT_SPLITS`)."""

KEYS = ("strict", "lenient")
MIN_STEPS = 4

Scores = Mapping[str, Mapping[str, float]]  # metric -> item id -> value


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """The mean and its standard error (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    return mean, (statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0)


def paired(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float] | None:
    """``a - b`` item by item over the items both hold: ``n``, ``diff`` and its paired ``se``; None if none."""
    ids = sorted(set(a) & set(b))
    if not ids:
        return None
    diff, se = mean_se([a[i] - b[i] for i in ids])
    return {"n": len(ids), "diff": diff, "se": se}


def fmt_diff(d: Mapping[str, float] | None) -> str:
    """``+0.100 ± 0.050 (+2.0 SE)``; the SE units only when the SE is not 0; a dash for no difference."""
    if not d:
        return "—"
    return f"{d['diff']:+.3f} ± {d['se']:.3f}" + (f" ({d['diff'] / d['se']:+.1f} SE)" if d["se"] else "")


def is_cold_start(stage: str) -> bool:
    """Whether a stage is the cold start (``cold_start`` or ``cold-start``)."""
    return stage.lower().replace("-", "_") == "cold_start"


def stage_rows(stages: Sequence[tuple[str, Scores]]) -> list[dict[str, Any]]:
    """One row per stage: ``n`` items and each of strict and lenient accuracy with its SE over items."""
    rows = []
    for stage, scores in stages:
        row: dict[str, Any] = {"stage": stage, "n": len(scores.get("strict") or {})}
        for key in KEYS:
            values = list((scores.get(key) or {}).values())
            row[key], row[f"{key}_se"] = mean_se(values) if values else (None, None)
        rows.append(row)
    return rows


def stage_pairs(stages: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(later, earlier, note)`` for each consecutive pair of stages, then the final stage against the base and
    against the cold start (when those are not already a consecutive pair)."""
    pairs = [(later, earlier, "") for earlier, later in zip(stages, stages[1:])]
    if len(stages) < 2:
        return pairs
    final = stages[-1]
    for earlier, note in [(stages[0], "final vs base"),
                          *[(s, "final vs cold start") for s in stages[:-1] if is_cold_start(s)]]:
        if (final, earlier) not in {(p[0], p[1]) for p in pairs}:
            pairs.append((final, earlier, note))
    return pairs


def differences(stages: Sequence[tuple[str, Scores]]) -> list[dict[str, Any]]:
    """Every difference of `stage_pairs`, strict and lenient, paired by item (`paired`)."""
    by_name = dict(stages)
    rows = []
    for later, earlier, note in stage_pairs([s for s, _ in stages]):
        a, b = by_name[later], by_name[earlier]
        cells = {key: paired(a.get(key) or {}, b.get(key) or {}) for key in KEYS}
        n = max((c["n"] for c in cells.values() if c), default=0)
        rows.append({"later": later, "earlier": earlier, "note": note, "n": n, **cells})
    return rows


def quarter_means(values: Sequence[float | None]) -> dict[str, Any]:
    """The mean (± SE over steps) of the first quarter of `values` and of the last, and their difference with
    the unpaired SE sqrt(se1² + se2²); ``{"steps": n, "too_few": True}`` under `MIN_STEPS` values. Missing
    values (None) are left out first."""
    kept = [float(v) for v in values if v is not None]
    if len(kept) < MIN_STEPS:
        return {"steps": len(kept), "too_few": True}
    q = len(kept) // 4
    (first, se1), (last, se2) = mean_se(kept[:q]), mean_se(kept[-q:])
    if q < 2:  # one step a quarter: no spread to take an SE from
        return {"steps": len(kept), "quarter": q, "first": first, "first_se": None, "last": last,
                "last_se": None, "diff": last - first, "se": None}
    return {"steps": len(kept), "quarter": q, "first": first, "first_se": se1, "last": last, "last_se": se2,
            "diff": last - first, "se": math.hypot(se1, se2)}


def reward_curve(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`quarter_means` of the weighted ``reward`` of a stage's steps, and of each reward plugin's."""
    names: dict[str, None] = {}
    for step in steps:
        names.update(dict.fromkeys(step.get("rewards") or {}))
    return {"steps": len(steps), "reward": quarter_means([s.get("reward") for s in steps]),
            "rewards": {name: quarter_means([(s.get("rewards") or {}).get(name) for s in steps]) for name in names}}


def fmt_curve(q: Mapping[str, Any]) -> str:
    """One line for `quarter_means`: first and last quarter means, and the change in SE units."""
    if q.get("too_few"):
        return f"too few steps ({q['steps']}, under {MIN_STEPS}) for quarters"
    if q["se"] is None:
        return (f"first step {q['first']:.3f}, last step {q['last']:.3f}: {q['diff']:+.3f} "
                f"(one step a quarter: no SE)")
    return (f"first {q['quarter']} steps {q['first']:.3f} ± {q['first_se']:.3f}, last {q['quarter']} "
            f"{q['last']:.3f} ± {q['last_se']:.3f}: {fmt_diff(q)}")
