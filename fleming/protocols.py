"""The contract of each component kind: what a factory registered under that kind must return.

Each is a small ``typing.Protocol``; a component need not inherit from it, only provide the methods.
``ctx`` is always a ``fleming.pipeline.StageContext`` (folder, seed, progress bars, logging).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fleming.types import Checkpoint, QAItem, Rejected, Verdict


@runtime_checkable
class DataSource(Protocol):
    """Yields curated items (a QA file) and/or provides a knowledge graph for synthesizers.

    Example::

        class MyCsv:
            def __init__(self, path: ExistingPath): self.path = path
            def items(self, ctx): yield from read_my_csv(self.path)   # QAItem or Rejected
            def graph(self, ctx): return None
    """

    def items(self, ctx: Any) -> Iterable[QAItem | Rejected]:
        """Yield the source's items, and a `Rejected` for every row that cannot become one."""

    def graph(self, ctx: Any) -> Any | None:
        """Return the source's knowledge graph, or None for a plain QA source."""


@runtime_checkable
class Synthesizer(Protocol):
    """Writes new items from the knowledge graphs of the recipe's sources (keyed by source plugin name)."""

    def synthesize(self, graphs: dict[str, Any], ctx: Any) -> Iterable[QAItem | Rejected]:
        """Yield synthesised items, and a `Rejected` for every candidate that failed its checks."""


@runtime_checkable
class Filter(Protocol):
    """Keeps or rejects items; every reject carries its reason."""

    def apply(self, items: Sequence[QAItem], ctx: Any) -> tuple[list[QAItem], list[Rejected]]:
        """Return (kept items, rejected rows with reasons)."""


@runtime_checkable
class Verifier(Protocol):
    """Judges items (label check) or annotates them (difficulty); returns one verdict per item.

    A verdict's `item` may carry new fields (e.g. `difficulty`); status `pass` and `flag` keep the
    item, `drop` sets it aside with the reason, `unverified` keeps it marked with the error.
    """

    def verify(self, items: Sequence[QAItem], ctx: Any) -> list[Verdict]:
        """Return one verdict per item, in order."""


@runtime_checkable
class Teacher(Protocol):
    """Writes a chain of thought for items whose answer is known (the cold-start data)."""

    def explain(self, items: Sequence[QAItem], ctx: Any) -> Iterable[QAItem | Rejected]:
        """Yield items with `rationale` set (ending in ``<answer>X</answer>``), or a `Rejected`."""


@runtime_checkable
class Reward(Protocol):
    """Scores completions, like a TRL reward function: one float (or None: not applicable) each.

    The recipe's ``weight`` arg is taken by fleming (default 1.0), not passed to the factory.

    Example::

        class Brevity:
            def __call__(self, completions, items, **kwargs):
                return [1.0 if len(c) < 400 else 0.0 for c in completions]
    """

    def __call__(self, completions: Sequence[str], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        """Return one reward per completion (`items[i]` is the item completion `i` answers)."""


@dataclass(frozen=True)
class Selection:
    """What a curriculum hands the trainer for one round: the prompts and the rollouts per prompt."""

    items: Sequence[QAItem]
    rollouts: int | None = None
    reason: str = ""


@runtime_checkable
class Curriculum(Protocol):
    """Chooses what an RL stage trains on, round by round, and when a round or the stage ends."""

    def select(self, pool: Sequence[QAItem], round: int, last: Checkpoint | None, ctx: Any) -> Selection | None:
        """Return the next round's selection, or None to end the stage."""

    def observe(self, step: int, group_rewards: Sequence[Sequence[float]]) -> str | None:
        """See each step's rewards per rollout group; return a reason to end the round, or None."""


@dataclass
class TrainJob:
    """Everything a trainer needs for one cold-start fine-tune or one RL round."""

    kind: str  # "sft" or "grpo"
    model_path: str
    items: Sequence[QAItem]
    output_dir: Path
    seed: int
    stage: str
    rewards: Sequence[tuple[Reward, float]] = ()
    curriculum: Curriculum | None = None
    rollouts: int = 1
    max_steps: int | None = None
    announce: Callable[[Checkpoint], None] = lambda c: None
    notes: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Trainer(Protocol):
    """Fine-tunes a model; resumes from the newest checkpoint in `job.output_dir` when there is one."""

    def train(self, job: TrainJob, ctx: Any) -> Checkpoint:
        """Run the job, announce every checkpoint through `job.announce`, return the final one."""


@runtime_checkable
class Benchmark(Protocol):
    """An evaluation benchmark: builds an Inspect task."""

    def task(self, data_dir: Path | None, limit: int | None) -> Any:
        """Return an ``inspect_ai.Task`` over the benchmark's items."""
