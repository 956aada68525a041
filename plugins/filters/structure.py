"""Filter `structure`: rejects items that are malformed as multiple-choice questions.

Checks (each can be switched off with its arg set to false; ``min_options: 0`` switches that one off):

* ``empty_question``: the question is blank;
* ``min_options``: fewer options than this (default 2);
* ``empty_options``: an option is blank;
* ``duplicate_options``: two options have the same text once case, Unicode form, whitespace and trailing
  punctuation are normalised ("Measles." and "measles");
* ``answer_in_options``: the answer letter is not an option;
* ``contiguous_letters``: the letters are not A, B, C, ... in order;
* ``mojibake``: encoding artefacts in the question, an option or the rationale: UTF-8 read as Latin-1 or
  cp1252 ("Ã©", "Â°", "â€™", "ä¸­"), the replacement character U+FFFD, control characters.

A reject's reason lists every problem found, e.g. "empty option C; answer 'E' is not among the options
(A, B, C, D)".
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import NonNegativeInt

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.plugins.filters._text_match import normalise

_CP1252 = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_CONT = f"\u0080-\u00bf{_CP1252}"
MOJIBAKE = re.compile(
    f"[\u00c2\u00c3][{_CONT}]"           # 2-byte sequences: é -> Ã©, ° -> Â°
    f"|[\u00e0-\u00ef][{_CONT}]{{2}}"    # 3-byte sequences: ’ -> â€™, 中 -> ä¸­
    "|\ufffd"                            # the replacement character (undecodable bytes)
    "|[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]"  # control characters other than tab and newlines
)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def encoding_artefact(text: str) -> str | None:
    """Describe the first encoding artefact in `text` ("'Ã©'", "U+FFFD", "control character U+0007"), or None."""
    m = MOJIBAKE.search(text)
    if m is None:
        return None
    found = m.group(0)
    if found == "\ufffd":
        return "replacement character U+FFFD"
    if len(found) == 1:
        return f"control character U+{ord(found):04X}"
    return repr(found)


def _same(text: str) -> str:
    return normalise(text).rstrip(".;,:!? ")


class StructureFilter:
    """Reject malformed items (see the module docstring for the checks)."""

    def __init__(self, empty_question: bool = True, min_options: NonNegativeInt = 2, empty_options: bool = True,
                 duplicate_options: bool = True, answer_in_options: bool = True, contiguous_letters: bool = True,
                 mojibake: bool = True) -> None:
        self.empty_question = empty_question
        self.min_options = min_options
        self.empty_options = empty_options
        self.duplicate_options = duplicate_options
        self.answer_in_options = answer_in_options
        self.contiguous_letters = contiguous_letters
        self.mojibake = mojibake

    def problems(self, item: QAItem) -> list[str]:
        """Return every structural problem of `item` (empty when it is well formed)."""
        found: list[str] = []
        opts = dict(item.options)
        if self.empty_question and not item.question.strip():
            found.append("empty question")
        if len(opts) < self.min_options:
            found.append(f"only {len(opts)} option{'s' if len(opts) != 1 else ''} (need at least {self.min_options})")
        if self.empty_options:
            found += [f"empty option {k}" for k, v in opts.items() if not v.strip()]
        if self.duplicate_options:
            first: dict[str, str] = {}
            for k, v in opts.items():
                key = _same(v)
                if key and key in first:
                    found.append(f"options {first[key]} and {k} are the same ({v.strip()[:60]!r})")
                first.setdefault(key, k)
        if self.answer_in_options and item.answer not in opts:
            found.append(f"answer {item.answer!r} is not among the options ({', '.join(opts)})")
        if self.contiguous_letters and list(opts) != list(LETTERS[:len(opts)]):
            found.append(f"option letters {', '.join(opts)} are not contiguous from A")
        if self.mojibake:
            texts = [("question", item.question), *((f"option {k}", v) for k, v in opts.items()),
                     ("rationale", item.rationale or "")]
            for label, text in texts:
                bad = encoding_artefact(text)
                if bad is not None:
                    found.append(f"encoding artefact {bad} in {label}")
        return found

    def apply(self, items: Sequence[QAItem], ctx: StageContext | None = None) -> tuple[list[QAItem], list[Rejected]]:
        """Return (well-formed items, rejects naming every problem)."""
        kept: list[QAItem] = []
        rejected: list[Rejected] = []
        for item in items:
            found = self.problems(item)
            if found:
                rejected.append(Rejected("; ".join(found), item.id, item.to_record()))
            else:
                kept.append(item)
        return kept, rejected


@hookimpl
def register_filters(register: Any) -> None:
    """Register the `structure` filter."""
    register("structure", StructureFilter)
