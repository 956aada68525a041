"""Trainer `openrlhf`: GRPO (and the cold start) on a GPU cluster through OpenRLHF on Ray, with vLLM rollouts.

Each job exports its data and reward file (`fleming.plugins.trainers.openrlhf._export`) into ``<output_dir>/export``,
builds the ``ray job submit ... -- python3 -m openrlhf.cli.train_ppo_ray`` (GRPO) or ``train_sft`` (cold
start) command for OpenRLHF 0.11 and, when OpenRLHF is installed here, checks it with OpenRLHF's own
argument parser. The paper's advantage (reward minus the group mean, no std) is ``estimator: dr_grpo``;
``group_norm`` divides by the std. After the job, every ``global_step*_hf`` folder is announced (the
eval stage evaluates each) and the newest is returned; a finished folder is not trained again.

``dry_run: true`` writes the export and ``export/command.sh`` and checks the command, then stops the stage
with a StageError naming the command file: nothing is trained and no model is pretended. The curriculum
sees no per-step rewards (OpenRLHF runs the whole round in one job); rounds still come from ``select``.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt

from fleming import Checkpoint, hookimpl
from fleming.errors import MissingDependencyError, StageError
from fleming.pipeline.rundir import atomic_write_json
from fleming.plugins.trainers.openrlhf import _export as export
from fleming.protocols import TrainJob

PPO = "openrlhf.cli.train_ppo_ray"
SFT = "openrlhf.cli.train_sft"
_HF = re.compile(r"^global_step(\d+)_hf$")
DONE = "fleming-openrlhf.json"


class OpenRlhfArgs(BaseModel):
    """The `openrlhf` trainer's recipe args."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=False, description="write and check the command, train nothing")
    address: str | None = Field(default=None, description="Ray address for `ray job submit` (default RAY_ADDRESS)")
    estimator: Literal["dr_grpo", "group_norm", "reinforce_baseline", "rloo"] = "dr_grpo"
    learning_rate: PositiveFloat = 1e-6
    sft_learning_rate: PositiveFloat = 5e-6
    sft_epochs: PositiveInt = 1
    kl: float = Field(default=0.0, ge=0, description="KL weight (0: none, as in the paper)")
    temperature: PositiveFloat = 1.0
    episodes: PositiveInt = 1
    rollout_batch_size: PositiveInt = 128
    train_batch_size: PositiveInt = 128
    micro_batch_size: PositiveInt = 4
    max_new_tokens: PositiveInt = 2048
    max_len: PositiveInt = 4096
    num_nodes: PositiveInt = 1
    gpus_per_node: PositiveInt = 8
    vllm_engines: PositiveInt = 4
    vllm_tensor_parallel: PositiveInt = 1
    zero_stage: Literal[0, 1, 2, 3] = 3
    colocate: bool = True
    lora_rank: NonNegativeInt = 0
    lora_alpha: PositiveInt = 16
    save_steps: int = Field(default=20, description="save a HF checkpoint every N steps (-1: only at the end)")
    extra_args: list[str] = Field(default_factory=list, description="more OpenRLHF flags, passed as given")


class OpenRlhfTrainer:
    """Train with OpenRLHF through Ray (see the module docstring)."""

    Args = OpenRlhfArgs

    def __init__(self, **kwargs: Any) -> None:
        self.args = OpenRlhfArgs(**kwargs)

    def command(self, job: TrainJob, ctx: Any) -> tuple[str, list[str]]:
        """Export the job's data and return (OpenRLHF module, its arguments)."""
        out = Path(job.output_dir)
        folder = out / "export"
        if job.kind == "grpo":
            if getattr(ctx, "run", None) is None:
                raise StageError(f"{job.stage}: trainer 'openrlhf' exports the recipe's rewards and needs the run")
            specs = export.reward_specs(ctx)
            paths = export.export_grpo(folder, job.items, specs)
            return PPO, export.grpo_argv(self.args, job.model_path, paths, out, job.rollouts, job.seed, job.max_steps)
        if job.kind == "sft":
            missing = [it.id for it in job.items if not it.rationale]
            if missing:
                raise StageError(f"{job.stage}: {len(missing)} cold-start item(s) have no rationale "
                                 f"(first: '{missing[0]}')")
            return SFT, export.sft_argv(self.args, job.model_path, export.export_sft(folder, job.items), out, job.seed)
        raise StageError(f"trainer 'openrlhf': unknown job kind '{job.kind}' (expected sft or grpo)")

    def train(self, job: TrainJob, ctx: Any) -> Checkpoint:
        """Run the job through `ray job submit` (or stop after writing it, in a dry run)."""
        out = Path(job.output_dir)
        if (out / DONE).exists():
            rec = json.loads((out / DONE).read_text(encoding="utf-8"))
            return Checkpoint(Path(rec["path"]), job.stage, int(rec["step"]))
        module, argv = self.command(job, ctx)
        if importlib.util.find_spec("openrlhf") is not None:
            from fleming.plugins.trainers.openrlhf._cli import parse_openrlhf_args

            parse_openrlhf_args(module, argv)
        full = export.launch_argv(module, argv, self.args.address, out / "export")
        path = export.write_command(out / "export", full)
        job.notes.setdefault("openrlhf", []).append({"kind": job.kind, "command": str(path)})
        if self.args.dry_run:
            raise StageError(f"{job.stage}: dry run: OpenRLHF command written to {path} (checked against "
                             "OpenRLHF's parser where it is installed); nothing was trained")
        if importlib.util.find_spec("ray") is None:
            raise MissingDependencyError("trainer 'openrlhf' launches through Ray: pip install 'fleming-med[openrlhf]'")
        result = subprocess.run(full, check=False)
        if result.returncode != 0:
            raise StageError(f"{job.stage}: the OpenRLHF job failed (exit {result.returncode}); command: {path}")
        return announce_checkpoints(job, out)


def hf_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """OpenRLHF's ``global_step<N>_hf`` folders under `folder` (any depth below it), by step."""
    found = [(int(m.group(1)), p) for p in folder.rglob("global_step*_hf") if (m := _HF.match(p.name)) and p.is_dir()]
    return sorted(found)


def announce_checkpoints(job: TrainJob, out: Path) -> Checkpoint:
    """Announce every HF checkpoint the job saved and mark the folder finished; return the newest."""
    found = hf_checkpoints(out)
    if not found:
        raise StageError(f"{job.stage}: OpenRLHF finished but saved no global_step*_hf folder in {out} "
                         "(is --ckpt.save_hf set?)")
    ckpts = [Checkpoint(path, job.stage, step) for step, path in found]
    for c in ckpts:
        job.announce(c)
    atomic_write_json(out / DONE, {"path": str(ckpts[-1].path), "step": ckpts[-1].step})
    return ckpts[-1]


@hookimpl
def register_trainers(register: Any) -> None:
    """Register the `openrlhf` trainer."""
    register("openrlhf", OpenRlhfTrainer)
