"""The review queue: items a label check flagged, for a person to accept, relabel or drop.

A label-check verifier writes, in its stage folder (e.g. ``runs/<name>/verify/``):

* ``review_queue.jsonl``: one row per flagged or unverified item: ``id``, ``verdict``, ``reason``, ``correct``,
  ``trials``, ``answers`` (the model's answers), ``answer`` (the current label), ``question``, ``options``,
  the editable ``decision`` / ``new_answer`` / ``note``, and the full ``item`` record;
* ``review_queue.csv``: the same rows for a spreadsheet (``options`` as ``A. text | B. text``);
* ``review_queue.html``: a read-only page showing the rows.

A person fills ``decision`` with ``accept`` (the label is right: keep the item), ``relabel`` (``new_answer``
holds the right letter) or ``drop`` (remove the item), in either the JSONL or the CSV file. ``fleming review
apply RUN`` validates those edits and records them in ``RUN/review/decisions.jsonl`` (outside every stage
folder, so re-running a stage never loses them); the label check reads that file on every run. A decision
belongs to one version of an item (a digest of its question, options and answer): if the item changes
upstream it is flagged afresh. Nothing flagged is lost: an undecided or dropped item stays in the queue and
in the stage's ``rejects.jsonl``; applying the same decisions twice changes nothing.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fleming.errors import DataError
from fleming.io import atomic_write_text
from fleming.items import jsonl_text
from fleming.prompts import render
from fleming.types import QAItem

QUEUE = "review_queue"
DECISIONS = Path("review") / "decisions.jsonl"
CHOICES = ("accept", "relabel", "drop")
CSV_FIELDS = ("id", "verdict", "reason", "correct", "trials", "answers", "answer", "question", "options",
              "decision", "new_answer", "note")


@dataclass(frozen=True)
class Decision:
    """A person's decision on one item version: accept, relabel (to `new_answer`) or drop."""

    id: str
    decision: str
    digest: str
    new_answer: str | None = None
    note: str = ""

    def summary(self) -> str:
        """Describe the decision in a few words."""
        extra = f" to {self.new_answer}" if self.decision == "relabel" else ""
        return f"{self.decision}{extra} by reviewer" + (f" ({self.note})" if self.note else "")


def item_digest(item: QAItem) -> str:
    """Return a short hash of what a reviewer judged: the question, the options in order, the answer."""
    blob = json.dumps([item.question, list(item.options.items()), item.answer], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- writing the queue

def queue_row(item: QAItem, verdict: str, reason: str, details: Mapping[str, Any],
              decision: Decision | None) -> dict[str, Any]:
    """Return one queue row (decision fields filled from an earlier decision, if any)."""
    return {"id": item.id, "verdict": verdict, "reason": reason, "correct": details.get("correct"),
            "trials": details.get("trials"), "answers": list(details.get("answers") or []),
            "answer": item.answer, "question": item.question, "options": dict(item.options),
            "decision": decision.decision if decision else None,
            "new_answer": decision.new_answer if decision else None,
            "note": decision.note if decision else "", "digest": item_digest(item), "item": item.to_record()}


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "answers": " ".join(a or "-" for a in r["answers"]),
                         "options": " | ".join(f"{k}. {v}" for k, v in r["options"].items()),
                         "decision": r["decision"] or "", "new_answer": r["new_answer"] or ""})
    return buf.getvalue()


def write_queue(stage_dir: Path, rows: Sequence[Mapping[str, Any]], title: str = "") -> list[Path]:
    """Write the queue as JSONL, CSV and HTML in `stage_dir` (always, even when empty); return the paths."""
    paths = [stage_dir / f"{QUEUE}.{ext}" for ext in ("jsonl", "csv", "html")]
    atomic_write_text(paths[0], jsonl_text(rows))
    atomic_write_text(paths[1], _csv_text(rows))
    atomic_write_text(paths[2], render("label_check_review", rows=rows, title=title or stage_dir.name) + "\n")
    return paths


# ---------------------------------------------------------------- decisions

def _decision_from(row: Mapping[str, Any], where: str) -> Decision | None:
    raw = str(row.get("decision") or "").strip().lower()
    if not raw:
        return None
    if raw not in CHOICES:
        raise DataError(f"{where}: decision {raw!r} is not one of {', '.join(CHOICES)} (or empty)")
    letters = list((row.get("options") or {}) if isinstance(row.get("options"), dict) else [])
    new = str(row.get("new_answer") or "").strip() or None
    if raw == "relabel":
        if new is None or (letters and new not in letters):
            raise DataError(f"{where}: relabel needs new_answer set to one of the option letters "
                            f"({', '.join(letters)}), got {new!r}")
    elif new is not None:
        raise DataError(f"{where}: new_answer {new!r} is only read with decision 'relabel', not {raw!r}")
    return Decision(id=str(row["id"]), decision=raw, digest=str(row.get("digest") or ""), new_answer=new,
                    note=str(row.get("note") or "").strip())


