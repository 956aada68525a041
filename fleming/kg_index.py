"""Precomputed indices over a knowledge graph, shared by the `kg` synthesizer and the reasoning audit: made
once, then every check is a few big-integer bit operations.

* **Disease entities.** Every disease node with phenotype annotations is one entity (named by it). A
  disease node without any (a ``DOID:`` term from a drug source) joins each entity it has a ``same_as``
  edge to (``KnowledgeGraph.union`` adds them from xrefs), so its drugs, modes or genes count for those
  diseases; joined to none, it is an entity of its own. Links are followed one step only, so a general
  term cross-referenced by several subtypes never merges the subtypes into one disease.
* **Bitsets.** A set of entities is a Python ``int`` whose bit ``i`` stands for entity ``i``.
  ``has[t]``: entities annotated (with a non-zero frequency) with term ``t`` or a descendant of it.
* **"Has" and "surely lacks".** With ``ANN(d)`` every phenotype annotation of ``d`` (any frequency,
  zero included), ``POS(d)`` those whose frequency is unknown or above 0, ``NOT(d)`` its explicit NOT
  annotations and ``G`` the generic depth (depth = longest ``is_a`` path up to the root):

  - ``d`` *has* ``t`` iff some ``a`` in ``POS(d)`` is ``t`` or a descendant of ``t``;
  - ``d`` *surely lacks* ``t`` iff it does not have ``t`` and either (explicit) some ``x`` in ``NOT(d)`` is
    ``t`` or an ancestor of ``t``, or (silent) no ``a`` in ``ANN(d)`` is ``t``, a descendant of ``t``, or an
    ancestor of ``t`` deeper than ``G`` (an annotation with "Seizure" leaves "Focal seizure" open; one
    with "Abnormality of the nervous system", depth 2, says nothing about it).

  `has_term` and `lacks_term` answer these for one disease id and one term (`lacks_term` says which way).
* **Other relations** (`value_status`): ``d`` *has* value ``v`` of ``inheritance``, ``onset`` or
  ``associated_gene`` iff one of its targets (from any member of its entity) is ``v`` or a descendant of
  ``v``; it *surely lacks* ``v`` iff it has at least one target and every target is unrelated to ``v`` (not
  ``v``, an ancestor or a descendant; for ``onset``, also in another of the ``ONSET_CLASSES``). A gene not
  among a disease's genes is thus lacking, as the gene template's distractors are; a disease with no
  target of the relation neither has nor lacks anything.
"""
from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Literal

from fleming._bits import bits_of, bitset, bitsets
from fleming.kg import KnowledgeGraph

__all__ = ["ONSET_CLASSES", "KgIndex", "bits_of", "bitset", "bitsets", "display_name", "finding_text",
           "frequency_range"]

# HPO onset classes that exclude each other (Pediatric onset groups three of them, so it is no class)
ONSET_CLASSES = ("HP:0030674", "HP:0003577", "HP:0003623", "HP:0003593", "HP:0011463", "HP:0003621",
                 "HP:0003581")


def frequency_range(attrs: dict[str, Any] | None) -> tuple[float, float] | None:
    """Return an annotation's (lo, hi) frequency, from ``frequency_range`` or the point ``frequency``."""
    if attrs is None:
        return None
    rng = attrs.get("frequency_range")
    if rng is not None:
        return (float(rng[0]), float(rng[1]))
    f = attrs.get("frequency")
    return None if f is None else (float(f), float(f))


