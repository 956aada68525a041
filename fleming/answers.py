"""The one answer parser: the rewards and the evaluation scorer both call `extract_answer`.

Strict mode (the default, the number every table reports) reads the option letter inside the
``<answer>...</answer>`` tag that follows the reasoning:

* the tag's content may be ``B``, ``(B)``, ``B.``, ``B)``, ``B:`` or ``B. option text``
  (surrounding whitespace and ``**bold**`` markers are ignored);
* every ``<answer>`` tag must be closed and none may be nested; if the completion has several tags they must
  all name the same letter;
* the letter must be one of ``letters`` exactly (ASCII; look-alikes such as Cyrillic ``А`` or lower case
  ``b`` are not letters);
* anything else (no tag, an unclosed or nested tag, two different letters, a letter not among the options,
  free text in the tag) gives ``None``: no answer.

Lenient mode is the strict answer when there is one, else the last standalone option letter anywhere in the
completion (``... so the answer is C``). It is reported as a separate metric, never mixed into the strict one,
and a lenient answer is never ``None`` where the strict one is not.

`well_formed` is the format check the ``format`` reward and the teachers share: non-empty reasoning, then
exactly one ``<answer>X</answer>`` whose letter the strict parser reads, ending the completion (after
`strip_end` removes trailing whitespace and end-of-sequence tokens). `reasoning_end` says where the reasoning
stops: at the first ``<answer>`` tag, found as the parser finds tags.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

__all__ = ["CLOSE", "EOS_TOKENS", "OPEN", "answer_tags", "extract_answer", "reasoning_end", "strip_end",
           "well_formed"]

OPEN = "<answer>"
CLOSE = "</answer>"
EOS_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<eos>")

_CONTENT = re.compile(r"\s*(?:\*\*)?\s*\(?([A-Z])\)?(?:\s*[.:)]\s*(?:\S.*)?|\s*)(?:\*\*)?\s*", re.DOTALL)
_STANDALONE = re.compile(r"(?<![A-Za-z0-9_])([A-Z])(?![A-Za-z0-9_])")


def answer_tags(completion: str) -> list[str] | None:
    """Return the contents of the completion's ``<answer>`` tags in order, or None if any tag is unclosed,
    nested, or a closing tag has no opening one (matching is case-insensitive on the tag name)."""
    text = completion.lower()
    contents: list[str] = []
    pos = 0
    while True:
        start = text.find(OPEN, pos)
        stray = text.find(CLOSE, pos)
        if start < 0:
            return None if stray >= 0 else contents
        if 0 <= stray < start:
            return None
        end = text.find(CLOSE, start + len(OPEN))
        if end < 0:
            return None
        if text.find(OPEN, start + len(OPEN), end) >= 0:
            return None
        contents.append(completion[start + len(OPEN):end])
        pos = end + len(CLOSE)


def reasoning_end(completion: str) -> int:
    """Return the offset in `completion` of its first ``<answer>`` tag (any case), or its length when it has none."""
    lower = completion.lower()
    at = lower.find(OPEN)
    if at < 0 or len(lower) == len(completion):
        return len(completion) if at < 0 else at
    seen = 0  # lower() lengthened some character ("İ"): count back to an offset in the original
    for i, ch in enumerate(completion):
        if seen >= at:
            return i
        seen += len(ch.lower())
    return len(completion)


def _letter(content: str, letters: Sequence[str]) -> str | None:
    m = _CONTENT.fullmatch(content)
    if m is None or m.group(1) not in letters:
        return None
    return m.group(1)


def extract_answer(completion: str, letters: Sequence[str],
                   mode: Literal["strict", "lenient"] = "strict") -> str | None:
    """Return the option letter the completion answers, or None when it gives no valid answer.

    ``letters`` are the item's option letters (e.g. ``"ABCD"`` or ``["A", "B", "C"]``).
    """
    if mode not in ("strict", "lenient"):
        raise ValueError(f"mode must be 'strict' or 'lenient', not {mode!r}")
    letters = tuple(letters)
    strict = _strict(completion, letters)
    if mode == "strict" or strict is not None:
        return strict
    last = None
    for m in _STANDALONE.finditer(completion):
        if m.group(1) in letters:
            last = m.group(1)
    return last


def _strict(completion: str, letters: tuple[str, ...]) -> str | None:
    tags = answer_tags(completion)
    if not tags:
        return None
    found = {_letter(c, letters) for c in tags}
    if len(found) != 1:
        return None
    return found.pop()


def strip_end(text: str, eos_tokens: Sequence[str] = EOS_TOKENS) -> str:
    """Return `text` without trailing whitespace and end-of-sequence tokens."""
    tokens = [t for t in eos_tokens if t]
    while True:
        text = text.rstrip()
        for token in tokens:
            if text.endswith(token):
                text = text[: -len(token)]
                break
        else:
            return text


def well_formed(text: str, letters: Sequence[str], eos_tokens: Sequence[str] = EOS_TOKENS) -> bool:
    """Return whether `text` is non-empty reasoning then exactly one valid ``<answer>X</answer>`` at the end
    (trailing whitespace and `eos_tokens` allowed); whether the letter is right plays no part."""
    text = strip_end(text, eos_tokens)
    tags = answer_tags(text)
    if tags is None or len(tags) != 1 or not text.lower().endswith(CLOSE):
        return False
    if _strict(text, tuple(letters)) is None:
        return False
    return bool(text[: text.lower().find(OPEN)].strip())
