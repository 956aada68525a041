"""Evaluation throughput: `fleming eval` (Inspect, `--engine`, default hf) against lm-eval-harness `generate_until`.

Both run in this one process on the same model, the same benchmark items, the same chat prompt (the system
prompt and question of ``prompts/``), greedy decoding, the same token budget and the same batch size; each
timing includes loading the model. Prints items/min for both and the ratio (target on CPU: >= 1.0), and
how often the two produced the same answer letter (a check that they did the same work).

    python bench/eval_throughput.py [--model smollm2-135m-instruct] [--benchmark medqa] [--items 32]
                                    [--max-tokens 128] [--batch 16] [--data-dir DIR]

Needs lm-eval (``pip install 'fleming-med[bench]'``) and a folder of benchmark JSONL files
(``--data-dir`` or ``$FLEMING_DATA_DIR``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml


def _samples(benchmark: str, data_dir: str, n: int) -> list[Any]:
    from fleming.tasks import load_task

    return list(load_task(benchmark, data_dir=data_dir).dataset)[:n]


def run_fleming(path: str, benchmark: str, data_dir: str, n: int, max_tokens: int, batch: int,
                work: Path, engine: str = "hf") -> tuple[float, dict[str, str]]:
    """Time `fleming eval`'s path (the same `evaluate` call the CLI makes); return seconds and completions."""
    from inspect_ai.log import read_eval_log

    from fleming.benchmarks import task_makers
    from fleming.engines import EngineChoice
    from fleming.evaluation import EvalTarget, evaluate

    start = time.perf_counter()
    rows = evaluate([EvalTarget(label="bench-model", path=path)], task_makers([benchmark], data_dir),
                    work / "inspect", limit=n, max_tokens=max_tokens, model_args={"batch_size": batch},
                    max_connections=batch, display="none", engine=EngineChoice(engine))
    seconds = time.perf_counter() - start
    log = read_eval_log(rows[0].log)
    return seconds, {str(s.id): s.output.completion for s in log.samples or []}


def run_lm_eval(path: str, samples: list[Any], max_tokens: int, batch: int, system: str,
                work: Path) -> tuple[float, dict[str, str]]:
    """Time lm-eval's HF `generate_until` over the same rendered prompts; return seconds and completions."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    data = work / "items.jsonl"
    data.write_text("".join(json.dumps({"id": str(s.id), "prompt": s.input, "target": s.target,
                                        "letters": "".join(s.metadata["letters"])}) + "\n" for s in samples))
    (work / "lm").mkdir(exist_ok=True)
    task = {"task": "fleming_bench", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test", "output_type": "generate_until", "doc_to_text": "{{prompt}}",
            "doc_to_target": "{{target}}", "generation_kwargs": {"until": [], "max_gen_toks": max_tokens,
                                                                 "do_sample": False},
            "metric_list": [{"metric": "exact_match"}]}
    (work / "lm" / "fleming_bench.yaml").write_text(yaml.safe_dump(task))
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": path, "dtype": "float32", "device": "cpu"},
                                  tasks=["fleming_bench"], task_manager=TaskManager(include_path=str(work / "lm")),
                                  batch_size=batch, apply_chat_template=True, system_instruction=system,
                                  log_samples=True)
    seconds = time.perf_counter() - start
    return seconds, {rec["doc"]["id"]: rec["resps"][0][0] for rec in out["samples"]["fleming_bench"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--benchmark", default="medqa")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--engine", default="hf", help="fleming's generation engine (hf: the same fp32 HF as lm-eval)")
    parser.add_argument("--data-dir", default=os.environ.get("FLEMING_DATA_DIR"))
    args = parser.parse_args()
    if not args.data_dir:
        print("no benchmark folder: pass --data-dir or set FLEMING_DATA_DIR", file=sys.stderr)
        return 2
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        print("lm-eval is not installed: pip install 'fleming-med[bench]'", file=sys.stderr)
        return 2
    from fleming.models import resolve_model
    from fleming.prompts import render

    path = resolve_model(args.model).path
    samples = _samples(args.benchmark, args.data_dir, args.items)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lm_s, lm_answers = run_lm_eval(path, samples, args.max_tokens, args.batch, render("eval_system"), work)
        fl_s, fl_answers = run_fleming(path, args.benchmark, args.data_dir, args.items, args.max_tokens,
                                       args.batch, work, args.engine)
    n = len(samples)
    from fleming.answers import extract_answer

    letters = {str(s.id): s.metadata["letters"] for s in samples}
    same_text = sum(1 for k, v in fl_answers.items() if lm_answers.get(k, "").strip() == v.strip())
    same_letter = sum(1 for k, v in fl_answers.items()
                      if extract_answer(v, letters[k], "lenient") == extract_answer(lm_answers.get(k, ""), letters[k],
                                                                                   "lenient"))
    fl_rate, lm_rate = n / fl_s * 60, n / lm_s * 60
    print(f"model {args.model}, {args.benchmark}: {n} items, max {args.max_tokens} new tokens, batch {args.batch}, "
          "greedy, model load included")
    print(f"  fleming eval ({args.engine:<6})      {fl_s:7.1f} s  {fl_rate:7.1f} items/min")
    print(f"  lm-eval generate_until       {lm_s:7.1f} s  {lm_rate:7.1f} items/min")
    print(f"  ratio fleming / lm-eval      {fl_rate / lm_rate:7.2f}   (target >= 1.0)")
    print(f"  identical completions        {same_text} / {n};  same (lenient) answer letter {same_letter} / {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
