"""The pipeline's stages, in order. Each reads its upstream stages' folders and writes its own.

model → collect → synthesize → filter → verify → annotate → mix → cold_start → rl-<name> ...
A stage exists in a run only when the recipe asks for it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleming.components import split_weight
from fleming.errors import StageError
from fleming.items import jsonl_text, read_items, write_items, write_rejects
from fleming.mixing import mix_items
from fleming.models import resolve_model
from fleming.formats import write_training_shapes
from fleming.evaluation import (EvalTarget, TaskMaker, benchmark_makers, check_rows, evaluate, print_rows,
                                write_summary)
from fleming.pipeline.context import ANNOUNCED, StageContext
from fleming.pipeline.rundir import atomic_write_json, atomic_write_text
from fleming.protocols import TrainJob
from fleming.recipe import Recipe
from fleming.types import Checkpoint, QAItem, Rejected


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its name, the stages it reads, the config that decides its fingerprint."""

    name: str
    inputs: tuple[str, ...]
    config: Any
    run: Callable[[StageContext], None]
    arg_paths: tuple[str, ...] = ()  # recipe field paths whose file args are part of the fingerprint


def plan(recipe: Recipe) -> list[Stage]:
    """Return the stages this recipe asks for, in order."""
    d = recipe.data
    stages: list[Stage] = [Stage("model", (), {"model": recipe.model}, run_model)]
    item_stages: list[str] = []
    if d.sources:
        stages.append(Stage("collect", (), _dump(d.sources), run_collect, ("data.sources",)))
        item_stages.append("collect")
    if d.synthesize:
        stages.append(Stage("synthesize", (), {"sources": _dump(d.sources), "synthesize": _dump(d.synthesize),
                                               "seed": recipe.seed}, run_synthesize,
                            ("data.sources", "data.synthesize")))
        item_stages.append("synthesize")
    upstream = tuple(item_stages)
    for name, comps, runner in (("filter", d.filters, run_filter), ("verify", d.verify, run_verify),
                                ("annotate", d.annotate, run_annotate)):
        if comps:
            field = "filters" if name == "filter" else name
            if not upstream:
                raise StageError(f"data.{field} is set but no stage makes items "
                                 "(add data.sources or data.synthesize)")
            stages.append(Stage(name, upstream, _dump(comps), runner, (f"data.{field}",)))
            upstream = (name,)
    if upstream and (d.mix is not None or recipe.cold_start or recipe.rl):
        mix = d.mix.model_dump() if d.mix else {}
        stages.append(Stage("mix", upstream, {"mix": mix, "seed": recipe.seed}, run_mix))
        upstream = ("mix",)
    model_from = "model"
    if recipe.cold_start:
        _need_items(upstream, "cold_start")
        stages.append(Stage("cold_start", (model_from, *upstream),
                            {**recipe.cold_start.model_dump(), "seed": recipe.seed}, run_cold_start,
                            ("cold_start.",)))
        model_from = "cold_start"
    if recipe.rl:
        _need_items(upstream, "rl")
        for i, st in enumerate(recipe.rl.stages):
            cfg = {"trainer": recipe.rl.trainer.model_dump(), "rewards": _dump(recipe.rl.rewards),
                   "stage": st.model_dump(), "index": i, "seed": recipe.seed}
            stages.append(Stage(f"rl-{st.name}", (model_from, *upstream), cfg, run_rl_stage,
                                ("rl.trainer", "rl.rewards", f"rl.stages[{i}].")))
            model_from = f"rl-{st.name}"
    trained = tuple(s.name for s in stages if s.run in (run_cold_start, run_rl_stage))
    if recipe.eval:
        extra = ("mix",) if any(s.name == "mix" for s in stages) else ()
        cfg = {"eval": recipe.eval.model_dump(), "data_dir": _eval_data_dir(recipe), "stages": list(trained)}
        stages.append(Stage("eval", ("model", *trained, *extra), cfg, run_eval, ("eval.",)))
    if recipe.leaderboard:
        if not recipe.eval:
            raise StageError("leaderboard is set but there is no eval section to build it from")
        stages.append(Stage("leaderboard", ("eval",), recipe.leaderboard.model_dump(), run_leaderboard))
    return stages


