"""Evaluate models and checkpoints on benchmarks with Inspect's ``eval_set``.

One ``EvalTarget`` is a model to evaluate (the base model, or one checkpoint of one stage of a run); each
target × benchmark becomes one Inspect task whose log is tagged in ``eval.metadata["fleming"]`` with the run,
stage, step, display label and the generation engine (every local checkpoint reads ``fleming/<label>`` to
Inspect, fleming's provider that answers through a generation engine, see ``fleming.inspect_engine``; so the
tag, not the model name, says which checkpoint a log belongs to). ``eval_set`` skips work whose log already
succeeded, so a re-run evaluates only the new checkpoints.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleming.benchmarks import TaskMaker, first_items
from fleming.data_pins import data_changes, earlier_pins
from fleming.engines import EngineChoice, resolve
from fleming.errors import RecipeError, StageError
from fleming.eval_rows import (HEADLINE, MEASURES, EvalRow, finite_number, headline_metrics, print_rows,
                               read_summary, row_from_log, write_summary)

__all__ = ["DEFAULT_BATCH_SIZE", "EvalRow", "EvalTarget", "HEADLINE", "MEASURES", "build_tasks", "check_rows",
           "evaluate", "finite_number", "generation", "headline_metrics", "inspect_model", "print_rows",
           "read_summary", "row_from_log", "write_summary"]

DEFAULT_BATCH_SIZE = 32
"""Requests per engine call of the ``fleming/<label>`` provider, unless its ``batch_size`` model arg says."""


@dataclass(frozen=True)
class EvalTarget:
    """A model to evaluate: where it is, and what it is in its run (stage order, step, last of its stage)."""

    label: str
    path: str
    run: str | None = None
    stage: str | None = None
    stage_index: int = 0
    step: int | None = None
    final: bool = True

    def tag(self) -> dict[str, Any]:
        """Return the ``eval.metadata["fleming"]`` record of this target's logs."""
        return {"run": self.run, "stage": self.stage, "stage_index": self.stage_index, "step": self.step,
                "final": self.final, "model": self.label, "model_path": self.path}


def inspect_model(target: EvalTarget, engine: EngineChoice | None = None, **model_args: Any) -> Any:
    """Return the Inspect model for a target: ``fleming/<label>``, answered by `engine` (None: auto) with the
    target's weights; `model_args` may set the provider's ``batch_size``."""
    from inspect_ai.model import get_model  # finds fleming/<label> through the inspect_ai entry point

    clash = sorted(set(model_args) & {"model_path", "engine", "engine_args"})
    if clash:
        raise RecipeError(f"model args {', '.join(clash)}: the model and its engine are set by the target and "
                          "the engine choice, not by model args")
    choice = resolve(engine or EngineChoice())[0]
    name = f"fleming/{target.label}"
    _register_info(name, target.path)
    return get_model(name, **{**model_args, "model_path": target.path, "engine": choice.name,
                              **({"engine_args": dict(choice.args)} if choice.args else {})})


def _register_info(name: str, path: str) -> None:
    """Tell Inspect the model's context length under its name (``fleming/<label>``, ``hf/<label>``). Without
    this, Inspect's usage reporting looks the name up by instantiating the provider again without
    ``model_path`` (for ``hf/<label>``: a hub download of the label, retried for ~20 s offline)."""
    from inspect_ai.model import ModelInfo, set_model_info

    context = None
    config = Path(path) / "config.json"
    if config.exists():
        context = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
    set_model_info(name, ModelInfo(model=name, context_length=context))


def build_tasks(targets: Sequence[EvalTarget], makers: Sequence[TaskMaker], engine: EngineChoice | None = None,
                model_args: Mapping[str, Any] | None = None, limit: int | None = None) -> list[Any]:
    """Return one Inspect task per target × benchmark, each with its model and its ``fleming`` tag
    (``benchmark``: the name the benchmark is shown by; ``engine``: the concrete engine and its args);
    ``limit`` keeps the first items."""
    from inspect_ai import task_with

    choice = resolve(engine or EngineChoice())[0]
    tasks = []
    for target in targets:
        model = inspect_model(target, choice, **dict(model_args or {}))
        for name, make in makers:
            task = _length_sorted(make(), limit)
            metadata = {**(task.metadata or {}),
                        "fleming": {**target.tag(), "benchmark": name, "engine": choice.record()}}
            tasks.append(task_with(task, model=model, metadata=metadata))
    return tasks


def generation(config: Any = None, max_tokens: int | None = None) -> dict[str, Any]:
    """Return the eval-level generation settings (a ``GenerateConfig`` or a mapping of its fields, and
    `max_tokens`, which wins) as Inspect ``eval`` keyword arguments: they override every task's own config,
    so a plain-Inspect benchmark honours them without knowing fleming."""
    from inspect_ai.model import GenerateConfig

    base = config if isinstance(config, GenerateConfig) else GenerateConfig(**dict(config or {}))
    if max_tokens is not None:
        base = base.merge(GenerateConfig(max_tokens=max_tokens))
    return base.model_dump(exclude_none=True)


