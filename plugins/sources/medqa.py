"""Data source `medqa`: MedQA in its original release format (JSON lines).

Each row is ``{"question", "options": {"A": ..}, "answer": <option text>, "answer_idx": "B", "meta_info", ...}``
(the files under ``data_clean/questions/US/`` of the MedQA release; 4- and 5-option variants alike).
``path`` is one file or a folder of ``*.jsonl``; ``split`` defaults to the one the file name says
(``phrases_no_exclude_test.jsonl`` -> test). Item ids are ``<name>:<split>-<line>`` and provenance holds
``dataset``, ``split``, ``row`` (the line), ``where`` (file:line), ``meta_info`` and ``answer_text``. A row
whose ``answer_idx`` is not an option, whose ``answer`` text disagrees with that option, or whose question or
options are not text becomes a reject naming file:line.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import PositiveInt

from fleming import ExistingPath, QAItem, Rejected, StageContext, hookimpl
from fleming.items import checked
from fleming.plugins.sources._files import files_in, guess_split, json_lines, question_text, text


class MedqaSource:
    """Read MedQA's original JSON lines into items."""

    def __init__(self, path: ExistingPath, split: str | None = None, name: str = "medqa",
                 limit: PositiveInt | None = None) -> None:
        self.path = Path(path)
        self.split = split
        self.name = name
        self.limit = limit

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """Yield one item per valid row, and a reject (file:line and reason) per invalid one."""
        for file in files_in(self.path, (".jsonl",)):
            split = self.split or guess_split(file)
            for lineno, rec in json_lines(file):
                if self.limit is not None and lineno > self.limit:
                    break
                if isinstance(rec, Rejected):
                    yield rec
                    continue
                where = f"{file}:{lineno}"
                yield checked(lambda: self._item(rec, where, split, lineno), where, rec)

    def _item(self, rec: dict[str, Any], where: str, split: str, lineno: int) -> QAItem | Rejected:
        missing = [k for k in ("question", "options", "answer_idx") if k not in rec]
        if missing:
            return Rejected(f"missing field(s): {', '.join(missing)}", where, rec)
        options = rec["options"]
        if not isinstance(options, dict) or not options:
            return Rejected("options must be an object of letter -> text", where, rec)
        options = {str(k).strip(): text(v, f"option {k}") for k, v in options.items()}
        answer = text(rec["answer_idx"])
        if answer not in options:
            return Rejected(f"answer_idx {answer!r} is not one of the options ({', '.join(options)})", where, rec)
        answer_text = text(rec.get("answer"))
        if answer_text and answer_text != options[answer]:
            return Rejected(f"answer text {answer_text!r} differs from option {answer} ({options[answer]!r})",
                            where, rec)
        provenance = {"dataset": self.name, "split": split, "row": lineno, "where": where,
                      "meta_info": rec.get("meta_info"), "answer_text": options[answer]}
        return QAItem(id=f"{self.name}:{split}-{lineno}", question=question_text(rec["question"]), options=options,
                      answer=answer, source=self.name, provenance=provenance)

    def graph(self, ctx: StageContext | None = None) -> None:
        """A QA file has no knowledge graph."""
        return None


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `medqa` source."""
    register("medqa", MedqaSource)
