"""The graphs and indices `fleming.audit` checks against: loaded from an item's provenance and kept per process.

An item's ``meta.kg.source`` names the data sources whose graphs the synthesizer joined (``hpo``, or
``a+b`` for several, ``name#i`` for a second source of one plugin). Each is built with its default args,
as ``fleming run`` would with no args, and asked for its graph; several are joined with
``KnowledgeGraph.union`` in the synthesizer's order. A graph is loaded once per process and source; when its
version differs from the item's ``meta.kg.version``, a warning says so once per pair of versions. The index
(``KgIndex``) and the name index are built once per graph.
"""
from __future__ import annotations

import tempfile
import threading
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from fleming._audit_link import NameIndex
from fleming.components import build_named
from fleming.context import StageContext
from fleming.errors import DataError, FlemingError
from fleming.kg import KnowledgeGraph
from fleming.kg_index import KgIndex
from fleming.plugin_manager import load_registry

_LOCK = threading.Lock()  # scorers audit from worker threads: load and build each thing once
_GRAPHS: dict[str, KnowledgeGraph] = {}
_WARNED: set[tuple[str, str, str]] = set()
_INDICES: weakref.WeakKeyDictionary[KnowledgeGraph, tuple[KgIndex, NameIndex]] = weakref.WeakKeyDictionary()


def indices(graph: KnowledgeGraph) -> tuple[KgIndex, NameIndex]:
    """Return the graph's index and name index, built on first use."""
    got = _INDICES.get(graph)
    if got is None:
        with _LOCK:
            got = _INDICES.get(graph)
            if got is None:
                ix = KgIndex(graph)
                got = _INDICES[graph] = (ix, NameIndex(graph, ix))
    return got


def graph_of(kg: Mapping[str, Any], item_id: str) -> KnowledgeGraph:
    """Return the graph of an item's ``meta.kg`` provenance, loading it on first use."""
    source = str(kg.get("source") or "")
    graph = _GRAPHS.get(source)
    if graph is None:
        with _LOCK:
            graph = _GRAPHS.get(source)
            if graph is None:
                graph = _GRAPHS[source] = _load(source, item_id)
    version = str(kg.get("version") or "")
    if version and version != graph.version and (source, version, graph.version) not in _WARNED:
        _WARNED.add((source, version, graph.version))
        warnings.warn(f"item {item_id} was made from {version!r}; source {source!r} now gives "
                      f"{graph.version!r}, which the audit checks against", stacklevel=3)
    return graph


def _load(source: str, item_id: str) -> KnowledgeGraph:
    parts = sorted(p for p in source.split("+") if p)
    if not parts:
        raise DataError(f"item {item_id}: its provenance names no knowledge-graph source (meta.kg.source)")
    graphs = []
    with tempfile.TemporaryDirectory(prefix="fleming-audit-") as folder:
        ctx = StageContext(stage="audit", dir=Path(folder), show_progress=False, console=Console(quiet=True))
        for part in parts:
            plugin = part.split("#", 1)[0]
            try:
                _, registry = load_registry()
                source = build_named(registry, "data_sources", plugin, {}, "meta.kg.source", Path.cwd())
                graph = source.graph(ctx)
            except FlemingError as exc:
                raise DataError(f"item {item_id}: cannot load its knowledge graph from source {part!r}: "
                                f"{exc}") from exc
            if graph is None:
                raise DataError(f"item {item_id}: data source {plugin!r} has no knowledge graph")
            graphs.append(graph)
    return graphs[0] if len(graphs) == 1 else KnowledgeGraph.union(graphs, name="+".join(parts))
