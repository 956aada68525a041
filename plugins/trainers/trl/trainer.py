"""Trainer `trl`: the cold start (SFTTrainer) and GRPO (GRPOTrainer) on one machine, CPU or GPU.

* Data: every item is posed with the evaluation's own prompt (``fleming.formats.trl_record``); the SFT
  completion is the item's rationale.
* GRPO uses the paper's advantage, reward minus the group mean with no division by the std
  (``scale_rewards="none"``), ``num_generations`` = the stage's rollouts, KL weight ``kl`` (default 0).
  The recipe's rewards reach TRL as reward functions with their weights; after every step the
  curriculum sees the weighted rewards per rollout group and may end the round (the reason is kept in
  the stage notes under ``stopped``). Every logged step's rewards per plugin, zero-variance share,
  completion length, clipped ratio and loss go to the stage's ``steps.jsonl`` (``job.signals``).
* Checkpoints are TRL's own ``<output_dir>/checkpoint-N`` HF folders (model, tokenizer, chat template);
  each is announced as it is saved, with its step counted from the start of the RL stage: a round in a
  folder ``round-K`` adds the final step of round ``K-1`` (read from that folder's ``fleming-trl.json``).
  With ``lora``, a checkpoint holds the adapter and ``checkpoint-N/merged`` the merged weights, which
  is what is announced (and evaluated).
* Resume: a folder with checkpoints resumes from the newest complete one; a checkpoint left incomplete by an
  interrupt during its save is removed first, and the stage log says so (with none complete, the round starts
  over). A folder whose ``fleming-trl.json`` says it is finished is not trained again (its final checkpoint is
  returned).
* Order: a job marked ``ordered`` is trained on its items in the given order; otherwise TRL shuffles them.
* CPU: ``bf16`` and gradient checkpointing off, ``use_cpu`` when there is no CUDA device.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fleming import Checkpoint, StageContext, hookimpl
from fleming.errors import StageError
from fleming.plugins.trainers.trl._checkpoints import finished, step_offset
from fleming.plugins.trainers.trl._config import TrlArgs
from fleming.plugins.trainers.trl._run import run_job
from fleming.protocols import Requirement, TrainJob


class TrlTrainer:
    """Fine-tune with TRL on one machine (see the module docstring)."""

    Args = TrlArgs

    def __init__(self, **kwargs: Any) -> None:
        self.args = TrlArgs(**kwargs)

    def train(self, job: TrainJob, ctx: StageContext | None) -> Checkpoint:
        """Run the job (or return its finished result), announcing every checkpoint."""
        out = Path(job.output_dir)
        done = finished(out, job)
        if done is not None:
            return done
        if job.kind not in ("sft", "grpo"):
            raise StageError(f"trainer 'trl': unknown job kind '{job.kind}' (expected sft or grpo)")
        if not job.items:
            raise StageError(f"{job.stage}: trainer 'trl' got no items to train on")
        if job.kind == "grpo" and job.rollouts < 2:
            raise StageError(f"{job.stage}: GRPO needs at least 2 rollouts per prompt (got {job.rollouts})")
        return run_job(self.args, job, ctx, step_offset(out))

    def requirements(self) -> list[Requirement]:
        """TRL always; peft for a LoRA adapter."""
        needed = [Requirement("trl", "it trains with TRL", "pip install trl")]
        if self.args.lora:
            needed.append(Requirement("peft", "lora: true trains a LoRA adapter", "pip install peft"))
        return needed


@hookimpl
def register_trainers(register: Any) -> None:
    """Register the `trl` trainer."""
    register("trl", TrlTrainer)
