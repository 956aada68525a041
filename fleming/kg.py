"""The knowledge graph a data source hands to the synthesizers.

Node ids are CURIEs (``HP:0001250``, ``OMIM:154700``, ``ORPHA:558``, ``DOID:14330``, ``NCBIGene:4000``,
``DrugBank:DB00945``, ...); a node's ``xrefs`` name the same entity in other vocabularies, which is how graphs
from different sources join (``KnowledgeGraph.union`` links them with ``same_as`` edges).

Relations used by the default plugins (a source may add its own):

==================== ======================= =====================================================
relation             src → dst               attrs
==================== ======================= =====================================================
is_a                 child → parent          (phenotype or disease hierarchy)
has_phenotype        disease → phenotype     frequency (0..1 or None), frequency_label, onset
excludes_phenotype   disease → phenotype     an explicit NOT annotation: the disease lacks it
inheritance          disease → mode term     (HP mode-of-inheritance terms)
onset                disease → onset term    (HP onset terms)
associated_gene      disease → gene
indication           drug → disease
mechanism            drug → drug_class       (mechanism of action)
in_class             drug → drug_class       (established pharmacologic class, chemical class)
target               drug → gene             action
has_symptom          disease → symptom       (for literature-derived tables: co-occurrence score)
same_as              node → node             both directions, added by ``union``
==================== ======================= =====================================================
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

Attrs = dict[str, Any]


@dataclass
class Node:
    """One entity: its id, kind (``disease``, ``phenotype``, ``gene``, ``drug`` ...), name and other names."""

    id: str
    kind: str
    name: str
    synonyms: tuple[str, ...] = ()
    xrefs: tuple[str, ...] = ()
    attrs: Attrs = field(default_factory=dict)


class KnowledgeGraph:
    """Typed nodes and relation-indexed edges with out- and in-adjacency lists.

    ``version`` names the release (e.g. ``HPO 2025-01-16``); synthesizers copy it into every item's provenance.
    """

    def __init__(self, name: str, version: str = "", licence: str = "") -> None:
        self.name = name
        self.version = version
        self.licence = licence
        self.nodes: dict[str, Node] = {}
        self._out: dict[str, dict[str, list[tuple[str, Attrs | None]]]] = defaultdict(lambda: defaultdict(list))
        self._in: dict[str, dict[str, list[tuple[str, Attrs | None]]]] = defaultdict(lambda: defaultdict(list))
        self._by_xref: dict[str, list[str]] | None = None
        self.edge_count = 0

    # ------------------------------------------------------------ building
    def add_node(self, id: str, kind: str, name: str, synonyms: Iterable[str] = (),
                 xrefs: Iterable[str] = (), **attrs: Any) -> Node:
        """Add a node, or merge names, xrefs and attrs into the node already there; return it."""
        node = self.nodes.get(id)
        if node is None:
            node = self.nodes[id] = Node(id, kind, name, tuple(synonyms), tuple(xrefs), dict(attrs))
        else:
            if name and node.name in ("", node.id):  # a real name wins over a placeholder
                node.name = name
            node.synonyms = tuple(dict.fromkeys((*node.synonyms, *synonyms)))
            node.xrefs = tuple(dict.fromkeys((*node.xrefs, *xrefs)))
            node.attrs.update(attrs)
        self._by_xref = None
        return node

    def add_edge(self, src: str, rel: str, dst: str, attrs: Attrs | None = None) -> None:
        """Add the edge ``src -rel-> dst`` (both ends should be nodes of this graph)."""
        self._out[rel][src].append((dst, attrs))
        self._in[rel][dst].append((src, attrs))
        self.edge_count += 1

    # ------------------------------------------------------------ reading
    def relations(self) -> list[str]:
        """Return the relation names that have edges."""
        return sorted(r for r, m in self._out.items() if m)

    def out(self, src: str, rel: str) -> list[tuple[str, Attrs | None]]:
        """Return ``(dst, attrs)`` for every ``src -rel-> dst`` edge."""
        return self._out[rel].get(src, []) if rel in self._out else []

    def into(self, dst: str, rel: str) -> list[tuple[str, Attrs | None]]:
        """Return ``(src, attrs)`` for every ``src -rel-> dst`` edge."""
        return self._in[rel].get(dst, []) if rel in self._in else []

    def sources(self, rel: str) -> Iterator[str]:
        """Yield every node with at least one outgoing ``rel`` edge."""
        return iter(self._out[rel]) if rel in self._out else iter(())

    def edges(self, rel: str) -> Iterator[tuple[str, str, Attrs | None]]:
        """Yield ``(src, dst, attrs)`` for every edge of a relation."""
        for src, targets in self._out.get(rel, {}).items():
            for dst, attrs in targets:
                yield src, dst, attrs

    def of_kind(self, kind: str) -> list[Node]:
        """Return the nodes of one kind."""
        return [n for n in self.nodes.values() if n.kind == kind]

    def by_xref(self, xref: str) -> list[str]:
        """Return the ids of nodes that list ``xref`` among their cross-references, or have it as id."""
        if self._by_xref is None:
            index: dict[str, list[str]] = defaultdict(list)
            for node in self.nodes.values():
                for x in node.xrefs:
                    index[x].append(node.id)
            self._by_xref = dict(index)
        hits = list(self._by_xref.get(xref, []))
        return [xref, *hits] if xref in self.nodes else hits

    def label(self, id: str) -> str:
        """Return a node's name (its id when unknown)."""
        node = self.nodes.get(id)
        return node.name if node else id

    def __repr__(self) -> str:
        return f"KnowledgeGraph({self.name!r}, {self.version!r}, {len(self.nodes)} nodes, {self.edge_count} edges)"

    # ------------------------------------------------------------ combining
    @classmethod
    def union(cls, graphs: Iterable[KnowledgeGraph], name: str = "union") -> KnowledgeGraph:
        """Return one graph holding every node and edge; nodes that share an id merge, and nodes linked by
        an xref (``DOID:x`` listing ``OMIM:y``) get ``same_as`` edges both ways."""
        graphs = list(graphs)
        out = cls(name, "; ".join(g.version for g in graphs if g.version),
                  "; ".join(g.licence for g in graphs if g.licence))
        for g in graphs:
            for node in g.nodes.values():
                out.add_node(node.id, node.kind, node.name, node.synonyms, node.xrefs, **node.attrs)
            for rel, by_src in g._out.items():
                for src, targets in by_src.items():
                    for dst, attrs in targets:
                        out.add_edge(src, rel, dst, attrs)
        for node in list(out.nodes.values()):
            for x in node.xrefs:
                if x in out.nodes and x != node.id:
                    out.add_edge(node.id, "same_as", x)
                    out.add_edge(x, "same_as", node.id)
        return out
