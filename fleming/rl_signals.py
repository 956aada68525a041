"""An RL stage's own signals, step by step, and the curriculum's decisions: written while the stage trains,
read back by the leaderboard and by scripts.

Two JSON-lines files in the stage's folder (``rl-<name>/``):

``steps.jsonl``: one line per logged optimizer step (every step with the `trl` trainer's default
``logging_steps: 1``), in step order::

    {"step": 5, "round": 1, "rewards": {"answer": 0.25, "format": 0.875}, "reward": 0.6875,
     "frac_reward_zero_std": 0.5, "completion_length": 31.1, "clipped_ratio": 0.125, "loss": 0.088,
     "grad_norm": 0.71, "entropy": 1.39}

* ``step``: the global step, counted from the stage's start (it continues across rounds);
* ``round``: the curriculum round the step belongs to;
* ``rewards``: each reward's mean over the step's completions, unweighted, by the recipe's plugin name;
* ``reward``: the mean weighted total reward (what the advantage is computed from);
* ``frac_reward_zero_std``: the share of rollout groups whose rewards are all equal (such a group teaches
  GRPO nothing: the paper's reward-sparsity signal);
* ``completion_length``: mean completion length in tokens; ``clipped_ratio``: the share of completions cut
  off at the trainer's longest completion;
* ``loss``; optional ``grad_norm``, ``entropy``, ``kl``, and ``seconds`` (the step's wall time). A value the
  trainer did not log is null.

``events.jsonl``: the curriculum's decisions, one line each, ``step`` being the global step they follow
(0: before the first step)::

    {"kind": "round_start", "step": 4, "round": 1, "items": 18, "rollouts": 8, "reason": "...",
     "stats": {"mined": 12, "evaluated": 40}}
    {"kind": "stage_end", "step": 9, "round": 2, "reason": "2 mining rounds done"}

``stats`` are the numbers the curriculum gave with its choice (``Selection.stats``): ``mined`` is the size
of a mined hard set, ``sparse_threshold`` the zero-variance share at which the curriculum ends the stage.

Crash safety: while the stage runs both files are hidden partial files (``.steps.jsonl.part``), which are
not stage outputs; the stage renames them into place when it finishes, before its manifest. So
``steps.jsonl`` exists only for a stage that trained to its end; `read_signals` returns a partial record
marked ``finished=False``. A resumed stage takes its partial files up again: a step recorded a second time
(a round resumed from an earlier checkpoint, or started over) replaces that step and every later one, and a
round's start replaces the events from that round on, so nothing is recorded twice.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleming.eval_rows import finite_number as _number  # a finite float, or None (JSON has no NaN)
from fleming.io import atomic_write_text, redact

__all__ = ["EVENTS", "STEPS", "SignalLog", "Signals", "partial_path", "read_signals", "stage_signals"]

STEPS = "steps.jsonl"
EVENTS = "events.jsonl"
EVENT_KINDS = ("round_start", "stage_end")


def partial_path(path: Path) -> Path:
    """The hidden name a signals file has while its stage is still running."""
    return path.with_name(f".{path.name}.part")


def _read(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, skipping a line cut short by a kill; empty when absent."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _line(record: Mapping[str, Any]) -> str:
    return redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n"


class SignalLog:
    """Writes one RL stage's ``steps.jsonl`` and ``events.jsonl`` (see the module docstring).

    The stage opens it, records each round's start and the stage's end, and hands it to the trainer in
    ``TrainJob.signals``; the trainer calls `step` for every logged step and `rewind` when it resumes.
    """

    def __init__(self, stage_dir: Path) -> None:
        self.dir = Path(stage_dir)
        self.round = 0
        self._last: int | None = None

    @property
    def steps_path(self) -> Path:
        """The partial steps file written while the stage runs."""
        return partial_path(self.dir / STEPS)

    @property
    def events_path(self) -> Path:
        """The partial events file written while the stage runs."""
        return partial_path(self.dir / EVENTS)

    def open(self) -> SignalLog:
        """Take up what a killed or re-run stage left: finished files become partial again, a line cut short
        is dropped; the round is the last one started."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in (STEPS, EVENTS):
            final, part = self.dir / name, partial_path(self.dir / name)
            if final.exists():
                if part.exists():
                    final.unlink()
                else:
                    os.replace(final, part)
            if part.exists():
                text = part.read_text(encoding="utf-8")
                records = _read(part)
                if text.count("\n") != len(records) or (text and not text.endswith("\n")):
                    self._rewrite(part, records)
        starts = [e for e in _read(self.events_path) if e.get("kind") == "round_start"]
        self.round = int(starts[-1].get("round", 0)) if starts else 0
        self._last = None
        return self

    def step(self, step: int, rewards: Mapping[str, Any], reward: Any, frac_reward_zero_std: Any,
             completion_length: Any, clipped_ratio: Any, loss: Any, round: int | None = None,
             **extra: Any) -> None:
        """Append one step's signals; a step at or before the last recorded one replaces it and all later."""
        if step <= self._last_step():
            self.rewind(step - 1)
        record: dict[str, Any] = {
            "step": int(step), "round": self.round if round is None else int(round),
            "rewards": {str(k): _number(v) for k, v in rewards.items()}, "reward": _number(reward),
            "frac_reward_zero_std": _number(frac_reward_zero_std), "completion_length": _number(completion_length),
            "clipped_ratio": _number(clipped_ratio), "loss": _number(loss),
            **{k: _number(v) for k, v in extra.items()}}
        self._append(self.steps_path, record)
        self._last = int(step)

    def rewind(self, step: int) -> None:
        """Forget every step after `step` (a round resuming from the checkpoint of `step`)."""
        records = _read(self.steps_path)
        kept = [r for r in records if int(r.get("step", 0)) <= step]
        if len(kept) != len(records):
            self._rewrite(self.steps_path, kept)
        self._last = max((int(r.get("step", 0)) for r in kept), default=0)

    def event(self, kind: str, step: int, round: int, **fields: Any) -> None:
        """Record a curriculum decision: ``round_start`` (replacing the events of this round and later ones,
        left by a killed run) or ``stage_end`` (replacing an earlier end)."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown signals event kind '{kind}' (expected one of {', '.join(EVENT_KINDS)})")
        events = _read(self.events_path)
        kept = [e for e in events if e.get("kind") != "stage_end"
                and not (kind == "round_start" and int(e.get("round", 0)) >= round)]
        if len(kept) != len(events):
            self._rewrite(self.events_path, kept)
        if kind == "round_start":
            self.round = int(round)
        self._append(self.events_path, {"kind": kind, "step": int(step), "round": int(round), **fields})

    def finish(self) -> None:
        """The stage trained to its end: move the partial files into place (before the stage's manifest)."""
        for name in (STEPS, EVENTS):
            part = partial_path(self.dir / name)
            if part.exists():
                os.replace(part, self.dir / name)

    def _last_step(self) -> int:
        if self._last is None:
            self._last = max((int(r.get("step", 0)) for r in _read(self.steps_path)), default=0)
        return self._last

    @staticmethod
    def _append(path: Path, record: Mapping[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(_line(record))
            fh.flush()
            os.fsync(fh.fileno())

    @staticmethod
    def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
        atomic_write_text(path, "".join(_line(r) for r in records))


@dataclass(frozen=True)
class Signals:
    """One RL stage's recorded signals, as read back."""

    stage: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = True  # False: read from the partial files of a stage that has not finished

    def reward_names(self) -> list[str]:
        """Every reward named in the steps, in first-seen order."""
        names: dict[str, None] = {}
        for record in self.steps:
            names.update(dict.fromkeys(record.get("rewards") or {}))
        return list(names)

    def sparse_threshold(self) -> float | None:
        """The zero-variance share at which the curriculum ends the stage, when it said so."""
        values = [_number((e.get("stats") or {}).get("sparse_threshold")) for e in self.events
                  if e.get("kind") == "round_start"]
        return next((v for v in reversed(values) if v is not None), None)


def read_signals(stage_dir: Path) -> Signals | None:
    """A stage folder's signals: the finished files, else the partial ones (``finished=False``); None when
    the stage recorded none."""
    stage_dir = Path(stage_dir)
    steps_file = stage_dir / STEPS
    finished = steps_file.exists() or (stage_dir / EVENTS).exists()
    paths = [stage_dir / STEPS, stage_dir / EVENTS]
    if not finished:
        paths = [partial_path(p) for p in paths]
        if not any(p.exists() for p in paths):
            return None
    steps = sorted((r for r in _read(paths[0]) if isinstance(r.get("step"), int)), key=lambda r: r["step"])
    events = [e for e in _read(paths[1]) if isinstance(e.get("step"), int) and isinstance(e.get("kind"), str)]
    return Signals(stage=stage_dir.name, steps=steps, events=events, finished=finished)


def stage_signals(run_dir: Path) -> list[Signals]:
    """The signals of every stage folder of a run that recorded some, by folder name."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = (read_signals(p) for p in sorted(run_dir.iterdir()) if p.is_dir() and not p.name.startswith("."))
    return [s for s in found if s is not None]
