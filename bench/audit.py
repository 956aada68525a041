"""KG reasoning audit speed: `fleming.audit.audit_reasoning` on one completion per item, on one CPU core.

Items are synthesised from the embedded HPO graph (``--n`` of every template, seed ``--seed``) or read from
``--items`` (a uniform JSONL file with KG provenance, such as a run's ``mix/heldout.jsonl``). Completions are
written from each item's own path (its stem findings, disease and answer named in a few sentences, a random
other finding negated, ``--filler`` sentences of filler) or, with ``--log``, taken from an Inspect log of those
items (sample id = item id). Prints the graph load time and the first call (index, name index and negation
pipeline built) apart from the timed loop over all completions, the loop's seconds against the 5 s target
for 500, and its ratio to the plain answer parser (`fleming.answers.extract_answer`) on the same texts.
Thread variables are set to 1 and the process pins itself to one core where the OS allows it; torch is
never imported.

    python bench/audit.py [--n 500] [--seed 0] [--filler 6] [--items FILE] [--log FILE.eval] [--repeats 3]
                          [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
TARGET_S = 5.0
TARGET_N = 500
FILLER = ("Let me think this through step by step.", "Each option deserves a careful look.",
          "The history matters here, as does the examination.", "Other causes are possible but less likely.",
          "Putting this together gives a consistent picture.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--n", type=int, default=TARGET_N, help="items (one completion each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--items", help="a uniform JSONL file of KG items instead of synthesising them")
    p.add_argument("--log", help="an Inspect log (.eval or .json) of those items: audit its completions")
    p.add_argument("--filler", type=int, default=6, help="filler sentences per built completion (length)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes over all completions (best and median)")
    p.add_argument("--json", help="also save the numbers to this file")
    return p.parse_args(argv)


def _one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def _synthesise(n: int, seed: int, graph: Any) -> list[Any]:
    import tempfile

    from fleming.plugins.kg.synthesizer import KgSynthesizer
    from fleming.testing import stage_ctx
    from fleming.types import QAItem

    with tempfile.TemporaryDirectory() as folder:
        ctx = stage_ctx(Path(folder), seed=seed)
        return [x for x in KgSynthesizer(n=n, options=4).synthesize({"hpo": graph}, ctx) if isinstance(x, QAItem)]


def _completion(item: Any, graph: Any, rng: random.Random, phenotypes: list[str], filler: int) -> str:
    """Name the item's path in a few sentences, negate a random other finding, add filler."""
    from fleming.kg_index import display_name, finding_text

    meta = item.provenance
    disease = display_name(graph.label(meta["diagnosis"]))
    stem = [finding_text(graph.label(t)) for t in meta["stem_entities"] if t != meta["diagnosis"]]
    answer = graph.label(meta["answer_entity"])
    other = finding_text(graph.label(rng.choice(phenotypes)))
    parts = [rng.choice(FILLER)]
    if stem:
        parts.append(f"The patient has {', '.join(stem)}, which points to {disease}.")
    parts += [f"{disease} is associated with {answer}, and there is no {other} in it.",
              *rng.choices(FILLER, k=filler), f"So the answer is {item.answer}."]
    return " ".join(parts) + f"\n<answer>{item.answer}</answer>"


def _from_log(path: str, items: list[Any]) -> list[tuple[Any, str]]:
    from inspect_ai.log import read_eval_log

    by_id = {it.id: it for it in items}
    log = read_eval_log(path)
    return [(by_id[str(s.id)], s.output.completion) for s in log.samples or [] if str(s.id) in by_id]


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and return 0 (2 when there is nothing to audit)."""
    a = parse_args(argv)
    from fleming.answers import extract_answer
    from fleming.audit import audit_reasoning, has_kg_provenance
    from fleming.items import item_or_reject, json_lines
    from fleming.plugins.graphs.hpo.source import HpoSource
    from fleming.types import QAItem

    t0 = time.perf_counter()
    graph = HpoSource().graph()
    load_s = time.perf_counter() - t0
    print(f"graph: {graph!r}, loaded in {load_s:.2f} s")
    if a.items:
        rows = [item_or_reject(r, f"{a.items}:{n}") for n, r in json_lines(Path(a.items)) if isinstance(r, dict)]
        items = [it for it in rows if isinstance(it, QAItem) and has_kg_provenance(it)][: a.n]
    else:
        items = _synthesise(a.n, a.seed, graph)
    rng = random.Random(a.seed)
    phenotypes = sorted(n.id for n in graph.of_kind("phenotype"))
    if a.log:
        pairs = _from_log(a.log, items)
    else:
        pairs = [(it, _completion(it, graph, rng, phenotypes, a.filler)) for it in items]
    if not pairs:
        print("nothing to audit: no item with KG provenance (or no log sample among them)", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    audit_reasoning(pairs[0][1], pairs[0][0], graph)
    first_s = time.perf_counter() - t0
    print(f"first call: {first_s:.2f} s (builds the graph index and the name index, loads the negation pipeline)")
    audit_times, parse_times = [], []
    for _ in range(max(1, a.repeats)):
        t0 = time.perf_counter()
        audits = [audit_reasoning(text, item, graph) for item, text in pairs]
        audit_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for item, text in pairs:
            extract_answer(text, list(item.options))
        parse_times.append(time.perf_counter() - t0)
    best, median, parser = min(audit_times), statistics.median(audit_times), statistics.median(parse_times)
    scaled = median * TARGET_N / len(pairs)
    claims = [c for au in audits for c in au.claims]
    result = {
        "items": len(pairs), "source": "log" if a.log else "built",
        "mean_chars": round(statistics.fmean(len(text) for _, text in pairs)), "graph_load_s": round(load_s, 3),
        "first_call_s": round(first_s, 3), "audit_s_best": round(best, 4), "audit_s_median": round(median, 4),
        "audit_ms_per_item": round(1000 * median / len(pairs), 3), "parser_s_median": round(parser, 5),
        "ratio_to_parser": round(median / max(parser, 1e-9), 1), "seconds_per_500": round(scaled, 3),
        "target_s_per_500": TARGET_S, "headroom": round(TARGET_S / max(scaled, 1e-9), 2),
        "mean_path_recall": round(statistics.fmean(au.path_recall for au in audits), 4),
        "claims": len(claims), "verdicts": {v: sum(c.verdict == v for c in claims)
                                            for v in ("supported", "contradicted", "unsupported")},
        "contradiction_rate": round(sum(au.contradicted for au in audits) / len(audits), 4),
    }
    print(f"audit: {len(pairs)} completions ({result['mean_chars']} characters on average) in {median:.3f} s "
          f"median, {best:.3f} s best of {len(audit_times)} ({result['audit_ms_per_item']:.2f} ms each); "
          f"{scaled:.2f} s per {TARGET_N} against the {TARGET_S:.0f} s target ({result['headroom']:.1f}x headroom)")
    print(f"plain answer parser on the same texts: {parser * 1000:.2f} ms; the audit takes "
          f"{result['ratio_to_parser']:.0f}x as long")
    print(f"found: mean path recall {result['mean_path_recall']:.2f}, {len(claims)} claims {result['verdicts']}, "
          f"contradiction rate {result['contradiction_rate']:.2f}")
    if "torch" in sys.modules:
        print("note: torch was imported, which the audit should not need", file=sys.stderr)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    for var in THREAD_VARS:  # before numpy loads
        os.environ[var] = "1"
    print(f"reasoning audit bench: {_one_core()}, {os.cpu_count()} cores on the machine, thread variables 1")
    sys.exit(main())
