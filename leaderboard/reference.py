"""The paper's reported numbers (``reference.json``): shown as labelled blocks, never mixed with measurements.

The file holds the citation, the paper's main results (Table 3: accuracy per model and benchmark, grouped by
size tier, with the paper's own average) and its stage ablation (Table 4: base, + CoT cold start, + RL stage 1,
+ RL stage 2, with the gain over base). Numbers are copied from the paper only; a benchmark the paper does not
report is simply absent. The leaderboard shows them in their own tables, cited as the paper's tables, and
never averages them with, or sorts them among, measured rows.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleming.errors import DataError


class ReferenceBenchmark(BaseModel):
    """A benchmark column of the paper's tables: our benchmark name, the paper's label and what differs."""

    model_config = ConfigDict(extra="forbid")
    key: str
    label: str
    note: str = ""


class ReferenceModel(BaseModel):
    """One model row as the paper reports it: accuracy in percent per benchmark key."""

    model_config = ConfigDict(extra="forbid")
    name: str
    tier: str = ""
    scores: dict[str, float] = Field(default_factory=dict)
    average: float | None = None
    note: str = ""


class ReferenceStage(BaseModel):
    """One row of the paper's stage ablation; `stage` is the pipeline stage it corresponds to in a run."""

    model_config = ConfigDict(extra="forbid")
    variant: str
    stage: str
    scores: dict[str, float] = Field(default_factory=dict)
    average: float | None = None
    gain: float | None = None


class ReferenceAblation(BaseModel):
    """The paper's stage ablation of one model size, in pipeline order."""

    model_config = ConfigDict(extra="forbid")
    size: str
    base_model: str = ""
    note: str = ""
    rows: list[ReferenceStage] = Field(default_factory=list)


class Reference(BaseModel):
    """The reference block: citation, what the numbers mean, the paper's tables, and how complete they are."""

    model_config = ConfigDict(extra="forbid")
    title: str
    authors: str
    year: int
    citation: str
    summary: str = ""
    metric: str
    benchmarks: list[ReferenceBenchmark] = Field(default_factory=list)
    models_source: str = ""
    models: list[ReferenceModel] = Field(default_factory=list)
    decimals: int = 2
    ablation_source: str = ""
    ablation: list[ReferenceAblation] = Field(default_factory=list)
    ablation_decimals: int = 1
    status: str = ""

    def notes(self) -> dict[str, str]:
        """Benchmark key -> what differs between our data and the paper's (only benchmarks with a note)."""
        return {b.key: b.note for b in self.benchmarks if b.note}

    def tiers(self) -> list[tuple[str, list[ReferenceModel]]]:
        """The main-results rows grouped by size tier, in the file's order."""
        groups: dict[str, list[ReferenceModel]] = {}
        for model in self.models:
            groups.setdefault(model.tier, []).append(model)
        return list(groups.items())


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
