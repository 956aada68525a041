"""The pipeline's stages, in order. Each reads its upstream stages' folders and writes its own.

model → collect → synthesize → filter → verify → annotate → mix → cold_start → rl-<name> ...
A stage exists in a run only when the recipe asks for it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fleming.errors import StageError
from fleming.pipeline.context import StageRun
from fleming.pipeline.stages.data import (run_annotate, run_collect, run_filter, run_mix, run_model, run_synthesize,
                                          run_verify)
from fleming.pipeline.stages.evaluation import eval_targets, run_eval, run_leaderboard
from fleming.pipeline.stages.training import run_cold_start, run_rl_stage
from fleming.recipe import Recipe

__all__ = ["Stage", "eval_targets", "plan", "run_annotate", "run_cold_start", "run_collect", "run_eval",
           "run_filter", "run_leaderboard", "run_mix", "run_model", "run_rl_stage", "run_synthesize", "run_verify"]


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its name, the stages it reads, the config that decides its fingerprint; a training
    stage also names the stage whose model it starts from and (RL) its base rollouts."""

    name: str
    inputs: tuple[str, ...]
    config: Any
    run: Callable[[StageRun], None]
    arg_paths: tuple[str, ...] = ()  # recipe field paths whose file args are part of the fingerprint
    start_from: str | None = None
    rollouts: int | None = None


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
        for unset in [k for k in ("dev_fraction", "known_fraction") if k in mix and not mix[k]]:
            del mix[unset]  # a split not asked for leaves the fingerprint of a run made before splits existed
        stages.append(Stage("mix", upstream, {"mix": mix, "seed": recipe.seed}, run_mix))
        upstream = ("mix",)
    model_from = "model"
    if recipe.cold_start:
        _need_items(upstream, "cold_start")
        stages.append(Stage("cold_start", (model_from, *upstream),
                            {**recipe.cold_start.model_dump(), "seed": recipe.seed}, run_cold_start,
                            ("cold_start.",), start_from=model_from))
        model_from = "cold_start"
    if recipe.rl:
        _need_items(upstream, "rl")
        for i, st in enumerate(recipe.rl.stages):
            cfg = {"trainer": recipe.rl.trainer.model_dump(), "rewards": _dump(recipe.rl.rewards),
                   "stage": st.model_dump(), "index": i, "seed": recipe.seed}
            stages.append(Stage(f"rl-{st.name}", (model_from, *upstream), cfg, run_rl_stage,
                                ("rl.trainer", "rl.rewards", f"rl.stages[{i}]."), start_from=model_from,
                                rollouts=st.rollouts))
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
