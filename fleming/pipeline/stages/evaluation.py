"""The evaluation stages: evaluate the base model and every checkpoint, then build the leaderboard site."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleming.context import ANNOUNCED
from fleming.benchmarks import TaskMaker, benchmark_makers, component_builder
from fleming.evaluation import EvalTarget, check_rows, evaluate, print_rows, write_summary
from fleming.pipeline.context import StageRun


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


def eval_targets(s: StageRun) -> list[EvalTarget]:
    """The base model and every checkpoint of every training stage (or each stage's last one)."""
    run, recipe = s.run, s.recipe
    base = json.loads((run.run_dir / "model" / "model.json").read_text(encoding="utf-8"))
    targets = [EvalTarget(label=recipe.model, path=base["path"], run=run.name, stage="base", stage_index=0,
                          step=0, final=True)]
    for index, stage in enumerate(s.config["stages"], start=1):
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


def _drop_unfinished_logs(folder: Path, log: Any) -> None:
    """Delete logs a killed run left in status ``started`` (the run lock rules out a live writer), so they do
    not sit beside the rerun's logs as failures."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    if not folder.is_dir():
        return
    for info in list_eval_logs(str(folder)):
        try:
            started = read_eval_log(info, header_only=True).status == "started"
        except Exception:  # an unreadable log from a kill mid-write is as dead
            started = True
        if started:
            path = Path(info.name.removeprefix("file://"))
            path.unlink(missing_ok=True)
            log(f"removed the unfinished log {path.name} of an interrupted run")


def run_eval(s: StageRun) -> None:
    """Evaluate the base model and every checkpoint on the recipe's benchmarks (Inspect ``eval_set``), answered
    by the eval section's engine, else the run's (``fleming run --engine`` overrides both)."""
    ctx = s.ctx
    ev = s.recipe.eval
    assert ev is not None
    makers: list[TaskMaker] = []
    members = component_builder(s.run.registry, s.run.loaded.base_dir)
    for i, spec in enumerate(ev.benchmarks):
        bench = s.run.build("benchmarks", f"eval.benchmarks[{i}]", spec)
        makers += benchmark_makers(bench, spec.plugin, s.config["data_dir"], s.run.run_dir, log=ctx.log,
                                   build=members)
    targets = eval_targets(s)
    _drop_unfinished_logs(ctx.dir / "logs", ctx.log)
    display = "rich" if s.run.show_progress else "none"
    s.engine = s.run.use_engine(ev.engine, "eval.engine", ctx.log)  # its own, else the run's; --engine first
    rows = evaluate(targets, makers, ctx.dir / "logs", limit=ev.limit, engine=s.engine,
                    max_tokens=ev.max_tokens, max_connections=ev.batch_size, display=display, status=ctx.log)
    write_summary(rows, ctx.dir / "summary.json")
    print_rows(rows, s.run.console)
    check_rows(rows)
    s.run.pm.hook.eval_finished(results=rows, run=s.run.info)
    ctx.counts.update(models=len(targets), benchmarks=len(makers), logs=len(rows),
                      failed=sum(r.status != "success" for r in rows))


def run_leaderboard(s: StageRun) -> None:
    """Build the run's static HTML leaderboard from its evaluation logs."""
    from fleming.leaderboard import build_site

    ctx = s.ctx
    index = build_site([s.run.run_dir / "eval"], ctx.dir / "site", progress=s.run.show_progress,
                       title=s.recipe.leaderboard.title)  # type: ignore[union-attr]
    ctx.notes["index"] = str(index)
    ctx.log(f"site: {index.resolve().as_uri()}")
