"""Choosing the generation engine a stage samples with.

A recipe names one engine for the whole run (``engine: auto``, a name, or ``{name, args}``); a use may name
its own (the eval section, a curriculum's sampling, a verifier's local model), and ``--engine NAME`` on the
command line overrides every one of them. ``auto`` picks ``$FLEMING_ENGINE`` when set, else the first engine of
`AUTO_ORDER` that can run here: ``vllm`` on a machine with a GPU and vLLM installed, ``openvino`` where
OpenVINO GenAI is installed, else ``hf``; on a machine with a visible CUDA GPU, `GPU_ORDER`: ``hf`` (which
then runs on the GPU) before the CPU engine. An engine says why it cannot run here through its factory's optional
``unavailable()`` (a one-line reason, or None); engines without it are taken as always available.

``resolve(choice)`` turns a choice into a concrete engine name (and the line saying why ``auto`` fell back,
if it did); ``open_engine(choice, model)`` builds that engine with its args and loads the model's weights.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleming import plugin_manager
from fleming.components import build_named
from fleming.errors import PluginError, RecipeError, UnknownComponentError
from fleming.suggest import did_you_mean

if TYPE_CHECKING:
    from fleming.plugin_manager import Registry
    from fleming.protocols import Engine

__all__ = ["AUTO", "AUTO_ORDER", "GPU_ORDER", "EngineChoice", "auto_order", "check_name", "open_engine", "resolve", "unavailable"]

AUTO = "auto"
AUTO_ORDER: tuple[str, ...] = ("vllm", "openvino", "hf")
GPU_ORDER: tuple[str, ...] = ("vllm", "hf", "openvino")


def auto_order() -> tuple[str, ...]:
    """Return the order ``auto`` tries engines in: `GPU_ORDER` where a CUDA GPU is visible, else `AUTO_ORDER`
    (torch is imported to ask only where NVIDIA's driver shows a GPU, or where it is already loaded)."""
    if "torch" not in sys.modules and not any(Path("/proc/driver/nvidia/gpus").glob("*")):
        return AUTO_ORDER
    import torch

    return GPU_ORDER if torch.cuda.is_available() else AUTO_ORDER


@dataclass(frozen=True)
class EngineChoice:
    """An engine by name (``auto`` allowed) and the args its factory is built with."""

    name: str = AUTO
    args: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | EngineChoice | None, where: str = "engine") -> EngineChoice:
        """Read a recipe value: None (``auto``), a name, ``{name, args}`` or a choice; RecipeError otherwise."""
        if value is None:
            return cls()
        if isinstance(value, EngineChoice):
            return value
        if isinstance(value, str) and value.strip():
            return cls(value.strip())
        if isinstance(value, Mapping) and set(value) - {"name", "args"}:
            key = str(next(k for k in value if k not in ("name", "args")))
            raise RecipeError(f"{where}.{key}: unknown field" + did_you_mean(key, ["name", "args"])
                              + " (an engine is a name or {name, args})")
        if isinstance(value, Mapping) and isinstance(value.get("name"), str) and value["name"].strip():
            name, args = value["name"].strip(), value.get("args") or {}
            if not isinstance(args, Mapping):
                raise RecipeError(f"{where}.args: expected a mapping of the engine's args, got {args!r}")
            if name == AUTO and args:
                raise RecipeError(f"{where}.args: engine auto takes no args (name the engine to set its args)")
            return cls(name, dict(args))
        raise RecipeError(f"{where}: expected an engine name (auto, hf, openvino, vllm, ...) or {{name, args}}, "
                          f"got {value!r}")

    def record(self) -> dict[str, Any]:
        """The choice as a manifest records it."""
        return {"name": self.name, "args": dict(self.args)}


def _registry(registry: Registry | None) -> Registry:
    return registry if registry is not None else plugin_manager.load_registry()[1]


def check_name(name: str, where: str = "--engine", registry: Registry | None = None) -> str:
    """Return `name` when it is ``auto`` or a registered engine; else an error naming `where`, with close names."""
    if name != AUTO:
        try:
            _registry(registry).get("engines", name)
        except UnknownComponentError as exc:
            raise UnknownComponentError(f"{where}: {exc}") from None
    return name


def unavailable(name: str, registry: Registry | None = None) -> str | None:
    """Why engine `name` cannot run on this machine (its factory's ``unavailable()``), or None when it can."""
    registry = _registry(registry)
    factory = registry.get("engines", name).factory
    check = getattr(factory, "unavailable", None)
    return check() if callable(check) else None


def resolve(choice: EngineChoice, override: str | None = None,
            registry: Registry | None = None) -> tuple[EngineChoice, str | None]:
    """Return the concrete engine for `choice` (``--engine`` `override` first; ``auto`` is ``$FLEMING_ENGINE``
    when set) and, when ``auto`` passed over an engine that cannot run here, one line saying which and why."""
    if override:
        choice = EngineChoice(override, dict(choice.args) if override == choice.name else {})
    if choice.name == AUTO and os.environ.get("FLEMING_ENGINE", "").strip() not in ("", AUTO):
        choice = EngineChoice(os.environ["FLEMING_ENGINE"].strip())
    if choice.name != AUTO:
        return choice, None
    registry = _registry(registry)
    skipped: list[str] = []
    order = auto_order()
    for name in order:
        if name not in registry.by_kind["engines"]:
            continue
        why = unavailable(name, registry)
        if why is None:
            where = " on the GPU" if order is GPU_ORDER and name == "hf" else ""
            note = f"engine auto: using {name}{where} ({'; '.join(skipped)})" if skipped else None
            return EngineChoice(name), note
        skipped.append(f"{name}: {why}")
    raise PluginError("engine auto: no engine can run here (" + "; ".join(skipped) + ")")


def open_engine(choice: EngineChoice, model: str | None = None, where: str = "engine",
                base_dir: Path | None = None, registry: Registry | None = None) -> Engine:
    """Build the (concrete) engine `choice` with its args, then load `model` into it when given."""
    registry = _registry(registry)
    if choice.name == AUTO:
        choice, _ = resolve(choice, registry=registry)
    engine = build_named(registry, "engines", choice.name, dict(choice.args), where, base_dir or Path.cwd())
    if model is not None:
        engine.load(model)
    return engine
