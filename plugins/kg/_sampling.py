"""What every `kg` template shares: the item spec, relation tables, and sampling of stems and distractors.

A stem's findings are drawn from one disease's annotations, weighted by frequency times information content,
never one an ancestor of another, none at or above the generic depth. Distractor diseases ("similar") share
as many stem findings with the answer as possible while surely lacking at least one (``fleming.kg_index``).
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fleming.kg_index import KgIndex, bits_of, bitset, bitsets, display_name


@dataclass
class Spec:
    """One item before it is written: entity ids, option texts, the path and the evidence."""

    template: str
    disease: int
    stem: list[str]
    answer: str
    distractors: list[str]
    texts: dict[str, str]
    path: list[tuple[str, str, str]]
    hops: int
    hidden: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


class Relations:
    """The per-entity relation tables the two-hop templates need, built on first use."""

    def __init__(self, ix: KgIndex) -> None:
        self.ix = ix
        self._cache: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        """Return one table: ``modes``, ``onsets``, ``genes``, ``drugs`` or ``mechanisms``."""
        if name not in self._cache:
            ix = self.ix
            if name == "modes":
                self._cache[name] = self.relation_sets("inheritance", minimal=True)
            elif name == "onsets":
                self._cache[name] = self.onset_classes()
            elif name == "genes":
                self._cache[name] = self.relation_sets("associated_gene")
            elif name == "drugs":
                self._cache[name] = self.indications()
            elif name == "mechanisms":
                mech: dict[str, set[str]] = {}
                for drug, cls, _ in ix.graph.edges("mechanism"):
                    mech.setdefault(drug, set()).add(cls)
                self._cache[name] = {d: frozenset(v) for d, v in mech.items()}
        return self._cache[name]

    def relation_sets(self, rel: str, minimal: bool = False
                      ) -> tuple[list[frozenset[str]], dict[str, int], dict[str, int]]:
        """Return each entity's targets of `rel` (only the most specific, if `minimal`); per target, the
        entities whose target set is exactly that one target; and per target, the entities that have it."""
        ix = self.ix
        sets: list[frozenset[str]] = []
        exact: dict[str, list[int]] = defaultdict(list)
        having: dict[str, list[int]] = defaultdict(list)
        for e in range(ix.size):
            targets = {dst for _, dst, _ in ix.targets(e, rel)}
            if minimal:
                targets = {t for t in targets if not any(t in ix.ancestors(o) for o in targets)}
            sets.append(frozenset(targets))
            if len(targets) == 1:
                exact[next(iter(targets))].append(e)
            for t in targets:
                having[t].append(e)
        return sets, bitsets(exact, ix.size), bitsets(having, ix.size)

    def onset_classes(self) -> tuple[list[frozenset[str]], dict[str, int]]:
        """Return each entity's onset classes (``ONSET_CLASSES``; ``?`` for a term in none) and, per class,
        the entities whose only class it is."""
        ix = self.ix
        sets: list[frozenset[str]] = []
        exact: dict[str, list[int]] = defaultdict(list)
        for e in range(ix.size):
            classes = {ix.onset_class(dst) for _, dst, _ in ix.targets(e, "onset")}
            sets.append(frozenset(classes))
            if len(classes) == 1 and "?" not in classes:
                exact[next(iter(classes))].append(e)
        return sets, {c: bitset(v) for c, v in exact.items()}

    def indications(self) -> tuple[list[frozenset[str]], dict[str, int]]:
        """Return each entity's drugs (``indication`` edges into any member) and each drug's entities."""
        ix = self.ix
        sets: list[set[str]] = [set() for _ in range(ix.size)]
        for drug, disease, _ in ix.graph.edges("indication"):
            for e in ix.entities_of.get(disease, ()):
                sets[e].add(drug)
        by_drug: dict[str, list[int]] = defaultdict(list)
        for e, drugs in enumerate(sets):
            for d in sorted(drugs):
                by_drug[d].append(e)
        return [frozenset(s) for s in sets], bitsets(by_drug, ix.size)


class Sampler:
    """Stem and distractor sampling over one index; all randomness comes from the `rng` passed in."""

    def __init__(self, ix: KgIndex, rel: Relations, k: int, min_findings: int, max_findings: int,
                 distractor_min_annotations: int) -> None:
        self.ix, self.rel, self.k = ix, rel, k
        self.min_findings, self.max_findings = min_findings, max_findings
        self.distractor_ok = bitset(e for e in range(ix.size) if ix.n_ann[e] >= distractor_min_annotations)
        self._stem_cands: dict[int, tuple[list[str], list[float]]] = {}
        self._ic: dict[str, float] = {}

    def finding(self, term: str) -> bool:
        """Return whether a term may be shown as a finding (a phenotype deeper than the generic depth)."""
        node = self.ix.graph.nodes.get(term)
        return node is not None and node.kind == "phenotype" and self.ix.depth(term) > self.ix.generic_depth

    def stem_candidates(self, e: int) -> tuple[list[str], list[float]]:
        """Return the findings of `e` a stem may show, weighted by frequency times information content."""
        got = self._stem_cands.get(e)
        if got is None:
            terms, weights = [], []
            for t, rng in self.ix.pos[e].items():
                if self.finding(t):
                    f = 0.5 if rng is None else max((rng[0] + rng[1]) / 2, 0.05)
                    terms.append(t)
                    weights.append(f * self.ic(t))
            got = self._stem_cands[e] = (terms, weights)
        return got

    def ic(self, term: str) -> float:
        """Return the information content of a finding: log(entities / entities having it)."""
        got = self._ic.get(term)
        if got is None:
            got = self._ic[term] = math.log(self.ix.size / max(1, self.ix.has.get(term, 0).bit_count())) + 0.1
        return got

    def sample_stem(self, e: int, rng: random.Random) -> list[str] | str:
        """Pick `min_findings`..`max_findings` findings of `e`, no one an ancestor of another."""
        terms, weights = self.stem_candidates(e)
        if len(terms) < self.min_findings:
            return "too few findings"
        m = rng.randint(self.min_findings, min(self.max_findings, len(terms)))
        terms, weights = list(terms), list(weights)
        chosen: list[str] = []
        while len(chosen) < m and terms:
            t = rng.choices(terms, weights)[0]
            chosen.append(t)
            keep = [i for i, o in enumerate(terms) if not self.ix.related(o, t)]
            terms, weights = [terms[i] for i in keep], [weights[i] for i in keep]
        return chosen if len(chosen) >= self.min_findings else "too few unrelated findings"

    def matching(self, stem: list[str]) -> int:
        """Return the entities that have every stem finding."""
        m = self.ix.all
        for t in stem:
            m &= self.ix.has.get(t, 0)
        return m

    def similar(self, stem: list[str], e: int, rng: random.Random, want: int) -> Iterator[tuple[int, str]]:
        """Yield (entity, a stem finding it surely lacks): entities of the same vocabulary as `e` that share
        the most stem findings with it, sampled level by level (all but one shared, then fewer)."""
        ix = self.ix
        lack_any = 0
        for t in stem:
            lack_any |= ix.lacks(t)
        pool = lack_any & self.distractor_ok & ix.prefix_bits.get(ix.prefix(e), 0)
        ge = [ix.all] + [0] * len(stem)
        for t in stem:
            h = ix.has.get(t, 0)
            for j in range(len(stem), 0, -1):
                ge[j] |= ge[j - 1] & h
        for j in range(len(stem) - 1, 0, -1):
            level = ge[j] & pool
            pool &= ~level
            idx = bits_of(level)
            for d in rng.sample(idx, min(len(idx), 3 * want)):
                yield d, next(t for t in stem if ix.lacks(t) >> d & 1)

    def lack_evidence(self, d: int, term: str) -> dict[str, str]:
        """Return why entity `d` surely lacks `term`."""
        return {"entity": self.ix.ids[d], "lacks": term,
                "how": "explicit NOT annotation" if self.ix.explicit_not(d, term) else "not annotated"}

    def stem_path(self, e: int, stem: list[str]) -> list[tuple[str, str, str]]:
        """Return the edges from the disease to each stem finding."""
        return [(self.ix.source_of(e, "has_phenotype", t), "has_phenotype", t) for t in stem]

    def pick_unrelated(self, cands: list[str], taken: list[str], n: int, rng: random.Random,
                       weights: list[float] | None = None) -> list[str]:
        """Pick up to `n` of `cands` (weighted), none related by is_a to another pick or to `taken`."""
        cands, w = list(cands), list(weights) if weights else [1.0] * len(cands)
        out: list[str] = []
        while len(out) < n and cands:
            c = rng.choices(cands, w)[0]
            i = cands.index(c)
            del cands[i], w[i]
            if all(not self.ix.related(c, o) for o in (*taken, *out)):
                out.append(c)
        return out

    def distinct(self, texts: dict[str, str]) -> bool:
        """Return whether no two options read the same."""
        norm = {"".join(ch for ch in v.casefold() if ch.isalnum()) for v in texts.values()}
        return len(norm) == len(texts)

    def label(self, node: str) -> str:
        """Return a node's display name (disease names in sentence case when ALL CAPS; gene symbols as is)."""
        n = self.ix.graph.nodes.get(node)
        return display_name(n.name) if n is not None and n.kind == "disease" else self.ix.graph.label(node)

def effective_range(ix: KgIndex, e: int, term: str) -> tuple[float, float]:
    """Return what the annotations say about how often entity `e` has `term`: (lo, hi).

    lo: the highest known lower bound among its annotations with the term or a descendant (0 if none);
    hi: the highest upper bound among them, or 1.0 when one of them has no frequency.
    """
    lo, hi = 0.0, 0.0
    for a, rng in ix.ann[e].items():
        if a == term or term in ix.ancestors(a):
            if rng is None:
                hi = 1.0
            else:
                lo, hi = max(lo, rng[0]), max(hi, rng[1])
    return lo, hi


def norm(text: str) -> str:
    """Return text reduced to lower-case letters and digits (to compare option texts)."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())
