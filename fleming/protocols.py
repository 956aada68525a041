"""The contract of each component kind: what a factory registered under that kind must return.

Each is a small ``typing.Protocol``; a component need not inherit from it, only provide the methods.
``ctx`` is always a ``fleming.StageContext``: the stage's folder, seed, models, notes, progress and logging.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fleming.types import Checkpoint, QAItem, Rejected, Verdict

if TYPE_CHECKING:
    from fleming.context import StageContext
    from fleming.kg import KnowledgeGraph
    from fleming.rl_signals import SignalLog


@runtime_checkable
class DataSource(Protocol):
    """Yields curated items (a QA file) and/or provides a knowledge graph for synthesizers.

    Example::

        class MyCsv:
            def __init__(self, path: ExistingPath): self.path = path
            def items(self, ctx): yield from read_my_csv(self.path)   # QAItem or Rejected
            def graph(self, ctx): return None
    """

    def items(self, ctx: StageContext) -> Iterable[QAItem | Rejected]:
        """Yield the source's items, and a `Rejected` for every row that cannot become one."""

    def graph(self, ctx: StageContext) -> KnowledgeGraph | None:
        """Return the source's knowledge graph, or None for a plain QA source."""


@runtime_checkable
class Synthesizer(Protocol):
    """Writes new items from the knowledge graphs of the recipe's sources (keyed by source plugin name)."""

    def synthesize(self, graphs: dict[str, KnowledgeGraph], ctx: StageContext) -> Iterable[QAItem | Rejected]:
        """Yield synthesised items, and a `Rejected` for every candidate that failed its checks."""


@runtime_checkable
class Filter(Protocol):
    """Keeps or rejects items; every reject carries its reason."""

    def apply(self, items: Sequence[QAItem], ctx: StageContext) -> tuple[list[QAItem], list[Rejected]]:
        """Return (kept items, rejected rows with reasons)."""


@runtime_checkable
class Verifier(Protocol):
    """Judges items (label check) or annotates them (difficulty); returns one verdict per item.

    A verdict's `item` may carry new fields (e.g. `difficulty`); status `pass` and `flag` keep the
    item, `drop` sets it aside with the reason, `unverified` keeps it marked with the error.
    """

    def verify(self, items: Sequence[QAItem], ctx: StageContext) -> list[Verdict]:
        """Return one verdict per item, in order."""


@runtime_checkable
class Teacher(Protocol):
    """Writes a chain of thought for items whose answer is known (the cold-start data)."""

    def explain(self, items: Sequence[QAItem], ctx: StageContext) -> Iterable[QAItem | Rejected]:
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
    """What a curriculum hands the trainer for one round.

    :param items: the round's prompts.
    :param rollouts: completions per prompt; None keeps the stage's ``rollouts`` (``ctx.rollouts``).
    :param reason: why these items, recorded in the stage's manifest.
    :param ordered: the trainer must train on ``items`` in this order, not shuffle them.
    :param stats: the numbers behind the choice, charted at the round's start (``fleming.rl_signals``):
        ``mined`` (a mined hard set's size), ``sparse_threshold`` (the zero-variance share that ends the stage).
    """

    items: Sequence[QAItem]
    rollouts: int | None = None
    reason: str = ""
    ordered: bool = False
    stats: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Curriculum(Protocol):
    """Chooses what an RL stage trains on, round by round, and when a round or the stage ends.

    ``ctx.start_model`` is the model the stage starts from and ``ctx.rollouts`` the stage's rollouts per prompt.
    A curriculum that ends the stage (``select`` returns None) sets ``end_reason`` first; the stage records it
    in its manifest (``notes.ended``).
    """

    end_reason: str | None

    def select(self, pool: Sequence[QAItem], round: int, last: Checkpoint | None,
               ctx: StageContext) -> Selection | None:
        """Return the next round's selection, or None to end the stage (``last``: the previous round's
        checkpoint, None in the first round)."""

    def observe(self, step: int, group_rewards: Sequence[Sequence[float]]) -> str | None:
        """See each step's rewards per rollout group; return a reason to end the round, or None."""


@dataclass(frozen=True)
class RewardSpec:
    """One of the recipe's rewards as the recipe states it, for trainers that rebuild rewards elsewhere."""

    plugin: str
    args: dict[str, Any]  # validated, JSON-ready; without ``weight``
    weight: float = 1.0


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
    reward_specs: Sequence[RewardSpec] = ()  # the same rewards as plugin name, args and weight
    curriculum: Curriculum | None = None
    rollouts: int = 1
    max_steps: int | None = None
    announce: Callable[[Checkpoint], None] = lambda c: None
    notes: dict[str, Any] = field(default_factory=dict)
    ordered: bool = False  # True: train on `items` in the given order (the selection's `ordered`)
    signals: SignalLog | None = None  # GRPO: record each step's signals here (`SignalLog.step`, `rewind`)


@runtime_checkable
class Trainer(Protocol):
    """Fine-tunes a model; resumes from the newest checkpoint in `job.output_dir` when there is one."""

    def train(self, job: TrainJob, ctx: StageContext) -> Checkpoint:
        """Run the job, announce every checkpoint through `job.announce`, return the final one."""


