"""Writing files safely: atomic writes (a file exists whole or not at all), secret redaction, and `cache_dir()`
(fleming's cache folder, for components that keep converted models or other rebuildable files).

Every text written through `atomic_write_text` has the values of secret-looking environment variables
(names containing KEY, TOKEN, SECRET, PASSWORD) replaced with ``***``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleming.paths import cache_dir

__all__ = ["atomic_dir", "atomic_write_json", "cache_dir", "atomic_write_text", "redact", "redact_data", "secret_values"]

_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.I)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` (redacted) to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(redact(text))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `path`, on failure it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def secret_values() -> list[str]:
    """Return the values of environment variables that look like secrets (API keys, tokens), longest first."""
    return sorted((v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8),
                  key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Replace any secret environment value found in `text` with `***`."""
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, "***")
    return text


def redact_data(data: Any) -> Any:
    """Return nested dicts, lists and strings with every secret environment value in a string replaced."""
    secrets = secret_values()
    if not secrets:
        return data

    def walk(value: Any) -> Any:
        """Redact one value, recursing into containers."""
        if isinstance(value, str):
            return redact(value, secrets)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(data)
