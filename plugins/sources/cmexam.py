"""Data source `cmexam`: CMExam (Chinese National Medical Licensing Examination) in its csv format.

The csv (UTF-8, optional BOM) has a header with at least ``Question``, ``Options`` and ``Answer``; ``Options``
holds one option per line, ``A 选项文字`` (a letter, then a space or ``.``/``、``/``:``, then the text).
``Explanation`` becomes the rationale; every other column (``Disease Group``, ``Clinical Department``,
``Medical Discipline``, ``Competency``, ``Difficulty level`` ...) goes into provenance in snake case.
``path`` is one csv or a folder of them; ``split`` defaults to the file name's (``train.csv`` -> train).
A row without an answer is rejected as "no answer label"; a multi-answer row (``AB``) as "multi-answer not
supported". Ids are ``<name>:<split>-<row>`` (row = the data row, 1-based); rejects name the file and the
line the row starts on.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import PositiveInt

from fleming import ExistingPath, QAItem, Rejected, StageContext, hookimpl
from fleming.errors import DataError
from fleming.plugins.sources._files import files_in, guess_split, text

REQUIRED = ("Question", "Options", "Answer")
_OPTION = re.compile(r"^\s*([A-Z])(?:\s*[.．、:：)）]\s*|\s+)(.*?)\s*$")


def _snake(column: str) -> str:
    return re.sub(r"\W+", "_", column.strip().lower()).strip("_")


def parse_options(cell: str) -> dict[str, str]:
    """Split a CMExam Options cell into letter -> text; raise ValueError naming a line that is not an option."""
    options: dict[str, str] = {}
    for n, line in enumerate(cell.splitlines(), start=1):
        if not line.strip():
            continue
        m = _OPTION.match(line)
        if m is None:
            raise ValueError(f"option line {n} {line.strip()[:40]!r} does not start with a letter")
        if m.group(1) in options:
            raise ValueError(f"option letter {m.group(1)} appears twice")
        options[m.group(1)] = m.group(2)
    return options


class CmexamSource:
    """Read CMExam csv files into items."""

    def __init__(self, path: ExistingPath, split: str | None = None, name: str = "cmexam",
                 limit: PositiveInt | None = None) -> None:
        self.path = Path(path)
        self.split = split
        self.name = name
        self.limit = limit

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """Yield one item per valid row, and a reject (file:line and reason) per invalid one."""
        for file in files_in(self.path, (".csv",)):
            yield from self._read(file, self.split or guess_split(file))

    def _read(self, file: Path, split: str) -> Iterator[QAItem | Rejected]:
        with open(file, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise DataError(f"{file}: not a CMExam csv: missing column(s) {', '.join(missing)} "
                                f"(header: {', '.join(header) or 'none'})")
            start = reader.line_num + 1
            try:
                for row, rec in enumerate(reader, start=1):
                    if self.limit is not None and row > self.limit:
                        break
                    yield self._item(rec, f"{file}:{start}", split, row)  # csv cells are always text
                    start = reader.line_num + 1
            except UnicodeDecodeError as exc:
                raise DataError(f"{file}: not UTF-8 text ({exc.reason} near line {start})") from None
            except csv.Error as exc:
                raise DataError(f"{file}:{start}: unreadable csv: {exc}") from None

    def _item(self, rec: dict[str, Any], where: str, split: str, row: int) -> QAItem | Rejected:
        record = {k: v for k, v in rec.items() if k is not None}
        if None in rec:
            return Rejected(f"{len(rec[None])} more cell(s) than header columns", where, record)
        answer = text(rec["Answer"]).upper()
        if not answer:
            return Rejected("no answer label", where, record)
        letters = re.findall(r"[A-Z]", answer)
        if len(letters) > 1:
            return Rejected(f"multi-answer not supported (answer {answer!r})", where, record)
        if not letters:
            return Rejected(f"answer {answer!r} is not an option letter", where, record)
        answer = letters[0]
        try:
            options = parse_options(text(rec["Options"]))
        except ValueError as exc:
            return Rejected(str(exc), where, record)
        if answer not in options:
            return Rejected(f"answer {answer!r} is not one of the options ({', '.join(options) or 'none'})",
                            where, record)
        extra = {_snake(k): text(v) for k, v in record.items()
                 if k not in (*REQUIRED, "Explanation") and text(v)}
        provenance = {**extra, "dataset": self.name, "split": split, "row": row, "where": where}
        return QAItem(id=f"{self.name}:{split}-{row}", question=text(rec["Question"]), options=options,
                      answer=answer, source=self.name, rationale=text(rec.get("Explanation")) or None,
                      provenance=provenance)

    def graph(self, ctx: StageContext | None = None) -> None:
        """A QA file has no knowledge graph."""
        return None


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `cmexam` source."""
    register("cmexam", CmexamSource)