def _eval_data_dir(recipe: Recipe) -> str | None:
    return recipe.eval.data_dir if recipe.eval and recipe.eval.data_dir else os.environ.get("FLEMING_DATA_DIR")


def _dump(comps: Sequence[Any]) -> list[dict[str, Any]]:
    return [c.model_dump() for c in comps]


def _need_items(upstream: tuple[str, ...], section: str) -> None:
    if not upstream:
        raise StageError(f"{section} needs training items: add data.sources or data.synthesize")


# ---------------------------------------------------------------- helpers

def _upstream_items(ctx: StageContext, inputs: Sequence[str]) -> list[QAItem]:
    items: list[QAItem] = []
    for name in inputs:
        folder = ctx.run.run_dir / name
        if (folder / "train").exists() and name == "mix":
            items.extend(read_items(folder, "train"))
        elif (folder / "items").exists():
            items.extend(read_items(folder))
    return items


def _split(results: Sequence[QAItem | Rejected]) -> tuple[list[QAItem], list[Rejected]]:
    items = [r for r in results if isinstance(r, QAItem)]
    rejects = [r for r in results if isinstance(r, Rejected)]
    return items, rejects


def _model_path(ctx: StageContext, stage_name: str) -> str:
    info = json.loads((ctx.run.run_dir / stage_name / "model.json").read_text(encoding="utf-8"))
    return info["path"]


# ---------------------------------------------------------------- stages

def run_model(ctx: StageContext) -> None:
    """Resolve the base model (building the embedded model's HF folder once) and record where it is."""
    recipe = ctx.run.loaded.recipe
    with ctx.spinner(f"resolving model '{recipe.model}' (an embedded model is built once, ~30 s)"):
        resolved = resolve_model(recipe.model, ctx.run.loaded.base_dir, status=ctx.log)
    atomic_write_json(ctx.dir / "model.json", {"spec": resolved.spec, "path": resolved.path,
                                               "local": resolved.local, "label": resolved.label})
    ctx.notes["model"] = resolved.path


def run_collect(ctx: StageContext) -> None:
    """Read every curated source into items; unreadable rows go to rejects.jsonl."""
    recipe = ctx.run.loaded.recipe
    items: list[QAItem] = []
    rejects: list[Rejected] = []
    for i, spec in enumerate(recipe.data.sources):
        source = ctx.run.build("data_sources", f"data.sources[{i}]", spec)
        got, bad = _split(list(ctx.progress(source.items(ctx), description=f"reading {spec.plugin}")))
        items += [it.replace(provenance={**it.provenance, "origin": it.provenance.get("origin", "curated")})
                  for it in got]
        rejects += bad
        ctx.counts[f"source:{spec.plugin}:{i}"] = len(got)
    _write_unique(ctx, items, rejects)


def run_synthesize(ctx: StageContext) -> None:
    """Load the sources' knowledge graphs and run every synthesizer over them."""
    recipe = ctx.run.loaded.recipe
    graphs: dict[str, Any] = {}
    for i, spec in enumerate(recipe.data.sources):
        graph = ctx.run.build("data_sources", f"data.sources[{i}]", spec).graph(ctx)
        if graph is not None:  # keyed by plugin name; a second source of the same plugin gets "#<index>"
            graphs[spec.plugin if spec.plugin not in graphs else f"{spec.plugin}#{i}"] = graph
    items: list[QAItem] = []
    rejects: list[Rejected] = []
    for i, spec in enumerate(recipe.data.synthesize):
        synth = ctx.run.build("synthesizers", f"data.synthesize[{i}]", spec)
        got, bad = _split(list(synth.synthesize(graphs, ctx)))
        items += [it.replace(provenance={**it.provenance, "origin": "synthetic"}) for it in got]
        rejects += bad
        ctx.counts[f"synthesizer:{spec.plugin}:{i}"] = len(got)
    _write_unique(ctx, items, rejects)


