"""The recipe args of the built-in benchmarks: each task's ``-T`` arguments (less ``data_dir``), plus ``limit``."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

from fleming.paths import DataPath, ExistingPath


class TaskArgs(BaseModel):
    """The args every benchmark takes: ``limit`` (the first N items only, a fixed subset; the eval section's
    ``limit`` caps every benchmark), ``data_file``, ``shuffle_seed`` and ``max_tokens``; and how answers are
    scored beyond the letter: ``permutations`` (K cyclic rotations of the options), ``audit`` (the KG reasoning
    audit; None: on where every item has KG provenance), ``reasoning_alone`` (ask ``judge``, default the
    evaluated model, to answer from the reasoning with its conclusion cut)."""

    model_config = ConfigDict(extra="forbid")
    limit: PositiveInt | None = None
    data_file: ExistingPath | None = None
    shuffle_seed: int | None = None
    max_tokens: PositiveInt = 1024
    permutations: PositiveInt = 1
    audit: bool | None = None
    reasoning_alone: bool = False
    judge: str | None = None


class PubmedqaArgs(TaskArgs):
    """PubMedQA: ``official_test`` keeps the 500-item official test split."""

    official_test: bool = False


class MedbulletsArgs(TaskArgs):
    """Medbullets: 5 options (default) or 4."""

    options: Literal[4, 5] = 5


class RunItemsArgs(TaskArgs):
    """A run's held-out items: a run folder (default: the current run) and whether curated items count too."""

    run_dir: DataPath | None = None
    all_items: bool = False


class HeldoutArgs(RunItemsArgs):
    """``kg_heldout``: also which split of the run (``unseen``, the default; ``known``; ``dev``)."""

    split: Literal["unseen", "known", "dev"] = "unseen"


class SuiteArgs(BaseModel):
    """A suite's args: the first ``limit`` items of each member, what to do with a member that has no file
    in the benchmark folder (``error``, the default, or ``skip`` it, saying so), and ``permutations`` for every
    member (an item with fewer options is asked under all of its orders)."""

    model_config = ConfigDict(extra="forbid")
    limit: PositiveInt | None = None
    missing: Literal["error", "skip"] = "error"
    permutations: PositiveInt = 1
