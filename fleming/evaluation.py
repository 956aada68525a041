"""Evaluate models and checkpoints on benchmarks with Inspect's ``eval_set``.

One ``EvalTarget`` is a model to evaluate (the base model, or one checkpoint of one stage of a run); each
target × benchmark becomes one Inspect task whose log is tagged in ``eval.metadata["fleming"]`` with the run,
stage, step and display label (every local checkpoint reads ``hf/<label>`` to Inspect, so the tag, not the
model name, says which checkpoint a log belongs to). ``eval_set`` skips work whose log already succeeded,
so a re-run evaluates only the new checkpoints.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fleming.benchmarks import TaskMaker
from fleming.errors import MissingDependencyError, StageError

Backend = Literal["hf", "vllm"]


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


@dataclass(frozen=True)
class EvalRow:
    """One finished (or failed) target × benchmark evaluation."""

    label: str
    benchmark: str
    status: str
    samples: int
    strict: float | None
    strict_stderr: float | None
    lenient: float | None
    lenient_stderr: float | None
    no_answer: float | None
    log: str
    tag: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def inspect_model(target: EvalTarget, backend: Backend = "hf", **model_args: Any) -> Any:
    """Return the Inspect model for a target: ``hf/<label>`` (greedy, batched) or ``vllm/<path>``."""
    from inspect_ai.model import get_model

    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("the vllm evaluation backend needs vLLM: "
                                         "pip install 'fleming-med[vllm]' (GPU machines)") from exc
        return get_model(f"vllm/{target.path}", **model_args)
    args = {"model_path": target.path, "do_sample": False, **model_args}
    if "device" not in args:
        args["device"] = _default_device()
    _register_info(f"hf/{target.label}", target.path)
    return get_model(f"hf/{target.label}", **args)


def _register_info(name: str, path: str) -> None:
    """Tell Inspect the model's context length under its ``hf/<label>`` name. Without this, Inspect's usage
    reporting looks the name up by instantiating ``hf/<label>`` again, without ``model_path``: a hub
    download of the label (retried for ~20 s offline) or a second copy of the weights."""
    from inspect_ai.model import ModelInfo, set_model_info

    context = None
    config = Path(path) / "config.json"
    if config.exists():
        context = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
    set_model_info(name, ModelInfo(model=name, context_length=context))


def _default_device() -> str:
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def build_tasks(targets: Sequence[EvalTarget], makers: Sequence[TaskMaker], backend: Backend = "hf",
                model_args: Mapping[str, Any] | None = None, limit: int | None = None) -> list[Any]:
    """Return one Inspect task per target × benchmark, each with its model and its ``fleming`` tag
    (``benchmark``: the name the benchmark is shown by); ``limit`` keeps the first items."""
    from inspect_ai import task_with

    tasks = []
    for target in targets:
        model = inspect_model(target, backend, **dict(model_args or {}))
        for name, make in makers:
            task = _length_sorted(make(), limit) if backend == "hf" else make()
            metadata = {**(task.metadata or {}), "fleming": {**target.tag(), "benchmark": name}}
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
    """Keep the first `limit` samples, in order of prompt length: the hf provider generates queued requests in
    batches, and a batch of similar lengths wastes less work on padding (lm-eval sorts the same way)."""
    from inspect_ai import task_with
    from inspect_ai.dataset import MemoryDataset

    samples = list(task.dataset)[:limit] if limit else list(task.dataset)
    samples.sort(key=lambda s: len(s.input) if isinstance(s.input, str) else sum(len(m.text) for m in s.input))
    return task_with(task, dataset=MemoryDataset(samples, name=task.dataset.name, location=task.dataset.location))


def evaluate(targets: Sequence[EvalTarget], makers: Sequence[TaskMaker], log_dir: Path, *,
             limit: int | None = None, backend: Backend = "hf", model_args: Mapping[str, Any] | None = None,
             max_tokens: int | None = None, generate_config: Any = None, max_connections: int | None = None,
             display: str = "rich", status: Callable[[str], None] | None = None,
             max_tasks: int | None = None) -> list[EvalRow]:
    """Run every target on every benchmark (skipping logs that already succeeded) and return the rows.

    One Inspect ``eval_set`` per model, in order, into the same log folder, so only one model's weights are
    loaded at a time and two models never share the hf provider's batches. A model's benchmarks run one after
    another (``max_tasks``, default 1): the provider pads a batch to its longest prompt, so mixing a benchmark
    of long prompts into the batches of one with short ones costs more than the small batches it saves.
    `generate_config` (an Inspect ``GenerateConfig`` or a mapping) and `max_tokens` reach every benchmark
    through Inspect's eval-level generation settings."""
    from inspect_ai import eval_set

    if not targets or not makers:
        return []
    log_dir.mkdir(parents=True, exist_ok=True)
    if status:
        status(f"evaluating {len(targets)} model(s) on {len(makers)} benchmark(s)"
               + (f", first {limit} items each" if limit else "") + f"; logs in {log_dir}")
    rows: list[EvalRow] = []
    for target in targets:
        tasks = build_tasks([target], makers, backend=backend, model_args=model_args, limit=limit)
        _, logs = eval_set(tasks, log_dir=str(log_dir), limit=None if backend == "hf" else limit,
                           max_tasks=max_tasks or 1,
                           display=display,  # type: ignore[arg-type]
                           retry_attempts=1, log_dir_allow_dirty=True, fail_on_error=0.5,
                           **{**generation(generate_config, max_tokens),
                              **({"max_connections": max_connections} if max_connections else {})})
        if len(logs) < len(tasks) or any(log.status == "cancelled" for log in logs):
            raise KeyboardInterrupt  # Ctrl-C: Inspect cancels the eval set and returns without the lost logs
        rows += [row_from_log(log) for log in logs]
    return rows


