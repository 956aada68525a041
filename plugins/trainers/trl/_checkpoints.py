"""The `trl` trainer's output folder: which checkpoints are complete, where a round resumes, when it is done.

A ``checkpoint-N`` folder is complete once TRL's save returned: fleming then writes ``fleming-saved.json`` into
it (`mark_saved`). TRL writes ``trainer_state.json`` last, so an interrupt during a save leaves a folder without
it, or without the marker; such a folder is never resumed from. `prepare_resume` removes it (so neither fleming
nor TRL's ``get_last_checkpoint`` can pick it) and returns the newest complete checkpoint, or None to start over.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from fleming import Checkpoint
from fleming.io import atomic_write_json
from fleming.protocols import TrainJob

DONE = "fleming-trl.json"
SAVED = "fleming-saved.json"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "adapter_model.safetensors", "adapter_model.bin")
_CKPT = re.compile(r"^checkpoint-(\d+)$")
_ROUND = re.compile(r"^round-(\d+)$")


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Every ``checkpoint-N`` folder in `folder`, as (N, path), oldest first."""
    return sorted((int(m.group(1)), p) for p in folder.glob("checkpoint-*") if (m := _CKPT.match(p.name))
                  and p.is_dir())


def incomplete_reason(folder: Path) -> str | None:
    """Why `folder` cannot be resumed from (a save that did not finish), or None when it is complete."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        if not isinstance(json.loads(state.read_text(encoding="utf-8")).get("global_step"), int):
            return "trainer_state.json has no global_step"
    except (OSError, ValueError, AttributeError):
        return "trainer_state.json is not valid JSON"
    if not any((folder / name).is_file() for name in WEIGHTS):
        return "no weights file"
    if not (folder / SAVED).is_file():
        return f"no {SAVED} (the save did not return)"
    return None


def mark_saved(folder: Path, global_step: int) -> None:
    """Record that TRL's save of `folder` returned: the checkpoint may be resumed from."""
    atomic_write_json(folder / SAVED, {"global_step": global_step})


def newest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The highest-numbered complete ``checkpoint-N`` folder in `folder`, and N."""
    done = [(n, p) for n, p in checkpoints(folder) if incomplete_reason(p) is None]
    if not done:
        return None
    n, path = done[-1]
    return path, n


def prepare_resume(folder: Path) -> tuple[tuple[Path, int] | None, list[str]]:
    """Remove the incomplete checkpoints in `folder`; return the newest complete one (or None) and one line
    per removed folder, for the stage log."""
    removed = []
    for _, path in checkpoints(folder):
        reason = incomplete_reason(path)
        if reason is not None:
            shutil.rmtree(path)
            removed.append(f"removed incomplete {path.name} ({reason}; interrupted while saving)")
    return newest_checkpoint(folder), removed


def step_offset(out: Path) -> int:
    """Steps already taken in this stage by earlier rounds (folders ``round-K`` beside this one)."""
    m = _ROUND.match(out.name)
    if not m or int(m.group(1)) == 0:
        return 0
    prev = out.parent / f"round-{int(m.group(1)) - 1}" / DONE
    if not prev.exists():
        return 0
    return int(json.loads(prev.read_text(encoding="utf-8"))["step"])


def finished(out: Path, job: TrainJob) -> Checkpoint | None:
    """The final checkpoint of a folder already trained to the end, or None."""
    marker = out / DONE
    if not marker.exists():
        return None
    rec = json.loads(marker.read_text(encoding="utf-8"))
    if not Path(rec["path"]).is_dir():
        return None
    return Checkpoint(path=Path(rec["path"]), stage=job.stage, step=int(rec["step"]), metrics=rec.get("metrics", {}))


def write_done(out: Path, ckpt: Checkpoint, record: dict[str, Any]) -> None:
    """Mark the folder finished: its final checkpoint and the stage-cumulative step."""
    atomic_write_json(out / DONE, {"path": str(ckpt.path), "step": ckpt.step,
                                   "metrics": dict(ckpt.metrics), **record})
