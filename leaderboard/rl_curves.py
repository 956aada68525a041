"""A run page's RL signals: find the run's folder from its logs, read each RL stage's ``steps.jsonl`` and
``events.jsonl`` (``fleming.rl_signals``) and chart them per step, with the curriculum's decisions as markers.

The run folder is where the logs lie (``<run folder>/eval/...``), else the folder above the stage of the
evaluated checkpoint's path in the logs' ``fleming`` tag (``<run folder>/<stage>/...``). When neither reaches
a folder, or it holds no signals, the page shows no RL charts and nothing fails.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from fleming.leaderboard.charts import Marker, step_chart
from fleming.rl_signals import Signals, stage_signals

TOTAL = "total (weighted)"


@dataclass(frozen=True)
class StageCurves:
    """One RL stage's charts and the curriculum's decisions, each as one line of text."""

    stage: str
    steps: int
    charts: list[Markup] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    finished: bool = True


def _candidates(run: str, rows: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Folders that may be the run's folder: where its logs lie, then where its evaluated models lie."""
    from_logs, from_models = [], []
    for row in rows:
        log, model_path, stage = row.get("log"), row.get("model_path"), row.get("stage")
        if isinstance(log, str) and log:
            from_logs += [p.parent for p in Path(log).parents if p.name == "eval" and p.parent.name == run]
        if isinstance(model_path, str) and model_path and isinstance(stage, str) and stage:
            path = Path(model_path)
            from_models += [p.parent for p in [path, *path.parents] if p.name == stage]
    return [*from_logs, *from_models]


def run_folder(run: str, rows: Sequence[Mapping[str, Any]]) -> Path | None:
    """The run's folder on this machine, or None when no log leads to one."""
    for folder in _candidates(run, rows):
        try:
            if folder.is_dir():
                return folder
        except OSError:
            continue
    return None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def event_text(event: Mapping[str, Any]) -> str:
    """One line saying what the curriculum decided, and why."""
    step, reason = event.get("step"), event.get("reason")
    if event.get("kind") == "round_start":
        stats = ", ".join(f"{k} {_number(v)}" for k, v in (event.get("stats") or {}).items())
        text = (f"step {step}: round {event.get('round')} starts with {event.get('items')} items × "
                f"{event.get('rollouts')} rollouts" + (f" ({stats})" if stats else ""))
    else:
        text = f"step {step}: the stage ends"
    return text + (f": {reason}" if reason else "")


def markers(signals: Signals) -> list[Marker]:
    """A marker per event: ``R<round>`` (with the mined-set size when there is one) or ``end: <why>``."""
    out = []
    for event in signals.events:
        step = event["step"]
        if event.get("kind") == "round_start":
            mined = (event.get("stats") or {}).get("mined")
            label = f"R{event.get('round')}" + (f" mined {_number(mined)}" if mined is not None else "")
            out.append(Marker(step, label, event_text(event), "round-start"))
        elif event.get("kind") == "stage_end":
            why = str(event.get("reason") or "").split(":")[0].strip()
            out.append(Marker(step, f"end: {why}" if why else "end", event_text(event), "stage-end"))
    return out


def _points(signals: Signals, key: str, reward: str | None = None) -> list[tuple[int, float]]:
    out = []
    for record in signals.steps:
        value = (record.get("rewards") or {}).get(reward) if reward is not None else record.get(key)
        if isinstance(value, (int, float)):
            out.append((record["step"], float(value)))
    return out


def stage_curves(signals: Signals) -> StageCurves:
    """The four charts of one stage: mean reward per reward (and the weighted total), the share of groups whose
    rewards are all equal (with the curriculum's sparsity threshold), mean completion length, clipped ratio."""
    marks = markers(signals)
    charts: list[Markup] = []
    if signals.steps:
        rewards = [(name, _points(signals, "", name)) for name in signals.reward_names()]
        rewards.append((TOTAL, _points(signals, "reward")))
        charts.append(step_chart("Mean reward", [(n, p) for n, p in rewards if p], marks))
        sparse = signals.sparse_threshold()
        line = None if sparse is None else (sparse, f"stage ends at ≥ {sparse:.0%}")
        charts.append(step_chart("Groups whose rewards are all equal",
                                 [("zero-std share", _points(signals, "frac_reward_zero_std"))], marks, percent=True,
                                 threshold=line))
        charts.append(step_chart("Mean completion length (tokens)",
                                 [("mean length", _points(signals, "completion_length"))], marks))
        charts.append(step_chart("Completions clipped at the length limit",
                                 [("clipped", _points(signals, "clipped_ratio"))], marks, percent=True))
    return StageCurves(signals.stage, len(signals.steps), charts, [event_text(e) for e in signals.events],
                       signals.finished)


def run_curves(run: str, rows: Sequence[Mapping[str, Any]]) -> list[StageCurves]:
    """Every RL stage of the run that recorded signals, in pipeline order; empty when the folder is not here."""
    folder = run_folder(run, rows)
    if folder is None:
        return []
    try:
        found = stage_signals(folder)
    except (OSError, UnicodeDecodeError):
        return []
    order = {r.get("stage"): int(r["stage_index"]) for r in rows if r.get("stage_index") is not None}
    found.sort(key=lambda s: (order.get(s.stage, 1 << 30), s.stage))
    return [stage_curves(s) for s in found]
