"""File handling shared by the curated QA sources: which files a path means, split names, JSON lines."""
from __future__ import annotations

import json
import numbers
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fleming.errors import DataError
from fleming.items import json_lines as read_json_lines
from fleming.types import Rejected

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SPLITS = {"train": "train", "training": "train", "dev": "dev", "val": "validation", "valid": "validation",
           "validation": "validation", "test": "test"}


def files_in(path: Path, suffixes: Sequence[str]) -> list[Path]:
    """Return `path` itself, or the files in folder `path` ending in one of `suffixes`, in name order."""
    if not path.is_dir():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(tuple(suffixes)))
    if not found:
        raise DataError(f"{path}: no {' or '.join(suffixes)} files in this folder")
    return found


def guess_split(path: Path) -> str:
    """Return the split a file name says (``phrases_no_exclude_test.jsonl`` -> test), else the file's stem."""
    for word in reversed(re.split(r"[^a-z]+", path.stem.lower())):
        if word in _SPLITS:
            return _SPLITS[word]
    return path.stem


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | Rejected]]:
    """Yield (line number, object) per non-blank line; undecodable bytes are replaced (the structure filter
    reports them), and a line that is not a JSON object becomes a reject."""
    return read_json_lines(path, errors="replace")


def read_json(path: Path) -> Any:
    """Parse a whole JSON file; a syntax error is a DataError naming the file, line and column."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _missing(value: Any) -> bool:
    """Whether a cell is empty: null, or NaN (how pandas and csv readers leave a blank cell)."""
    return value is None or (isinstance(value, float) and value != value)


def text(value: Any, what: str = "a text cell") -> str:
    """Return a cell as option/question text: strings stripped, numbers as written, missing as ''; raise
    ValueError naming `what` for a value that is not text (a list, an object)."""
    if _missing(value):
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, numbers.Number):
        return str(value)
    raise ValueError(f"{what} must be text, not a {type(value).__name__}")


def question_text(value: Any, what: str = "question") -> str:
    """Return the question cell as text; raise ValueError for a null or a value that is not text."""
    if _missing(value):
        raise ValueError(f"{what} must be text, not null")
    return text(value, what)
