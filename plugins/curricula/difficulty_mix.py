"""Curriculum `difficulty-mix` (the paper's RL stage 1): an easy + moderate mix until rewards go sparse.

Each round selects the pool's items of the chosen ``difficulties`` (default easy and moderate) in the ``mix``
ratios (default: as many of each as the pool has), shuffled with the recipe's seed and the round. ``size``
caps the items per round; with ``mix`` set, the largest selection that keeps the ratios exactly is taken.
Items without a difficulty label count as ``unlabelled`` says: ``moderate`` (the default: an unannotated
pool still trains) or ``exclude``.

The stage moves on when rewards go sparse: after every step the trainer reports each rollout group's rewards;
a group with zero variance (all rollouts scored the same) teaches GRPO nothing, so when the share of such
groups is at least ``sparse_threshold`` for ``patience`` consecutive steps the round ends with that reason and
the stage ends. ``max_steps`` (over the whole stage) ends it too. A round that ends for neither reason (the
trainer finished its pass) is followed by another pass, up to ``max_rounds``.

Every decision is written to the manifest: each round's ``Selection.reason`` (counts per difficulty), and
``notes["difficulty-mix"]`` (per round: steps, zero-variance shares, why it ended); why the stage ended goes to
``end_reason``. The steps observed (each with its zero-variance share) and the stop are kept in the stage folder
(``difficulty-mix.json``) as they happen, so a round resumed after a kill ends where an uninterrupted one would.
"""
from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveInt, model_validator

from fleming import Checkpoint, QAItem, StageContext, hookimpl
from fleming.io import atomic_write_json
from fleming.protocols import Selection
from fleming.types import Difficulty

EPS = 1e-9
STATE = "difficulty-mix.json"


class DifficultyMixArgs(BaseModel):
    """The `difficulty-mix` curriculum's recipe args."""

    difficulties: list[Difficulty] = Field(default=["easy", "moderate"], min_length=1,
                                           description="difficulty labels to train on")
    mix: list[float] | None = Field(default=None, description="relative share of each difficulty (same order)")
    size: PositiveInt | None = Field(default=None, description="items per round (default: all that fit)")
    unlabelled: Literal["moderate", "exclude"] = Field(default="moderate",
                                                       description="items without a difficulty label")
    sparse_threshold: float = Field(default=0.8, gt=0, le=1,
                                    description="share of zero-variance rollout groups that counts as sparse")
    patience: PositiveInt = Field(default=3, description="consecutive sparse steps that end the stage")
    max_steps: PositiveInt | None = Field(default=None, description="steps after which the stage ends")
    max_rounds: PositiveInt = Field(default=1, description="passes over the selection at most")

    @model_validator(mode="after")
    def _mix_matches(self) -> DifficultyMixArgs:
        if self.mix is not None:
            if len(self.mix) != len(self.difficulties):
                raise ValueError(f"mix has {len(self.mix)} ratios for {len(self.difficulties)} difficulties")
            if any(r < 0 for r in self.mix) or sum(self.mix) <= 0:
                raise ValueError("mix ratios must be non-negative with a positive sum")
        return self


def zero_variance_share(group_rewards: Sequence[Sequence[float]]) -> float:
    """Return the share of rollout groups whose rewards are all the same (None counts as 0.0)."""
    if not group_rewards:
        return 1.0
    flat = [[0.0 if r is None else float(r) for r in g] for g in group_rewards]
    return sum(1 for g in flat if not g or max(g) - min(g) <= EPS) / len(flat)


