"""Data source `jsonl`: multiple-choice items in the uniform JSONL schema.

One JSON object per line: ``{"id", "question", "options": {"A": ..., ...}, "answer", "meta"}`` (the
schema of the benchmark files fleming evaluates on). ``path`` is a file or a folder of ``*.jsonl``;
``limit`` keeps the first N rows of each file. A row that is not valid JSON, misses a field, holds a value
of the wrong type (an id or question that is not a string, options that are not letter -> text, a ``meta``
that is not an object) or whose answer is not one of its option letters becomes a reject naming the file and
line; nothing is dropped silently. Each item's provenance records its ``where`` (file:line).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import PositiveInt

from fleming import ExistingPath, QAItem, Rejected, StageContext, hookimpl
from fleming.items import item_or_reject, json_lines
from fleming.types import record_problem


class JsonlSource:
    """Read uniform-schema JSONL files into items."""

    def __init__(self, path: ExistingPath, limit: PositiveInt | None = None, name: str | None = None) -> None:
        self.path = Path(path)
        self.limit = limit
        self.name = name

    def files(self) -> list[Path]:
        """Return the files this source reads, in name order."""
        return sorted(p for p in self.path.glob("*.jsonl") if p.is_file()) if self.path.is_dir() else [self.path]

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """Yield one item per valid row, and a reject (file:line and reason) per invalid one."""
        for file in self.files():
            dataset = self.name or file.stem
            for lineno, rec in json_lines(file, errors="replace"):
                if self.limit is not None and lineno > self.limit:
                    break
                yield rec if isinstance(rec, Rejected) else self._parse(rec, f"{file}:{lineno}", dataset, lineno)

    @staticmethod
    def _parse(rec: dict[str, Any], where: str, dataset: str, lineno: int) -> QAItem | Rejected:
        problem = record_problem(rec)
        if problem is not None:
            return Rejected(problem, where, rec)
        meta = {**(rec.get("meta") or {}), "dataset": dataset, "row": lineno}
        return item_or_reject({**rec, "id": f"{dataset}:{rec['id']}", "meta": meta}, where, source=dataset)

    def graph(self, ctx: StageContext | None = None) -> None:
        """A QA file has no knowledge graph."""
        return None


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `jsonl` source."""
    register("jsonl", JsonlSource)
