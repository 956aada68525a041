"""The ``reward_func`` file OpenRLHF loads (``--reward.remote_url <folder>/reward_func.py``).

The `openrlhf` trainer's export copies this module into the export folder beside ``rewards.json`` (the
recipe's rewards: plugin name, validated args, weight) and ``items.jsonl`` (the prompts' items in the
uniform schema). On first call it rebuilds the rewards with ``fleming.build_component``, so a
third-party reward installed on the cluster works the same as a default one. The prompt dataset's
label is the item id (``--data.label_key id``), which finds the full item (options and answer).

OpenRLHF logs an exception from ``reward_func`` and silently uses no reward, so every sample is scored
inside its own ``try``: a failure is logged with the item id and scores 0 (``extra_logs.fleming_error``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fleming import QAItem, build_component

HERE = Path(__file__).resolve().parent
log = logging.getLogger("fleming.openrlhf_reward")
_state: dict[str, Any] = {}


def _load() -> tuple[list[tuple[str, Any, float]], dict[str, Any]]:
    if "rewards" not in _state:
        specs = json.loads((HERE / "rewards.json").read_text(encoding="utf-8"))
        _state["rewards"] = [(s["plugin"], build_component("rewards", s["plugin"], s["args"], HERE, f"rl.rewards[{i}]"),
                              float(s["weight"])) for i, s in enumerate(specs)]
        with open(HERE / "items.jsonl", encoding="utf-8") as fh:
            items = [QAItem.from_record(json.loads(line)) for line in fh if line.strip()]
        _state["items"] = {it.id: it for it in items}
    return _state["rewards"], _state["items"]


def _response(query: str, prompt: str) -> str:
    return query[len(prompt):] if query.startswith(prompt) else query


def score(query: str, prompt: str, label: str) -> tuple[float, dict[str, float]]:
    """The weighted reward of one sample, and each reward's own score."""
    rewards, items = _load()
    item = items[label]
    text = _response(query, prompt)
    parts: dict[str, float] = {}
    total = 0.0
    for name, reward, weight in rewards:
        got = reward([text], [item])[0]
        parts[f"reward/{name}"] = float(got) if got is not None else 0.0
        total += weight * parts[f"reward/{name}"]
    return total, parts


def reward_func(queries: list[str], prompts: list[str], labels: list[str], **kwargs: Any) -> dict[str, Any]:
    """OpenRLHF's entry point: ``rewards`` (weighted total), ``scores`` (in [0, 1]) and ``extra_logs``."""
    import torch

    totals: list[float] = []
    logs: dict[str, list[float]] = {"fleming_error": []}
    for query, prompt, label in zip(queries, prompts, labels):
        try:
            total, parts = score(query, prompt, label)
            error = 0.0
        except Exception:
            log.exception("fleming reward failed for item %r; it scores 0", label)
            total, parts, error = 0.0, {}, 1.0
        totals.append(total)
        logs["fleming_error"].append(error)
        for key, value in parts.items():
            logs.setdefault(key, []).append(value)
    weight_sum = sum(w for _, _, w in _state.get("rewards", [])) or 1.0
    rewards = torch.tensor(totals, dtype=torch.float32)
    return {"rewards": rewards, "scores": (rewards / weight_sum).clamp(0.0, 1.0),
            "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in logs.items()
                           if len(v) == len(totals)}}
