"""The KG reasoning audit: check a completion's reasoning against the knowledge-graph path of its item.

For an item with KG provenance (``meta.kg``, ``stem_entities``, ``answer_entity`` ... as the `kg` synthesizer
writes them), `audit_reasoning` reads the reasoning (the text before the first ``<answer>`` tag, as
`fleming.answers` finds it), links it to graph entities by name (rules in ``fleming._audit_link``), and
reports:

* ``path_recall``: the share of the item's path entities (its stem entities, its hidden or named disease and
  its answer) that the reasoning names: by one of its names, or one of a node ``same_as`` it. A broader or
  narrower term (an ``is_a`` ancestor or descendant) does not count: "seizure" does not name "Focal seizure".
* ``claims``: in each sentence, every finding, gene, inheritance mode or onset the reasoning names is paired
  with the nearest disease named in the same sentence (the earlier one on a tie). A NegEx trigger ("no",
  "without", "denies", "absent" ...) negates the claim when it stands between the two mentions, or reaches
  the finding from outside them ("no hepatomegaly is seen in D"; rules in ``fleming._audit_negation``).
* each claim's ``verdict``, by the synthesizer's own rules (``fleming.kg_index``): an affirmed claim is
  ``supported`` when the disease has the term, ``contradicted`` when it surely lacks it (by an explicit NOT
  annotation or because its annotations leave no room for it), else ``unsupported``; a negated claim is
  ``supported`` when the disease surely lacks the term, ``contradicted`` when it has it. Genes, inheritance
  and onset use `KgIndex.value_status`.

Offsets are character offsets into the whole completion. String linking misses paraphrase ("big liver" for
hepatomegaly) and pronouns ("it is inherited ..."), so a low recall or an ``unsupported`` claim is a lower
bound on faithfulness, not proof of error.
"""
from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fleming._audit_graphs import graph_of, indices
from fleming._audit_link import KIND_RANK, Mention
from fleming._audit_negation import scopes
from fleming.answers import reasoning_end
from fleming.errors import DataError
from fleming.kg import KnowledgeGraph
from fleming.kg_index import KgIndex
from fleming.types import QAItem

__all__ = ["VERDICTS", "Audit", "Claim", "Link", "audit_reasoning", "has_kg_provenance"]

Verdict = Literal["supported", "contradicted", "unsupported"]
VERDICTS: tuple[Verdict, ...] = ("supported", "contradicted", "unsupported")
RELATION_OF = {"phenotype": "has_phenotype", "gene": "associated_gene", "inheritance": "inheritance",
               "onset": "onset"}


@dataclass(frozen=True)
class Link:
    """A run of the reasoning that names a graph node; `on_path` when the node is one of the item's path
    entities or ``same_as`` one."""

    start: int
    end: int
    id: str
    name: str
    kind: str
    on_path: bool


@dataclass(frozen=True)
class Claim:
    """A disease and a finding / gene / inheritance mode / onset the reasoning relates in one sentence; `start`
    and `end` span both mentions."""

    start: int
    end: int
    disease: str
    relation: str
    target: str
    negated: bool
    verdict: Verdict


@dataclass(frozen=True)
class Audit:
    """What the reasoning of one completion names and claims, checked against the item's graph."""

    path_recall: float
    path_entities: tuple[str, ...]
    named: tuple[str, ...]
    links: tuple[Link, ...]
    claims: tuple[Claim, ...]
    reasoning_end: int

    @property
    def contradicted(self) -> bool:
        """Whether any claim is contradicted by the graph."""
        return any(c.verdict == "contradicted" for c in self.claims)

    @property
    def counts(self) -> dict[str, int]:
        """The number of claims per verdict (every verdict present, zero included)."""
        return {v: sum(c.verdict == v for c in self.claims) for v in VERDICTS}

    def to_dict(self) -> dict[str, Any]:
        """Return the audit as JSON-ready data (lists for tuples), one key per field."""
        return {"path_recall": self.path_recall, "path_entities": list(self.path_entities),
                "named": list(self.named), "links": [dataclasses.asdict(x) for x in self.links],
                "claims": [dataclasses.asdict(x) for x in self.claims], "reasoning_end": self.reasoning_end}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Audit:
        """Return the audit `to_dict` wrote."""
        return cls(float(data["path_recall"]), tuple(data["path_entities"]), tuple(data["named"]),
                   tuple(Link(**x) for x in data["links"]), tuple(Claim(**x) for x in data["claims"]),
                   int(data["reasoning_end"]))


