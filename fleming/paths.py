"""Path types for component args: relative paths are read from the recipe's folder.

Use them in a component's signature (``path: ExistingPath``) or ``Args`` model; the recipe loader
passes the recipe's folder as validation context.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo


def _resolve(value: Path, info: ValidationInfo) -> Path:
    path = Path(os.path.expanduser(str(value)))
    base = (info.context or {}).get("base_dir") if info is not None else None
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _ordinary(path: Path) -> Path:
    """Refuse a FIFO, a device or a socket: reading one would hang or never end."""
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise ValueError(f"{path} is not a regular file or a folder")
    return path


def _existing(value: Path, info: ValidationInfo) -> Path:
    path = _resolve(value, info)
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    return _ordinary(path)


def _data(value: Path, info: ValidationInfo) -> Path:
    return _ordinary(_resolve(value, info))


DataPath = Annotated[Path, AfterValidator(_data)]
"""A path that may not exist yet (an output), resolved against the recipe's folder; if it exists, it is a
regular file or a folder."""

ExistingPath = Annotated[Path, AfterValidator(_existing)]
"""A regular file or a folder that must exist when the recipe is validated."""


def cache_dir() -> Path:
    """Return fleming's cache folder: $FLEMING_CACHE, else $XDG_CACHE_HOME/fleming, else ~/.cache/fleming."""
    if os.environ.get("FLEMING_CACHE"):
        return Path(os.environ["FLEMING_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fleming"
