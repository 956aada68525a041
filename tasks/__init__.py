"""Inspect tasks for the medical benchmarks, and the public builders for anyone else's.

``inspect eval fleming/medqa --model ... -T data_dir=DIR`` runs one benchmark (Inspect finds the tasks through
the ``inspect_ai`` entry point); in Python, ``load_task("medqa", data_dir=...)`` builds it. Every task takes
``data_dir`` (a folder of uniform JSONL; default ``$FLEMING_DATA_DIR``, else the benchmark's hub copy),
``data_file`` (one file instead), ``shuffle_seed`` (shuffle sample order and re-letter options; none by
default) and ``max_tokens`` (default 1024). `BENCHMARKS` is the one table of built-in benchmarks: the
``inspect_ai`` entry point, `load_task` and the ``benchmarks`` components are all made from it.

For other benchmarks: ``mcq_task(items, name=...)`` builds fleming's multiple-choice task (prompt, answer
parser, strict / lenient / no-answer scores) over any items, and ``offline_token_counts()`` lets
``inspect eval --model mockllm/model`` run without a network; ``first_items(task, n)`` keeps a task's first n
items (with ``permutations``, all the option orders of each). Importing this package is cheap: Inspect loads
only when a task is built.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fleming.errors import RecipeError
from fleming.suggest import did_you_mean
from fleming.tasks._args import HeldoutArgs, MedbulletsArgs, PubmedqaArgs, RunItemsArgs, SuiteArgs, TaskArgs
from fleming.tasks._subset import first_items

__all__ = ["ALIASES", "BENCHMARKS", "HELDOUT_SPLITS", "SUITES", "BuiltinBenchmark", "SuiteArgs", "expand_benchmarks",
           "first_items", "load_task", "mcq_task", "missing_data", "offline_token_counts", "task_function"]


@dataclass(frozen=True)
class BuiltinBenchmark:
    """One built-in benchmark: its ``@task`` (``module:function``), its recipe args, and whether it reads a run's
    held-out items (then it needs no benchmark folder, and the eval stage passes it the run)."""

    task: str
    args: type[BaseModel] = TaskArgs
    reads_run: bool = False


def _builtin(name: str, args: type[BaseModel] = TaskArgs, reads_run: bool = False) -> BuiltinBenchmark:
    return BuiltinBenchmark(f"fleming.tasks.{name}:{name}", args, reads_run)


BENCHMARKS: dict[str, BuiltinBenchmark] = {
    "medxpertqa": _builtin("medxpertqa"),
    "medqa": _builtin("medqa"),
    "medmcqa": _builtin("medmcqa"),
    "mmlu_pro_biology": _builtin("mmlu_pro_biology"),
    "mmlu_pro_health": _builtin("mmlu_pro_health"),
    "careqa": _builtin("careqa"),
    "jmed": _builtin("jmed"),
    "pubmedqa": _builtin("pubmedqa", PubmedqaArgs),
    "medbullets": _builtin("medbullets", MedbulletsArgs),
    "kg_heldout": _builtin("kg_heldout", HeldoutArgs, reads_run=True),
    "kg_heldout_known": BuiltinBenchmark("fleming.tasks.kg_heldout:kg_heldout_known", RunItemsArgs, True),
    "kg_dev": BuiltinBenchmark("fleming.tasks.kg_heldout:kg_dev", RunItemsArgs, True),
}
"""Benchmark name -> its task and recipe args: the one table of fleming's own benchmarks."""

SUITES: dict[str, list[str]] = {
    "med9": ["medxpertqa", "medqa", "medmcqa", "mmlu_pro_biology", "mmlu_pro_health", "careqa", "jmed",
             "pubmedqa", "medbullets"],
}
"""Suite name -> its benchmarks, in the paper's order."""

HELDOUT_SPLITS: dict[str, str] = {"unseen": "kg_heldout", "known": "kg_heldout_known", "dev": "kg_dev"}
"""A run's held-out split (``data.mix``) -> the benchmark that evaluates it (``kg_heldout -T split=``)."""

ALIASES: dict[str, str] = {"kg-heldout": "kg_heldout", "kg-heldout-known": "kg_heldout_known", "kg-dev": "kg_dev"}
"""Other spellings accepted as input; tables and logs always show the name they stand for."""


def _canonical(name: str) -> str:
    key = name.strip()
    key = ALIASES.get(key, key).lower().replace("-", "_")
    if key in BENCHMARKS or key in SUITES:
        return key
    raise RecipeError(f"unknown benchmark '{name.strip()}'" + did_you_mean(key, [*BENCHMARKS, *SUITES, *ALIASES]))


def expand_benchmarks(spec: str | Sequence[str]) -> list[str]:
    """Return fleming's own benchmark names in `spec` (comma-separated and/or a list), suites expanded,
    duplicates dropped."""
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
    module, _, attr = BENCHMARKS[key].task.partition(":")
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


def missing_data(name: str, data_dir: Path | None, options: Any = None) -> str | None:
    """Why built-in benchmark `name` has no local file in `data_dir` (one line), or None when it has one."""
    from fleming.tasks._records import missing_data as find_missing

    return find_missing(_canonical(name), data_dir, options)


def offline_token_counts() -> bool:
    """Let Inspect count tokens without a network (for ``mockllm/model`` offline); call it where a task is
    built. Nothing changes while tiktoken works; return False if this Inspect has no counter to wrap."""
    from fleming.tasks._offline import install_token_count_fallback

    return install_token_count_fallback()


def __getattr__(name: str) -> Any:
    if name == "mcq_task":  # imports Inspect: only on use
        from fleming.tasks._mcq import mcq_task

        return mcq_task
    raise AttributeError(f"module 'fleming.tasks' has no attribute {name!r}")
