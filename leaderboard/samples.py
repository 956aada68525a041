"""Read one log's samples into small views for the per-sample pages (question, options, reasoning, scores).

At most `limit` samples are read from a log (Inspect's sample summaries, then one batched read); long
texts are cut to `max_chars` with a note of how much was left out, so no page grows without bound. When the
answer score carries a reasoning audit (``metadata["audit"]``), the shown completion is cut into marked
segments (``highlight.audit_view``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleming.leaderboard.highlight import AuditView, audit_view

SCORE_KEYS = ("strict", "lenient", "no_answer")


@dataclass(frozen=True)
class Text:
    """A possibly shortened text: what is shown and how many characters were cut."""

    shown: str
    cut: int = 0


@dataclass
class SampleView:
    """What a sample page shows of one sample."""

    id: str
    epoch: int
    question: Text
    options: list[tuple[str, str]]
    target: str
    answer: str | None
    lenient_answer: str | None
    scores: dict[str, Any]
    completion: Text
    subject: str = ""
    source: str = ""
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    audit: AuditView | None = None


def clip(text: str, max_chars: int) -> Text:
    """Keep the first `max_chars` characters of `text`."""
    return Text(text) if len(text) <= max_chars else Text(text[:max_chars], len(text) - max_chars)


def _message_text(content: Any) -> str:
    """The text of a message's content (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    return "\n".join(getattr(part, "text", "") or "" for part in content or [])


def _question(sample: Any) -> str:
    """The prompt the model saw: the input string, or the last user message of a chat input."""
    if isinstance(sample.input, str):
        return sample.input
    users = [m for m in sample.input if getattr(m, "role", "") == "user"] or list(sample.input)
    return _message_text(users[-1].content) if users else ""


def _options(sample: Any) -> list[tuple[str, str]]:
    """Letter and text of each option, from the metadata (dict or list with letters) or the choices."""
    meta = sample.metadata or {}
    options = meta.get("options")
    if isinstance(options, dict):
        return [(str(k), str(v)) for k, v in options.items()]
    if isinstance(options, list):
        letters = list(meta.get("letters") or "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return [(str(letters[i]) if i < len(letters) else str(i + 1), str(v)) for i, v in enumerate(options)]
    return [(chr(65 + i), str(c)) for i, c in enumerate(sample.choices or [])]


def _answer_score(sample: Any) -> Any:
    """The fleming answer scorer's score (its value has ``strict``), else the first score, else None."""
    scores = sample.scores or {}
    chosen = next((s for s in scores.values() if isinstance(s.value, dict) and "strict" in s.value), None)
    return chosen if chosen is not None or not scores else next(iter(scores.values()))


def _scores(chosen: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """The answer score's strict / lenient / no-answer values, its parsed answer and its lenient answer."""
    if chosen is None:
        return {}, None, None
    value = chosen.value if isinstance(chosen.value, dict) else {"score": chosen.value}
    lenient = (chosen.metadata or {}).get("lenient_answer")
    return dict(value), (str(chosen.answer) if chosen.answer else None), (str(lenient) if lenient else None)


def view(sample: Any, max_chars: int) -> SampleView:
    """Build the view of one Inspect sample."""
    meta = sample.metadata or {}
    chosen = _answer_score(sample)
    scores, answer, lenient = _scores(chosen)
    target = sample.target if isinstance(sample.target, str) else ", ".join(sample.target)
    completion = clip((sample.output.completion if sample.output is not None else "") or "", max_chars)
    audit = (getattr(chosen, "metadata", None) or {}).get("audit") if chosen is not None else None
    return SampleView(
        id=str(meta.get("id", sample.id)), epoch=int(sample.epoch or 1), question=clip(_question(sample), max_chars),
        options=[(k, clip(v, max_chars // 4).shown) for k, v in _options(sample)], target=str(target),
        answer=answer, lenient_answer=lenient, scores=scores, completion=completion,
        subject=str(meta.get("subject") or ""), source=str(meta.get("source") or ""),
        error=" ".join(str(sample.error.message).split()) if sample.error else None,
        audit=audit_view(audit, completion.shown),
    )


def read_samples(log_path: str, limit: int, max_chars: int) -> tuple[list[SampleView], int]:
    """Return views of the first `limit` samples of the log at `log_path` and how many samples it holds.

    The sample summaries give the order; the chosen samples are then read in one batch, without their
    events and message history (the pages show the prompt and the output only).
    """
    from inspect_ai.log import read_eval_log_sample_summaries, read_eval_log_samples_by_id

    summaries = read_eval_log_sample_summaries(log_path)
    wanted = [(s.id, s.epoch) for s in summaries[:limit]]
    if not wanted:
        return [], len(summaries)
    samples = read_eval_log_samples_by_id(log_path, wanted, resolve_attachments=True,
                                          exclude_fields={"events", "messages", "store"})
    return [view(sample, max_chars) for sample in samples], len(summaries)
