"""Trainer `trl`: the cold start (SFTTrainer) and GRPO (GRPOTrainer) on one machine, CPU or GPU.

* Data: every item is posed with the evaluation's own prompt (``fleming.formats.trl_record``); the SFT
  completion is the item's rationale.
* GRPO uses the paper's advantage, reward minus the group mean with no division by the std
  (``scale_rewards="none"``), ``num_generations`` = the stage's rollouts, KL weight ``kl`` (default 0).
  The recipe's rewards reach TRL as reward functions with their weights; after every step the
  curriculum sees the weighted rewards per rollout group and may end the round (the reason is kept in
  the stage notes under ``stopped``).
* Checkpoints are TRL's own ``<output_dir>/checkpoint-N`` HF folders (model, tokenizer, chat template);
  each is announced as it is saved, with its step counted from the start of the RL stage: a round in a
  folder ``round-K`` adds the final step of round ``K-1`` (read from that folder's ``fleming-trl.json``).
  With ``lora``, a checkpoint holds the adapter and ``checkpoint-N/merged`` the merged weights, which
  is what is announced (and evaluated).
* Resume: a folder with checkpoints resumes from the newest; a folder whose ``fleming-trl.json`` says it
  is finished is not trained again (its final checkpoint is returned).
* CPU: ``bf16`` and gradient checkpointing off, ``use_cpu`` when there is no CUDA device.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from fleming import Checkpoint, hookimpl
from fleming.errors import StageError
from fleming.pipeline.rundir import atomic_write_json
from fleming.protocols import TrainJob

DONE = "fleming-trl.json"
_CKPT = re.compile(r"^checkpoint-(\d+)$")
_ROUND = re.compile(r"^round-(\d+)$")


class TrlArgs(BaseModel):
    """The `trl` trainer's recipe args."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: PositiveFloat = Field(default=1e-6, description="optimizer learning rate")
    epochs: PositiveFloat = Field(default=1.0, description="passes over the items when no max_steps is set")
    max_steps: PositiveInt | None = Field(default=None, description="optimizer steps (the RL stage's max_steps wins)")
    batch_size: PositiveInt = Field(default=4, description="SFT: sequences per step; GRPO: prompts per step "
                                                           "(each with `rollouts` completions)")
    grad_accumulation: PositiveInt = Field(default=1, description="gradient accumulation steps")
    max_length: PositiveInt = Field(default=1024, description="SFT: longest prompt + rationale in tokens")
    max_completion_length: PositiveInt = Field(default=128, description="GRPO: longest sampled completion")
    temperature: PositiveFloat = Field(default=1.0, description="GRPO sampling temperature")
    kl: float = Field(default=0.0, ge=0, description="GRPO KL weight (TRL beta); 0 loads no reference model")
    loss_type: str | None = Field(default=None, description="GRPO loss aggregation (TRL loss_type; default TRL's)")
    lora: bool = Field(default=False, description="train a LoRA adapter instead of all weights")
    lora_r: PositiveInt = Field(default=16, description="LoRA rank")
    lora_alpha: PositiveInt = Field(default=32, description="LoRA alpha")
    train_layers: PositiveInt | None = Field(default=None, description="train only the top N transformer blocks "
                                             "and the final norm (the rest, embeddings included, stay frozen: a "
                                             "shorter backward pass, for CPU runs); default: all weights")
    save_steps: PositiveInt = Field(default=50, description="save (and evaluate) a checkpoint every N steps")
    save_only_model: bool = Field(default=False, description="leave optimizer state out of checkpoints "
                                                             "(smaller; a resumed run restarts the optimizer)")
    logging_steps: PositiveInt = Field(default=1, description="log every N steps")
    bf16: bool | None = Field(default=None, description="bf16 mixed precision (default: on a GPU that has it)")
    seed: int | None = Field(default=None, description="training seed (default: the recipe's)")

    @model_validator(mode="after")
    def _one_way_to_freeze(self) -> TrlArgs:
        if self.lora and self.train_layers is not None:
            raise ValueError("give lora or train_layers, not both")
        return self


class TrlTrainer:
    """Fine-tune with TRL on one machine (see the module docstring)."""

    Args = TrlArgs

    def __init__(self, **kwargs: Any) -> None:
        self.args = TrlArgs(**kwargs)

    def train(self, job: TrainJob, ctx: Any) -> Checkpoint:
        """Run the job (or return its finished result), announcing every checkpoint."""
        out = Path(job.output_dir)
        done = _finished(out, job)
        if done is not None:
            return done
        if job.kind not in ("sft", "grpo"):
            raise StageError(f"trainer 'trl': unknown job kind '{job.kind}' (expected sft or grpo)")
        if not job.items:
            raise StageError(f"{job.stage}: trainer 'trl' got no items to train on")
        if job.kind == "grpo" and job.rollouts < 2:
            raise StageError(f"{job.stage}: GRPO needs at least 2 rollouts per prompt (got {job.rollouts})")
        from fleming.plugins.trainers.trl._run import run_job

        return run_job(self.args, job, ctx, step_offset(out))


def newest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The highest-numbered ``checkpoint-N`` folder in `folder`, and N."""
    found = [(int(m.group(1)), p) for p in folder.glob("checkpoint-*") if (m := _CKPT.match(p.name)) and p.is_dir()]
    if not found:
        return None
    n, path = max(found)
    return path, n


def step_offset(out: Path) -> int:
    """Steps already taken in this stage by earlier rounds (folders ``round-K`` beside this one)."""
    m = _ROUND.match(out.name)
    if not m or int(m.group(1)) == 0:
        return 0
    prev = out.parent / f"round-{int(m.group(1)) - 1}" / DONE
    if not prev.exists():
        return 0
    return int(json.loads(prev.read_text(encoding="utf-8"))["step"])


def _finished(out: Path, job: TrainJob) -> Checkpoint | None:
    marker = out / DONE
    if not marker.exists():
        return None
    rec = json.loads(marker.read_text(encoding="utf-8"))
    if not Path(rec["path"]).is_dir():
        return None
    return Checkpoint(path=Path(rec["path"]), stage=job.stage, step=int(rec["step"]), metrics=rec.get("metrics", {}))


def write_done(out: Path, ckpt: Checkpoint, record: dict[str, Any]) -> None:
    """Mark the folder finished: its final checkpoint and the stage-cumulative step."""
    atomic_write_json(out / DONE, {"path": str(ckpt.path), "step": ckpt.step,
                                   "metrics": dict(ckpt.metrics), **record})


@hookimpl
def register_trainers(register: Any) -> None:
    """Register the `trl` trainer."""
    register("trl", TrlTrainer)
