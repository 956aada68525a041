"""The run directory's primitives: atomic writes, fingerprints, manifests, and secret redaction.

Every output is written to a temporary name and renamed into place, so a file or folder either exists
whole or not at all. A stage is finished only when its `manifest.json` exists with a matching
fingerprint, and the manifest is the last thing a stage writes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.I)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
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
    """Return the values of environment variables that look like secrets (API keys, tokens)."""
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


def fingerprint(data: Any) -> str:
    """Return a short stable hash of JSON-able data."""
    blob = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _update_with_file(h: Any, path: Path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def file_digest(path: Path) -> str:
    """Return a short hash of one file's contents."""
    h = hashlib.sha256()
    _update_with_file(h, path)
    return h.hexdigest()[:16]


def hash_outputs(folder: Path) -> str:
    """Hash every file under `folder` (names and contents), except the manifest and temporary files."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == MANIFEST or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        h.update(rel.encode() + b"\0")
        _update_with_file(h, path)
    return h.hexdigest()[:16]


def read_manifest(stage_dir: Path) -> dict[str, Any] | None:
    """Return a stage's manifest, or None when the stage has not finished."""
    try:
        return json.loads((stage_dir / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
