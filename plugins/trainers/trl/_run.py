"""Building and running the TRL trainers for the `trl` trainer plugin (TRL itself is imported only to train)."""
from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleming import Checkpoint, StageContext
from fleming.engines import EngineChoice
from fleming.errors import MissingDependencyError, StageError
from fleming.formats import trl_record
from fleming.plugins.trainers.trl._checkpoints import mark_saved, prepare_resume, write_done
from fleming.plugins.trainers.trl._config import TrlArgs
from fleming.plugins.trainers.trl._rewards import trl_reward_funcs
from fleming.plugins.trainers.trl._rollouts import EngineRollouts
from fleming.plugins.trainers.trl._shared_prompts import PolicyRollouts, shared_prompt_trainer
from fleming.protocols import TrainJob
from fleming.sampling import engine_for


def common_config(args: TrlArgs, job: TrainJob, show_progress: bool) -> dict[str, Any]:
    """TrainingArguments shared by SFT and GRPO (CPU-safe: no bf16 or gradient checkpointing off a GPU)."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = args.bf16 if args.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    return dict(
        output_dir=str(job.output_dir), learning_rate=args.learning_rate, num_train_epochs=args.epochs,
        max_steps=job.max_steps or args.max_steps or -1, gradient_accumulation_steps=args.grad_accumulation,
        save_strategy="steps", save_steps=args.save_steps, save_only_model=args.save_only_model,
        logging_steps=args.logging_steps, report_to="none", seed=args.seed if args.seed is not None else job.seed,
        bf16=bf16, fp16=False, gradient_checkpointing=False, use_cpu=not cuda,
        disable_tqdm=show_progress, dataloader_num_workers=0,
    )


def grpo_config(args: TrlArgs, job: TrainJob, show_progress: bool = False) -> Any:
    """The GRPOConfig of a job: the paper's advantage (no std scaling), KL weight, rollouts per prompt."""
    from trl import GRPOConfig

    extra = {"loss_type": args.loss_type} if args.loss_type else {}
    return GRPOConfig(**common_config(args, job, show_progress), shuffle_dataset=not job.ordered,
                      scale_rewards="none", beta=args.kl,
                      num_generations=job.rollouts, per_device_train_batch_size=args.batch_size * job.rollouts,
                      max_completion_length=args.max_completion_length, temperature=args.temperature,
                      reward_weights=[float(w) for _, w in job.rewards], **extra,
                      **({"steps_per_generation": args.steps_per_generation} if args.steps_per_generation else {}))


def sft_config(args: TrlArgs, job: TrainJob, show_progress: bool = False) -> Any:
    """The SFTConfig of a cold-start job (loss on the rationale only)."""
    from trl import SFTConfig

    return SFTConfig(**common_config(args, job, show_progress), per_device_train_batch_size=args.batch_size,
                     train_sampling_strategy="sequential" if job.ordered else "random",
                     max_length=args.max_length, completion_only_loss=True)


def grpo_rows(job: TrainJob) -> list[dict[str, Any]]:
    """GRPO dataset rows: the prompt plus the columns the reward functions read."""
    return [{k: v for k, v in trl_record(it).items() if k != "completion"} for it in job.items]


def sft_rows(job: TrainJob) -> list[dict[str, Any]]:
    """SFT dataset rows: the prompt and the rationale as the assistant's completion."""
    missing = [it.id for it in job.items if not it.rationale]
    if missing:
        raise StageError(f"{job.stage}: {len(missing)} cold-start item(s) have no rationale "
                         f"(first: '{missing[0]}'); the teacher must write one for each")
    return [{"prompt": r["prompt"], "completion": r["completion"]} for r in map(trl_record, job.items)]


def _peft_config(args: TrlArgs) -> Any:
    if not args.lora:
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        raise MissingDependencyError("trainer 'trl' with lora: true needs peft: pip install peft")
    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, target_modules="all-linear",
                      task_type="CAUSAL_LM")


def policy(args: TrlArgs, job: TrainJob) -> Any:
    """The model to train: its folder, or (with ``train_layers``) the loaded model with all but the top blocks
    and the final norm frozen."""
    if args.train_layers is None:
        return job.model_path
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(job.model_path, dtype="auto")
    decoder = model.get_decoder()
    blocks = getattr(decoder, "layers", None)
    if blocks is None:
        raise StageError(f"{job.stage}: trainer 'trl' train_layers: cannot find the transformer blocks of "
                         f"{job.model_path} (no decoder .layers)")
    if args.train_layers > len(blocks):
        raise StageError(f"{job.stage}: trainer 'trl' train_layers is {args.train_layers} but the model has "
                         f"{len(blocks)} blocks")
    model.requires_grad_(False)
    for module in [*blocks[-args.train_layers:], getattr(decoder, "norm", None)]:
        if module is not None:
            module.requires_grad_(True)
    return model


def rollout_choice(args: TrlArgs, ctx: StageContext | None) -> EngineChoice | None:
    """The engine GRPO rollouts sample with (the trainer's `rollout_engine`, ``--engine`` applied), or None for
    TRL's own generate: the default, and what `hf` with no args means."""
    if args.rollout_engine is None:
        return None
    spec = EngineChoice.parse(args.rollout_engine, "rollout_engine")
    choice = engine_for(ctx, spec.name, spec.args, "rl.trainer.rollout_engine")
    return None if choice.name == "hf" and not choice.args else choice


