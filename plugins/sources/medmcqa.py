"""Data source `medmcqa`: MedMCQA in its original format (JSON lines).

Each row is ``{"id", "question", "opa", "opb", "opc", "opd", "cop", "exp", "subject_name", "topic_name",
"choice_type", ...}``. ``cop`` (the correct option) is 1-4 in the GitHub release and 0-3 in the HF hub copy:

* ``cop_base: 1`` or ``cop_base: 0`` says which;
* ``cop_base: auto`` (the default) reads each file's labelled ``cop`` values first: a file with a 0 and no 4
  is 0-based, a file with a 4 and no 0 is 1-based; a file with both, or with neither (only 1-3), stops
  with an error asking for ``cop_base``, since guessing would silently shift every label.

A row without a label (``cop`` missing, null or -1, as in the test split) is rejected with reason
"no answer label"; a ``cop`` outside the range is rejected too. ``exp`` becomes the item's rationale.
A question or option that is not text is rejected as well. Ids are ``<name>:<MedMCQA id>``; provenance holds
``dataset``, ``split``, ``row`` (the line), ``where`` (file:line),
``subject_name``, ``topic_name`` and ``choice_type``.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import PositiveInt

from fleming import ExistingPath, QAItem, Rejected, StageContext, hookimpl
from fleming.items import checked
from fleming.errors import DataError
from fleming.plugins.sources._files import files_in, guess_split, json_lines, question_text, text

OPTION_KEYS = ("opa", "opb", "opc", "opd")
NO_LABEL = "no answer label"


def _cop(value: Any) -> int | None:
    """Return `cop` as an int; None when the row carries no label; raise ValueError when it is not a number."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    number = int(value)
    return None if number < 0 else number


class MedmcqaSource:
    """Read MedMCQA's original JSON lines into items."""

    def __init__(self, path: ExistingPath, cop_base: Literal[0, 1, "auto"] = "auto", split: str | None = None,
                 name: str = "medmcqa", limit: PositiveInt | None = None) -> None:
        self.path = Path(path)
        self.cop_base = cop_base
        self.split = split
        self.name = name
        self.limit = limit

    def base_of(self, file: Path) -> int:
        """Return the file's cop base: the `cop_base` arg, or what the file's labelled values show (see above)."""
        if self.cop_base != "auto":
            return int(self.cop_base)
        seen: set[int] = set()
        for _, rec in json_lines(file):
            if isinstance(rec, dict):
                try:
                    cop = _cop(rec.get("cop"))
                except (TypeError, ValueError):
                    continue
                if cop is not None:
                    seen.add(cop)
        if 0 in seen and 4 not in seen:
            return 0
        if 4 in seen and 0 not in seen:
            return 1
        if not seen:
            return 1  # nothing is labelled: every row is rejected anyway
        shown = ", ".join(str(v) for v in sorted(seen))
        raise DataError(f"{file}: cannot tell whether cop is 0-based (HF copy) or 1-based (GitHub release): "
                        f"the file's cop values are {shown}; set cop_base: 0 or cop_base: 1")

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """Yield one item per labelled row, and a reject (file:line and reason) per other row."""
        for file in files_in(self.path, (".json", ".jsonl")):
            split = self.split or guess_split(file)
            base = self.base_of(file)
            for lineno, rec in json_lines(file):
                if self.limit is not None and lineno > self.limit:
                    break
                if isinstance(rec, Rejected):
                    yield rec
                    continue
                where = f"{file}:{lineno}"
                yield checked(lambda: self._item(rec, where, split, lineno, base), where, rec)

    def _item(self, rec: dict[str, Any], where: str, split: str, row: int, base: int) -> QAItem | Rejected:
        missing = [k for k in ("question", *OPTION_KEYS) if k not in rec]
        if missing:
            return Rejected(f"missing field(s): {', '.join(missing)}", where, rec)
        try:
            cop = _cop(rec.get("cop"))
        except (TypeError, ValueError):
            return Rejected(f"cop {rec.get('cop')!r} is not an option number", where, rec)
        if cop is None:
            return Rejected(NO_LABEL, where, rec)
        if not base <= cop < base + len(OPTION_KEYS):
            return Rejected(f"cop {cop} is out of range {base}-{base + len(OPTION_KEYS) - 1} (cop_base {base})",
                            where, rec)
        options = {letter: text(rec[key], key) for letter, key in zip("ABCD", OPTION_KEYS)}
        row_id = text(rec.get("id"), "id") or f"{split}-{row}"
        provenance = {"dataset": self.name, "split": split, "row": row, "where": where,
                      **{k: rec[k] for k in ("subject_name", "topic_name", "choice_type") if rec.get(k) is not None}}
        return QAItem(id=f"{self.name}:{row_id}", question=question_text(rec["question"]), options=options,
                      answer="ABCD"[cop - base], source=self.name, rationale=text(rec.get("exp"), "exp") or None,
                      provenance=provenance)

    def graph(self, ctx: StageContext | None = None) -> None:
        """A QA file has no knowledge graph."""
        return None


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `medmcqa` source."""
    register("medmcqa", MedmcqaSource)
