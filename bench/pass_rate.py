"""Pass-rate sampling (the `annotate` stage's work): k answers per item from a local model, through Inspect's
`hf` provider as fleming did before engines (`fleming.sampling.sample_answers`, concurrent calls batched by
Inspect) against a generation engine (`fleming.sampling.sample_with_engine`), in this one process, caches off.

Items come from an item file (default: the quickstart run's filtered items, the folder `runs/quickstart/filter`;
run `make run` first). Prints seconds per path, the ratio to the Inspect path, the share of items whose pass
rate is equal, and the mean pass rate of each with its standard error (the paths sample differently, so equal
rates are not expected item by item; the means should agree within their errors).

    python bench/pass_rate.py [--items FILE] [--model smollm2-135m-instruct] [--engines openvino,hf] [--k 2]
                              [--max-tokens 12] [--parser lenient] [--batch-size 16] [--connections 32]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from fleming.engines import EngineChoice, open_engine
from fleming.items import read_items
from fleming.models import resolve_model
from fleming.sampling import Trials, client_for, sample_answers, sample_with_engine


def summary(name: str, seconds: float, items: list[Any], trials: list[Trials], parser: str, k: int) -> dict[str, Any]:
    """Seconds and the mean pass rate with its standard error (over items)."""
    rates = [t.correct(it.answer, parser) / k for it, t in zip(items, trials)]
    mean = sum(rates) / len(rates)
    se = math.sqrt(sum((r - mean) ** 2 for r in rates) / max(1, len(rates) - 1) / len(rates))
    return {"path": name, "seconds": seconds, "rates": rates, "mean": mean, "se": se}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=Path, default=Path("runs/quickstart/filter"), help="a folder with items.jsonl")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--engines", default="openvino,hf")
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=12)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--parser", default="lenient", choices=["strict", "lenient"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--connections", type=int, default=32)
    a = p.parse_args(argv)
    if not (a.items / "items.jsonl").exists():
        raise SystemExit(f"no items.jsonl in {a.items} (run `make run` first, or give --items)")
    items = read_items(a.items)
    path = resolve_model(a.model).path
    config = {"temperature": a.temperature, "max_tokens": a.max_tokens}
    rows = []
    t0 = time.perf_counter()
    client = client_for(f"hf/{Path(path).name}", {"model_path": path}, a.connections, 0, 0.0, None, False)
    trials = sample_answers(client, items, a.k, config, None, "inspect-hf", seed=0)
    rows.append(summary("inspect hf (before)", time.perf_counter() - t0, items, trials, a.parser, a.k))
    for name in [e for e in a.engines.split(",") if e]:
        t0 = time.perf_counter()
        engine = open_engine(EngineChoice(name), path)
        trials = sample_with_engine(engine, items, a.k, temperature=a.temperature, max_tokens=a.max_tokens, seed=0,
                                    batch_size=a.batch_size)
        rows.append(summary(f"engine {name}", time.perf_counter() - t0, items, trials, a.parser, a.k))
    ref = rows[0]
    print(f"{len(items)} items × {a.k}, {a.max_tokens} tokens, {a.parser} parser (model loading included)")
    print(f"{'path':<22} {'seconds':>8} {'speedup':>8} {'mean rate ± SE':>16} {'same rate':>10}")
    for r in rows:
        same = sum(x == y for x, y in zip(r["rates"], ref["rates"])) / len(items)
        print(f"{r['path']:<22} {r['seconds']:>8.1f} {ref['seconds'] / r['seconds']:>7.2f}x "
              f"{r['mean']:>8.3f} ± {r['se']:.3f} {same:>10.2f}")
    return rows


if __name__ == "__main__":
    main()
