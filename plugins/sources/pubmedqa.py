"""Data source `pubmedqa`: PubMedQA in its original format (``ori_pqal.json``, also ``ori_pqaa.json``).

The file is one JSON object PMID -> ``{"QUESTION", "CONTEXTS": [...], "LABELS", "MESHES", "YEAR",
"final_decision": yes|no|maybe, "LONG_ANSWER"}``. Options are A yes / B no / C maybe; the answer is the
``final_decision``. The question text (template ``pubmedqa_question.jinja``) is
``Context: <contexts, one per line>\\n\\nQuestion: <QUESTION>``, the same text as the uniform benchmark
file, so decontamination sees copies; ``contexts: false`` leaves the contexts out. ``LONG_ANSWER`` (the
abstract's conclusion) becomes the rationale. Ids are ``<name>:<PMID>``; provenance holds ``dataset``,
``split``, ``row`` (the PMID), ``where`` (file:PMID), ``year`` and ``meshes``. An entry whose question or
answer is not text is rejected. Rejects name ``file:PMID``.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import PositiveInt

from fleming import ExistingPath, QAItem, Rejected, StageContext, hookimpl
from fleming.items import checked
from fleming.errors import DataError
from fleming.plugins.sources._files import question_text, read_json, text
from fleming.prompts import render

OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
_LETTER = {v: k for k, v in OPTIONS.items()}


class PubmedqaSource:
    """Read PubMedQA's ``ori_pqal.json`` into yes/no/maybe items."""

    def __init__(self, path: ExistingPath, contexts: bool = True, split: str = "pqal", name: str = "pubmedqa",
                 limit: PositiveInt | None = None) -> None:
        self.path = Path(path)
        self.contexts = contexts
        self.split = split
        self.name = name
        self.limit = limit

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """Yield one item per labelled entry, and a reject (file:PMID and reason) per other entry."""
        data = read_json(self.path)
        if not isinstance(data, dict):
            raise DataError(f"{self.path}: expected one JSON object PMID -> entry (ori_pqal.json), "
                            f"got a {type(data).__name__}")
        for n, (pmid, entry) in enumerate(data.items(), start=1):
            if self.limit is not None and n > self.limit:
                break
            where = f"{self.path}:{pmid}"
            yield checked(lambda: self._item(str(pmid), entry, where), where, entry)

    def _item(self, pmid: str, entry: Any, where: str) -> QAItem | Rejected:
        if not isinstance(entry, dict):
            return Rejected(f"entry is a {type(entry).__name__}, not an object", where, {"entry": entry})
        missing = [k for k in ("QUESTION", "final_decision") if k not in entry]
        if missing:
            return Rejected(f"missing field(s): {', '.join(missing)}", where, entry)
        decision = text(entry["final_decision"], "final_decision").lower()
        if decision not in _LETTER:
            return Rejected(f"final_decision {entry['final_decision']!r} is not yes, no or maybe", where, entry)
        contexts = entry.get("CONTEXTS") or []
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            return Rejected("CONTEXTS must be a list of strings", where, entry)
        question = render("pubmedqa_question", question=question_text(entry["QUESTION"], "QUESTION"),
                          contexts=contexts if self.contexts else [])
        provenance = {"dataset": self.name, "split": self.split, "row": pmid, "where": where,
                      "year": entry.get("YEAR"), "meshes": entry.get("MESHES") or []}
        return QAItem(id=f"{self.name}:{pmid}", question=question, options=dict(OPTIONS),
                      answer=_LETTER[decision], source=self.name,
                      rationale=text(entry.get("LONG_ANSWER"), "LONG_ANSWER") or None, provenance=provenance)

    def graph(self, ctx: StageContext | None = None) -> None:
        """A QA file has no knowledge graph."""
        return None


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `pubmedqa` source."""
    register("pubmedqa", PubmedqaSource)
