"""Generation engines against the `hf` engine in fp32: speed, agreement, memory and share of this machine's roofline.

Every engine runs in this one process, after the `hf` fp32 reference, on the same model and benchmark items and
two workloads: greedy (eval-style: ``--prompts`` items, ``--max-tokens`` new tokens, temperature 0) and rollout
(RL-style: ``--rollout-prompts`` items x ``--k`` samples, temperature 1, seed 0, ``--rollout-max-tokens`` new
tokens). For each engine it prints: tokens/s (completions re-tokenized with the model's tokenizer) and the ratio
to hf fp32; on greedy, the share of items whose parsed answer (strict, lenient) and whole text equal hf's; on
rollout, the rate of right answers (strict, lenient) with its standard error over prompts; load time apart from
generation time (one short warm-up call per mode is excluded from both); peak RSS while the engine ran; the
achieved FLOP/s (2 x parameters x (generated + prompt tokens, each prompt counted once)); and the share of this
machine's roofline: the time the workload would take at the fp32 (or bf16) matmul rates timed here on the same
threads (prompt tokens at a prefill shape, 512 x hidden size x MLP width; generated tokens at the workload's
decode shape, sequences x hidden size x MLP width; the better of a timing before and one after the engines ran)
over the time it took.

    python bench/generation.py [--engines hf,openvino] [--engine-args NAME:JSON ...] [--model smollm2-135m-instruct]
                               [--prompts 64] [--rollout-prompts 32] [--k 8] [--max-tokens 64]
                               [--rollout-max-tokens 128] [--threads N] [--benchmark medqa]
                               [--data-dir DIR | --data-file FILE] [--json OUT]

Engines default to every registered engine that can run here (its factory's ``unavailable()`` is None). The
benchmark folder is ``--data-dir``, else ``$FLEMING_DATA_DIR``, else ``../shared/benchmarks`` beside the repository.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REFERENCE = ("hf", {"dtype": "float32"})
PREFILL_ROWS = 512
ROOFLINE_WINDOWS = 6
"""Rows of the prefill-like matmul timed for the roofline (prompt tokens processed together)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--engines", help="comma-separated engine names (default: every engine that can run here)")
    p.add_argument("--engine-args", action="append", default=[], metavar="NAME:JSON",
                   help='args of one engine, e.g. openvino:\'{"precision": "f32"}\' (repeatable)')
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--prompts", type=int, default=64, help="greedy workload: items")
    p.add_argument("--rollout-prompts", type=int, help="rollout workload: items (default: half of --prompts)")
    p.add_argument("--k", type=int, default=8, help="rollout workload: samples per item")
    p.add_argument("--max-tokens", type=int, default=64, help="greedy workload: new tokens")
    p.add_argument("--rollout-max-tokens", type=int, help="rollout workload: new tokens (default: 2x --max-tokens)")
    p.add_argument("--threads", type=int, help="CPU threads for torch and the engines (default: torch's)")
    p.add_argument("--benchmark", default="medqa")
    p.add_argument("--data-dir", default=os.environ.get("FLEMING_DATA_DIR"))
    p.add_argument("--data-file", help="a uniform JSONL file instead of the benchmark's file in the folder")
    p.add_argument("--json", dest="json_out", help="write the results to this file")
    a = p.parse_args(argv)
    a.rollout_prompts = a.rollout_prompts or max(1, a.prompts // 2)
    a.rollout_max_tokens = a.rollout_max_tokens or 2 * a.max_tokens
    return a


def load_items(a: argparse.Namespace) -> tuple[list[Any], str]:
    """The first items of the benchmark (QAItems), or [] and why there are none."""
    from fleming.tasks._records import load_records
    from fleming.types import QAItem

    folder = Path(a.data_dir) if a.data_dir else REPO.parent / "shared" / "benchmarks"
    if not a.data_file and not folder.is_dir():
        return [], f"no benchmark folder ({folder} is absent): pass --data-dir or set FLEMING_DATA_DIR"
    spec = importlib.import_module(f"fleming.tasks.{a.benchmark}").SPEC
    records, _ = load_records(spec, data_dir=folder, data_file=a.data_file)
    need = max(a.prompts, a.rollout_prompts)
    return [QAItem.from_record(r, source=a.benchmark) for r in records[:need]], ""


def matmul_rate(rows: int, inner: int, cols: int, dtype: Any, seconds: float = 0.1) -> float:
    """FLOP/s of a (rows x inner) @ (inner x cols) matmul in `dtype` on torch's threads: the best of
    `ROOFLINE_WINDOWS` timings of `seconds` each (other processes on the machine slow some windows down)."""
    import torch

    x, w = torch.randn(rows, inner).to(dtype), torch.randn(inner, cols).to(dtype)
    for _ in range(3):
        x @ w
    best = 0.0
    for _ in range(ROOFLINE_WINDOWS):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or done < 3:
            x @ w
            done += 1
        best = max(best, 2.0 * rows * inner * cols * done / (time.perf_counter() - start))
    return best


def time_matmuls(rates: dict[tuple[int, str], float], rows: list[int], inner: int, cols: int) -> None:
    """Time fp32 and bf16 matmuls of each row count, keeping in `rates` the best rate seen so far."""
    import torch

    for n in sorted(set(rows)):
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            rates[n, name] = max(rates.get((n, name), 0.0), matmul_rate(n, inner, cols, dtype))


class PeakRss:
    """Samples this process's RSS in a thread; `peak` is the highest seen (bytes)."""

    def __init__(self, every: float = 0.02) -> None:
        import psutil

        self._proc, self._every, self._stop = psutil.Process(), every, threading.Event()
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def rate(hits: list[list[bool]]) -> tuple[float, float]:
    """Mean of the per-prompt right-answer rates and its standard error over prompts."""
    per = [sum(h) / len(h) for h in hits if h]
    if not per:
        return math.nan, math.nan
    return statistics.fmean(per), (statistics.stdev(per) / math.sqrt(len(per)) if len(per) > 1 else 0.0)


def run_engine(name: str, args: dict[str, Any], model: str, greedy: list[Any], rollout: list[Any],
               a: argparse.Namespace) -> dict[str, Any]:
    """Load engine `name` with `args`, warm it up, run both workloads; return timings and completions."""
    from fleming.engines import EngineChoice, open_engine
    from fleming.formats import chat_messages

    g_prompts, r_prompts = [chat_messages(i) for i in greedy], [chat_messages(i) for i in rollout]
    out: dict[str, Any] = {"name": name, "args": args}
    with PeakRss() as rss:
        t0 = time.perf_counter()
        engine = open_engine(EngineChoice(name, args), model)
        out["load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        engine.generate(g_prompts[:2], n=1, max_tokens=4)
        engine.generate(r_prompts[:1], n=2, temperature=1.0, max_tokens=4, seed=1)
        out["warmup_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        out["greedy_texts"] = [got[0] for got in engine.generate(g_prompts, n=1, max_tokens=a.max_tokens)]
        out["greedy_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        out["rollout_texts"] = engine.generate(r_prompts, n=a.k, temperature=1.0, max_tokens=a.rollout_max_tokens,
                                               seed=0)
        out["rollout_s"] = time.perf_counter() - t0
        if callable(getattr(engine, "close", None)):
            engine.close()
        del engine
        gc.collect()
    out["rss_start_mb"], out["peak_rss_mb"] = rss.start / 2**20, rss.peak / 2**20
    return out


def score(row: dict[str, Any], ref: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    """Turn a run's completions into the table's numbers (against the reference run `ref`)."""
    from fleming.answers import extract_answer

    greedy, rollout, count = ctx["greedy"], ctx["rollout"], ctx["count"]
    letters = [list(i.options) for i in greedy]
    g_tokens = count(row["greedy_texts"])
    r_tokens = count([t for got in row["rollout_texts"] for t in got])
    res: dict[str, Any] = {"engine": row["label"], "name": row["name"], "args": row["args"],
                           "load_s": row["load_s"], "warmup_s": row["warmup_s"],
                           "rss_start_mb": row["rss_start_mb"], "peak_rss_mb": row["peak_rss_mb"]}
    for mode, tokens, prompt_tokens in (("greedy", g_tokens, ctx["greedy_prompt_tokens"]),
                                        ("rollout", r_tokens, ctx["rollout_prompt_tokens"])):
        seconds = row[f"{mode}_s"]
        flops = 2.0 * ctx["params"] * (tokens + prompt_tokens) / seconds
        peaks = ctx["peaks"][mode]
        ideal = {p: 2.0 * ctx["params"] * (prompt_tokens / peaks[f"{p}_prefill"] + tokens / peaks[f"{p}_decode"])
                 for p in ("fp32", "bf16")}
        ref_tps = count_rate(ref, mode, ctx)
        res[mode] = {"seconds": seconds, "tokens": tokens, "prompt_tokens": prompt_tokens,
                     "tok_per_s": tokens / seconds, "vs_hf": (tokens / seconds) / ref_tps if ref_tps else math.nan,
                     "gflop_per_s": flops / 1e9,
                     "fp32_roofline_share": ideal["fp32"] / seconds, "bf16_roofline_share": ideal["bf16"] / seconds}
    pairs = list(zip(row["greedy_texts"], ref["greedy_texts"], letters))
    for mode in ("strict", "lenient"):
        res["greedy"][f"same_{mode}"] = statistics.fmean(
            extract_answer(x, ls, mode) == extract_answer(y, ls, mode) for x, y, ls in pairs)  # type: ignore[arg-type]
        res["greedy"][f"correct_{mode}"] = statistics.fmean(
            extract_answer(x, ls, mode) == i.answer for (x, _, ls), i in zip(pairs, greedy))  # type: ignore[arg-type]
        hits = [[extract_answer(t, list(i.options), mode) == i.answer for t in got]  # type: ignore[arg-type]
                for got, i in zip(row["rollout_texts"], rollout)]
        res["rollout"][f"correct_{mode}"], res["rollout"][f"correct_{mode}_se"] = rate(hits)
    res["greedy"]["same_text"] = statistics.fmean(x.strip() == y.strip() for x, y, _ in pairs)
    return res


def count_rate(run: dict[str, Any], mode: str, ctx: dict[str, Any]) -> float:
    texts = run["greedy_texts"] if mode == "greedy" else [t for got in run["rollout_texts"] for t in got]
    return ctx["count"](texts) / run[f"{mode}_s"]


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200, markup=False, highlight=False)
    r = result
    console.print(f"model {r['model']} ({r['params'] / 1e6:.0f}M params), {r['benchmark']}, {r['threads']} threads; "
                  f"greedy {r['greedy_items']} items x {r['max_tokens']} tokens; rollout {r['rollout_items']} items "
                  f"x {r['k']} samples x {r['rollout_max_tokens']} tokens (T=1, seed 0); load average "
                  f"{' '.join(f'{x:.2f}' for x in r['load_average'])}")
    for mode in ("greedy", "rollout"):
        peaks = r["peaks"][mode]
        console.print(f"{mode} matmul peaks here (GFLOP/s): decode {peaks['decode_shape']} fp32 "
                      f"{peaks['fp32_decode'] / 1e9:.0f}, bf16 {peaks['bf16_decode'] / 1e9:.0f}; prefill "
                      f"{peaks['prefill_shape']} fp32 {peaks['fp32_prefill'] / 1e9:.0f}, bf16 "
                      f"{peaks['bf16_prefill'] / 1e9:.0f}")
    g = Table(title="greedy (eval-style)")
    for col in ("engine", "load s", "gen s", "tok/s", "x hf", "same strict", "same lenient", "same text",
                "right strict/lenient", "GFLOP/s", "roofline fp32", "roofline bf16", "peak RSS MB (+run)"):
        g.add_column(col, justify="left" if col == "engine" else "right")
    s = Table(title="rollout (RL-style)")
    for col in ("engine", "gen s", "tok/s", "x hf", "right strict", "right lenient", "GFLOP/s", "roofline fp32",
                "roofline bf16"):
        s.add_column(col, justify="left" if col == "engine" else "right")
    for e in r["engines"]:
        gr, ro = e["greedy"], e["rollout"]
        g.add_row(e["engine"], f"{e['load_s']:.1f}", f"{gr['seconds']:.1f}", f"{gr['tok_per_s']:.1f}",
                  f"{gr['vs_hf']:.2f}", f"{gr['same_strict']:.0%}", f"{gr['same_lenient']:.0%}",
                  f"{gr['same_text']:.0%}", f"{gr['correct_strict']:.0%} / {gr['correct_lenient']:.0%}",
                  f"{gr['gflop_per_s']:.1f}", f"{gr['fp32_roofline_share']:.1%}", f"{gr['bf16_roofline_share']:.1%}",
                  f"{e['peak_rss_mb']:.0f} (+{e['peak_rss_mb'] - e['rss_start_mb']:.0f})")
        s.add_row(e["engine"], f"{ro['seconds']:.1f}", f"{ro['tok_per_s']:.1f}", f"{ro['vs_hf']:.2f}",
                  f"{ro['correct_strict']:.1%} ± {ro['correct_strict_se']:.1%}",
                  f"{ro['correct_lenient']:.1%} ± {ro['correct_lenient_se']:.1%}", f"{ro['gflop_per_s']:.1f}",
                  f"{ro['fp32_roofline_share']:.1%}", f"{ro['bf16_roofline_share']:.1%}")
    console.print(g)
    console.print(s)
    for name, why in r["skipped"].items():
        console.print(f"skipped {name}: {why}")


def choose_engines(a: argparse.Namespace) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """The engines to run (name, args) and the ones passed over, with why."""
    from fleming.engines import unavailable
    from fleming.plugin_manager import load_registry

    extra: dict[str, dict[str, Any]] = {}
    for spec in a.engine_args:
        name, _, text = spec.partition(":")
        extra[name.strip()] = json.loads(text or "{}")
    _, registry = load_registry()
    names = [n.strip() for n in a.engines.split(",") if n.strip()] if a.engines else \
        sorted(registry.by_kind["engines"])
    chosen, skipped = [], {}
    for name in names:
        why = unavailable(name)
        if why is None:
            chosen.append((name, extra.get(name, {})))
        else:
            skipped[name] = why
    return chosen, skipped


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.threads:
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import torch
    from transformers import AutoTokenizer

    from fleming.errors import FlemingError
    from fleming.formats import chat_messages
    from fleming.models import resolve_model
    from fleming.formats import prompt_text

    if a.threads:
        torch.set_num_threads(a.threads)
    items, why = load_items(a)
    if not items:
        print(f"skipped: {why}", file=sys.stderr)
        return 2
    greedy, rollout = items[:a.prompts], items[:a.rollout_prompts]
    model = resolve_model(a.model).path
    try:
        engines, skipped = choose_engines(a)
    except (FlemingError, ValueError) as exc:  # an unknown engine name, args that are not JSON
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tok = AutoTokenizer.from_pretrained(model)

    def count(texts: list[str]) -> int:
        return sum(len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]) if texts else 0

    config = json.loads((Path(model) / "config.json").read_text())
    hidden, width = config["hidden_size"], config.get("intermediate_size", 4 * config["hidden_size"])
    shapes = {"greedy": len(greedy), "rollout": len(rollout) * a.k}
    rates: dict[tuple[int, str], float] = {}
    time_matmuls(rates, [*shapes.values(), PREFILL_ROWS], hidden, width)
    peaks: dict[str, dict[str, Any]] = {}
    ctx = {"greedy": greedy, "rollout": rollout, "count": count, "params": _params(model), "peaks": peaks,
           "greedy_prompt_tokens": count([prompt_text(tok, chat_messages(i)) for i in greedy]),
           "rollout_prompt_tokens": count([prompt_text(tok, chat_messages(i)) for i in rollout])}
    load_average = list(os.getloadavg())
    print(f"running {REFERENCE[0]} {json.dumps(REFERENCE[1])} (reference)", file=sys.stderr)
    ref = run_engine(*REFERENCE, model, greedy, rollout, a)
    ref["label"] = "hf fp32 (reference)"
    rows = [ref]
    for name, args in engines:
        if (name, args or REFERENCE[1]) == REFERENCE:
            continue  # the reference already ran with these args
        print(f"running {name} {json.dumps(args)}", file=sys.stderr)
        try:
            row = run_engine(name, args, model, greedy, rollout, a)
        except Exception as exc:  # one broken engine must not end the comparison
            skipped[name] = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            continue
        row["label"] = name + (f" {json.dumps(args, separators=(',', ':'))}" if args else "")
        rows.append(row)
    time_matmuls(rates, [*shapes.values(), PREFILL_ROWS], hidden, width)  # again: keep the better of two times
    for mode, seqs in shapes.items():
        peaks[mode] = {"decode_shape": f"{seqs}x{hidden}x{width}", "prefill_shape": f"{PREFILL_ROWS}x{hidden}x{width}"}
        for name in ("fp32", "bf16"):
            peaks[mode][f"{name}_decode"], peaks[mode][f"{name}_prefill"] = rates[seqs, name], rates[PREFILL_ROWS, name]
    result = {"model": a.model, "params": ctx["params"], "benchmark": a.benchmark, "threads": torch.get_num_threads(),
              "greedy_items": len(greedy), "rollout_items": len(rollout), "k": a.k, "max_tokens": a.max_tokens,
              "rollout_max_tokens": a.rollout_max_tokens, "load_average": load_average,
              "load_average_end": list(os.getloadavg()), "peaks": peaks, "skipped": skipped}
    result["engines"] = [score(row, ref, ctx) for row in rows]
    show(result)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _params(model: str) -> int:
    """Parameter count from the model folder's safetensors headers (no weights read)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(model).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as fh:
            for name in fh.keys():
                total += math.prod(fh.get_slice(name).get_shape())
    return total


if __name__ == "__main__":
    sys.exit(main())
