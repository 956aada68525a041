"""Filter `phi`: replaces personal identifiers with placeholders, keeping the item.

What is replaced (each kind can be switched off: ``names``, ``dates``, ``phones``, ``emails``, ``ids``):

* ``[EMAIL]``: e-mail addresses;
* ``[ID]``: numbers after a record keyword (MRN, medical record number, patient ID, account, chart, SSN,
  NHS number ...) and SSN-shaped numbers (123-45-6789);
* ``[PHONE]``: North-American numbers ((555) 123-4567, 555-123-4567, 555.123.4567) and ``+``-prefixed
  international numbers of 8 or more digits;
* ``[DATE]``: calendar dates: 03/12/2019, 3/12/19, 12.03.2019, 2019-03-12, March 12, 2019, 12th of March,
  Mar. 2019. A year alone, ages (45-year-old) and durations (3 days) are kept;
* ``[NAME]``: a capitalised name after a title (Mr., Mrs., Ms., Mx., Dr., Prof.; "Dr. [NAME]"), after
  "patient name:", "his/her name is", a line starting "Name:", or "named". A capitalised word followed by disease, syndrome, sign ... is an eponym
  and is kept ("named Kawasaki disease"); bare eponyms (Parkinson disease, Down syndrome) never match.

Question, options and rationale are scrubbed; the counts go to provenance ``phi_scrubbed`` (e.g.
``{"NAME": 1, "DATE": 2}``). An item is rejected only when scrubbing makes two different options identical
("Dr. Smith" / "Dr. Jones"), since its answer could no longer be told apart. Names without a title or a
"name" cue are not detected.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.plugins.filters._text_match import normalise

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
          r"|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_WORD = r"(?:[A-Z][a-z]*['’])?[A-Z][a-z]+(?:-[A-Z]?[a-z]{2,})?"
_NAME = rf"(?:[A-Z]\.\s*)*{_WORD}(?:\s+[A-Z]\.)?(?:\s+{_WORD})?"
_EPONYM = re.compile(
    r"\s*(?:['’]s?\s+)?(?:disease|syndrome|sign|signs|test|reflex|maneuver|manoeuvre|phenomenon|law|criteria"
    r"|classification|scale|score|procedure|operation|technique|tumou?r|palsy|node|nodes|cells?|bod(?:y|ies)"
    r"|duct|ligament|triad|fracture|disorder|anomaly|reaction|sarcoma|lymphoma|ulcer|hernia|cyst|membrane|virus)\b",
    re.IGNORECASE)

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
RECORD_ID = re.compile(
    r"\b((?i:MRN|medical record|record|patient|account|chart|SSN|social security|NHS|insurance|member"
    r"|health card)(?:\s+(?i:number|no\.?|ID|#))?|ID(?:\s+number)?)(\s*(?:[:#]|is|of)?\s*#?\s*)"
    r"([A-Z]{0,3}-?\d[\d-]{3,}[A-Z0-9]*)\b")
SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
PHONE = re.compile(r"(?<![\w/.+-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}(?![\w/-])"
                   r"|(?<![\w/+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?![\w/])")
DATE = re.compile(
    rf"\b{_MONTH}\s+{_DAY}(?:,?\s+\d{{4}})?\b(?!\s*(?:mg|g|mL|kg|days?|weeks?|months?|years?|hours?)\b)"
    rf"|\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?(?![\w])"
    rf"|\b{_MONTH},?\s+\d{{4}}\b"
    r"|\b(?:\d{4}[-/.](?:0?[1-9]|1[0-2])[-/.](?:[12]\d|3[01]|0?[1-9]))\b"
    r"|\b(?:[12]\d|3[01]|0?[1-9])/(?:[12]\d|3[01]|0?[1-9])/(?:\d{4}|\d{2})\b"
    r"|\b(?:[12]\d|3[01]|0?[1-9])([.-])(?:[12]\d|3[01]|0?[1-9])\1\d{4}\b")
TITLED = re.compile(rf"\b((?:Mr|Mrs|Ms|Mx|Dr|Prof)\.?\s+)({_NAME})")
NAME_CUE = re.compile(
    rf"((?i:\b(?:patient(?:['’]s)?|his|her|my|their)\s+name\s*(?::|-|is)\s*)|(?m:^[ \t]*Name[ \t]*:[ \t]*)"
    rf"|\bnamed\s+)({_NAME})")


def _name(m: re.Match[str]) -> str:
    """Replace the name after its cue, unless an eponym word follows it."""
    if _EPONYM.match(m.string, m.end()):
        return m.group(0)
    return m.group(1) + "[NAME]"


_FOUR_DIGITS = re.compile(r"\d[\d-]{3}")
_DIGIT = re.compile(r"\d")


def _has_long_number(text: str) -> bool:
    return _FOUR_DIGITS.search(text) is not None


def _has_title(text: str) -> bool:
    return any(t in text for t in ("Mr", "Ms", "Mx", "Dr", "Prof"))


class PhiScrubber:
    """Replace personal identifiers in a text with placeholders, counting each kind.

    Each pattern runs only when a cheap test says it could match (an "@", a digit, a title, "name" ...).
    """

    def __init__(self, names: bool = True, dates: bool = True, phones: bool = True, emails: bool = True,
                 ids: bool = True) -> None:
        steps: list[tuple[str, re.Pattern[str], Any, Callable[[str], bool]]] = []
        if emails:
            steps.append(("EMAIL", EMAIL, "[EMAIL]", lambda t: "@" in t))
        if ids:
            steps += [("ID", RECORD_ID, lambda m: m.group(1) + m.group(2) + "[ID]", _has_long_number),
                      ("ID", SSN, "[ID]", _has_long_number)]
        if phones:
            steps.append(("PHONE", PHONE, lambda m: "[PHONE]" if len(re.sub(r"\D", "", m.group(0))) >= 8
                          else m.group(0), lambda t: "+" in t or _has_long_number(t)))
        if dates:
            steps.append(("DATE", DATE, "[DATE]", lambda t: _DIGIT.search(t) is not None))
        if names:
            steps += [("NAME", TITLED, _name, _has_title), ("NAME", NAME_CUE, _name, lambda t: "name" in t.lower())]
        self.steps = steps

    def scrub(self, text: str, counts: Counter[str]) -> str:
        """Return `text` with identifiers replaced; add how many of each kind to `counts`."""
        for kind, pattern, repl, could_match in self.steps:
            if not could_match(text):
                continue

            def sub(m: re.Match[str], kind: str = kind, repl: Any = repl) -> str:
                new = repl if isinstance(repl, str) else repl(m)
                if new != m.group(0):
                    counts[kind] += 1
                return new

            text = pattern.sub(sub, text)
        return text


class PhiFilter:
    """Scrub identifiers from items; reject only items whose options scrubbing made identical."""

    def __init__(self, names: bool = True, dates: bool = True, phones: bool = True, emails: bool = True,
                 ids: bool = True) -> None:
        self.scrubber = PhiScrubber(names=names, dates=dates, phones=phones, emails=emails, ids=ids)

    def scrub_item(self, item: QAItem) -> QAItem | Rejected:
        """Return the scrubbed item (unchanged if nothing was found), or a reject when options collapsed."""
        counts: Counter[str] = Counter()
        question = self.scrubber.scrub(item.question, counts)
        options = {k: self.scrubber.scrub(v, counts) for k, v in item.options.items()}
        rationale = self.scrubber.scrub(item.rationale, counts) if item.rationale else item.rationale
        if not counts:
            return item
        seen: dict[str, str] = {}
        for k, v in options.items():
            key = normalise(v)
            j = seen.setdefault(key, k)
            if j != k and normalise(item.options[j]) != normalise(item.options[k]):
                return Rejected(f"scrubbing made options {j} and {k} identical ({v[:60]!r})", item.id,
                                item.to_record())
        provenance = {**item.provenance, "phi_scrubbed": dict(sorted(counts.items()))}
        return item.replace(question=question, options=options, rationale=rationale, provenance=provenance)

    def apply(self, items: Sequence[QAItem], ctx: StageContext | None = None) -> tuple[list[QAItem], list[Rejected]]:
        """Return (scrubbed items, rejects whose options scrubbing made identical)."""
        kept: list[QAItem] = []
        rejected: list[Rejected] = []
        seq: Any = items
        if ctx is not None and hasattr(ctx, "progress"):
            seq = ctx.progress(items, total=len(items), description="scrubbing identifiers")
        for item in seq:
            got = self.scrub_item(item)
            (rejected if isinstance(got, Rejected) else kept).append(got)  # type: ignore[arg-type]
        return kept, rejected


@hookimpl
def register_filters(register: Any) -> None:
    """Register the `phi` filter."""
    register("phi", PhiFilter)
