"""GRPO rollouts by engine: the same GRPO steps through the `trl` trainer with rollouts from TRL's own HF
generate and loss (fp32, ``share_prompts: false``, the reference) and from each engine named, weight syncs
included. Two names are not engines: ``shared`` is the trainer's default (each prompt computed once per group
of rollouts, when sampling from the policy and in the loss) and ``shared-bf16`` the same with ``bf16: true``.

Every run is one round of `--steps` steps on the same model, items (posed with the evaluation's prompt),
reward (fleming's `answer`) and settings (the quickstart's RL trainer args by default), in this one process,
the reference first and again last (the faster of its two runs is kept). Prints, per run: seconds per step
(model loading and trainer building included, as a stage pays them), the share spent syncing weights into
the engine and generating, and the ratio of the reference's seconds per step to the run's (the target for
the fast CPU engine is >= 2).

    python bench/grpo_rollouts.py [--model smollm2-135m-instruct] [--engines 'openvino;hf:{...}'] [--steps 4]
                                  [--prompts 2] [--rollouts 4] [--max-completion-length 56]
                                  [--steps-per-generation N] [--json OUT]
    python bench/grpo_rollouts.py --engines 'shared;shared-bf16' --prompts 8 --rollouts 8 --train-layers 4 --steps 2
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from fleming.models import resolve_model
from fleming.testing import make_item

SHARED = ("shared", "shared-bf16")


def run(model: str, engine: str | dict[str, Any] | None, a: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One GRPO round; returns seconds per step and the rollout record."""
    from fleming.plugins.rewards import AnswerReward
    from fleming.plugins.trainers.trl.trainer import TrlTrainer
    from fleming.protocols import TrainJob

    items = [make_item(i, answer="ABCD"[i % 4]) for i in range(a.prompts * a.steps * 2)]
    job = TrainJob(kind="grpo", model_path=model, items=items, output_dir=out, seed=0, stage="bench",
                   rollouts=a.rollouts, max_steps=a.steps, announce=lambda c: None, notes={},
                   rewards=[(AnswerReward(), 1.0)])
    args: dict[str, Any] = dict(learning_rate=2e-5, batch_size=a.prompts, max_completion_length=a.max_completion_length,
                                train_layers=a.train_layers, save_steps=1000, share_prompts=False)
    if engine in SHARED:
        args.update(share_prompts=True, bf16=engine == "shared-bf16")
    elif engine is not None:
        args["rollout_engine"] = engine
    if a.steps_per_generation:
        args["steps_per_generation"] = a.steps_per_generation
    t0 = time.perf_counter()
    TrlTrainer(**args).train(job, None)
    seconds = time.perf_counter() - t0
    record = job.notes["trl"][-1]
    label = json.dumps(engine) if isinstance(engine, dict) else engine
    return {"engine": label or "hf (TRL generate)", "seconds": round(seconds, 2),
            "per_step": round(seconds / record["global_step"], 2), "rollouts": record["rollout_engine"]}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--engines", default="openvino", help="engines to compare with TRL's generate, separated by "
                   "';': a name or NAME:JSON args, e.g. 'openvino;hf:{\"dtype\": \"bfloat16\"}'")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--rollouts", type=int, default=4)
    p.add_argument("--max-completion-length", type=int, default=56)
    p.add_argument("--train-layers", type=int, default=10)
    p.add_argument("--steps-per-generation", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    model = resolve_model(a.model).path
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        engines: list[Any] = []
        for spec in (e.strip() for e in a.engines.split(";") if e.strip()):
            name, _, args = spec.partition(":")
            engines.append({"name": name, "args": json.loads(args)} if args else name)
        for i, engine in enumerate([None, *engines, None]):
            row = run(model, engine, a, Path(tmp) / f"run-{i}")
            rows.append(row)
            print(json.dumps(row), flush=True)
    ref = min(rows[0]["per_step"], rows[-1]["per_step"])
    print(f"{'rollouts':<22} {'s/step':>8} {'sync s':>8} {'gen s':>8} {'speedup':>8}")
    for row in rows[1:-1]:
        r = row["rollouts"]
        print(f"{row['engine']:<22} {row['per_step']:>8.2f} {r.get('sync_s', 0):>8.2f} {r.get('generate_s', 0):>8.2f}"
              f" {ref / row['per_step']:>7.2f}x")
    print(f"{'hf (TRL generate)':<22} {ref:>8.2f} {'-':>8} {'-':>8} {1.0:>7.2f}x")
    if a.json:
        a.json.write_text(json.dumps({"reference_per_step": ref, "runs": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