class KgIndex:
    """Entities, the is_a hierarchy and per-term entity bitsets of one knowledge graph."""

    def __init__(self, graph: KnowledgeGraph, generic_depth: int = 3) -> None:
        self.graph = graph
        self.generic_depth = generic_depth
        self._parents: dict[str, tuple[str, ...]] = defaultdict(tuple)
        self._children: dict[str, list[str]] = defaultdict(list)
        for child, parent, _ in graph.edges("is_a"):
            self._parents[child] += (parent,)
            self._children[parent].append(child)
        self._depth: dict[str, int] = {}
        self._anc: dict[str, frozenset[str]] = {}
        self._lacks: dict[str, int] = {}
        enabled = gc.isenabled()
        gc.disable()  # ~1 M small objects, all kept: the cyclic collector would only rescan the graph
        try:
            self._build_entities()
            self._build_annotations()
        finally:
            if enabled:
                gc.enable()

    # ------------------------------------------------------------ hierarchy
    def ancestors(self, term: str) -> frozenset[str]:
        """Return the strict ancestors of `term` along is_a."""
        got = self._anc.get(term)
        if got is None:
            acc: set[str] = set()
            for p in self._parents.get(term, ()):
                acc.add(p)
                acc |= self.ancestors(p)
            got = self._anc[term] = frozenset(acc)
        return got

    def depth(self, term: str) -> int:
        """Return the length of the longest is_a path from `term` up to a root."""
        got = self._depth.get(term)
        if got is None:
            parents = self._parents.get(term, ())
            got = self._depth[term] = 1 + max(self.depth(p) for p in parents) if parents else 0
        return got

    def related(self, a: str, b: str) -> bool:
        """Return whether one term is the other or an ancestor of it."""
        return a == b or a in self.ancestors(b) or b in self.ancestors(a)

    # ------------------------------------------------------------ entities
    def _build_entities(self) -> None:
        g = self.graph
        diseases = [n.id for n in g.of_kind("disease")]
        anchors = [d for d in diseases if g.out(d, "has_phenotype") or g.out(d, "excludes_phenotype")]
        index = {d: i for i, d in enumerate(anchors)}
        members: list[list[str]] = [[d] for d in anchors]
        self.entities_of: dict[str, list[int]] = {d: [i] for d, i in index.items()}
        for d in diseases:
            if d in index:
                continue
            linked = sorted({index[o] for o, _ in g.out(d, "same_as") if o in index})
            if not linked:
                linked = [len(members)]
                members.append([])
            for e in linked:
                members[e].append(d)
            self.entities_of[d] = linked
        self.members: list[tuple[str, ...]] = [tuple(m) for m in members]
        self.entity_of: dict[str, int] = {d: es[0] for d, es in self.entities_of.items()}
        self.size = len(self.members)
        self.all = (1 << self.size) - 1
        self.ids = [m[0] for m in self.members]
        self.names = [display_name(g.label(i)) for i in self.ids]
        by_prefix: dict[str, list[int]] = defaultdict(list)
        for e, rep in enumerate(self.ids):
            by_prefix[rep.split(":", 1)[0]].append(e)
        self.prefix_bits = {p: bitset(v) for p, v in by_prefix.items()}

    def prefix(self, e: int) -> str:
        """Return the vocabulary (``OMIM``, ``ORPHA`` ...) of an entity's representative id."""
        return self.ids[e].split(":", 1)[0]

    # ------------------------------------------------------------ annotations
    def _build_annotations(self) -> None:
        g = self.graph
        n = self.size
        self.pos: list[dict[str, tuple[float, float] | None]] = [{} for _ in range(n)]
        self.ann: list[dict[str, tuple[float, float] | None]] = [{} for _ in range(n)]
        self.nots: list[set[str]] = [set() for _ in range(n)]
        direct_pos: dict[str, list[int]] = defaultdict(list)
        direct_ann: dict[str, list[int]] = defaultdict(list)
        direct_not: dict[str, list[int]] = defaultdict(list)
        for src in g.sources("has_phenotype"):
            e = self.entity_of.get(src)
            if e is None:
                continue
            pos, ann = self.pos[e], self.ann[e]
            for dst, attrs in g.out(src, "has_phenotype"):
                rng = frequency_range(attrs)
                ann[dst] = rng
                direct_ann[dst].append(e)
                if rng is None or rng[1] > 0:
                    pos[dst] = rng
                    direct_pos[dst].append(e)
        for src, dst, _ in g.edges("excludes_phenotype"):
            e = self.entity_of.get(src)
            if e is not None:
                self.nots[e].add(dst)
                direct_not[dst].append(e)
        self.n_ann = [len(a) for a in self.ann]
        self.direct_ann = self._sets(direct_ann)
        self.direct_not = self._sets(direct_not)
        self.has = self._propagate_up(self._sets(direct_pos))
        self.ann_below = self._propagate_up(self.direct_ann)

    def _sets(self, lists: dict[str, list[int]]) -> dict[str, int]:
        return bitsets(lists, self.size)

    def source_of(self, e: int, rel: str, dst: str) -> str:
        """Return the member of entity `e` that has the edge ``member -rel-> dst`` (the path names it)."""
        members = self.members[e]
        if len(members) > 1:
            for m in members:
                if any(d == dst for d, _ in self.graph.out(m, rel)):
                    return m
        return members[0]

    def _propagate_up(self, direct: dict[str, int]) -> dict[str, int]:
        """Return term -> OR of `direct` over the term and all its descendants (terms with any bit only)."""
        out: dict[str, int] = {}
        for t in sorted({*direct, *(a for t in direct for a in self.ancestors(t))}, key=self.depth,
                        reverse=True):
            acc = direct.get(t, 0)
            for c in self._children.get(t, ()):
                acc |= out.get(c, 0)
            out[t] = acc
        return out

    def lacks(self, term: str) -> int:
        """Return the entities that surely lack `term` (see the module docstring)."""
        got = self._lacks.get(term)
        if got is None:
            anc = self.ancestors(term)
            block = 0
            explicit = self.direct_not.get(term, 0)
            for a in anc:
                explicit |= self.direct_not.get(a, 0)
                if self.depth(a) > self.generic_depth:
                    block |= self.direct_ann.get(a, 0)
            unsure = self.ann_below.get(term, 0) | block
            got = self._lacks[term] = self.all & ~self.has.get(term, 0) & (explicit | ~unsure)
        return got

    def explicit_not(self, e: int, term: str) -> bool:
        """Return whether entity `e` has a NOT annotation on `term` or one of its ancestors."""
        nots = self.nots[e]
        return bool(nots) and (term in nots or not nots.isdisjoint(self.ancestors(term)))

    # ------------------------------------------------------------ one disease, one term
    def has_term(self, disease: str, term: str) -> bool:
        """Return whether `disease` (any disease id) has phenotype `term`."""
        return any(self.has.get(term, 0) >> e & 1 for e in self.entities_of.get(disease, ()))

    def lacks_term(self, disease: str, term: str) -> Literal["explicit", "silent"] | None:
        """Return how `disease` surely lacks phenotype `term`: ``explicit`` (a NOT annotation on it or an
        ancestor), ``silent`` (its annotations leave no room for it), or None when it does not surely lack it."""
        es = self.entities_of.get(disease)
        if not es or not all(self.lacks(term) >> e & 1 for e in es):
            return None
        return "explicit" if any(self.explicit_not(e, term) for e in es) else "silent"

    def targets(self, e: int, rel: str) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
        """Yield ``(member, dst, attrs)`` for every ``rel`` edge from a member of entity `e`."""
        for m in self.members[e]:
            for dst, attrs in self.graph.out(m, rel):
                yield m, dst, attrs

    def values(self, disease: str, rel: str) -> frozenset[str]:
        """Return the targets of `rel` from `disease`'s entities (``same_as``-joined members included)."""
        es = self.entities_of.get(disease)
        if es is None:
            return frozenset(dst for dst, _ in self.graph.out(disease, rel))
        return frozenset(dst for e in es for _, dst, _ in self.targets(e, rel))

    def value_status(self, disease: str, rel: str, value: str) -> Literal["has", "lacks"] | None:
        """Return whether `disease` has or surely lacks `value` of `rel` (see the module docstring), or None."""
        got = self.values(disease, rel)
        if any(v == value or value in self.ancestors(v) for v in got):
            return "has"
        if not got or any(self.related(v, value) for v in got):
            return None
        if rel == "onset" and self.onset_class(value) != "?" and \
                any(self.onset_class(v) == self.onset_class(value) for v in got):
            return None
        return "lacks"

    def onset_class(self, term: str) -> str:
        """Return the onset class a term falls in, or ``?``."""
        if term in ONSET_CLASSES:
            return term
        return next((c for c in ONSET_CLASSES if c in self.ancestors(term)), "?")


def display_name(name: str) -> str:
    """Return a name as an option reads it: ALL-CAPS names (old OMIM titles) in sentence case."""
    return name[:1] + name[1:].lower() if name.isupper() and len(name) > 3 else name


def finding_text(name: str) -> str:
    """Return a finding's name as it reads inside a sentence ("Seizure" -> "seizure", "EEG ..." kept)."""
    return name[:1].lower() + name[1:] if len(name) > 1 and name[1].islower() else name
