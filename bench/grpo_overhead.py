"""GRPO overhead: GRPO steps through fleming's `trl` trainer against the same steps in a plain TRL script.

Both run in this one process on the same model, the same items (posed with the evaluation's prompt), the
same reward (fleming's `answer` reward, weight 1) and the same GRPOConfig values (rollouts, batch,
completion length, learning rate, seed, no std scaling, no KL). Each timing includes loading the model and
building the trainer (both do it once); the plain run goes first, then fleming, then each again, and the
faster of each pair is kept, so a warm-up effect favours neither. Prints seconds for both and the ratio
fleming / plain (target <= 1.10).

    python bench/grpo_overhead.py [--model tiny-random | smollm2-135m-instruct] [--steps 2] [--rollouts 4]
                                  [--prompts 2] [--max-completion-length 32]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from fleming.models import resolve_model
from fleming.testing import make_item


def plain_trl(model: str, items: list[Any], out: Path, a: argparse.Namespace) -> float:
    """The same GRPO steps as a user would write them with TRL alone."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from fleming.formats import trl_record
    from fleming.plugins.rewards import AnswerReward

    by_id = {it.id: it for it in items}
    reward = AnswerReward()

    def answer(completions: list[Any], id: list[str], **kwargs: Any) -> list[float | None]:
        return reward([c[-1]["content"] for c in completions], [by_id[i] for i in id])

    rows = [{k: v for k, v in trl_record(it).items() if k != "completion"} for it in items]
    cuda = torch.cuda.is_available()
    cfg = GRPOConfig(output_dir=str(out), learning_rate=a.lr, max_steps=a.steps, num_train_epochs=1.0,
                     gradient_accumulation_steps=1, save_strategy="steps", save_steps=a.steps, logging_steps=1,
                     report_to="none", seed=0, bf16=bool(cuda and torch.cuda.is_bf16_supported()), fp16=False,
                     gradient_checkpointing=False, use_cpu=not cuda, disable_tqdm=True, dataloader_num_workers=0,
                     scale_rewards="none", beta=0.0, num_generations=a.rollouts,
                     per_device_train_batch_size=a.prompts * a.rollouts,
                     max_completion_length=a.max_completion_length, temperature=1.0, reward_weights=[1.0])
    t0 = time.perf_counter()
    GRPOTrainer(model=model, reward_funcs=[answer], args=cfg, train_dataset=Dataset.from_list(rows)).train()
    return time.perf_counter() - t0


def through_fleming(model: str, items: list[Any], out: Path, a: argparse.Namespace) -> float:
    """The same steps through the `trl` trainer plugin."""
    from fleming.plugins.rewards import AnswerReward
    from fleming.plugins.trainers.trl.trainer import TrlTrainer
    from fleming.protocols import TrainJob

    job = TrainJob(kind="grpo", model_path=model, items=items, output_dir=out, seed=0, stage="bench",
                   rewards=[(AnswerReward(), 1.0)], rollouts=a.rollouts, max_steps=a.steps)
    trainer = TrlTrainer(learning_rate=a.lr, batch_size=a.prompts, max_completion_length=a.max_completion_length,
                         save_steps=a.steps, logging_steps=1)
    t0 = time.perf_counter()
    trainer.train(job, None)
    return time.perf_counter() - t0


def main() -> None:
    """Run both twice, print the faster time of each and the ratio."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-random")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--rollouts", type=int, default=4)
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--max-completion-length", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-6)
    a = p.parse_args()
    model = resolve_model(a.model).path
    items = [make_item(i, answer="ABCD"[i % 4]) for i in range(a.prompts * a.steps)]
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(2):
            plain.append(plain_trl(model, items, Path(tmp) / f"plain-{k}", a))
            ours.append(through_fleming(model, items, Path(tmp) / f"fleming-{k}", a))
    best_plain, best_ours = min(plain), min(ours)
    print(f"model {a.model}: {a.steps} GRPO steps x {a.prompts} prompts x {a.rollouts} rollouts, "
          f"{a.max_completion_length} new tokens")
    print(f"plain TRL : {best_plain:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in plain)})")
    print(f"fleming   : {best_ours:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"ratio fleming / plain: {best_ours / best_plain:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
