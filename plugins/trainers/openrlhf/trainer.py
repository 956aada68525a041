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
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from fleming import Checkpoint, StageContext, hookimpl
from fleming.errors import FlemingError, MissingDependencyError, StageError
from fleming.io import atomic_write_json
from fleming.plugins.trainers.openrlhf import _export as export
from fleming.plugins.trainers.openrlhf._cli import parse_openrlhf_args
from fleming.plugins.trainers.openrlhf._config import OPENRLHF_HINT, PPO, RAY_HINT, SFT, OpenRlhfArgs
from fleming.protocols import PlannedCommand, Requirement, TrainJob

_HF = re.compile(r"^global_step(\d+)_hf$")
DONE = "fleming-openrlhf.json"


class OpenRlhfTrainer:
    """Train with OpenRLHF through Ray (see the module docstring)."""

    Args = OpenRlhfArgs

    def __init__(self, **kwargs: Any) -> None:
        self.args = OpenRlhfArgs(**kwargs)

    def command(self, job: TrainJob, ctx: StageContext) -> tuple[str, list[str]]:
        """Export the job's data and return (OpenRLHF module, its arguments)."""
        out = Path(job.output_dir)
        folder = out / "export"
        if job.kind == "grpo":
            if not job.reward_specs:
                raise StageError(f"{job.stage}: trainer 'openrlhf' needs the job's reward specs (rl.rewards)")
            paths = export.export_grpo(folder, job.items, job.reward_specs)
            return PPO, export.grpo_argv(self.args, job.model_path, paths, out, job.rollouts, job.seed, job.max_steps)
        if job.kind == "sft":
            missing = [it.id for it in job.items if not it.rationale]
            if missing:
                raise StageError(f"{job.stage}: {len(missing)} cold-start item(s) have no rationale "
                                 f"(first: '{missing[0]}')")
            return SFT, export.sft_argv(self.args, job.model_path, export.export_sft(folder, job.items), out, job.seed)
        raise StageError(f"trainer 'openrlhf': unknown job kind '{job.kind}' (expected sft or grpo)")

    def train(self, job: TrainJob, ctx: StageContext) -> Checkpoint:
        """Run the job through `ray job submit` (or stop after writing it, in a dry run)."""
        out = Path(job.output_dir)
        if (out / DONE).exists():
            rec = json.loads((out / DONE).read_text(encoding="utf-8"))
            return Checkpoint(Path(rec["path"]), job.stage, int(rec["step"]))
        if job.ordered:  # OpenRLHF 0.11 always shuffles its prompt loader: refuse rather than train out of order
            raise StageError(f"{job.stage}: trainer 'openrlhf' cannot keep the curriculum's order (OpenRLHF "
                             "shuffles its prompts); use trainer 'trl' or a curriculum whose selections are not ordered")
        module, argv = self.command(job, ctx)
        if importlib.util.find_spec("openrlhf") is not None:
            parse_openrlhf_args(module, argv)
        full = export.launch_argv(module, argv, self.args.address, out / "export")
        path = export.write_command(out / "export", full)
        job.notes.setdefault("openrlhf", []).append({"kind": job.kind, "command": str(path)})
        if self.args.dry_run:
            raise StageError(f"{job.stage}: dry run: OpenRLHF command written to {path} (checked against "
                             "OpenRLHF's parser where it is installed); nothing was trained")
        if importlib.util.find_spec("ray") is None:
            raise MissingDependencyError(f"trainer 'openrlhf' launches through Ray: {RAY_HINT}")
        result = subprocess.run(full, check=False)
        if result.returncode != 0:
            raise StageError(f"{job.stage}: the OpenRLHF job failed (exit {result.returncode}); command: {path}")
        return announce_checkpoints(job, out)

    def requirements(self) -> list[Requirement]:
        """Ray submits each job; OpenRLHF here checks the commands with its own parser."""
        return [Requirement("ray", "it submits each job with `ray job submit`", RAY_HINT),
                Requirement("openrlhf", "the commands are not checked against OpenRLHF's own parser here",
                            OPENRLHF_HINT)]

    def preflight(self) -> list[str]:
        """Warn when no Ray cluster is named."""
        if self.args.address or os.environ.get("RAY_ADDRESS"):
            return []
        return ["no Ray cluster named (args.address or RAY_ADDRESS): `ray job submit` will look for one on "
                "this machine"]

    def planned_commands(self, job: TrainJob) -> list[PlannedCommand]:
        """The ``ray job submit`` command of `job`, checked with OpenRLHF's parser where it is installed."""
        module, argv, full = export.planned_command(self.args, job.kind, job.model_path, Path(job.output_dir),
                                                    job.seed, job.rollouts, job.max_steps)
        checked, problem = importlib.util.find_spec("openrlhf") is not None, None
        if checked:
            try:
                parse_openrlhf_args(module, argv)
            except FlemingError as exc:
                checked, problem = False, str(exc)
        return [PlannedCommand(module, full, "OpenRLHF's own parser", checked, problem,
                               "its data and reward paths are where the export would write them")]


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
