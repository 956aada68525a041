"""The recipe args of the built-in benchmarks: each task's ``-T`` arguments (less ``data_dir``), plus ``limit``."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

from fleming.paths import DataPath, ExistingPath


class TaskArgs(BaseModel):
    """The args every benchmark takes: ``limit`` (the first N items only, a fixed subset; the eval section's
    ``limit`` caps every benchmark), ``data_file``, ``shuffle_seed`` and ``max_tokens``."""

    model_config = ConfigDict(extra="forbid")
    limit: PositiveInt | None = None
    data_file: ExistingPath | None = None
    shuffle_seed: int | None = None
    max_tokens: PositiveInt = 1024


class PubmedqaArgs(TaskArgs):
    """PubMedQA: ``official_test`` keeps the 500-item official test split."""

    official_test: bool = False


class MedbulletsArgs(TaskArgs):
    """Medbullets: 5 options (default) or 4."""

    options: Literal[4, 5] = 5


class HeldoutArgs(TaskArgs):
    """The held-out items: a run folder (default: the current run) and whether curated items count too."""

    run_dir: DataPath | None = None
    all_items: bool = False


class SuiteArgs(BaseModel):
    """A suite's args: the first ``limit`` items of each member, and what to do with a member that has no file
    in the benchmark folder (``error``, the default, or ``skip`` it, saying so)."""

    model_config = ConfigDict(extra="forbid")
    limit: PositiveInt | None = None
    missing: Literal["error", "skip"] = "error"
