"""The run directory's primitives: fingerprints and manifests (atomic writes and redaction: ``fleming.io``).

Every output is written to a temporary name and renamed into place, so a file or folder either exists
whole or not at all. A stage is finished only when its `manifest.json` exists with a matching
fingerprint, and the manifest is the last thing a stage writes.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fleming.io import atomic_dir, atomic_write_json, atomic_write_text, redact, redact_data, secret_values

__all__ = ["MANIFEST", "atomic_dir", "atomic_write_json", "atomic_write_text", "file_digest", "fingerprint",
           "hash_outputs", "read_manifest", "redact", "redact_data", "secret_values"]

MANIFEST = "manifest.json"


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