class DifficultyMix:
    """Select an easy + moderate mix; end the stage when rewards go sparse (see the module docstring)."""

    Args = DifficultyMixArgs

    def __init__(self, **kwargs: Any) -> None:
        self.args = DifficultyMixArgs(**kwargs)
        self.steps = 0  # steps observed over the stage
        self.sparse_run = 0
        self.history: list[list[float]] = []  # [round, step, zero-variance share] of every step observed
        self.round = 0
        self.stop: str | None = None
        self.round_log: dict[str, Any] = {}
        self.state: Path | None = None  # where the steps seen and a stop survive a killed run (the stage folder)
        self.end_reason: str | None = None

    def select(self, pool: Sequence[QAItem], round: int, last: Checkpoint | None,
               ctx: StageContext) -> Selection | None:
        """Return the round's mix, or None once rewards went sparse, the step limit or max_rounds was hit."""
        notes = ctx.notes.setdefault("difficulty-mix", {"rounds": []})
        self.state = Path(ctx.dir) / STATE
        if not self.history and self.state.exists():  # resumed after a kill: the steps it saw and any stop
            saved = json.loads(self.state.read_text(encoding="utf-8"))
            self.stop = self.stop or saved.get("stop")
            self.history = saved.get("history", [])
        self.round = round
        if self.round_log:
            notes["rounds"].append(self.round_log)
            self.round_log = {}
        end = self.stop or (f"max_rounds ({self.args.max_rounds}) passes done"
                            if round >= self.args.max_rounds else None)
        if end:
            self.end_reason = end
            return None
        chosen, counts = self.choose(pool, random.Random(f"{ctx.seed}/{round}"))
        if not chosen:
            self.end_reason = f"no items labelled {', '.join(self.args.difficulties)}"
            return None
        self.round_log = {"round": round, "items": len(chosen), "by_difficulty": counts, "steps": 0,
                          "zero_variance_share": []}
        listing = ", ".join(f"{d} {n}" for d, n in counts.items())
        return Selection(items=chosen, stats={**counts, "sparse_threshold": self.args.sparse_threshold},
                         reason=f"stage-1 mix ({listing}); ends when >= "
                                f"{self.args.sparse_threshold:.0%} of groups have zero reward variance "
                                f"for {self.args.patience} steps"
                                + (f" or at step {self.args.max_steps}" if self.args.max_steps else ""))

    def choose(self, pool: Sequence[QAItem], rng: random.Random) -> tuple[list[QAItem], dict[str, int]]:
        """Return the selected items (shuffled) and how many of each difficulty."""
        groups: dict[str, list[QAItem]] = {d: [] for d in self.args.difficulties}
        for item in pool:
            label = item.difficulty or (None if self.args.unlabelled == "exclude" else "moderate")
            if label in groups:
                groups[label].append(item)
        for d in groups:
            rng.shuffle(groups[d])
        ratios = self.args.mix or [float(len(groups[d])) for d in groups]
        total = sum(ratios)
        shares = {d: r / total for d, r in zip(groups, ratios)} if total > 0 else {d: 0.0 for d in groups}
        fit = min((len(groups[d]) / s for d, s in shares.items() if s > 0), default=0.0)
        n = min(fit, self.args.size or fit)
        counts = {d: min(len(groups[d]), int(n * s + EPS)) for d, s in shares.items()}
        chosen = [it for d in groups for it in groups[d][: counts[d]]]
        rng.shuffle(chosen)
        return chosen, counts

    def observe(self, step: int, group_rewards: Sequence[Sequence[float]]) -> str | None:
        """Track the share of zero-variance groups; return why the round (and stage) ends, or None."""
        share = zero_variance_share(group_rewards)
        # a resumed round redoes the steps after its checkpoint: what the killed run saw of them is dropped,
        # so the stage ends where an uninterrupted run would
        self.history = [h for h in self.history if h[0] != self.round or h[1] < step] + [[self.round, step, share]]
        self.steps = len(self.history)
        if self.round_log:
            self.round_log["steps"] += 1
            self.round_log["zero_variance_share"].append(round(share, 4))
        self.sparse_run = 0
        for *_, seen in reversed(self.history):
            if seen < self.args.sparse_threshold:
                break
            self.sparse_run += 1
        if self.sparse_run >= self.args.patience:
            self.stop = (f"rewards sparse: {share:.0%} of groups had zero variance (>= "
                         f"{self.args.sparse_threshold:.0%}) for {self.sparse_run} consecutive steps at step "
                         f"{self.steps}")
        elif self.args.max_steps is not None and self.steps >= self.args.max_steps:
            self.stop = f"step limit: {self.steps} steps (max_steps {self.args.max_steps})"
        if self.stop and self.round_log:
            self.round_log["ended"] = self.stop
        if self.state is not None:
            atomic_write_json(self.state, {"stop": self.stop, "steps": self.steps, "history": self.history})
        return self.stop


@hookimpl
def register_curricula(register: Any) -> None:
    """Register the `difficulty-mix` curriculum."""
    register("difficulty-mix", DifficultyMix)
