"""Data source `jsonl`: multiple-choice items in the uniform JSONL schema.

One JSON object per line: ``{"id", "question", "options": {"A": ..., ...}, "answer", "meta"}`` (the
schema of the benchmark files fleming evaluates on). ``path`` is a file or a folder of ``*.jsonl``;
``limit`` keeps the first N rows of each file. A row that is not valid JSON, misses a field, or whose
answer is not one of its option letters becomes a reject naming the file and line; nothing is dropped
silently.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import PositiveInt

from fleming import ExistingPath, QAItem, Rejected, hookimpl
from fleming.items import json_lines

REQUIRED = ("id", "question", "options", "answer")


class JsonlSource:
    """Read uniform-schema JSONL files into items."""

    def __init__(self, path: ExistingPath, limit: PositiveInt | None = None, name: str | None = None) -> None:
        self.path = Path(path)
        self.limit = limit
        self.name = name

    def files(self) -> list[Path]:
        """Return the files this source reads, in name order."""
        return sorted(self.path.glob("*.jsonl")) if self.path.is_dir() else [self.path]

    def items(self, ctx: Any = None) -> Iterator[QAItem | Rejected]:
        """Yield one item per valid row, and a reject (file:line and reason) per invalid one."""
        for file in self.files():
            dataset = self.name or file.stem
            for lineno, rec in json_lines(file, errors="replace"):
                if self.limit is not None and lineno > self.limit:
                    break
                yield rec if isinstance(rec, Rejected) else self._parse(rec, f"{file}:{lineno}", dataset, lineno)

    @staticmethod
    def _parse(rec: dict[str, Any], where: str, dataset: str, lineno: int) -> QAItem | Rejected:
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            return Rejected(f"missing field(s): {', '.join(missing)}", where, rec)
        if not isinstance(rec["options"], dict) or not all(isinstance(v, str) for v in rec["options"].values()):
            return Rejected("options must be an object of letter -> text", where, rec)
        if not isinstance(rec["answer"], str) or rec["answer"] not in rec["options"]:
            return Rejected(f"answer {rec['answer']!r} is not one of the options ({', '.join(rec['options'])})",
                            where, rec)
        meta = dict(rec.get("meta") or {})
        meta.update(dataset=dataset, row=lineno)
        return QAItem.from_record({**rec, "id": f"{dataset}:{rec['id']}", "meta": meta}, source=dataset)

    def graph(self, ctx: Any = None) -> None:
        """A QA file has no knowledge graph."""
        return None


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `jsonl` source."""
    register("jsonl", JsonlSource)
