"""Data source `hf-dataset`: any multiple-choice dataset, from the HF hub or a local copy, through a field mapping.

``dataset`` is a hub id (``openlifescienceai/medmcqa``, loaded lazily with ``datasets.load_dataset``) or a local
path: a folder written by ``save_to_disk`` (a ``DatasetDict`` is indexed by ``split``), or one ``.json`` (an
array of objects, or JSON lines), ``.jsonl``, ``.csv`` or ``.parquet`` file. ``fields`` maps the item's parts
to columns::

    fields: {question: question, options: [opa, opb, opc, opd], answer: cop, id: id, rationale: exp,
             meta: [subject_name]}

``options`` is one column holding a list (letters A, B, ... in order) or a letter -> text mapping (null
values, e.g. HF struct padding, are dropped), or a list of columns (trailing empty ones dropped; a csv cell
holding a JSON list or object is read as one). ``answer_format`` says what the answer column holds:
``letter``, ``index`` (0-based), ``index1`` (1-based) or ``text`` (an option's text). ``name`` is the dataset
name in ids (``<name>:<id column or split-row>``) and provenance (``dataset``, ``split``, ``row``: the 0-based
row, ``where``, plus the ``meta`` columns). A row whose answer is missing (null, empty, -1) is rejected as "no answer
label"; other unusable rows are rejected with the reason and where they are.
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.errors import DataError
from fleming.plugins.sources._files import LETTERS, json_lines, question_text, read_json, text

LOCAL_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?$")
_NO_LABEL = "no answer label"


def _dataset_ref(value: str, info: ValidationInfo) -> str | Path:
    """Resolve an existing local path (relative to the recipe's folder); otherwise accept a hub id."""
    path = Path(os.path.expanduser(value))
    base = (info.context or {}).get("base_dir") if info is not None else None
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if path.exists():
        if not (path.is_file() or path.is_dir()):
            raise ValueError(f"{path} is not a regular file or a folder")
        return path
    if value.startswith((".", "/", "~")) or value.lower().endswith(LOCAL_SUFFIXES):
        raise ValueError(f"file not found: {path}")
    if not _HUB_ID.match(value):
        raise ValueError(f"{value!r} is neither an existing local path nor a hub id (owner/name)")
    return value


DatasetRef = Annotated[str, AfterValidator(_dataset_ref)]


class FieldMap(BaseModel):
    """Which column holds each part of an item."""

    model_config = ConfigDict(extra="forbid")
    question: str
    options: str | Annotated[list[str], Field(min_length=2)]
    answer: str
    id: str | None = None
    rationale: str | None = None
    meta: list[str] = Field(default_factory=list)

    def columns(self) -> list[str]:
        """Return every column the mapping reads."""
        opts = self.options if isinstance(self.options, list) else [self.options]
        return [c for c in (self.question, *opts, self.answer, self.id, self.rationale, *self.meta) if c]


class _Bad(Exception):
    """A row that cannot become an item (the message is the reject's reason)."""


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class HfDatasetSource:
    """Read a HF dataset (hub id or local copy) into items through a field mapping."""

    def __init__(self, dataset: DatasetRef, fields: FieldMap, split: str = "train", config: str | None = None,
                 answer_format: Literal["letter", "index", "index1", "text"] = "letter", name: str | None = None,
                 limit: PositiveInt | None = None) -> None:
        local = Path(os.path.expanduser(str(dataset)))
        self.local = local if isinstance(dataset, Path) or local.exists() else None
        self.dataset = str(dataset)
        self.fields = fields if isinstance(fields, FieldMap) else FieldMap.model_validate(fields)
        self.split = split
        self.config = config
        self.answer_format = answer_format
        self.name = name or (self.local.stem if self.local is not None else self.dataset.rsplit("/", 1)[-1])
        self.limit = limit

    # ------------------------------------------------------------ reading rows

    def rows(self) -> Iterator[tuple[str, int, dict[str, Any] | Rejected]]:
        """Yield (where, 0-based row, record or reject) for the dataset's rows, in order."""
        if self.local is None:
            yield from self._table(self._hub(), self.dataset)
        elif self.local.is_dir():
            yield from self._table(self._saved(), str(self.local))
        elif self.local.suffix.lower() == ".parquet":
            yield from self._parquet()
        elif self.local.suffix.lower() == ".csv":
            yield from self._csv()
        elif self.local.suffix.lower() in (".json", ".jsonl"):
            yield from self._json()
        else:
            raise DataError(f"{self.local}: unsupported file type (use {', '.join(LOCAL_SUFFIXES)} or a "
                            "save_to_disk folder)")

    def _check_columns(self, columns: list[str], where: str) -> None:
        missing = [c for c in dict.fromkeys(self.fields.columns()) if c not in columns]
        if missing:
            raise DataError(f"hf-dataset '{self.name}': {where} has no column(s) {', '.join(missing)} "
                            f"(columns: {', '.join(columns)})")

    def _hub(self) -> Any:
        import datasets

        try:
            return datasets.load_dataset(self.dataset, self.config, split=self.split)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200]
            raise DataError(f"cannot load '{self.dataset}' (split {self.split}) from the HF hub: "
                            f"{type(exc).__name__}: {reason}; offline? save it with save_to_disk (or as "
                            "json/jsonl/csv/parquet) where you have network and give that local path as "
                            "dataset") from None

    def _saved(self) -> Any:
        import datasets

        try:
            ds = datasets.load_from_disk(str(self.local))
        except Exception as exc:
            raise DataError(f"{self.local}: not a dataset folder written by save_to_disk "
                            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
        if isinstance(ds, datasets.DatasetDict):
            if self.split not in ds:
                raise DataError(f"{self.local}: no split '{self.split}' (splits: {', '.join(ds)})")
            ds = ds[self.split]
        return ds

    def _table(self, ds: Any, label: str) -> Iterator[tuple[str, int, dict[str, Any] | Rejected]]:
        self._check_columns(list(ds.column_names), label)
        for i, rec in enumerate(ds):
            yield f"{label}[{self.split}][{i}]", i, rec

    def _parquet(self) -> Iterator[tuple[str, int, dict[str, Any] | Rejected]]:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.local)
        self._check_columns(list(pf.schema_arrow.names), str(self.local))
        i = 0
        for batch in pf.iter_batches(batch_size=1024):
            for rec in batch.to_pylist():
                yield f"{self.local}[{i}]", i, rec
                i += 1

    def _csv(self) -> Iterator[tuple[str, int, dict[str, Any] | Rejected]]:
        with open(self.local, encoding="utf-8-sig", newline="") as fh:  # type: ignore[arg-type]
            reader = csv.DictReader(fh)
            self._check_columns(list(reader.fieldnames or []), str(self.local))
            start = reader.line_num + 1
            for i, rec in enumerate(reader):
                yield f"{self.local}:{start}", i, rec
                start = reader.line_num + 1

    def _json(self) -> Iterator[tuple[str, int, dict[str, Any] | Rejected]]:
        assert self.local is not None
        with open(self.local, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096).lstrip()
        if head.startswith("["):
            data = read_json(self.local)
            for i, rec in enumerate(data):
                where = f"{self.local}[{i}]"
                yield where, i, rec if isinstance(rec, dict) else Rejected(
                    f"expected a JSON object, got {type(rec).__name__}", where, {"value": _jsonable(rec)})
            return
        for i, (lineno, rec) in enumerate(json_lines(self.local)):
            yield f"{self.local}:{lineno}", i, rec

    # ------------------------------------------------------------ rows to items

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """Yield one item per usable row, and a reject (where and reason) per other row."""
        for where, row, rec in self.rows():
            if self.limit is not None and row >= self.limit:
                break
            if isinstance(rec, Rejected):
                yield rec
                continue
            try:
                yield self._item(rec, row, where)
            except (_Bad, ValueError) as exc:
                yield Rejected(str(exc), where, _jsonable(rec))

    def _get(self, rec: dict[str, Any], column: str) -> Any:
        if column not in rec:
            raise _Bad(f"missing column '{column}'")
        return rec[column]

    def _options(self, rec: dict[str, Any]) -> dict[str, str]:
        spec = self.fields.options
        if isinstance(spec, list):
            values = [rec.get(c) for c in spec]
            while values and text(values[-1]) == "":
                values.pop()
            return {LETTERS[k]: text(v) for k, v in enumerate(values)}
        value = self._get(rec, spec)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise _Bad(f"options column '{spec}' holds text that is not a JSON list or object") from None
        if isinstance(value, dict):
            options = {}
            for key, v in value.items():
                letter = str(key).strip().upper()
                if len(letter) != 1 or letter not in LETTERS:
                    raise _Bad(f"options mapping key {key!r} is not a letter")
                if v is not None:
                    options[letter] = text(v)
            return options
        if isinstance(value, (list, tuple)) and len(value) <= len(LETTERS):
            return {LETTERS[k]: text(v) for k, v in enumerate(value)}
        raise _Bad(f"options column '{spec}' must hold a list or a letter -> text mapping, "
                   f"not {type(value).__name__}")

    def _answer(self, value: Any, options: dict[str, str]) -> str:
        if value is None or (isinstance(value, str) and not value.strip()) or value == -1 or value == "-1":
            raise _Bad(_NO_LABEL)
        fmt = self.answer_format
        if fmt == "text":
            want = " ".join(text(value).casefold().split())
            hits = [k for k, v in options.items() if " ".join(v.casefold().split()) == want]
            if len(hits) != 1:
                raise _Bad(f"answer text {text(value)[:60]!r} matches {len(hits)} options (need exactly 1)")
            return hits[0]
        if fmt == "letter":
            letter = text(value).strip("()").rstrip(".").strip().upper()
            if len(letter) != 1 or letter not in LETTERS:
                hint = " (set answer_format: index or index1)" if letter.isdigit() else ""
                raise _Bad(f"answer {value!r} is not an option letter{hint}")
        else:
            try:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                index = int(value)
            except (TypeError, ValueError):
                raise _Bad(f"answer {value!r} is not an option number") from None
            index -= 1 if fmt == "index1" else 0
            if isinstance(value, bool) or not 0 <= index < len(options):
                raise _Bad(f"answer {value!r} is out of range for {len(options)} options ({fmt})")
            letter = list(options)[index]
        if letter not in options:
            raise _Bad(f"answer {letter!r} is not one of the options ({', '.join(options)})")
        return letter

    def _item(self, rec: dict[str, Any], row: int, where: str) -> QAItem:
        f = self.fields
        options = self._options(rec)
        if not options:
            raise _Bad("no options")
        answer = self._answer(self._get(rec, f.answer), options)
        row_id = text(self._get(rec, f.id)) if f.id else ""
        provenance = {"dataset": self.name, "split": self.split, "row": row, "where": where,
                      **{c: _jsonable(rec.get(c)) for c in f.meta}}
        rationale = text(rec.get(f.rationale)) if f.rationale else ""
        question = question_text(self._get(rec, f.question))
        return QAItem(id=f"{self.name}:{row_id or f'{self.split}-{row}'}", question=question, options=options,
                      answer=answer, source=self.name, rationale=rationale or None, provenance=provenance)

    def graph(self, ctx: StageContext | None = None) -> None:
        """A QA dataset has no knowledge graph."""
        return None


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `hf-dataset` source."""
    register("hf-dataset", HfDatasetSource)
