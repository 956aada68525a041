"""fleming rewards as TRL reward functions, and the ledger that regroups their scores per rollout group.

TRL calls each reward function with the completions (conversational: a list of messages each) and every
dataset column as a keyword argument. The ``id`` column maps a completion back to its `QAItem`, so a
fleming reward sees exactly the ``(completions, items)`` of its contract. Each call is also written to a
`RewardLedger`, from which the curriculum gets the weighted total reward of every completion, grouped by
prompt as TRL groups them for the advantage (``num_generations`` consecutive completions per prompt).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fleming.errors import StageError
from fleming.types import QAItem


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a plain string, or the contents of its assistant messages."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content") or "") for m in completion if m.get("role", "assistant") == "assistant")


class RewardLedger:
    """Scores of the latest generation batch, per reward function, until the curriculum reads them."""

    def __init__(self, weights: Sequence[float], group_size: int) -> None:
        self.weights = list(weights)
        self.group_size = group_size
        self._scores: dict[int, list[float | None]] = {}

    def record(self, index: int, scores: Sequence[float | None]) -> None:
        """Keep reward function `index`'s scores for the current batch."""
        self._scores[index] = list(scores)

    def drain(self) -> list[list[float]]:
        """Return the weighted total per completion, grouped per prompt, and forget them (None counts 0,
        as TRL's nansum does); empty when no new batch was scored."""
        if len(self._scores) < len(self.weights):
            return []
        n = len(self._scores[0])
        totals = [sum(w * s for w, s in ((self.weights[k], self._scores[k][i]) for k in self._scores)
                      if s is not None and not math.isnan(s)) for i in range(n)]
        self._scores = {}
        g = self.group_size
        return [totals[i:i + g] for i in range(0, n, g)]


class TrlReward:
    """One fleming reward wrapped as a TRL reward function (``reward_funcs`` entry)."""

    def __init__(self, reward: Any, index: int, items: Mapping[str, QAItem], ledger: RewardLedger) -> None:
        self.reward = reward
        self.index = index
        self.items = items
        self.ledger = ledger
        # TRL logs each reward as rewards/<__name__>/mean: use the recipe's plugin name when the stage set it
        self.__name__ = (getattr(reward, "fleming_name", None) or getattr(reward, "__name__", None)
                         or type(reward).__name__)

    def __call__(self, completions: Sequence[Any], id: Sequence[str], **kwargs: Any) -> list[float | None]:
        """Score the completions with the fleming reward; one float or None each."""
        texts = [completion_text(c) for c in completions]
        items = [self.items[i] for i in id]
        try:
            scores = list(self.reward(texts, items))
        except Exception as exc:
            raise StageError(f"reward '{self.__name__}' failed on a batch of {len(texts)} completions: "
                             f"{type(exc).__name__}: {exc}") from exc
        if len(scores) != len(texts):
            raise StageError(f"reward '{self.__name__}' returned {len(scores)} scores for {len(texts)} completions")
        self.ledger.record(self.index, scores)
        return [None if s is None else float(s) for s in scores]


def trl_reward_funcs(rewards: Sequence[tuple[Any, float]], items: Sequence[QAItem],
                     group_size: int) -> tuple[list[TrlReward], list[float], RewardLedger]:
    """Wrap a job's ``(reward, weight)`` pairs: the TRL functions, their ``reward_weights``, the ledger."""
    if not rewards:
        raise StageError("a GRPO job needs at least one reward (rl.rewards is empty)")
    by_id = {it.id: it for it in items}
    weights = [float(w) for _, w in rewards]
    ledger = RewardLedger(weights, group_size)
    funcs = [TrlReward(r, k, by_id, ledger) for k, (r, _) in enumerate(rewards)]
    return funcs, weights, ledger
