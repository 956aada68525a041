"""The quickstart's result: each stage's accuracy on every benchmark, and the gain of the final checkpoint over
the base model on the run's held-out items, with its standard error.

    python bench/quickstart_gain.py [runs/quickstart]
    python bench/quickstart_gain.py runs/quickstart-faithful --against runs/quickstart

Reads the run's Inspect logs (``eval/logs``). For each benchmark and stage: strict and lenient accuracy with
their standard errors (as Inspect computed them) and the no-answer rate. Then, on `kg_heldout`, the lenient and
strict gain of the last stage over the base model, item by item (both models answer the same items): the mean
difference, its paired standard error, the unpaired one sqrt(se_base^2 + se_final^2), and the gain in units of
each. Per-template lenient accuracy shows where a gain comes from. Where the held-out logs carry the KG
reasoning audit, each stage's faithful accuracy, path recall and contradiction rate (± SE) follow.

With ``--against OTHER``: every stage of this run against the same stage of OTHER on `kg_heldout`, item by item
(the two runs must hold the same held-out items, as two recipes differing only in training do): the
difference in strict, lenient and faithful accuracy, path recall and contradiction rate, with its paired SE.
"""
from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any


def _logs(run_dir: Path) -> list[Any]:
    from inspect_ai.log import list_eval_logs, read_eval_log

    return [read_eval_log(p) for p in list_eval_logs(str(run_dir / "eval" / "logs"))]


AUDIT = ("faithful_accuracy", "path_recall", "contradiction_rate")


def _per_item(log: Any, key: str) -> dict[str, float]:
    return {str(s.id): float(next(iter(s.scores.values())).value[key]) for s in log.samples or []
            if key in next(iter(s.scores.values())).value}


def _heldout(run_dir: Path) -> dict[tuple[int, str], Any]:
    return {(log.eval.metadata["fleming"]["stage_index"], log.eval.metadata["fleming"]["stage"]): log
            for log in _logs(run_dir)
            if log.status == "success" and log.eval.metadata["fleming"]["benchmark"] == "kg_heldout"}


def _paired(a: dict[str, float], b: dict[str, float]) -> str:
    ids = sorted(set(a) & set(b))
    if not ids:
        return "—"
    diff, se = _mean_se([a[i] - b[i] for i in ids])
    return f"{diff:+.3f} ± {se:.3f}" + (f" ({diff / se:+.1f} SE)" if se else "")


def _mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, (statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0)


def main(run_dir: Path) -> None:
    from fleming.evaluation import headline_metrics

    logs = [log for log in _logs(run_dir) if log.status == "success"]
    table: dict[str, dict[tuple[int, str], Any]] = defaultdict(dict)
    for log in logs:
        tag = log.eval.metadata["fleming"]
        table[tag["benchmark"]][(tag["stage_index"], tag["stage"])] = log
    print("| benchmark | stage | n | strict | lenient | no answer |")
    print("|---|---|---|---|---|---|")
    for bench in sorted(table, key=lambda b: (b != "kg_heldout", b)):
        for (_, stage), log in sorted(table[bench].items()):
            m = headline_metrics(log.results.scores)
            print(f"| {bench} | {stage} | {len(log.samples or [])} | {m['strict']:.3f} ± {m['strict_stderr']:.3f} | "
                  f"{m['lenient']:.3f} ± {m['lenient_stderr']:.3f} | {m['no_answer']:.2f} |")
    held = table.get("kg_heldout")
    if not held or len(held) < 2:
        print("\nno kg_heldout logs for both the base model and a trained stage")
        return
    stages = sorted(held)
    base, final = held[stages[0]], held[stages[-1]]
    print(f"\nkg_heldout: {stages[-1][1]} vs {stages[0][1]}")
    for key in ("lenient", "strict"):
        b, f = _per_item(base, key), _per_item(final, key)
        ids = sorted(set(b) & set(f))
        diff, paired = _mean_se([f[i] - b[i] for i in ids])
        se_b, se_f = _mean_se([b[i] for i in ids])[1], _mean_se([f[i] for i in ids])[1]
        unpaired = math.hypot(se_b, se_f)
        print(f"  {key}: gain {diff:+.3f} on {len(ids)} items; paired SE {paired:.3f} ({diff / paired:.1f} SE); "
              f"unpaired SE {unpaired:.3f} ({diff / unpaired:.1f} SE)" if paired and unpaired else
              f"  {key}: gain {diff:+.3f} on {len(ids)} items")
    print("\nkg_heldout lenient accuracy by template (n):")
    for stage in stages:
        log = held[stage]
        by: dict[str, list[float]] = defaultdict(list)
        for s in log.samples or []:
            by[s.metadata.get("subject") or "?"].append(float(next(iter(s.scores.values())).value["lenient"]))
        cells = ", ".join(f"{t} {sum(v) / len(v):.2f} ({len(v)})" for t, v in sorted(by.items()))
        print(f"  {stage[1]}: {cells}")
    if any(_per_item(held[stage], AUDIT[0]) for stage in stages):
        print("\nkg_heldout reasoning audit (mean ± SE over items):")
        print("| stage | " + " | ".join(AUDIT) + " |")
        print("|---|" + "---|" * len(AUDIT))
        for stage in stages:
            cells = []
            for key in AUDIT:
                values = list(_per_item(held[stage], key).values())
                cells.append("—" if not values else "{:.3f} ± {:.3f}".format(*_mean_se(values)))
            print(f"| {stage[1]} | " + " | ".join(cells) + " |")


def against(run_dir: Path, other: Path) -> None:
    """Each stage of `run_dir` minus the same stage of `other` on kg_heldout, paired by item."""
    mine, theirs = _heldout(run_dir), _heldout(other)
    keys = ("strict", "lenient", *AUDIT)
    print(f"\nkg_heldout: {run_dir.name} minus {other.name}, per stage (paired by item; mean ± SE)")
    print("| stage | n | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for stage in sorted(set(mine) & set(theirs)):
        n = len(set(_per_item(mine[stage], "strict")) & set(_per_item(theirs[stage], "strict")))
        cells = [_paired(_per_item(mine[stage], k), _per_item(theirs[stage], k)) for k in keys]
        print(f"| {stage[1]} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("run", nargs="?", default="runs/quickstart", type=Path)
    parser.add_argument("--against", type=Path, help="another run over the same held-out items")
    args = parser.parse_args()
    main(args.run)
    if args.against:
        against(args.run, args.against)