def build_trainer(args: TrlArgs, job: TrainJob, ctx: StageContext | None, offset: int) -> tuple[Any, Any, Any]:
    """The TRL trainer for a job, with fleming's callbacks attached; also the announce and curriculum callbacks."""
    from datasets import Dataset

    from fleming.plugins.trainers.trl._callbacks import (AnnounceCallback, CurriculumCallback, RichProgressCallback,
                                                         SignalsCallback)

    show = bool(getattr(ctx, "show_progress", False))
    announce = AnnounceCallback(job, offset, args.lora)
    callbacks: list[Any] = [announce]
    if show:
        callbacks.append(RichProgressCallback(ctx, f"{job.kind} on {len(job.items)} items"))
    curriculum_cb = None
    if job.kind == "grpo":
        from trl import GRPOTrainer

        funcs, _, ledger = trl_reward_funcs(job.rewards, job.items, job.rollouts)
        curriculum_cb = CurriculumCallback(job.curriculum, ledger, offset)
        if getattr(job, "signals", None) is not None:  # the stage's steps.jsonl (fleming.rl_signals)
            callbacks.append(SignalsCallback(job.signals, offset))
        choice = rollout_choice(args, ctx)
        rollouts = None if choice is None else EngineRollouts(choice, Path(job.output_dir) / ".rollout-weights",
                                                              args.seed if args.seed is not None else job.seed)
        sample = rollouts if rollouts is not None else PolicyRollouts() if args.share_prompts else None
        cls = shared_prompt_trainer(GRPOTrainer) if args.share_prompts else GRPOTrainer
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'rollout_func', which is an experimental feature")
            trainer = cls(model=policy(args, job), reward_funcs=funcs, args=grpo_config(args, job, show),
                          train_dataset=Dataset.from_list(grpo_rows(job)), peft_config=_peft_config(args),
                          callbacks=[curriculum_cb, *callbacks], rollout_func=sample)
        trainer.fleming_rollouts = rollouts
    else:
        from trl import SFTTrainer

        trainer = SFTTrainer(model=policy(args, job), args=sft_config(args, job, show),
                             train_dataset=Dataset.from_list(sft_rows(job)), peft_config=_peft_config(args),
                             callbacks=callbacks)
    return trainer, announce, curriculum_cb


@contextmanager
def compact_lm_head_off_triton() -> Iterator[None]:
    """Score only the labelled positions in TRL's chunked LM head on devices without Triton (the CPU).

    TRL 1.x projects hidden states through the LM head in tiles; where Triton is missing it scores *every*
    position (to keep tile shapes fixed for compilers), although the loss reads only the labelled ones. With the
    loss on the completion only, a cold-start batch is mostly prompt, so on a CPU this doubled the step time
    (measured on SmolLM2-135M: 15 s -> 8 s per 8 x 215-token step). The result is the same; only the work differs.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:  # pragma: no cover - TRL is imported by the caller
        yield
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:  # another TRL layout: leave it alone
        yield
        return
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


def run_job(args: TrlArgs, job: TrainJob, ctx: StageContext | None, offset: int) -> Checkpoint:
    """Train (resuming from the newest complete checkpoint in the output folder), save and announce the final
    state."""
    out = Path(job.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume, removed = prepare_resume(out)
    for line in removed:
        _log(ctx, f"{line}; {f'resuming from {resume[0].name}' if resume else 'starting the round over'}")
    trainer, announce, curriculum_cb = build_trainer(args, job, ctx, offset)
    t0 = time.perf_counter()
    rollouts = getattr(trainer, "fleming_rollouts", None)
    try:
        with compact_lm_head_off_triton():
            trainer.train(resume_from_checkpoint=str(resume[0]) if resume else None)
    finally:
        if rollouts is not None:
            rollouts.close()
    seconds = round(time.perf_counter() - t0, 2)
    step = trainer.state.global_step
    final = out / f"checkpoint-{step}"
    if not (final / "config.json").exists() and not (final / "adapter_config.json").exists():
        trainer.save_model(str(final))  # the last step fell between saves: save it now
        trainer.state.save_to_json(str(final / "trainer_state.json"))
        ckpt = announce.announce(final, step)
        mark_saved(final, step)
    else:
        ckpt = next((c for c in reversed(announce.saved) if c.step == offset + step), None) \
            or Checkpoint(final / "merged" if args.lora else final, job.stage, offset + step,
                          metrics=dict(announce.metrics))
    record: dict[str, Any] = {"kind": job.kind, "items": len(job.items), "global_step": step,
                              "first_step": offset + 1, "seconds": seconds,
                              "resumed_from": str(resume[0]) if resume else None}
    if removed:
        record["removed_incomplete"] = removed
    if job.kind == "grpo":
        record["rollouts"] = job.rollouts
        record["rollout_engine"] = (rollouts.stats() if rollouts is not None
                                    else {"engine": {"name": "hf", "args": {}},
                                          "note": "the policy itself, each prompt computed once per group"
                                          if args.share_prompts else "TRL's own generate"})
        record["share_prompts"] = args.share_prompts
    if curriculum_cb is not None and curriculum_cb.reason:
        record["stopped"] = {"step": curriculum_cb.stopped_at, "reason": curriculum_cb.reason}
        job.notes.setdefault("stopped", []).append(record["stopped"])
    job.notes.setdefault("trl", []).append(record)
    write_done(out, ckpt, record)
    return ckpt


def _log(ctx: StageContext | None, message: str) -> None:
    if ctx is not None and hasattr(ctx, "log"):
        ctx.log(message)
