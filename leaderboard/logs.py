"""Find Inspect evaluation logs and read their headers into one table row per log.

A source is a run folder (``runs/<name>/``, logs under ``eval/``), any folder of Inspect logs, or one
log file. Headers are read with Inspect's own log API (``header_only=True``); a log that cannot be
read, or whose ``fleming`` metadata is malformed, still gets a row (status ``unreadable`` /
``invalid``, with the reason) so it is listed, never dropped. A log's benchmark is the name in its ``fleming``
tag, else the task's ``benchmark`` metadata, else its task name; aliases are shown as the benchmark they name.
Its data file is the sha256 its task recorded (``data_sha256``); see ``pins`` for how a changed file is marked.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from fleming.benchmarks import shown_names
from fleming.errors import DataError
from fleming.eval_rows import FIELDS, data_sha256_of, finite_number, headline_metrics
from fleming.leaderboard.pins import mark_data

COLUMNS = ("run", "stage", "stage_index", "step", "final", "model", "benchmark", *FIELDS, "samples", "log",
           "status", "error", "task", "model_key", "model_path", "total_samples", "created", "has_meta",
           "strict_by_subject", "data_sha256", "data_name")
TASK_PREFIX = "fleming/"


class FlemingMeta(BaseModel):
    """The ``fleming`` entry of an eval log's metadata, as the evaluation runner writes it."""

    model_config = ConfigDict(extra="allow")
    run: str | None = None
    stage: str | None = None
    stage_index: int | None = None
    step: int | None = None
    final: bool = True
    model: str | None = None
    model_path: str | None = None
    benchmark: str | None = None


@dataclass
class LogRow:
    """One log's header, flattened: who was evaluated, on what, and the headline numbers."""

    log: str
    status: str
    run: str | None = None
    stage: str | None = None
    stage_index: int | None = None
    step: int | None = None
    final: bool | None = None
    model: str = ""
    benchmark: str = ""
    strict: float | None = None
    strict_stderr: float | None = None
    lenient: float | None = None
    lenient_stderr: float | None = None
    no_answer: float | None = None
    faithful_accuracy: float | None = None
    faithful_accuracy_stderr: float | None = None
    path_recall: float | None = None
    path_recall_stderr: float | None = None
    contradiction_rate: float | None = None
    contradiction_rate_stderr: float | None = None
    consistent: float | None = None
    flip_rate: float | None = None
    reasoning_alone: float | None = None
    reasoning_alone_stderr: float | None = None
    samples: int | None = None
    error: str | None = None
    task: str = ""
    model_key: str = ""
    model_path: str | None = None
    total_samples: int | None = None
    created: str = ""
    has_meta: bool = False
    strict_by_subject: dict[str, float] = field(default_factory=dict)
    data_sha256: str | None = None
    data_name: str = ""


def default_sources(cwd: Path | None = None) -> list[Path]:
    """Return every ``runs/*/eval`` folder under `cwd` (the working directory by default)."""
    base = (cwd or Path.cwd()) / "runs"
    return sorted(p for p in base.glob("*/eval") if p.is_dir())


def find_logs(sources: Sequence[Path | str] | None) -> list[tuple[Path, str | None]]:
    """Return (log file, run-folder name or None) for every Inspect log in `sources`, each once."""
    from inspect_ai.log import list_eval_logs

    paths = [Path(s) for s in sources] if sources else default_sources()
    if not paths:
        raise DataError("no evaluation logs: no runs/*/eval folder here; name run folders or log folders")
    found: dict[Path, str | None] = {}
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: no such file or folder (expected a run folder or a folder of Inspect logs)")
        if path.is_file():
            found.setdefault(path.resolve(), None)
            continue
        folder, run_hint = _log_folder(path)
        for info in list_eval_logs(str(folder), recursive=True, descending=False):
            found.setdefault(_local_path(info.name).resolve(), run_hint)
    return sorted(found.items(), key=lambda kv: str(kv[0]))


def _log_folder(path: Path) -> tuple[Path, str | None]:
    """Return the folder to search and the run name it implies (a run folder or its ``eval/``)."""
    if (path / "eval").is_dir():
        return path / "eval", path.resolve().name
    resolved = path.resolve()
    if resolved.name == "eval" and resolved.parent.parent.name == "runs":
        return path, resolved.parent.name
    return path, None


def _local_path(name: str) -> Path:
    """Turn a log location (a file:// URI or a plain path) into a local path."""
    if name.startswith("file://"):
        return Path(unquote(urlparse(name).path))
    return Path(name)


