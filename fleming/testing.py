"""Helpers for testing fleming and fleming plugins: fresh registries and small item fixtures."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fleming.context import StageContext
from fleming.engines import EngineChoice
from fleming import plugin_manager
from fleming.plugin_manager import Registry, build_registry, get_plugin_manager
from fleming.types import QAItem


def fresh_registry(*plugins: Any, entry_points: bool = False) -> tuple[Any, Registry]:
    """Return a new (plugin manager, registry): the defaults, `plugins`, and entry points only if asked."""
    pm = get_plugin_manager(entry_points=entry_points, extra=plugins)
    return pm, build_registry(pm)


def add_plugins(monkeypatch: Any, *plugins: Any) -> None:
    """Add `plugins` to every registry fleming loads while `monkeypatch` (pytest's fixture) lasts: for components
    fleming builds by name itself, such as the engine a curriculum or the evaluation opens."""
    real = plugin_manager.load_registry
    monkeypatch.setattr(plugin_manager, "load_registry",
                        lambda entry_points=True, extra=(): real(entry_points, [*plugins, *extra]))


def stage_ctx(folder: Path, stage: str = "test", engine: str | Mapping[str, Any] | EngineChoice = "hf",
              **fields: Any) -> StageContext:
    """A stage context for calling a component directly: its folder (created), no progress bars, the run's
    `engine` (default ``hf``, so tests are deterministic: a name, ``{name, args}`` or a choice) and any other
    ``StageContext`` field given (``seed``, ``base_model``, ``start_model``, ``rollouts`` ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    return StageContext(stage=stage, dir=folder, engine=EngineChoice.parse(engine),
                        **{"show_progress": False, **fields})


def make_item(i: int = 0, answer: str = "B", difficulty: str | None = None, entity: str | None = None,
              options: Sequence[str] = ("alpha", "beta", "gamma", "delta")) -> QAItem:
    """Return a small valid item; `entity` sets the answer entity used by the held-out split."""
    letters = "ABCDEFGHIJ"
    prov: dict[str, Any] = {"dataset": "fixture", "row": i}
    if entity is not None:
        prov["answer_entity"] = entity
    return QAItem(id=f"fixture-{i}", question=f"Question number {i}?",
                  options={letters[k]: f"{o} {i}" for k, o in enumerate(options)}, answer=answer,
                  source="fixture", difficulty=difficulty, provenance=prov)  # type: ignore[arg-type]


def write_jsonl(path: Path, records: Iterable[dict[str, Any] | str]) -> Path:
    """Write records (dicts, or raw strings for malformed lines) as a JSONL file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def uniform_records(n: int, start: int = 0) -> list[dict[str, Any]]:
    """Return `n` valid uniform-schema records."""
    return [make_item(i).to_record() for i in range(start, start + n)]


def perturbed(model: str, folder: Path, scale: float = 0.5, seed: int = 1) -> str:
    """Save `model` with seeded noise added to every weight into `folder` and return its path: tiny-random so
    changed answers something other than blank lines, and a checkpoint whose weights differ from its start."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy = AutoModelForCausalLM.from_pretrained(model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * scale)
    policy.save_pretrained(folder)
    AutoTokenizer.from_pretrained(model).save_pretrained(folder)
    return str(folder)