def _meta(item: QAItem | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if isinstance(item, QAItem):
        return item.provenance, item.id
    meta = item.get("meta")
    return (meta if isinstance(meta, Mapping) else {}), str(item.get("id", "?"))


def has_kg_provenance(item: QAItem | Mapping[str, Any]) -> bool:
    """Return whether the item records the KG path it was made from (``meta.kg.source`` and its entities)."""
    meta, _ = _meta(item)
    kg = meta.get("kg")
    return isinstance(kg, Mapping) and bool(kg.get("source")) and bool(meta.get("answer_entity")) and \
        isinstance(meta.get("stem_entities"), (list, tuple))


def audit_reasoning(text: str, item: QAItem | Mapping[str, Any], graph: KnowledgeGraph | None = None) -> Audit:
    """Audit the reasoning of completion `text` for `item` (a QAItem or a uniform record) against `graph`
    (default: the graph of the source in the item's provenance, loaded once per process)."""
    meta, item_id = _meta(item)
    if not has_kg_provenance(item):
        raise DataError(f"item {item_id} has no KG provenance (meta.kg, stem_entities, answer_entity): only "
                        "items the kg synthesizer made can be audited")
    graph = graph if graph is not None else graph_of(meta["kg"], item_id)
    ix, names = indices(graph)
    path = _path_entities(meta)
    alias = {p: p for p in path}
    for p in path:
        for other, _ in graph.out(p, "same_as"):
            alias.setdefault(other, p)
    end = reasoning_end(text)
    known = set(_ids(meta.get("option_entities"))) | set(_ids(meta.get("evidence")))
    mentions = names.find(text, end)
    links = tuple(_link(m, graph, ix, alias, known) for m in mentions)
    named = {alias[i] for m in mentions for i in m.ids if i in alias}
    claims = _claims(text[:end], links, ix)
    return Audit(path_recall=len(named) / len(path) if path else 0.0, path_entities=path,
                 named=tuple(p for p in path if p in named), links=links, claims=claims, reasoning_end=end)


def _path_entities(meta: Mapping[str, Any]) -> tuple[str, ...]:
    ids = [*(meta.get("stem_entities") or ()), meta.get("hidden"), meta.get("diagnosis"), meta.get("answer_entity")]
    return tuple(dict.fromkeys(str(x) for x in ids if x))


def _ids(value: Any) -> list[str]:
    """Every string inside a provenance value (options' and evidence's entity ids among them)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [x for k, v in value.items() for x in (*_ids(k), *_ids(v))]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _ids(v)]
    return []


def _link(m: Mention, graph: KnowledgeGraph, ix: KgIndex, alias: Mapping[str, str], known: set[str]) -> Link:
    """One node per mention, for a name several nodes share: a path entity, else one the item's provenance
    names (options, evidence), else by kind (a finding before a disease), then the best-annotated."""
    def rank(id: str) -> tuple[bool, bool, int, int, str]:
        e = ix.entity_of.get(id)
        return (id not in alias, id not in known, KIND_RANK[graph.nodes[id].kind],
                -(ix.n_ann[e] if e is not None else 0), id)

    best = min(m.ids, key=rank)
    node = graph.nodes[best]
    return Link(m.start, m.end, best, node.name, node.kind, best in alias)


def _claims(reasoning: str, links: tuple[Link, ...], ix: KgIndex) -> tuple[Claim, ...]:
    diseases = [x for x in links if x.kind == "disease"]
    targets = [x for x in links if x.kind in RELATION_OF]
    if not diseases or not targets:
        return ()
    sc = scopes(reasoning).outside([(x.start, x.end) for x in links])
    starts = [s for s, _ in sc.sentences]
    by_sentence: dict[int, list[Link]] = {}
    for d in diseases:
        by_sentence.setdefault(bisect.bisect_right(starts, d.start), []).append(d)
    out = []
    for t in targets:
        same = by_sentence.get(bisect.bisect_right(starts, t.start))
        if not same:
            continue
        d = min(same, key=lambda d: (max(d.start - t.end, t.start - d.end), d.start > t.start))
        negated = sc.negated((d.start, d.end), (t.start, t.end))
        rel = RELATION_OF[t.kind]
        out.append(Claim(min(d.start, t.start), max(d.end, t.end), d.id, rel, t.id, negated,
                         _verdict(ix, d.id, rel, t.id, negated)))
    return tuple(out)


def _verdict(ix: KgIndex, disease: str, rel: str, target: str, negated: bool) -> Verdict:
    if rel == "has_phenotype":
        has, lacks = ix.has_term(disease, target), ix.lacks_term(disease, target) is not None
    else:
        status = ix.value_status(disease, rel, target)
        has, lacks = status == "has", status == "lacks"
    if negated:
        has, lacks = lacks, has
    return "supported" if has else "contradicted" if lacks else "unsupported"
