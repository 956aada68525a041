"""The quickstart's result: each stage's accuracy on every benchmark; on each of the run's held-out splits, every
stage's accuracy and every stage-to-stage difference with its standard error; and the RL stages' reward curves.

    python bench/quickstart_gain.py [runs/quickstart] [--json OUT]
    python bench/quickstart_gain.py runs/quickstart-faithful --against runs/quickstart

Reads the run's Inspect logs (``eval/logs``). For each benchmark and stage: strict and lenient accuracy with
their standard errors (as Inspect computed them) and the no-answer rate. Then, for each held-out split the logs
hold, in this order: `kg_heldout` (unseen diagnoses), `kg_heldout_known` (new questions about trained
diagnoses) and `kg_dev` (the dev split settings are chosen on):

* each stage (in stage order) with its n and strict and lenient accuracy, ± SE over items;
* every difference between consecutive stages, and the final stage against the base model and the cold start:
  the mean difference item by item (both models answer the same items) with its paired SE, and the gain in SE
  units, strict and lenient;
* the lenient and strict gain of the last stage over the base model with the paired and the unpaired SE
  sqrt(se_base^2 + se_final^2); per-template lenient accuracy (where a gain comes from); and where the logs
  carry the KG reasoning audit, each stage's faithful accuracy, path recall and contradiction rate (± SE).

Reward curves: for each RL stage folder (``rl-*``) with a ``steps.jsonl`` (`fleming.rl_signals`), the mean
weighted reward of the first quarter of its steps and of the last (± SE over steps), their difference with the
unpaired SE, and the same for each reward plugin; a stage with fewer than 4 steps says so.

With ``--against OTHER``: on each held-out split both runs hold, every stage of this run against the same
stage of OTHER, item by item (the two runs must hold the same held-out items, as two recipes differing only in
training do): the difference in strict, lenient and faithful accuracy, path recall and contradiction rate, with
its paired SE. ``--json OUT`` also writes these numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: find _gain_stats beside us
from _gain_stats import (SPLITS, differences, fmt_curve, fmt_diff, mean_se, paired,  # noqa: E402
                         reward_curve, stage_rows)

AUDIT = ("faithful_accuracy", "path_recall", "contradiction_rate")
Stage = tuple[int, str]


def _logs(run_dir: Path) -> list[Any]:
    from inspect_ai.log import list_eval_logs, read_eval_log

    return [read_eval_log(p) for p in list_eval_logs(str(run_dir / "eval" / "logs"))]


def _per_item(log: Any, key: str) -> dict[str, float]:
    return {str(s.id): float(next(iter(s.scores.values())).value[key]) for s in log.samples or []
            if key in next(iter(s.scores.values())).value}


def _table(run_dir: Path) -> dict[str, dict[Stage, Any]]:
    """The run's successful logs by benchmark, then by (stage index, stage)."""
    table: dict[str, dict[Stage, Any]] = defaultdict(dict)
    for log in _logs(run_dir):
        if log.status == "success":
            tag = log.eval.metadata["fleming"]
            table[tag["benchmark"]][(tag["stage_index"], tag["stage"])] = log
    return table


def _scores(held: dict[Stage, Any]) -> list[tuple[str, Any]]:
    """Each stage's per-item strict and lenient scores, in stage order, as `_gain_stats` takes them."""
    return [(stage[1], {k: _per_item(held[stage], k) for k in ("strict", "lenient")}) for stage in sorted(held)]


def _pm(value: float | None, se: float | None) -> str:
    """``0.250 ± 0.040``; a dash for a missing value."""
    return "—" if value is None else f"{value:.3f} ± {0.0 if se is None else se:.3f}"


def _split(bench: str, label: str, held: dict[Stage, Any]) -> dict[str, Any]:
    """Print one held-out split's stages, differences, gain, templates and audit; return its numbers."""
    scores = _scores(held)
    rows, diffs = stage_rows(scores), differences(scores)
    print(f"\n{bench} ({label}): accuracy per stage (mean ± SE over items)")
    print("| stage | n | strict | lenient |\n|---|---|---|---|")
    for r in rows:
        cells = [_pm(r[k], r[f"{k}_se"]) for k in ("strict", "lenient")]
        print(f"| {r['stage']} | {r['n']} | " + " | ".join(cells) + " |")
    out: dict[str, Any] = {"label": label, "stages": rows, "differences": diffs}
    if len(held) < 2:
        print(f"\nno {bench} logs for both the base model and a trained stage")
        return out
    print(f"\n{bench}: differences between stages (paired by item; mean ± SE, gain in SE units)")
    print("| difference | n | strict | lenient |\n|---|---|---|---|")
    for d in diffs:
        note = f" ({d['note']})" if d["note"] else ""
        print(f"| {d['later']} − {d['earlier']}{note} | {d['n']} | {fmt_diff(d['strict'])} | "
              f"{fmt_diff(d['lenient'])} |")
    stages = sorted(held)
    base, final = held[stages[0]], held[stages[-1]]
    print(f"\n{bench}: {stages[-1][1]} vs {stages[0][1]}")
    for key in ("lenient", "strict"):
        b, f = _per_item(base, key), _per_item(final, key)
        ids = sorted(set(b) & set(f))
        if not ids:
            print(f"  {key}: no item both answered")
            continue
        diff, se = mean_se([f[i] - b[i] for i in ids])
        unpaired = math.hypot(mean_se([b[i] for i in ids])[1], mean_se([f[i] for i in ids])[1])
        out[f"gain_{key}"] = {"n": len(ids), "diff": diff, "paired_se": se, "unpaired_se": unpaired}
        print(f"  {key}: gain {diff:+.3f} on {len(ids)} items; paired SE {se:.3f} ({diff / se:.1f} SE); "
              f"unpaired SE {unpaired:.3f} ({diff / unpaired:.1f} SE)" if se and unpaired else
              f"  {key}: gain {diff:+.3f} on {len(ids)} items")
    print(f"\n{bench} lenient accuracy by template (n):")
    for stage in stages:
        by: dict[str, list[float]] = defaultdict(list)
        for s in held[stage].samples or []:
            by[s.metadata.get("subject") or "?"].append(float(next(iter(s.scores.values())).value["lenient"]))
        print(f"  {stage[1]}: " + ", ".join(f"{t} {sum(v) / len(v):.2f} ({len(v)})" for t, v in sorted(by.items())))
    if any(_per_item(held[stage], AUDIT[0]) for stage in stages):
        print(f"\n{bench} reasoning audit (mean ± SE over items):")
        print("| stage | " + " | ".join(AUDIT) + " |\n|---|" + "---|" * len(AUDIT))
        for stage in stages:
            cells = []
            for key in AUDIT:
                values = list(_per_item(held[stage], key).values())
                cells.append("—" if not values else "{:.3f} ± {:.3f}".format(*mean_se(values)))
            print(f"| {stage[1]} | " + " | ".join(cells) + " |")
    return out