def _write_unique(ctx: StageContext, items: list[QAItem], rejects: list[Rejected]) -> None:
    seen: set[str] = set()
    unique: list[QAItem] = []
    for it in items:
        if it.id in seen:
            rejects.append(Rejected(f"duplicate id '{it.id}'", it.source, it.to_record()))
            continue
        seen.add(it.id)
        unique.append(it)
    write_items(ctx.dir, unique)
    write_rejects(ctx.dir, rejects)
    ctx.counts.update(items=len(unique), rejected=len(rejects))


def run_filter(ctx: StageContext) -> None:
    """Apply every filter in order; each reject records the filter that removed it and why."""
    recipe = ctx.run.loaded.recipe
    items = _upstream_items(ctx, ctx.inputs)
    ctx.counts["in"] = len(items)
    rejects: list[Rejected] = []
    for i, spec in enumerate(recipe.data.filters):
        flt = ctx.run.build("filters", f"data.filters[{i}]", spec)
        items, bad = flt.apply(items, ctx)
        rejects += [Rejected(f"{spec.plugin}: {r.reason}", r.where, r.record) for r in bad]
        ctx.counts[f"filter:{spec.plugin}:{i}:rejected"] = len(bad)
    write_items(ctx.dir, items)
    write_rejects(ctx.dir, rejects)
    ctx.counts.update(items=len(items), rejected=len(rejects))


def _run_verifiers(ctx: StageContext, field_name: str) -> None:
    specs = getattr(ctx.run.loaded.recipe.data, field_name)
    items = _upstream_items(ctx, ctx.inputs)
    ctx.counts["in"] = len(items)
    verdict_rows: list[dict[str, Any]] = []
    rejects: list[Rejected] = []
    for i, spec in enumerate(specs):
        verifier = ctx.run.build("verifiers", f"data.{field_name}[{i}]", spec)
        verdicts = verifier.verify(items, ctx)
        if len(verdicts) != len(items):
            raise StageError(f"data.{field_name}[{i}]: verifier '{spec.plugin}' returned {len(verdicts)} "
                             f"verdicts for {len(items)} items")
        kept: list[QAItem] = []
        for v in verdicts:
            verdict_rows.append({"verifier": spec.plugin, "id": v.item.id, "status": v.status,
                                 "reason": v.reason, "details": dict(v.details)})
            if v.status == "drop":
                rejects.append(Rejected(f"{spec.plugin}: {v.reason}", v.item.source, v.item.to_record()))
            else:
                kept.append(v.item)
            ctx.counts[f"{spec.plugin}:{v.status}"] = ctx.counts.get(f"{spec.plugin}:{v.status}", 0) + 1
        items = kept
    write_items(ctx.dir, items)
    write_rejects(ctx.dir, rejects)
    atomic_write_text(ctx.dir / "verdicts.jsonl", jsonl_text(verdict_rows))
    ctx.counts.update(items=len(items), rejected=len(rejects))


def run_verify(ctx: StageContext) -> None:
    """Run the label checkers."""
    _run_verifiers(ctx, "verify")


def run_annotate(ctx: StageContext) -> None:
    """Run the annotators (difficulty labels)."""
    _run_verifiers(ctx, "annotate")


def run_mix(ctx: StageContext) -> None:
    """Mix curated and synthetic items and split off a held-out set by answer entity."""
    recipe = ctx.run.loaded.recipe
    items = _upstream_items(ctx, ctx.inputs)
    result = mix_items(items, recipe.data.mix, recipe.seed)
    write_items(ctx.dir, result.train, "train")
    write_items(ctx.dir, result.heldout, "heldout")
    write_training_shapes(ctx.dir, "train", result.train)
    write_rejects(ctx.dir, result.unused, "unused")
    ctx.counts.update(train=len(result.train), heldout=len(result.heldout), unused=len(result.unused))
    ctx.notes["mix"] = result.notes


