"""Reading delimited KG tables for the `edge-table` source: headers, numbered rows, CURIEs, row reports.

A table is read as a stream (``csv`` module, any size, optionally ``.gz``); every data row comes with its
line number so that a bad row can be reported as ``file:line``. A column a table spec names but the header
lacks is a one-line ``DataError`` naming the file, the column and the columns present.
"""
from __future__ import annotations

import csv
import gc
import gzip
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from fleming import Rejected, StageContext
from fleming.errors import DataError
from fleming.suggest import did_you_mean

BATCH = 50_000  # rows per progress step
SHOWN = 5  # rejected rows quoted in the stage notes
KEPT = 10_000  # rejected rows written to the rejects file
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def separator(path: Path, sep: str | None) -> str:
    """Return the field separator: the one given, else by extension (.tsv/.tab/.txt: tab, .csv: comma)."""
    if sep:
        return "\t" if sep in ("\\t", "tab") else sep
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".tsv", ".tab", ".txt"):
        return "\t"
    if ext == ".csv":
        return ","
    with _open(path) as fh:
        header = fh.readline()
    return "\t" if header.count("\t") >= header.count(",") else ","


def _open(path: Path) -> io.TextIOWrapper:
    raw = gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


class TableFile:
    """One open table: its header, column lookups that fail with a clear error, and numbered rows."""

    def __init__(self, path: Path, sep: str | None = None) -> None:
        self.path = Path(path)
        self.sep = separator(self.path, sep)
        self._fh = _open(self.path)
        self._reader = csv.reader(self._fh, delimiter=self.sep)
        try:
            self.columns = [c.strip() for c in next(self._reader)]
        except StopIteration:
            self._fh.close()
            raise DataError(f"{self.path}: the file is empty (a header row is needed)") from None

    def __enter__(self) -> TableFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def index(self, column: str, needed_by: str) -> int:
        """Return the position of `column`; a missing one is a DataError naming file, column and header."""
        try:
            return self.columns.index(column)
        except ValueError:
            raise missing_column(self.path, column, needed_by, self.columns) from None

    def rows(self, ctx: StageContext | None = None, description: str = "") -> Iterator[tuple[int, list[str]]]:
        """Yield ``(line number, fields)`` for every data row (blank lines skipped), with progress."""
        reader = self._reader

        def numbered() -> Iterator[tuple[int, list[str]]]:
            for row in reader:
                if row:  # a blank line; a line of empty fields is a row (and is rejected)
                    yield reader.line_num, row

        it = numbered()
        chunks = iter(lambda: islice(it, BATCH), None)  # lazy: the bar advances once per BATCH rows
        for chunk in progress(ctx, chunks, _estimate_batches(self.path), description or f"reading {self.path.name}"):
            count = 0
            for item in chunk:
                count += 1
                yield item
            if count < BATCH:
                return


def missing_column(path: Path, column: str, needed_by: str, columns: list[str]) -> DataError:
    """Return the one-line error for a column a spec names but a file lacks."""
    hint = did_you_mean(column, columns)
    hint = hint if "did you mean" in hint else ""
    return DataError(f"{path}: no column {column!r} (named by {needed_by}){hint}; "
                     f"the columns are: {', '.join(columns)}")


def _estimate_batches(path: Path) -> int | None:
    """Return roughly how many row batches a plain file holds (newlines counted), None for .gz."""
    if path.suffix.lower() == ".gz":
        return None
    lines = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            lines += block.count(b"\n")
    return max(1, -(-lines // BATCH))


@contextmanager
def bulk_load() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large graph is built (it only adds acyclic containers)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def progress(ctx: StageContext | None, iterable: Iterable[Any], total: int | None, description: str) -> Iterable[Any]:
    """Wrap `iterable` in the stage's progress bar when there is a stage context."""
    bar = getattr(ctx, "progress", None)
    return bar(iterable, total=total, description=description) if callable(bar) else iterable


def curie(value: str, prefix: str | None, prefix_map: Mapping[str, str]) -> str:
    """Return `value` as a CURIE: a bare id gets ``prefix:``; a present prefix is renamed by `prefix_map`."""
    value = value.strip()
    head, sep, rest = value.partition(":")
    if sep and head and " " not in head:
        return f"{prefix_map.get(head, head)}:{rest}"
    if prefix:
        return f"{prefix_map.get(prefix, prefix)}:{value}"
    return value


_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class RowReport:
    """What loading a graph met: counters, and every rejected row (reason and file:line)."""

    name: str
    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)
    rejected_count: int = 0

    def reject(self, reason: str, where: str, record: Mapping[str, Any] | None = None) -> None:
        """Count a row that could not become an edge; keep it (up to KEPT) for the rejects file."""
        self.rejected_count += 1
        if len(self.rejected) < KEPT:
            self.rejected.append(Rejected(reason, where, dict(record or {})))

    def publish(self, ctx: StageContext | None) -> None:
        """Put the counts and rejected rows in the stage's notes and log; write the rejects to a file."""
        notes = getattr(ctx, "notes", None)
        if notes is None:
            return
        notes.setdefault("kg_sources", {})[self.name] = dict(sorted(self.counts.items()))
        if not self.rejected_count:
            return
        entry: dict[str, Any] = {"count": self.rejected_count,
                                 "first": [f"{r.where}: {r.reason}" for r in self.rejected[:SHOWN]]}
        folder = getattr(ctx, "dir", None)
        if folder is not None:
            out = Path(folder) / f"rejected-rows-{_SLUG.sub('-', self.name)}.jsonl"
            with open(out, "w", encoding="utf-8") as fh:
                for r in self.rejected:
                    fh.write(json.dumps(r.to_record(), ensure_ascii=False) + "\n")
            entry["file"] = out.name
        notes.setdefault("rejected_rows", {})[self.name] = entry
        log: Callable[[str], None] | None = getattr(ctx, "log", None)
        if log is not None:
            log(f"{self.name}: {self.rejected_count} row(s) rejected, first: {entry['first'][0]}")