HEADLINE = {("strict", "accuracy"): "strict", ("strict", "stderr"): "strict_stderr",
            ("lenient", "accuracy"): "lenient", ("lenient", "stderr"): "lenient_stderr",
            ("no_answer", "mean"): "no_answer"}
"""(score name, metric name) in a fleming task's log -> the field it fills in `EvalRow` and the leaderboard."""


def headline_metrics(scores: Sequence[Any]) -> dict[str, float | None]:
    """Return strict / lenient accuracy with stderr and the no-answer rate from a log's ``results.scores``
    (a missing, NaN or non-numeric value is None)."""
    out: dict[str, float | None] = dict.fromkeys(HEADLINE.values())
    for score in scores:
        for metric, value in score.metrics.items():
            field = HEADLINE.get((score.name, metric))
            if field is not None:
                out[field] = finite_number(value.value)
    return out


def finite_number(value: Any) -> float | None:
    """Return a finite float, or None for a missing / NaN / non-numeric metric value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def row_from_log(log: Any) -> EvalRow:
    """Summarise one Inspect log (header only is enough)."""
    tag = dict((log.eval.metadata or {}).get("fleming", {}))
    benchmark = tag.get("benchmark") or log.eval.task.split("/")[-1]
    samples = log.results.completed_samples if log.results else 0
    return EvalRow(label=tag.get("model") or log.eval.model, benchmark=benchmark, status=log.status,
                   samples=samples, **headline_metrics(log.results.scores if log.results else []),  # type: ignore[arg-type]
                   log=str(log.location), tag=tag, error=log.error.message if log.error else None)


def write_summary(rows: Sequence[EvalRow], path: Path) -> None:
    """Write the rows as JSON (the run's ``eval/summary.json``)."""
    from fleming.pipeline.rundir import atomic_write_json

    atomic_write_json(path, [asdict(r) for r in rows])


def check_rows(rows: Sequence[EvalRow]) -> None:
    """Raise a one-line StageError if every evaluation failed (some failures are reported, not raised)."""
    if rows and all(r.status != "success" for r in rows):
        first = rows[0]
        raise StageError(f"evaluation failed for every task; first: {first.label} on {first.benchmark}: "
                         f"{' '.join((first.error or first.status).split())[:300]}")


def _fmt(value: float | None, err: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} ± {err:.3f}" if err is not None else f"{value:.3f}"


def print_rows(rows: Sequence[EvalRow], console: Any) -> None:
    """Print strict and lenient accuracy (never mixed) per model × benchmark on a rich console."""
    from rich.table import Table

    table = Table(title="evaluation (strict = the <answer> tag; lenient = last option letter, reported apart)")
    for col in ("model", "benchmark", "n", "strict acc", "lenient acc", "no answer", "status"):
        table.add_column(col, justify="right" if col in ("n",) else "left", no_wrap=col != "model")
    for r in rows:
        table.add_row(r.label, r.benchmark, str(r.samples), _fmt(r.strict, r.strict_stderr),
                      _fmt(r.lenient, r.lenient_stderr), "—" if r.no_answer is None else f"{r.no_answer:.3f}",
                      r.status)
    console.print(table)
