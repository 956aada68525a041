"""The paper's reported numbers (``reference.json``): shown as a labelled block, never mixed with measurements.

The file holds the citation and, per model, the accuracies the Fleming-R1 paper reports (Table 3).
Numbers are copied from the paper only; a benchmark the paper does not report is simply absent.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleming.errors import DataError


class ReferenceBenchmark(BaseModel):
    """A benchmark column of the paper's table: our benchmark name and the paper's label."""

    model_config = ConfigDict(extra="forbid")
    key: str
    label: str


class ReferenceModel(BaseModel):
    """One model row as the paper reports it: accuracy in percent per benchmark key."""

    model_config = ConfigDict(extra="forbid")
    name: str
    scores: dict[str, float] = Field(default_factory=dict)
    average: float | None = None
    note: str = ""


class Reference(BaseModel):
    """The reference block: citation, what the numbers mean, the rows, and how complete they are."""

    model_config = ConfigDict(extra="forbid")
    title: str
    authors: str
    year: int
    citation: str
    summary: str = ""
    metric: str
    benchmarks: list[ReferenceBenchmark] = Field(default_factory=list)
    models: list[ReferenceModel] = Field(default_factory=list)
    status: str = ""


def load_reference(path: Path | None = None) -> Reference | None:
    """Read `path` (default: the packaged reference.json); None when the packaged file is not installed."""
    if path is None:
        packaged = resources.files("fleming.leaderboard").joinpath("reference.json")
        if not packaged.is_file():
            return None
        text, where = packaged.read_text(encoding="utf-8"), "reference.json"
    else:
        try:
            text, where = Path(path).read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise DataError(f"{path}: cannot read the reference file ({exc.strerror})") from exc
    try:
        return Reference.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DataError(f"{where}: {field}: {first['msg']}") from exc