def curves(run_dir: Path) -> dict[str, Any]:
    """Print and return the reward curve of each RL stage folder that recorded its steps."""
    from fleming.rl_signals import read_signals

    out: dict[str, Any] = {}
    folders = sorted(p for p in run_dir.glob("rl-*") if p.is_dir()) if run_dir.is_dir() else []
    print("\nreward curves (first vs last quarter of steps; mean ± SE over steps, change with unpaired SE):")
    for folder in folders:
        signals = read_signals(folder)
        if signals is None or not signals.steps:
            print(f"  {folder.name}: no steps.jsonl")
            continue
        curve = out[folder.name] = {**reward_curve(signals.steps), "finished": signals.finished}
        partial = "" if signals.finished else " (partial: the stage has not finished)"
        print(f"  {folder.name}{partial}, {curve['steps']} steps: reward {fmt_curve(curve['reward'])}")
        for name, q in curve["rewards"].items():
            if not (q.get("too_few") and curve["reward"].get("too_few")):  # one "too few" line is enough
                print(f"    {name}: {fmt_curve(q)}")
    if not folders:
        print("  no rl-* stage folders")
    return out


def main(run_dir: Path) -> dict[str, Any]:
    """Print the run's report (see the module docstring) and return its numbers."""
    from fleming.evaluation import headline_metrics

    table = _table(run_dir)
    print("| benchmark | stage | n | strict | lenient | no answer |")
    print("|---|---|---|---|---|---|")
    order = [bench for bench, _ in SPLITS]
    for bench in sorted(table, key=lambda b: (order.index(b) if b in order else len(order), b)):
        for (_, stage), log in sorted(table[bench].items()):
            m = headline_metrics(log.results.scores)
            cells = [_pm(m[k], m[f"{k}_stderr"]) for k in ("strict", "lenient")]
            no_answer = "—" if m["no_answer"] is None else f"{m['no_answer']:.2f}"
            print(f"| {bench} | {stage} | {len(log.samples or [])} | " + " | ".join(cells) + f" | {no_answer} |")
    splits = {bench: _split(bench, label, table[bench]) for bench, label in SPLITS if table.get(bench)}
    if not table.get("kg_heldout"):
        print("\nno kg_heldout logs for both the base model and a trained stage")
    return {"run": str(run_dir), "splits": splits, "reward_curves": curves(run_dir)}


def against(run_dir: Path, other: Path) -> dict[str, Any]:
    """Each stage of `run_dir` minus the same stage of `other` on each held-out split both hold, paired by item."""
    mine, theirs = _table(run_dir), _table(other)
    keys = ("strict", "lenient", *AUDIT)
    out: dict[str, Any] = {}
    for bench, label in SPLITS:
        if not (mine.get(bench) and theirs.get(bench)):
            continue
        print(f"\n{bench}: {run_dir.name} minus {other.name}, per stage (paired by item; mean ± SE)")
        print("| stage | n | " + " | ".join(keys) + " |")
        print("|---|---|" + "---|" * len(keys))
        rows: list[dict[str, Any]] = []
        out[bench] = rows
        for stage in sorted(set(mine[bench]) & set(theirs[bench])):
            a, b = mine[bench][stage], theirs[bench][stage]
            cells = {k: paired(_per_item(a, k), _per_item(b, k)) for k in keys}
            n = len(set(_per_item(a, "strict")) & set(_per_item(b, "strict")))
            rows.append({"stage": stage[1], "n": n, **cells})
            print(f"| {stage[1]} | {n} | " + " | ".join(fmt_diff(c) for c in cells.values()) + " |")
    if not out:
        print(f"\n{run_dir.name} and {other.name} share no held-out split")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("run", nargs="?", default="runs/quickstart", type=Path)
    parser.add_argument("--against", type=Path, help="another run over the same held-out items")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    result = main(args.run)
    if args.against:
        result["against"] = {"run": str(args.against), "splits": against(args.run, args.against)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
