"""The plugin manager: default plugins, entry-point plugins, and the registry of named components.

Default plugins (the paper's components) load from ``DEFAULT_PLUGINS`` exactly as third-party ones
do; third-party plugins come from the entry-point group ``fleming``. ``FLEMING_PLUGINS`` selects
which third-party plugins load: unset loads all, an empty value loads none, ``a,b`` loads only those,
``-a,-b`` loads all but those (names are entry-point or distribution names).
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from fleming import hookspecs
from fleming.errors import PluginError, UnknownComponentError
from fleming.suggest import did_you_mean

DEFAULT_PLUGINS: tuple[str, ...] = (
    "fleming.plugins.sources.jsonl",
    "fleming.plugins.graphs.hpo.source",
    "fleming.plugins.kg.synthesizer",
    "fleming.plugins.graphs.icd10cm",
    "fleming.plugins.graphs.drug_names",
    "fleming.plugins.graphs.edge_table.source",
    "fleming.plugins.benchmarks",
    "fleming.plugins.sources.medqa",
    "fleming.plugins.sources.medmcqa",
    "fleming.plugins.sources.pubmedqa",
    "fleming.plugins.sources.cmexam",
    "fleming.plugins.sources.hf_dataset",
    "fleming.plugins.filters.structure",
    "fleming.plugins.filters.dedup",
    "fleming.plugins.filters.decontaminate",
    "fleming.plugins.filters.phi",
    "fleming.plugins.rewards",
    "fleming.plugins.kg.path_teacher",
    "fleming.plugins.teachers.llm",
    "fleming.plugins.curricula.difficulty_mix",
    "fleming.plugins.curricula.hard_mining",
    "fleming.plugins.trainers.trl.trainer",
    "fleming.plugins.trainers.openrlhf.trainer",
    "fleming.plugins.verifiers.label_check",
    "fleming.plugins.verifiers.difficulty",
    "fleming.plugins.verifiers.pass_rate",
    "fleming.plugins.engines.hf",
    "fleming.plugins.engines.openvino.engine",
    "fleming.plugins.engines.vllm",
)

KINDS: dict[str, str] = {
    "data_sources": "data source",
    "synthesizers": "synthesizer",
    "filters": "filter",
    "verifiers": "verifier",
    "teachers": "teacher",
    "rewards": "reward",
    "curricula": "curriculum",
    "trainers": "trainer",
    "benchmarks": "benchmark",
    "engines": "engine",
}

_OWN_DIST = "fleming-med"


@dataclass(frozen=True)
class Registration:
    """One named component: its kind, the factory, and the plugin and distribution that provide it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    dist: str


@dataclass
class Registry:
    """Every component registered by the loaded plugins, by kind and name."""

    by_kind: dict[str, dict[str, Registration]] = field(default_factory=lambda: {k: {} for k in KINDS})
    broken: dict[str, str] = field(default_factory=dict)

    def add(self, reg: Registration) -> None:
        """Add one registration; a name taken by another plugin is an error naming both plugins."""
        taken = self.by_kind[reg.kind].get(reg.name)
        if taken is not None:
            raise PluginError(
                f"{KINDS[reg.kind]} '{reg.name}' is registered twice: by plugin '{taken.plugin}' "
                f"({taken.dist}) and by plugin '{reg.plugin}' ({reg.dist}); remove or block one "
                f"(FLEMING_PLUGINS=-{reg.plugin})"
            )
        self.by_kind[reg.kind][reg.name] = reg

    def names(self, kind: str) -> list[str]:
        """Return the registered names of one kind, sorted."""
        return sorted(self.by_kind[kind])

    def get(self, kind: str, name: str) -> Registration:
        """Return the component `name` of `kind`, or raise an error suggesting close names."""
        try:
            return self.by_kind[kind][name]
        except KeyError:
            pass
        msg = f"unknown {KINDS[kind]} '{name}'" + did_you_mean(name, self.by_kind[kind])
        if self.broken:
            msg += "; note: " + "; ".join(f"plugin '{p}' failed to load ({e})" for p, e in self.broken.items())
        raise UnknownComponentError(msg)

    def __iter__(self) -> Iterable[Registration]:
        for kind in KINDS:
            yield from sorted(self.by_kind[kind].values(), key=lambda r: r.name)


def _selection() -> tuple[set[str] | None, set[str]]:
    """Parse FLEMING_PLUGINS into (allowed or None for all, blocked)."""
    raw = os.environ.get("FLEMING_PLUGINS")
    if raw is None:
        return None, set()
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        return set(), set()
    blocked = {n[1:] for n in names if n.startswith("-")}
    allowed = {n for n in names if not n.startswith("-")}
    return (allowed or None), blocked


def get_plugin_manager(
    entry_points: bool = True, extra: Iterable[Any] = (), defaults: bool = True
) -> pluggy.PluginManager:
    """Return a new plugin manager with the default plugins, selected entry-point plugins and `extra`.

    Each call builds a fresh manager: nothing is global, so tests never share plugin state.
    A third-party plugin that fails to import is a warning; its error is kept in ``pm.fleming_broken``.
    """
    pm = pluggy.PluginManager("fleming")
    pm.add_hookspecs(hookspecs)
    pm.fleming_dists = {}  # type: ignore[attr-defined]
    pm.fleming_broken = {}  # type: ignore[attr-defined]
    if defaults:
        own = f"{_OWN_DIST} {_own_version()}"
        for modname in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(modname), name=modname)
            pm.fleming_dists[modname] = own  # type: ignore[attr-defined]
    if entry_points:
        _load_entry_points(pm)
    for plugin in extra:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        pm.register(plugin, name=name)
        pm.fleming_dists[name] = "(registered in-process)"  # type: ignore[attr-defined]
    return pm


def _own_version() -> str:
    try:
        return md.version(_OWN_DIST)
    except md.PackageNotFoundError:
        return "(not installed)"


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed, blocked = _selection()
    for ep in md.entry_points(group="fleming"):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        names = {ep.name, dist}
        if names & blocked or (allowed is not None and not names & allowed):
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take fleming down
            reason = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"fleming plugin '{ep.name}' ({dist}) failed to load: {reason}", stacklevel=2)
            pm.fleming_broken[ep.name] = reason  # type: ignore[attr-defined]
            continue
        pm.register(plugin, name=ep.name)
        pm.fleming_dists[ep.name] = f"{dist} {version}"  # type: ignore[attr-defined]


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook of every plugin and collect the components by kind."""
    registry = Registry(broken=dict(getattr(pm, "fleming_broken", {})))
    dists = getattr(pm, "fleming_dists", {})
    for kind in KINDS:
        caller = getattr(pm.hook, f"register_{kind}")
        for impl in caller.get_hookimpls():
            plugin = impl.plugin_name
            dist = dists.get(plugin, "?")

            def register(name: str, factory: Callable[..., Any], _k: str = kind, _p: str = plugin,
                         _d: str = dist) -> None:
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin '{_p}' registered a {KINDS[_k]} without a name")
                registry.add(Registration(_k, name, factory, _p, _d))

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin '{plugin}' ({dist}) failed in register_{kind}: {type(exc).__name__}: {exc}"
                ) from exc
    return registry


def load_registry(entry_points: bool = True, extra: Iterable[Any] = ()) -> tuple[pluggy.PluginManager, Registry]:
    """Build a fresh plugin manager and its registry in one call."""
    pm = get_plugin_manager(entry_points=entry_points, extra=extra)
    return pm, build_registry(pm)
