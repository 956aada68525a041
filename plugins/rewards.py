"""Rewards `answer` and `format` (the paper's verifiable rewards, both read with the one answer parser) and
`kg-faithfulness` (not in the paper's recipes: the KG reasoning audit as a reward).

* ``answer``: 1.0 when the strict parser (``fleming.answers.extract_answer``) reads the item's answer letter
  from the completion, else 0.0.
* ``format``: 1.0 when the completion is non-empty reasoning followed by exactly one well-formed
  ``<answer>X</answer>`` tag whose content the strict parser reads as one of the item's letters, and that tag
  ends the completion; else 0.0. Trailing whitespace and end-of-sequence tokens after the tag are allowed
  (``eos_tokens``, default the common ones: ``<|im_end|>``, ``<|endoftext|>``, ``</s>``, ``<|eot_id|>``,
  ``<eos>``). The answer's correctness plays no part (``fleming.answers.well_formed``, which teachers use too).
* ``kg-faithfulness``: for an item with KG provenance, ``fleming.audit.audit_reasoning`` on the completion:
  its path recall (the share of the item's path entities the reasoning names, 0..1), less
  ``contradiction_penalty`` (default 1.0) when some claim of the reasoning is contradicted by the graph; None
  (no reward, counted as 0 in the weighted total) for an item without KG provenance. The graph is loaded once
  per process from the source the item names. The answer's correctness plays no part: pair it with `answer`.

Length never enters either reward. The recipe's ``weight`` is applied by fleming, not by the reward.
Completions may be strings or TRL conversational lists (``[{"role": "assistant", "content": ...}]``: the
last assistant message is read). ``items[i]`` is the ``QAItem`` (or a uniform record with ``options`` and
``answer``) that completion ``i`` answers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from fleming import QAItem, hookimpl
from fleming.answers import EOS_TOKENS, extract_answer, well_formed
from fleming.audit import audit_reasoning, has_kg_provenance
from fleming.errors import StageError


def completion_text(completion: Any) -> str:
    """Return a completion's text: a string as is, or the last assistant message of a conversational list."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        for message in reversed(completion):
            if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
                return _content_text(message.get("content"))
        return ""
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    return "" if completion is None else str(completion)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def item_letters_answer(item: QAItem | Mapping[str, Any]) -> tuple[list[str], str]:
    """Return (option letters, answer letter) of an item or a uniform record."""
    if isinstance(item, QAItem):
        return list(item.options), item.answer
    return list(item["options"]), str(item["answer"])


def _check_lengths(name: str, completions: Sequence[Any], items: Sequence[Any]) -> None:
    if len(completions) != len(items):
        raise StageError(f"reward '{name}': got {len(completions)} completions for {len(items)} items "
                         "(one item per completion is needed)")


class AnswerReward:
    """1.0 when the strict answer parser reads the item's answer letter, else 0.0."""

    __name__ = "answer"

    def __call__(self, completions: Sequence[Any], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        """Return one reward per completion."""
        _check_lengths("answer", completions, items)
        out: list[float | None] = []
        for completion, item in zip(completions, items):
            letters, answer = item_letters_answer(item)
            out.append(1.0 if extract_answer(completion_text(completion), letters) == answer else 0.0)
        return out


class FormatReward:
    """1.0 for non-empty reasoning then exactly one valid ``<answer>X</answer>`` at the end, else 0.0."""

    __name__ = "format"

    def __init__(self, eos_tokens: list[str] = list(EOS_TOKENS)) -> None:
        self.eos_tokens = tuple(t for t in eos_tokens if t)

    def __call__(self, completions: Sequence[Any], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        """Return one reward per completion."""
        _check_lengths("format", completions, items)
        return [1.0 if well_formed(completion_text(c), item_letters_answer(i)[0], self.eos_tokens) else 0.0
                for c, i in zip(completions, items)]


class KgFaithfulnessReward:
    """Path recall of the reasoning, less a penalty when it contradicts the graph; None without KG provenance."""

    __name__ = "kg-faithfulness"

    def __init__(self, contradiction_penalty: Annotated[float, Field(ge=0)] = 1.0) -> None:
        self.contradiction_penalty = contradiction_penalty

    def __call__(self, completions: Sequence[Any], items: Sequence[QAItem], **kwargs: Any) -> list[float | None]:
        """Return one reward per completion."""
        _check_lengths("kg-faithfulness", completions, items)
        out: list[float | None] = []
        for completion, item in zip(completions, items):
            if not has_kg_provenance(item):
                out.append(None)
                continue
            audit = audit_reasoning(completion_text(completion), item)
            out.append(audit.path_recall - (self.contradiction_penalty if audit.contradicted else 0.0))
        return out


@hookimpl
def register_rewards(register: Any) -> None:
    """Register the `answer`, `format` and `kg-faithfulness` rewards."""
    register("answer", AnswerReward)
    register("format", FormatReward)
    register("kg-faithfulness", KgFaithfulnessReward)
