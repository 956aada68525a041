"""The frozen value types passed between stages and plugins."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Difficulty = Literal["easy", "moderate", "difficult"]
DIFFICULTIES: tuple[str, ...] = ("easy", "moderate", "difficult")
_ITEM_META_KEYS = ("source", "difficulty", "rationale")


@dataclass(frozen=True)
class QAItem:
    """One multiple-choice question. `options` keeps its order (letter -> text); `answer` is one of its letters.

    `provenance` says where the item came from: a dataset name and row, or a KG path with the KG's version.
    Change an item with `item.replace(difficulty="easy")`, never in place.
    """

    id: str
    question: str
    options: Mapping[str, str]
    answer: str
    source: str = ""
    difficulty: Difficulty | None = None
    rationale: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> QAItem:
        """Return a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    def to_record(self) -> dict[str, Any]:
        """Return the item in the uniform JSONL schema: id, question, options, answer, meta."""
        meta: dict[str, Any] = dict(self.provenance)
        meta.update(source=self.source, difficulty=self.difficulty, rationale=self.rationale)
        return {
            "id": self.id,
            "question": self.question,
            "options": dict(self.options),
            "answer": self.answer,
            "meta": meta,
        }

    def __post_init__(self) -> None:
        problem = _type_problem(self.id, self.question, self.options, self.answer)
        if problem is None and not isinstance(self.provenance, Mapping):
            problem = f"provenance must be a mapping, not {_kind(self.provenance)}"
        if problem is not None:
            raise ValueError(f"invalid QAItem: {problem}")

    @classmethod
    def from_record(cls, record: Mapping[str, Any], source: str = "") -> QAItem:
        """Build an item from a uniform-schema record (the inverse of `to_record`); raise ValueError saying
        what is wrong with a record that `record_problem` refuses."""
        problem = record_problem(record)
        if problem is not None:
            raise ValueError(problem)
        meta = dict(record.get("meta") or {})
        extras = {k: meta.pop(k, None) for k in _ITEM_META_KEYS}
        return cls(
            id=record["id"],
            question=record["question"],
            options=dict(record["options"]),
            answer=record["answer"],
            source=extras["source"] or source,
            difficulty=extras["difficulty"],
            rationale=extras["rationale"],
            provenance=meta,
        )


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def _type_problem(id: Any, question: Any, options: Any, answer: Any) -> str | None:
    if id == "":
        return "id must not be empty"
    if not isinstance(id, str):
        return f"id must be a non-empty string, not {_kind(id)}"
    if not isinstance(question, str):
        return f"question must be a string, not {_kind(question)}"
    if not isinstance(options, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in options.items()):
        return "options must be an object of letter -> text (strings)"
    if not isinstance(answer, str):
        return f"answer must be a string, not {_kind(answer)}"
    return None


def record_problem(record: Any) -> str | None:
    """Say what keeps `record` from being a uniform-schema item (a missing field, a wrong type, an answer that
    is not one of the option letters, a `meta` that is not an object), or return None when it is one."""
    if not isinstance(record, Mapping):
        return f"expected a JSON object, got {_kind(record)}"
    missing = [k for k in ("id", "question", "options", "answer") if k not in record]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    problem = _type_problem(record["id"], record["question"], record["options"], record["answer"])
    if problem is not None:
        return problem
    if record["answer"] not in record["options"]:
        return (f"answer {record['answer']!r} is not one of the options "
                f"({', '.join(record['options']) or 'none'})")
    meta = record.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        return f"meta must be an object, not {_kind(meta)}"
    return None


@dataclass(frozen=True)
class Rejected:
    """A row or item a stage set aside, with the reason; written to the stage's rejects file, never lost."""

    reason: str
    where: str
    record: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """Return the reject as a JSON-ready dict."""
        return {"reason": self.reason, "where": self.where, "record": dict(self.record)}


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one item: `status` is pass, flag, drop or unverified; `item` may carry new fields."""

    item: QAItem
    status: Literal["pass", "flag", "drop", "unverified"]
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """A trained model saved as a HF-format folder, with the stage and step that produced it."""

    path: Path
    stage: str
    step: int
    run: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