def read_decisions(run_dir: Path) -> dict[str, Decision]:
    """Return the recorded decisions of a run, by item id (none when the file does not exist)."""
    path = run_dir / DECISIONS
    if not path.exists():
        return {}
    out: dict[str, Decision] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rec = json.loads(line)
                out[rec["id"]] = Decision(**rec)
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: not a review decision ({type(exc).__name__}: {exc})") from None
    return out


def _queue_edits(stage_dir: Path) -> dict[str, Decision | _Conflict | None]:
    """Read the decisions a person wrote in a stage's queue files, JSONL and CSV (by item id)."""
    jsonl = stage_dir / f"{QUEUE}.jsonl"
    rows: dict[str, dict[str, Any]] = {}
    from_jsonl: dict[str, Decision | None] = {}
    for lineno, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{jsonl}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        rows[row["id"]] = row
        from_jsonl[row["id"]] = _decision_from(row, f"{jsonl}:{lineno} (id {row['id']})")
    from_csv: dict[str, Decision | None] = {}
    csv_path = stage_dir / f"{QUEUE}.csv"
    if csv_path.exists():
        with open(csv_path, encoding="utf-8", newline="") as fh:
            for lineno, rec in enumerate(csv.DictReader(fh), start=2):
                base = rows.get(rec.get("id") or "")
                if base is None:
                    raise DataError(f"{csv_path}:{lineno}: id {rec.get('id')!r} is not in {jsonl.name}")
                merged = {**base, "decision": rec.get("decision"), "new_answer": rec.get("new_answer"),
                          "note": rec.get("note")}
                from_csv[base["id"]] = _decision_from(merged, f"{csv_path}:{lineno} (id {base['id']})")
    out: dict[str, Decision | _Conflict | None] = {}
    for item_id in rows:
        a = from_jsonl.get(item_id)
        b = from_csv.get(item_id, a)
        out[item_id] = a if a == b else _Conflict(item_id, a, b)  # resolved against the recorded decision
    return out


@dataclass(frozen=True)
class _Conflict:
    """The JSONL and the CSV disagree on one item's decision."""

    id: str
    jsonl: Decision | None
    csv: Decision | None


def queue_stages(run_dir: Path) -> list[Path]:
    """Return the stage folders of a run that hold a review queue, in name order."""
    return sorted(p.parent for p in run_dir.glob(f"*/{QUEUE}.jsonl"))


@dataclass(frozen=True)
class ApplySummary:
    """What `apply_decisions` did: decisions now recorded, how many changed, the stages with queues."""

    recorded: dict[str, Decision]
    changed: int
    stages: list[str]
    pending: int


def apply_decisions(run_dir: Path) -> ApplySummary:
    """Read every queue's edits, check them, and record them in ``RUN/review/decisions.jsonl``.

    Per item, a file whose decision differs from the recorded one is the edit; if the JSONL and the CSV hold
    two different new decisions, that is an error naming the item. Emptying a decision withdraws it.
    """
    stages = queue_stages(run_dir)
    if not stages:
        raise DataError(f"{run_dir}: no review queue found (no stage folder holds {QUEUE}.jsonl); "
                        "run a recipe with a label-check verifier first")
    recorded = read_decisions(run_dir)
    new = dict(recorded)
    pending = 0
    for stage_dir in stages:
        for item_id, got in _queue_edits(stage_dir).items():
            before = recorded.get(item_id)
            if isinstance(got, _Conflict):
                edits = [d for d in (got.jsonl, got.csv) if d != before]
                if len(edits) != 1:
                    raise DataError(f"{stage_dir.name}/{QUEUE}: item {item_id} has different decisions in the "
                                    f"JSONL ({_show(got.jsonl)}) and the CSV ({_show(got.csv)}); make them agree")
                got = edits[0]
            if got is None:
                new.pop(item_id, None)
                pending += 1
            else:
                new[item_id] = got
    changed = sum(new.get(k) != recorded.get(k) for k in set(new) | set(recorded))
    if changed:
        rows = [asdict(new[k]) for k in sorted(new)]
        atomic_write_text(run_dir / DECISIONS, jsonl_text(rows))
    return ApplySummary(recorded=new, changed=changed, stages=[s.name for s in stages], pending=pending)


def _show(d: Decision | None) -> str:
    return "none" if d is None else d.decision + (f" {d.new_answer}" if d.new_answer else "")
