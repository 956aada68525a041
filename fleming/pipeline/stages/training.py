"""The training stages: the cold start (teacher rationales, then fine-tuning) and each RL stage."""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from fleming.components import split_weight
from fleming.errors import StageError
from fleming.context import StageContext
from fleming.items import write_items, write_rejects
from fleming.pipeline.context import StageRun
from fleming.pipeline.rundir import atomic_write_json
from fleming.pipeline.stages.data import split_results, upstream_items
from fleming.protocols import Reward, RewardSpec, TrainJob
from fleming.rl_signals import SignalLog
from fleming.types import Checkpoint


def _finish_training(ctx: StageContext, checkpoint: Checkpoint) -> None:
    final = ctx.dir / "final"
    if Path(checkpoint.path).resolve() != final.resolve():
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(checkpoint.path, final)
    atomic_write_json(ctx.dir / "model.json", {"spec": str(final), "path": str(final), "local": True,
                                               "label": f"{ctx.run_name}/{ctx.stage}", "step": checkpoint.step})


def run_cold_start(s: StageRun) -> None:
    """Have the teacher write rationales, then fine-tune the model on them."""
    ctx = s.ctx
    cs = s.recipe.cold_start
    items = upstream_items(s, s.inputs[1:])
    teacher = s.run.build("teachers", "cold_start.teacher", cs.teacher)
    explained, rejects = split_results(list(teacher.explain(items, ctx)))
    write_items(ctx.dir, explained, "sft")
    write_rejects(ctx.dir, rejects)
    trainer = s.run.build("trainers", "cold_start.trainer", cs.trainer)
    job = TrainJob(kind="sft", model_path=_start_model(ctx), items=explained,
                   output_dir=ctx.checkpoints_dir, seed=ctx.seed, stage=ctx.stage,
                   announce=ctx.announce, notes=ctx.notes)
    _finish_training(ctx, trainer.train(job, ctx))
    ctx.counts.update(sft_items=len(explained), rejected=len(rejects))


def run_rl_stage(s: StageRun) -> None:
    """Run one GRPO stage: the curriculum picks each round's items until it says the stage is done."""
    ctx = s.ctx
    rl = s.recipe.rl
    index = s.config["index"]
    st = rl.stages[index]
    pool = upstream_items(s, s.inputs[1:])
    trainer = s.run.build("trainers", "rl.trainer", rl.trainer)
    rewards, specs = _rewards(s)
    curriculum = s.run.build("curricula", f"rl.stages[{index}].curriculum", st.curriculum)
    model_path = _start_model(ctx)
    last: Checkpoint | None = None
    decisions: list[dict[str, Any]] = ctx.notes.setdefault("curriculum", [])
    signals = SignalLog(ctx.dir).open()  # steps.jsonl and events.jsonl (fleming.rl_signals)
    for round_ in range(1000):
        done_marker = ctx.dir / "rounds" / f"round-{round_}.json"
        if done_marker.exists():  # finished before a kill: take its checkpoint and go on
            rec = json.loads(done_marker.read_text(encoding="utf-8"))
            decisions.append(rec["decision"])
            last = Checkpoint(Path(rec["checkpoint"]), ctx.stage, rec["step"], s.run.name)
            model_path = rec["checkpoint"]
            continue
        selection = curriculum.select(pool, round_, last, ctx)
        if selection is None:
            ended = getattr(curriculum, "end_reason", None)
            ctx.notes["ended"] = ended
            decisions.append({"round": round_, "decision": "end of stage", "reason": ended})
            signals.event("stage_end", last.step if last else 0, round_, reason=ended)
            break
        rollouts = selection.rollouts or st.rollouts
        decision = {"round": round_, "items": len(selection.items), "rollouts": rollouts, "reason": selection.reason}
        signals.event("round_start", last.step if last else 0, round_, items=len(selection.items), rollouts=rollouts,
                      reason=selection.reason, stats=dict(getattr(selection, "stats", None) or {}))
        job = TrainJob(kind="grpo", model_path=model_path, items=selection.items,
                       output_dir=ctx.checkpoints_dir / f"round-{round_}", seed=ctx.seed + round_,
                       stage=ctx.stage, rewards=rewards, reward_specs=specs, curriculum=curriculum, rollouts=rollouts,
                       max_steps=st.max_steps, announce=ctx.announce, notes=ctx.notes, ordered=selection.ordered,
                       signals=signals)
        last = trainer.train(job, ctx)
        model_path = str(last.path)
        decisions.append(decision)
        atomic_write_json(done_marker, {"decision": decision, "checkpoint": str(last.path), "step": last.step})
    if last is None:
        raise StageError(f"rl.stages[{index}].curriculum: '{st.curriculum.plugin}' selected nothing to train on")
    _finish_training(ctx, last)
    signals.finish()
    ctx.counts.update(rounds=len([d for d in decisions if "items" in d]), pool=len(pool))


def _start_model(ctx: StageContext) -> str:
    if ctx.start_model is None:
        raise StageError(f"stage '{ctx.stage}' has no model to start from (its upstream stage recorded none)")
    return ctx.start_model


def _rewards(s: StageRun) -> tuple[list[tuple[Reward, float]], list[RewardSpec]]:
    """The recipe's rewards, built, and as specs (plugin, validated args, weight) for trainers that export them."""
    rewards: list[tuple[Reward, float]] = []
    specs: list[RewardSpec] = []
    for i, spec in enumerate(s.recipe.rl.rewards):
        where = f"rl.rewards[{i}]"
        args, weight = split_weight("rewards", dict(spec.args), where)
        reward = s.run.build("rewards", where, spec)
        with contextlib.suppress(AttributeError, TypeError):  # lets trainers log the reward by its recipe name
            reward.fleming_name = spec.plugin
        rewards.append((reward, weight))
        specs.append(RewardSpec(plugin=spec.plugin, args=s.run.loaded.args.get(where, args), weight=weight))
    return rewards, specs
