"""The resumable pipeline: stages, the run directory, and what stages and components see of a run.

The names below load on first use, so that low-level modules (``fleming.items``) can import
``fleming.pipeline.rundir`` without pulling in the stages that import them.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RunContext", "StageContext", "StageOutcome", "StageRun", "check_stage_options", "run_pipeline",
           "stage_names"]

_WHERE = {"RunContext": "context", "StageContext": "context", "StageRun": "context", "StageOutcome": "runner",
          "check_stage_options": "runner", "run_pipeline": "runner", "stage_names": "runner"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"fleming.pipeline.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'fleming.pipeline' has no attribute {name!r}")