def _length_sorted(task: Any, limit: int | None) -> Any:
    """Keep the first `limit` items (all the option orders of each), in order of prompt length: the provider
    gathers concurrent requests into engine batches, and a batch of similar lengths wastes less work on padding
    (lm-eval sorts the same way)."""
    from inspect_ai import task_with
    from inspect_ai.dataset import MemoryDataset

    samples = list(first_items(task, limit).dataset if limit else task.dataset)
    samples.sort(key=lambda s: len(s.input) if isinstance(s.input, str) else sum(len(m.text) for m in s.input))
    return task_with(task, dataset=MemoryDataset(samples, name=task.dataset.name, location=task.dataset.location))


def evaluate(targets: Sequence[EvalTarget], makers: Sequence[TaskMaker], log_dir: Path, *,
             limit: int | None = None, engine: EngineChoice | None = None,
             model_args: Mapping[str, Any] | None = None, max_tokens: int | None = None,
             generate_config: Any = None, max_connections: int | None = None, display: str = "rich",
             status: Callable[[str], None] | None = None, max_tasks: int | None = None) -> list[EvalRow]:
    """Run every target on every benchmark (skipping logs that already succeeded) and return the rows.

    `engine` (None: auto, resolved once through ``fleming.engines.resolve``) answers every target through the
    ``fleming/<label>`` provider; each row's ``tag["engine"]`` names the concrete engine and its args. One
    Inspect ``eval_set`` per model, in order, into the same log folder, so only one model's weights are
    loaded at a time and two models never share an engine's batches. The batch size is ``model_args``'
    ``batch_size``, else `max_connections`, else 32; Inspect keeps two batches' worth of requests in flight
    (or `max_connections`, when both are given), so the next batch gathers while the engine works. A model's
    benchmarks run one after another (``max_tasks``, default 1): a batch is padded to its longest prompt, so
    mixing a benchmark of long prompts into the batches of one with short ones costs more than the small
    batches it saves. `generate_config` (an Inspect ``GenerateConfig`` or a mapping) and `max_tokens` reach
    every benchmark through Inspect's eval-level generation settings. A benchmark whose data file differs from
    the one the folder's latest earlier log of it used is reported in one line (``fleming.data_pins``)."""
    from inspect_ai import eval_set

    if not targets or not makers:
        return []
    choice, note = resolve(engine or EngineChoice())
    args = dict(model_args or {})
    batch = int(args.get("batch_size") or max_connections or DEFAULT_BATCH_SIZE)
    connections = max_connections if max_connections and args.get("batch_size") else 2 * batch
    args["batch_size"] = batch
    log_dir.mkdir(parents=True, exist_ok=True)
    if status:
        if note:
            status(note)
        status(f"evaluating {len(targets)} model(s) on {len(makers)} benchmark(s)"
               + (f", first {limit} items each" if limit else "")
               + f" with engine {_engine_text(choice)}; logs in {log_dir}")
    rows: list[EvalRow] = []
    earlier, said = earlier_pins(log_dir), set[str]()
    for target in targets:
        tasks = build_tasks([target], makers, engine=choice, model_args=args, limit=limit)
        for line in data_changes(tasks, earlier):
            if line not in said:
                said.add(line)
                (status or _warn)(line)
        try:
            _, logs = eval_set(tasks, log_dir=str(log_dir), max_tasks=max_tasks or 1,
                               display=display,  # type: ignore[arg-type]
                               retry_attempts=1, log_dir_allow_dirty=True, fail_on_error=0.5,
                               **{**generation(generate_config, max_tokens),
                                  "max_connections": connections})
        finally:
            tasks[0].model.api.close()  # frees the engine's weights before the next model loads
        if len(logs) < len(tasks) or any(log.status == "cancelled" for log in logs):
            raise KeyboardInterrupt  # Ctrl-C: Inspect cancels the eval set and returns without the lost logs
        rows += [row_from_log(log) for log in logs]
    return rows


def _warn(line: str) -> None:
    """Print a one-line notice on stderr (when `evaluate` has no status callback)."""
    print(line, file=sys.stderr)


def _engine_text(choice: EngineChoice) -> str:
    args = ", ".join(f"{k}={v}" for k, v in sorted(choice.args.items()))
    return f"{choice.name} ({args})" if args else choice.name


def check_rows(rows: Sequence[EvalRow]) -> None:
    """Raise a one-line StageError if every evaluation failed (some failures are reported, not raised)."""
    if rows and all(r.status != "success" for r in rows):
        first = rows[0]
        raise StageError(f"evaluation failed for every task; first: {first.label} on {first.benchmark}: "
                         f"{' '.join((first.error or first.status).split())[:300]}")
