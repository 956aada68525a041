"""Benchmark records: find a benchmark's data (file, folder or hub), read it, check every row.

A record is the uniform schema of the benchmark files: ``{"id", "question", "options": {letter: text},
"answer", "meta"}``. Rows in a benchmark's own format are accepted where they are unambiguous: ``options`` as a
list (lettered A, B, ... in order), ``answer`` as a one-letter list (JMED's official form), no ``id`` (the row
number is used). A row that is still malformed is never dropped: reading stops with a `DataError` naming the
file and line, because a silently smaller test set would change every reported accuracy.
"""
from __future__ import annotations

import functools
import hashlib
import os
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleming.errors import DataError
from fleming.items import json_lines
from fleming.types import Rejected

ENV_DATA_DIR = "FLEMING_DATA_DIR"
LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class HubSource:
    """Where a benchmark lives on the HF hub, and how one of its rows becomes a uniform record."""

    path: str
    split: str
    convert: Callable[[Mapping[str, Any], int], Mapping[str, Any] | None]
    config: str | None = None
    data_files: str | None = None


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: its name, its file (a glob) in a data folder, its hub copy and its subject field."""

    name: str
    file: str
    hub: HubSource | None = None
    subject: str | None = None
    note: str = ""


def data_dir_from(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """Return the data folder to read: the argument, else $FLEMING_DATA_DIR, else None (use the hub)."""
    value = data_dir if data_dir not in (None, "") else os.environ.get(ENV_DATA_DIR) or None
    return Path(os.path.expanduser(str(value))) if value is not None else None


def find_file(spec: BenchmarkSpec, data_dir: Path | None, data_file: str | os.PathLike[str] | None) -> Path | None:
    """Return the file to read for `spec` (None: no local data, use the hub) or raise a one-line DataError."""
    if data_file not in (None, ""):
        path = Path(os.path.expanduser(str(data_file)))
        if not path.is_absolute() and not path.exists() and data_dir is not None:
            path = data_dir / path
        if not path.is_file():
            raise DataError(f"{spec.name}: data_file not found: {data_file}")
        return path
    if data_dir is None:
        return None
    if not data_dir.is_dir():
        raise DataError(f"{spec.name}: data folder not found: {data_dir} (-T data_dir / ${ENV_DATA_DIR})")
    pattern = spec.file.lower()
    matches = sorted(p for p in data_dir.iterdir() if p.is_file() and Path(p.name.lower()).match(pattern))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"{spec.name}: no file matching '{spec.file}' in {data_dir}"
                        f"{' (' + spec.note + ')' if spec.note else ''}; pass -T data_file=FILE")
    names = ", ".join(p.name for p in matches)
    raise DataError(f"{spec.name}: several files match '{spec.file}' in {data_dir} ({names}); "
                    f"pick one with -T data_file=FILE")


def missing_data(name: str, data_dir: Path | None, options: Any = None) -> str | None:
    """Why benchmark `name` has no local file in `data_dir` (one line), or None when it has one."""
    import importlib

    if data_dir is None:
        return f"{name}: no data folder (set ${ENV_DATA_DIR} or eval.data_dir)"
    module = importlib.import_module(f"fleming.tasks.{name}")
    spec = getattr(module, "SPECS", {}).get(options, module.SPEC)
    try:
        find_file(spec, data_dir, None)
    except DataError as exc:
        return str(exc)
    return None


def normalise(raw: Any, where: str, default_id: str) -> dict[str, Any] | Rejected:
    """Return the uniform record for one row, or a `Rejected` saying what is wrong with it."""
    if not isinstance(raw, Mapping):
        return Rejected(f"expected a JSON object, got {type(raw).__name__}", where, {"row": repr(raw)[:500]})
    rec = dict(raw)
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        return Rejected("missing or empty question", where, rec)
    options = rec.get("options")
    if isinstance(options, list):
        if len(options) > len(LETTERS):
            return Rejected(f"{len(options)} options: at most {len(LETTERS)} can be lettered", where, rec)
        options = dict(zip(LETTERS, options))
    if not isinstance(options, Mapping) or len(options) < 2:
        return Rejected("options must be an object of letter -> text with at least two entries", where, rec)
    bad = [k for k, v in options.items() if not (isinstance(k, str) and len(k) == 1 and k in LETTERS)]
    if bad:
        return Rejected(f"option keys must be single capital letters A-Z, not {bad[0]!r}", where, rec)
    empty = [k for k, v in options.items() if not isinstance(v, str) or not v.strip()]
    if empty:
        return Rejected(f"option {empty[0]} is empty or not text", where, rec)
    answer = rec.get("answer")
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if not isinstance(answer, str) or answer not in options:
        return Rejected(f"answer {answer!r} is not one of the option letters ({''.join(options)})", where, rec)
    meta = rec.get("meta") or {}
    if not isinstance(meta, Mapping):
        return Rejected("meta must be an object", where, rec)
    rid = rec.get("id")
    rid = default_id if rid in (None, "") else str(rid)
    return {"id": rid, "question": question, "options": dict(options), "answer": answer, "meta": dict(meta)}


def read_jsonl(path: Path, name: str) -> Iterator[tuple[str, dict[str, Any] | Rejected]]:
    """Yield ``(file:line, record or Rejected)`` for every non-blank line of a JSONL file."""
    for lineno, raw in json_lines(path):
        where = f"{path}:{lineno}"
        yield where, raw if isinstance(raw, Rejected) else normalise(raw, where, f"{name}-{lineno:05d}")


def checked(rows: Iterable[tuple[str, dict[str, Any] | Rejected]], origin: str) -> list[dict[str, Any]]:
    """Return the records, or raise one DataError for the first bad row (with the count of bad rows)."""
    records: list[dict[str, Any]] = []
    rejects: list[Rejected] = []
    seen: dict[str, str] = {}
    for where, got in rows:
        if isinstance(got, Rejected):
            rejects.append(got)
            continue
        if got["id"] in seen:
            rejects.append(Rejected(f"duplicate id {got['id']!r} (first at {seen[got['id']]})", where, got))
            continue
        seen[got["id"]] = where
        records.append(got)
    if rejects:
        first = rejects[0]
        more = f" ({len(rejects)} bad rows in {origin})" if len(rejects) > 1 else ""
        raise DataError(f"{first.where}: {first.reason}{more}")
    return records


def load_hub(spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """Load the benchmark from the HF hub (needs network) and convert its rows to uniform records."""
    hint = (f"no local data for {spec.name}: pass -T data_dir=DIR or set {ENV_DATA_DIR} to a folder holding "
            f"'{spec.file}', or -T data_file=FILE")
    if spec.hub is None:
        raise DataError(f"{hint} (no hub copy is known for {spec.name})")
    hub = spec.hub
    try:
        import datasets

        ds = datasets.load_dataset(hub.path, hub.config, split=hub.split, data_files=hub.data_files)
    except Exception as exc:  # offline, gated, renamed: say what to do instead, in one line
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise DataError(f"{hint}; loading the hub dataset '{hub.path}' failed: {reason}") from None
    origin = f"hub:{hub.path}" + (f"/{hub.config}" if hub.config else "") + f":{hub.split}"

    def rows() -> Iterator[tuple[str, dict[str, Any] | Rejected]]:
        for i, row in enumerate(ds):
            where = f"{origin}[{i}]"
            converted = hub.convert(row, i)
            if converted is not None:
                yield where, normalise(converted, where, f"{spec.name}-{i:05d}")

    return checked(rows(), origin)


def data_sha256(origin: str | os.PathLike[str] | None) -> str | None:
    """Return the sha256 of the data file `origin` names; None when it names no file (a hub id, items in memory).

    The file is read in 1 MiB blocks and the digest is kept per (path, mtime, size), so building every task of a
    run from one file hashes it once; a file that changes is hashed again."""
    if origin in (None, ""):
        return None
    path = Path(os.path.expanduser(str(origin)))
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if not path.is_file():
        return None
    return _file_sha256(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    """The sha256 of the file at `path` (`mtime_ns` and `size` only key the cache)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_records(spec: BenchmarkSpec, data_dir: str | os.PathLike[str] | None = None,
                 data_file: str | os.PathLike[str] | None = None) -> tuple[list[dict[str, Any]], str]:
    """Return the benchmark's checked records and where they came from (a file path or a hub id)."""
    path = find_file(spec, data_dir_from(data_dir), data_file)
    if path is None:
        records = load_hub(spec)
        origin = f"hf://{spec.hub.path}" if spec.hub else spec.name
    else:
        records = checked(read_jsonl(path, spec.name), str(path))
        origin = str(path)
    return records, origin
