"""Inspect tasks for the medical benchmarks, one module per benchmark, registered as ``fleming/<name>``.

``inspect eval fleming/medqa --model ... -T data_dir=DIR`` runs one benchmark (Inspect finds the tasks through
the ``inspect_ai`` entry point); in Python, ``load_task("medqa", data_dir=...)`` builds it. Every task takes
``data_dir`` (a folder of uniform JSONL; default ``$FLEMING_DATA_DIR``, else the benchmark's hub copy),
``data_file`` (one file instead), ``shuffle_seed`` (shuffle sample order and re-letter options; none by
default) and ``max_tokens`` (default 1024). Importing this package is cheap: Inspect loads only in `load_task`.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import Any

from fleming.errors import RecipeError
from fleming.suggest import did_you_mean

__all__ = ["BENCHMARKS", "SUITES", "ALIASES", "expand_benchmarks", "load_task", "task_function"]

BENCHMARKS: dict[str, str] = {
    name: f"fleming.tasks.{name}:{name}"
    for name in ("medxpertqa", "medqa", "medmcqa", "mmlu_pro_biology", "mmlu_pro_health", "careqa", "jmed",
                 "pubmedqa", "medbullets", "kg_heldout")
}
"""Benchmark name -> ``module:function`` of its Inspect task."""

SUITES: dict[str, list[str]] = {
    "med9": ["medxpertqa", "medqa", "medmcqa", "mmlu_pro_biology", "mmlu_pro_health", "careqa", "jmed",
             "pubmedqa", "medbullets"],
}
"""Suite name -> its benchmarks, in the paper's order."""

ALIASES: dict[str, str] = {"kg-heldout": "kg_heldout"}


def _canonical(name: str) -> str:
    key = name.strip()
    key = ALIASES.get(key, key).lower().replace("-", "_")
    if key in BENCHMARKS or key in SUITES:
        return key
    raise RecipeError(f"unknown benchmark '{name.strip()}'" + did_you_mean(key, [*BENCHMARKS, *SUITES, *ALIASES]))


def expand_benchmarks(spec: str | Sequence[str]) -> list[str]:
    """Return the benchmark names in `spec` (comma-separated and/or a list), suites expanded, duplicates dropped."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for part in parts:
        for raw in str(part).split(","):
            if not raw.strip():
                continue
            key = _canonical(raw)
            for name in SUITES.get(key, [key]):
                if name not in names:
                    names.append(name)
    if not names:
        raise RecipeError(f"no benchmarks given (known: {', '.join([*SUITES, *BENCHMARKS])})")
    return names


def task_function(name: str) -> Any:
    """Return the ``@task`` function of benchmark `name` (imports Inspect and the benchmark's module)."""
    key = _canonical(name)
    if key in SUITES:
        raise RecipeError(f"'{name}' is a suite, not one benchmark: expand it with expand_benchmarks()")
    module, _, attr = BENCHMARKS[key].partition(":")
    return getattr(importlib.import_module(module), attr)


def load_task(name: str, data_dir: Any = None, **task_args: Any) -> Any:
    """Return the ``inspect_ai.Task`` of benchmark `name`; `task_args` are the task's ``-T`` arguments."""
    fn = task_function(name)
    params = inspect.signature(fn).parameters
    for key in task_args:
        if key not in params:
            known = [p for p in params if p != "data_dir"]
            raise RecipeError(f"{name}: unknown task argument '{key}'" + did_you_mean(key, known))
    return fn(data_dir=None if data_dir is None else str(data_dir), **task_args)