def read_row(path: Path, run_hint: str | None = None) -> LogRow:
    """Read one log's header into a row; an unreadable log becomes a row with status ``unreadable``."""
    from inspect_ai.log import read_eval_log

    try:
        log = read_eval_log(str(path), header_only=True)
    except Exception as exc:  # any parse failure: list the file with the reason
        return LogRow(log=str(path), status="unreadable",
                      error=_one_line(f"not a readable Inspect log ({type(exc).__name__}: {exc})"))
    spec = log.eval
    row = LogRow(log=str(path), status=str(log.status), task=spec.task, created=str(spec.created or ""),
                 benchmark=str((spec.metadata or {}).get("benchmark") or spec.task.removeprefix(TASK_PREFIX)))
    if log.error is not None:
        row.error = _one_line(log.error.message)
    row.data_sha256 = data_sha256_of(spec.metadata)
    row.data_name = str((spec.metadata or {}).get("data") or "").replace("\\", "/").rsplit("/", 1)[-1]
    raw_meta = (spec.metadata or {}).get("fleming")
    if raw_meta is not None:
        try:
            meta = FlemingMeta.model_validate(raw_meta)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            row.status = "invalid"
            row.error = f"metadata.fleming.{where}: {first['msg']}"
            meta = None
        if meta is not None:
            _apply_meta(row, meta, spec.model)
    if not row.has_meta:
        row.run = run_hint
        row.model = _plain_label(spec.model, spec.model_args)
        row.model_key = f"{spec.model}|{_digest(spec.model_args)}"
    if log.results is not None:
        row.samples = log.results.completed_samples
        row.total_samples = log.results.total_samples
        _apply_scores(row, log.results.scores)
    return row


def _apply_meta(row: LogRow, meta: FlemingMeta, model_name: str) -> None:
    """Fill the run / stage / model fields from validated fleming metadata."""
    row.has_meta = True
    row.run, row.stage, row.stage_index, row.step, row.final = (meta.run, meta.stage, meta.stage_index,
                                                                meta.step, meta.final)
    row.model_path = meta.model_path
    row.benchmark = meta.benchmark or row.benchmark
    row.model = meta.model or meta.model_path or model_name
    if meta.model_path:
        row.model_key = f"path:{meta.model_path}"
    else:
        row.model_key = f"label:{row.model}|{meta.run}|{meta.stage}|{meta.step}"


def _apply_scores(row: LogRow, scores: Sequence[Any]) -> None:
    """Take every measure (``fleming.eval_rows.MEASURES``) from the results, and the per-subject strict
    accuracy (Inspect's grouped metrics)."""
    for field, value in headline_metrics(scores).items():
        setattr(row, field, value)
    for score in scores:
        if score.name == "strict":
            row.strict_by_subject = {str(m.name): number for m in score.metrics.values()
                                     if getattr(m, "group", None) and (number := finite_number(m.value)) is not None}


def _plain_label(model: str, args: dict[str, Any]) -> str:
    """Label a log without fleming metadata: the model name plus its short scalar model args."""
    shown = []
    for key in sorted(args or {}):
        value = args[key]
        if isinstance(value, (str, int, float, bool)):
            text = str(value)
            shown.append(f"{key}={text if len(text) <= 60 else '…' + text[-59:]}")
        else:
            shown.append(f"{key}=…")
    return f"{model} ({', '.join(shown)})" if shown else model


def _digest(value: Any) -> str:
    """A short stable hash of JSON-able data (model args) used to tell models apart."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def _one_line(text: str) -> str:
    """Collapse whitespace so an error message is one line."""
    return " ".join(str(text).split())


def collect(sources: Sequence[Path | str] | None = None) -> pd.DataFrame:
    """Return one row per log found in `sources` (default: every ``runs/*/eval``), sorted by creation time."""
    rows = [read_row(path, hint) for path, hint in find_logs(sources)]
    if not rows:
        where = ", ".join(str(s) for s in sources) if sources else "runs/*/eval"
        raise DataError(f"no Inspect evaluation logs (.eval or .json) found in {where}")
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))
    names = shown_names(b for b in frame["benchmark"] if b)  # one name per benchmark, aliases resolved
    frame["benchmark"] = frame["benchmark"].map(lambda b: names.get(b, b))
    frame["final"] = frame["final"].astype("boolean")
    for col in ("stage_index", "step", "samples", "total_samples"):
        frame[col] = frame[col].astype("Int64")
    for col in FIELDS:
        frame[col] = frame[col].astype("Float64")
    return mark_data(frame.sort_values(["created", "log"], kind="stable").reset_index(drop=True))
