"""The quickstart's result: each stage's accuracy on every benchmark, and the gain of the final checkpoint over
the base model on the run's held-out items, with its standard error.

    python bench/quickstart_gain.py [runs/quickstart]

Reads the run's Inspect logs (``eval/logs``). For each benchmark and stage: strict and lenient accuracy with
their standard errors (as Inspect computed them) and the no-answer rate. Then, on `kg_heldout`, the lenient and
strict gain of the last stage over the base model, item by item (both models answer the same items): the mean
difference, its paired standard error, the unpaired one sqrt(se_base^2 + se_final^2), and the gain in units of
each. Per-template lenient accuracy shows where a gain comes from.
"""
from __future__ import annotations

import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def _logs(run_dir: Path) -> list[Any]:
    from inspect_ai.log import list_eval_logs, read_eval_log

    return [read_eval_log(p) for p in list_eval_logs(str(run_dir / "eval" / "logs"))]


def _per_item(log: Any, key: str) -> dict[str, float]:
    return {str(s.id): float(next(iter(s.scores.values())).value[key]) for s in log.samples or []}


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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart"))