@runtime_checkable
class Benchmark(Protocol):
    """An evaluation benchmark: builds an Inspect task, shown everywhere by the name it is registered under.

    fleming runs the task with the model, a ``fleming`` tag in the log's metadata, the eval section's
    ``limit`` (first items) and its generation settings (``max_tokens``), given as Inspect's eval-level
    ``GenerateConfig`` so they override the task's own config. ``fleming.tasks.mcq_task`` builds fleming's
    multiple-choice task over any items. Optional members, asked for when present:

    * ``name: str``: the name to show instead of the registered one (an alias shows what it stands for);
    * ``members: list[str]``: the component is a suite of these benchmark names (``task`` is never called;
      with ``missing = "skip"`` a member whose ``missing_data`` reports a problem is left out, saying so);
    * ``member_args: dict[str, Any]``: a suite's args for every member it builds (``med9``'s ``permutations``);
    * ``missing_data(data_dir: Path | None) -> list[str]``: what a run would lack or fetch, given the benchmark
      folder (None: none set), one line each, empty when all is local; ``--dry-run`` and preflight print it;
    * a ``run_dir: Path | None`` parameter of ``task``: the run's folder is passed (a run's own items).

    Example::

        class Probe:
            def task(self, data_dir, limit):
                return mcq_task(ITEMS, name="acme-probe")
    """

    def task(self, data_dir: Path | None, limit: int | None) -> Any:
        """Return an ``inspect_ai.Task`` over the benchmark's items (the first `limit` of them when set)."""


@runtime_checkable
class Engine(Protocol):
    """Samples completions from a model: the one generation layer the stages that sample go through.

    ``prompts`` are chat messages (``{"role": "system" | "user", "content": ...}`` dicts, as
    ``fleming.formats.chat_messages`` builds them). ``generate`` returns ``n`` completions per prompt, in the
    prompts' order; temperature 0 is greedy (the ``n`` copies are then identical); the same seed and inputs
    give the same samples on the same machine. ``load`` takes new weights from a HF model folder (what RL
    calls after an update). The factory stays cheap: the model loads on ``load`` or on the first ``generate``.
    Optional: a static (or class) method ``unavailable()`` on the factory returns one line saying why the engine
    cannot run on this machine (not installed, no GPU), or None when it can (`ReportsUnavailable`); ``auto``
    passes over such an engine and preflight warns when a recipe names it. Without it an engine counts as
    always available.

    Example::

        class Echo:
            def load(self, model_path): self.model = model_path
            def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, seed=0):
                return [[p[-1]["content"][:max_tokens]] * n for p in prompts]
    """

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        """Return `n` completions for each prompt, in order (at most `max_tokens` new tokens each)."""

    def load(self, model_path: str) -> None:
        """Take the weights (and tokenizer) of the HF model folder `model_path`."""


# ---------------------------------------------------------------- optional methods (any kind)
# A component may also provide any of these; `fleming run --dry-run` and its preflight warnings ask every
# component of a recipe through them, so a third-party component is checked exactly as a built-in one.

@dataclass(frozen=True)
class Requirement:
    """A package a component needs at run time: its import name, what it is needed for, how to install it."""

    module: str
    why: str
    install: str


@dataclass(frozen=True)
class PlannedCommand:
    """A command a trainer would launch for a job (shown by ``--dry-run``, never run).

    ``check`` names what the command was checked with (e.g. the backend's own argument parser), ``checked``
    says whether that check ran and accepted it, ``problem`` is its objection when it refused it, and
    ``note`` is anything a reader should know (e.g. that its data paths are where an export would write).
    """

    label: str
    argv: list[str]
    check: str = ""
    checked: bool = False
    problem: str | None = None
    note: str = ""


@runtime_checkable
class HasRequirements(Protocol):
    """A component that names the packages it needs (preflight warns about each one not installed)."""

    def requirements(self) -> list[Requirement]:
        """Return the packages this component, with its args, needs at run time (never import them here)."""


@runtime_checkable
class HasPreflight(Protocol):
    """A component that checks the environment a real run needs (a cluster address, a service, a file)."""

    def preflight(self) -> list[str]:
        """Return one-line warnings about what is missing here; look, never call out or change anything."""


@runtime_checkable
class PlansCommands(Protocol):
    """A trainer that launches external commands and can say which ones without running them."""

    def planned_commands(self, job: TrainJob) -> list[PlannedCommand]:
        """Return the commands `job` would launch; export, write and run nothing."""


@runtime_checkable
class ReportsUnavailable(Protocol):
    """An engine factory that can say why it cannot run here (``fleming.engines.unavailable`` asks it)."""

    @staticmethod
    def unavailable() -> str | None:
        """Return one line saying why the engine cannot run on this machine, or None when it can; look (find a
        package, a device), never load a model."""


OPTIONAL: tuple[type, ...] = (HasRequirements, HasPreflight, PlansCommands, ReportsUnavailable)
"""The optional-method protocols (each method is documented in the README)."""