def _finish_training(ctx: StageContext, checkpoint: Checkpoint) -> None:
    final = ctx.dir / "final"
    if Path(checkpoint.path).resolve() != final.resolve():
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(checkpoint.path, final)
    atomic_write_json(ctx.dir / "model.json", {"spec": str(final), "path": str(final), "local": True,
                                               "label": f"{ctx.run.name}/{ctx.stage}", "step": checkpoint.step})


def run_cold_start(ctx: StageContext) -> None:
    """Have the teacher write rationales, then fine-tune the model on them."""
    cs = ctx.run.loaded.recipe.cold_start
    items = _upstream_items(ctx, ctx.inputs[1:])
    teacher = ctx.run.build("teachers", "cold_start.teacher", cs.teacher)
    explained, rejects = _split(list(teacher.explain(items, ctx)))
    write_items(ctx.dir, explained, "sft")
    write_rejects(ctx.dir, rejects)
    trainer = ctx.run.build("trainers", "cold_start.trainer", cs.trainer)
    job = TrainJob(kind="sft", model_path=_model_path(ctx, ctx.inputs[0]), items=explained,
                   output_dir=ctx.checkpoints_dir, seed=ctx.seed, stage=ctx.stage,
                   announce=ctx.announce, notes=ctx.notes)
    _finish_training(ctx, trainer.train(job, ctx))
    ctx.counts.update(sft_items=len(explained), rejected=len(rejects))


def run_rl_stage(ctx: StageContext) -> None:
    """Run one GRPO stage: the curriculum picks each round's items until it says the stage is done."""
    rl = ctx.run.loaded.recipe.rl
    index = ctx.config["index"]
    st = rl.stages[index]
    pool = _upstream_items(ctx, ctx.inputs[1:])
    trainer = ctx.run.build("trainers", "rl.trainer", rl.trainer)
    rewards = []
    for i, spec in enumerate(rl.rewards):
        _, weight = split_weight("rewards", dict(spec.args), f"rl.rewards[{i}]")
        reward = ctx.run.build("rewards", f"rl.rewards[{i}]", spec)
        with contextlib.suppress(AttributeError, TypeError):  # lets trainers log the reward by its recipe name
            reward.fleming_name = spec.plugin
        rewards.append((reward, weight))
    curriculum = ctx.run.build("curricula", f"rl.stages[{index}].curriculum", st.curriculum)
    model_path = _model_path(ctx, ctx.inputs[0])
    last: Checkpoint | None = None
    decisions: list[dict[str, Any]] = ctx.notes.setdefault("curriculum", [])
    for round_ in range(1000):
        done_marker = ctx.dir / "rounds" / f"round-{round_}.json"
        if done_marker.exists():  # finished before a kill: take its checkpoint and go on
            rec = json.loads(done_marker.read_text(encoding="utf-8"))
            decisions.append(rec["decision"])
            last = Checkpoint(Path(rec["checkpoint"]), ctx.stage, rec["step"], ctx.run.name)
            model_path = rec["checkpoint"]
            continue
        selection = curriculum.select(pool, round_, last, ctx)
        if selection is None:
            decisions.append({"round": round_, "decision": "end of stage", "reason": _end_reason(ctx, curriculum,
                                                                                               st.curriculum.plugin)})
            break
        rollouts = selection.rollouts or st.rollouts
        decision = {"round": round_, "items": len(selection.items), "rollouts": rollouts, "reason": selection.reason}
        job = TrainJob(kind="grpo", model_path=model_path, items=selection.items,
                       output_dir=ctx.checkpoints_dir / f"round-{round_}", seed=ctx.seed + round_,
                       stage=ctx.stage, rewards=rewards, curriculum=curriculum, rollouts=rollouts,
                       max_steps=st.max_steps, announce=ctx.announce, notes=ctx.notes)
        last = trainer.train(job, ctx)
        model_path = str(last.path)
        decisions.append(decision)
        atomic_write_json(done_marker, {"decision": decision, "checkpoint": str(last.path), "step": last.step})
    if last is None:
        raise StageError(f"rl.stages[{index}].curriculum: '{st.curriculum.plugin}' selected nothing to train on")
    _finish_training(ctx, last)
    ctx.counts.update(rounds=len([d for d in decisions if "items" in d]), pool=len(pool))


