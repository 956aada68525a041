"""TRL TrainerCallbacks for the `trl` trainer: announce checkpoints, feed the curriculum, record the RL signals,
show progress."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from fleming import StageContext
from fleming.plugins.trainers.trl._checkpoints import mark_saved
from fleming.plugins.trainers.trl._rewards import RewardLedger
from fleming.types import Checkpoint

MERGED = "merged"


def merge_lora(checkpoint_dir: Path) -> Path:
    """Save base + adapter of a LoRA checkpoint as plain weights in ``<checkpoint>/merged`` (what eval loads)."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    out = checkpoint_dir / MERGED
    if (out / "config.json").exists():
        return out
    tmp = checkpoint_dir / f"{MERGED}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoPeftModelForCausalLM.from_pretrained(checkpoint_dir).merge_and_unload()
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(checkpoint_dir).save_pretrained(tmp)
    tmp.rename(out)
    return out


class AnnounceCallback(TrainerCallback):
    """After every save: make the checkpoint loadable (merged LoRA weights) and announce it."""

    def __init__(self, job: Any, offset: int, lora: bool) -> None:
        self.job = job
        self.offset = offset
        self.lora = lora
        self.metrics: dict[str, float] = {}
        self.saved: list[Checkpoint] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        """Keep the latest logged numbers; they ride along with the next checkpoint."""
        self.metrics.update({k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))})

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Announce ``checkpoint-<global_step>`` (its step counted from the stage's start), then mark it
        complete: TRL's save has returned, so a rerun may resume from it."""
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.announce(folder, state.global_step)
        mark_saved(folder, state.global_step)

    def announce(self, folder: Path, global_step: int) -> Checkpoint:
        """Announce one saved folder (merging LoRA weights first) and return its Checkpoint."""
        path = merge_lora(folder) if self.lora else folder
        ckpt = Checkpoint(path=path, stage=self.job.stage, step=self.offset + global_step,
                          metrics=dict(self.metrics))
        self.job.announce(ckpt)
        self.saved.append(ckpt)
        return ckpt


class CurriculumCallback(TrainerCallback):
    """After every step that scored new rollouts: hand the per-group rewards to the curriculum; stop the
    round (saving a checkpoint) when it gives a reason."""

    def __init__(self, curriculum: Any, ledger: RewardLedger, offset: int) -> None:
        self.curriculum = curriculum
        self.ledger = ledger
        self.offset = offset
        self.reason: str | None = None
        self.stopped_at: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Call ``curriculum.observe(step, group_rewards)``; a reason ends the round."""
        groups = self.ledger.drain()
        if not groups or self.curriculum is None:
            return control
        reason = self.curriculum.observe(self.offset + state.global_step, groups)
        if reason:
            self.reason = str(reason)
            self.stopped_at = self.offset + state.global_step
            control.should_training_stop = True
            control.should_save = True
        return control


class SignalsCallback(TrainerCallback):
    """Record every logged GRPO step in the stage's signal log (``job.signals``, see ``fleming.rl_signals``):
    TRL's ``rewards/<name>/mean`` (named by the recipe's plugin), ``reward``, ``frac_reward_zero_std``,
    ``completions/mean_length``, ``completions/clipped_ratio`` and ``loss``, at the stage's global step, with
    the step's wall time in seconds (rollouts, rewards and the optimizer step together)."""

    OPTIONAL = {"grad_norm": "grad_norm", "entropy": "entropy", "kl": "kl"}

    def __init__(self, signals: Any, offset: int) -> None:
        self.signals = signals
        self.offset = offset
        self.started: float | None = None
        self.seconds: float | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start the step's clock."""
        self.started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Stop it (the step's log comes after its end)."""
        if self.started is not None:
            self.seconds, self.started = time.perf_counter() - self.started, None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Forget steps a killed run recorded after the checkpoint this run resumes from."""
        self.signals.rewind(self.offset + state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        """Write one step's record (the end-of-training summary log is not a step)."""
        logs = logs or {}
        if "train_runtime" in logs or not ({"reward", "loss"} & set(logs)):
            return
        rewards = {k[len("rewards/"):-len("/mean")]: v for k, v in logs.items()
                   if k.startswith("rewards/") and k.endswith("/mean")}
        extra = {name: logs[key] for name, key in self.OPTIONAL.items() if key in logs}
        if self.seconds is not None:
            extra["seconds"], self.seconds = self.seconds, None
        self.signals.step(self.offset + state.global_step, rewards, logs.get("reward"),
                          logs.get("frac_reward_zero_std"), logs.get("completions/mean_length"),
                          logs.get("completions/clipped_ratio"), logs.get("loss"), **extra)


class RichProgressCallback(TrainerCallback):
    """A rich progress bar over the optimizer steps, on the run's console (replaces TRL's tqdm)."""

    def __init__(self, ctx: StageContext | None, description: str) -> None:
        self.ctx = ctx
        self.description = description
        self.bar: Any = None
        self.task: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Open the bar."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn(f"{self.ctx.stage}: {self.description}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=self.ctx.console,
                            transient=True)
        self.bar.start()
        self.task = self.bar.add_task("", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Advance one step."""
        if self.bar is not None:
            self.bar.update(self.task, completed=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