def _end_reason(ctx: StageContext, curriculum: Any, plugin: str) -> str | None:
    """Why the curriculum ended the stage: its ``end_reason`` attribute, or the ``end`` note it wrote."""
    reason = getattr(curriculum, "end_reason", None)
    if reason is None:
        note = ctx.notes.get(plugin, {})
        reason = note.get("end", {}).get("reason") if isinstance(note, dict) else None
    return reason


# ---------------------------------------------------------------- evaluation

def _announced(stage_dir: Path) -> list[dict[str, Any]]:
    """The checkpoints a training stage announced, in order, without repeats, that still exist."""
    path = stage_dir / "checkpoints" / ANNOUNCED
    seen: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                if Path(rec["path"]).is_dir():
                    seen[rec["path"]] = rec
    return list(seen.values())


def eval_targets(ctx: StageContext) -> list[EvalTarget]:
    """The base model and every checkpoint of every training stage (or each stage's last one)."""
    run, recipe = ctx.run, ctx.run.loaded.recipe
    base = json.loads((run.run_dir / "model" / "model.json").read_text(encoding="utf-8"))
    targets = [EvalTarget(label=recipe.model, path=base["path"], run=run.name, stage="base", stage_index=0,
                          step=0, final=True)]
    for index, stage in enumerate(ctx.config["stages"], start=1):
        folder = run.run_dir / stage
        final = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        announced = _announced(folder)
        final_step = final.get("step")
        last_final = max((i for i, r in enumerate(announced) if r.get("step") == final_step), default=None)
        if recipe.eval.checkpoints == "final" or last_final is None:  # type: ignore[union-attr]
            announced, last_final = [{"path": final["path"], "step": final_step}], 0
        for i, rec in enumerate(announced):
            step = rec.get("step")
            label = f"{run.name}/{stage}" + ("" if i == last_final else f"@{step}")
            targets.append(EvalTarget(label=label, path=rec["path"], run=run.name, stage=stage,
                                      stage_index=index, step=step, final=i == last_final))
    return targets


def run_eval(ctx: StageContext) -> None:
    """Evaluate the base model and every checkpoint on the recipe's benchmarks (Inspect ``eval_set``)."""
    ev = ctx.run.loaded.recipe.eval
    assert ev is not None
    makers: list[TaskMaker] = []
    for i, spec in enumerate(ev.benchmarks):
        bench = ctx.run.build("benchmarks", f"eval.benchmarks[{i}]", spec)
        makers += benchmark_makers(bench, spec.plugin, ctx.config["data_dir"], ctx.run.run_dir, log=ctx.log)
    targets = eval_targets(ctx)
    display = "rich" if ctx.run.show_progress else "none"
    rows = evaluate(targets, makers, ctx.dir / "logs", limit=ev.limit, backend=ev.backend,
                    max_tokens=ev.max_tokens, max_connections=ev.batch_size, display=display, status=ctx.log)
    write_summary(rows, ctx.dir / "summary.json")
    print_rows(rows, ctx.run.console)
    check_rows(rows)
    ctx.run.pm.hook.eval_finished(results=rows, run=ctx.run)
    ctx.counts.update(models=len(targets), benchmarks=len(makers), logs=len(rows),
                      failed=sum(r.status != "success" for r in rows))


def run_leaderboard(ctx: StageContext) -> None:
    """Build the run's static HTML leaderboard from its evaluation logs."""
    from fleming.leaderboard import build_site

    index = build_site([ctx.run.run_dir / "eval"], ctx.dir / "site", progress=ctx.run.show_progress,
                       title=ctx.run.loaded.recipe.leaderboard.title)  # type: ignore[union-attr]
    ctx.notes["index"] = str(index)
    ctx.log(f"site: {index.resolve().as_uri()}")
