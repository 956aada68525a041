"""The `kg` synthesizer's templates: each masks one node of a sampled subgraph and picks distractors.

A builder returns a `Spec` (what the item asks, its answer, distractors and graph path) or a short
failure reason; the synthesizer counts the reasons, checks every spec (``kg_checks``) and renders it.

============== ==== ============================================================================
template       hops asks
============== ==== ============================================================================
diagnosis      1    findings → the disease that has them all (distractors: similar diseases, each
                    surely lacking a stem finding)
inheritance    2    findings → hidden disease → its mode of inheritance
gene           2    findings → hidden disease → its gene (distractors: genes of similar diseases)
onset          2    findings → hidden disease → its age-of-onset class
frequent-      1    disease → its most frequent finding (the answer's lowest frequency is above
finding             every distractor's highest)
absent-finding 1    disease → the finding it explicitly lacks (a NOT annotation)
drug-mechanism 2    disease → hidden drug indicated for it → its mechanism of action
drug           2    findings → hidden disease → a drug indicated for it
============== ==== ============================================================================

For two-hop items the stem must not leave the answer open: every disease that has all the stem findings
(not only the hidden one) must give the same answer, and none may give a distractor.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fleming.plugins.kg_index import ONSET_CLASSES, KgIndex, bits_of, display_name

MAX_MATCHING = 64  # a two-hop stem that more diseases match than this is too unspecific to check cheaply


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
                self._cache[name] = ix.relation_sets("inheritance", minimal=True)
            elif name == "onsets":
                self._cache[name] = ix.onset_classes()
            elif name == "genes":
                self._cache[name] = ix.relation_sets("associated_gene")
            elif name == "drugs":
                self._cache[name] = ix.indications()
            elif name == "mechanisms":
                mech: dict[str, set[str]] = {}
                for drug, cls, _ in ix.graph.edges("mechanism"):
                    mech.setdefault(drug, set()).add(cls)
                self._cache[name] = {d: frozenset(v) for d, v in mech.items()}
        return self._cache[name]


class Builder:
    """Builds specs for every template from one index; all randomness comes from the `rng` passed in."""

    def __init__(self, ix: KgIndex, rel: Relations, k: int, min_findings: int, max_findings: int,
                 distractor_min_annotations: int) -> None:
        self.ix, self.rel, self.k = ix, rel, k
        self.min_findings, self.max_findings = min_findings, max_findings
        self.distractor_ok = sum(1 << e for e in range(ix.size) if ix.n_ann[e] >= distractor_min_annotations)
        self._stem_cands: dict[int, tuple[list[str], list[float]]] = {}
        self._ic: dict[str, float] = {}

    # ------------------------------------------------------------ shared pieces
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

    # ------------------------------------------------------------ one hop
    def diagnosis(self, e: int, rng: random.Random) -> Spec | str:
        """Findings → the disease that has them all."""
        ix = self.ix
        stem = self.sample_stem(e, rng)
        if isinstance(stem, str):
            return stem
        texts = {ix.ids[e]: ix.names[e]}
        seen = {_norm(ix.names[e])}
        evidence = {}
        for d, lacked in self.similar(stem, e, rng, self.k - 1):
            if _norm(ix.names[d]) in seen:
                continue
            seen.add(_norm(ix.names[d]))
            texts[ix.ids[d]] = ix.names[d]
            evidence[ix.ids[d]] = self.lack_evidence(d, lacked)
            if len(texts) == self.k:
                break
        if len(texts) < self.k:
            return "too few similar diseases"
        return Spec("diagnosis", e, stem, ix.ids[e], list(texts)[1:], texts, self.stem_path(e, stem), 1,
                    evidence=evidence)

    def frequent_finding(self, e: int, rng: random.Random) -> Spec | str:
        """Disease → the finding reported most often (answer lo above every distractor's hi)."""
        ix = self.ix
        ranges = {t: effective_range(ix, e, t) for t in ix.ann[e] if self.finding(t)}
        answers = sorted(t for t, (lo, _) in ranges.items() if lo >= 0.5)
        if not answers:
            return "no finding with a known frequency of at least 50%"
        answer = rng.choice(answers)
        lo = ranges[answer][0]
        lower = sorted(t for t, (_, hi) in ranges.items() if hi < lo)
        picks = self.pick_unrelated(lower, [answer], self.k - 1, rng)
        if len(picks) < self.k - 1:
            return "too few less frequent findings"
        texts = {t: self.label(t) for t in (answer, *picks)}
        if not self.distinct(texts):
            return "two options read the same"
        path = [(ix.source_of(e, "has_phenotype", t), "has_phenotype", t) for t in texts]
        evidence = {t: {"frequency_range": list(ranges[t])} for t in texts}
        return Spec("frequent-finding", e, [ix.ids[e]], answer, picks, texts, path, 1, evidence=evidence)

    def absent_finding(self, e: int, rng: random.Random) -> Spec | str:
        """Disease → the finding it explicitly lacks (NOT); distractors are findings it has."""
        ix = self.ix
        answers = sorted(x for x in ix.nots[e] if self.finding(x) and ix.lacks(x) >> e & 1)
        if not answers:
            return "no usable NOT annotation"
        answer = rng.choice(answers)
        present = sorted(t for t in ix.pos[e] if self.finding(t) and not ix.explicit_not(e, t))
        weights = [0.5 if ix.pos[e][t] is None else max(sum(ix.pos[e][t]) / 2, 0.05) for t in present]
        picks = self.pick_unrelated(present, [answer], self.k - 1, rng, weights)
        if len(picks) < self.k - 1:
            return "too few findings unrelated to the absent one"
        texts = {t: self.label(t) for t in (answer, *picks)}
        if not self.distinct(texts):
            return "two options read the same"
        path = [(ix.source_of(e, "excludes_phenotype", answer) if answer in ix.nots[e] else ix.ids[e],
                 "excludes_phenotype", answer)]
        path += [(ix.source_of(e, "has_phenotype", t), "has_phenotype", t) for t in picks]
        return Spec("absent-finding", e, [ix.ids[e]], answer, picks, texts, path, 1)

    # ------------------------------------------------------------ two hops
    def _two_hop(self, name: str, e: int, rng: random.Random) -> tuple[list[str], int] | str:
        stem = self.sample_stem(e, rng)
        if isinstance(stem, str):
            return stem
        m = self.matching(stem)
        if m.bit_count() > MAX_MATCHING:
            return "stem matches too many diseases"
        return stem, m

    def inheritance(self, e: int, rng: random.Random) -> Spec | str:
        """Findings → hidden disease → mode of inheritance."""
        modes, exact, _ = self.rel.get("modes")
        return self._single_valued("inheritance", e, rng, modes, exact, "inheritance")

    def onset(self, e: int, rng: random.Random) -> Spec | str:
        """Findings → hidden disease → age-of-onset class."""
        onsets, exact = self.rel.get("onsets")
        return self._single_valued("onset", e, rng, onsets, exact, "onset")

    def _single_valued(self, name: str, e: int, rng: random.Random, sets: list[frozenset[str]],
                       exact: dict[str, int], rel: str) -> Spec | str:
        if len(sets[e]) != 1 or "?" in sets[e]:
            return f"hidden disease has no single {name}"
        got = self._two_hop(name, e, rng)
        if isinstance(got, str):
            return got
        stem, m = got
        answer = next(iter(sets[e]))
        if m & ~exact.get(answer, 0):
            return f"stem also matches a disease with another or no {name}"
        pool = ONSET_CLASSES if name == "onset" else sorted(exact)
        cands = [c for c in pool if c != answer and c in exact]
        weights = [math.sqrt(exact[c].bit_count()) for c in cands]
        picks = self.pick_unrelated(cands, [answer], self.k - 1, rng, weights)
        if len(picks) < self.k - 1:
            return f"too few other {name} values"
        texts = {t: self.label(t) for t in (answer, *picks)}
        path = self.stem_path(e, stem) + self._value_path(e, rel, answer)
        return Spec(name, e, stem, answer, picks, texts, path, 2, hidden=self.ix.ids[e],
                    evidence={"matching_diseases": [self.ix.ids[d] for d in bits_of(m)]})

    def _value_path(self, e: int, rel: str, value: str) -> list[tuple[str, str, str]]:
        ix = self.ix
        for member in ix.members[e]:
            for dst, _ in ix.graph.out(member, rel):
                if dst == value:
                    return [(member, rel, dst)]
                if value in ix.ancestors(dst):  # an onset term below its class
                    return [(member, rel, dst), (dst, "is_a", value)]
        return [(ix.ids[e], rel, value)]

    def gene(self, e: int, rng: random.Random) -> Spec | str:
        """Findings → hidden disease → its gene; distractors are genes of similar diseases."""
        genes, _, having = self.rel.get("genes")
        return self._linked("gene", e, rng, genes, having, "associated_gene")

    def drug(self, e: int, rng: random.Random) -> Spec | str:
        """Findings → hidden disease → a drug indicated for it; distractors are drugs for similar diseases."""
        drugs, having = self.rel.get("drugs")
        return self._linked("drug", e, rng, drugs, having, "indication")

    def _linked(self, name: str, e: int, rng: random.Random, sets: list[frozenset[str]],
                having: dict[str, int], rel: str) -> Spec | str:
        if not sets[e]:
            return f"hidden disease has no {name}"
        got = self._two_hop(name, e, rng)
        if isinstance(got, str):
            return got
        stem, m = got
        answers = sorted(g for g in sets[e] if not m & ~having.get(g, 0))
        if not answers:
            return f"diseases matching the stem differ in {name}"
        answer = rng.choice(answers)
        excluded = set().union(*(sets[d] for d in bits_of(m)))
        texts = {answer: self.label(answer)}
        seen = {_norm(texts[answer])}
        evidence: dict[str, Any] = {"matching_diseases": [self.ix.ids[d] for d in bits_of(m)]}
        for d, lacked in self.similar(stem, e, rng, self.k - 1):
            for g in sorted(sets[d] - excluded):
                if _norm(self.label(g)) not in seen:
                    seen.add(_norm(self.label(g)))
                    texts[g] = self.label(g)
                    evidence[g] = {"of": self.ix.ids[d], **self.lack_evidence(d, lacked)}
                    break
            if len(texts) == self.k:
                break
        if len(texts) < self.k:
            pool = sorted(g for g in having if g not in excluded and g not in texts)
            for g in rng.sample(pool, min(len(pool), 4 * self.k)):
                if _norm(self.label(g)) not in seen and len(texts) < self.k:
                    seen.add(_norm(self.label(g)))
                    texts[g] = self.label(g)
        if len(texts) < self.k:
            return f"too few other {name}s"
        if rel == "indication":
            member = next(mm for mm in self.ix.members[e] if any(
                s == answer for s, _ in self.ix.graph.into(mm, rel)))
            last = [(answer, rel, member)]
        else:
            last = [(self.ix.source_of(e, rel, answer), rel, answer)]
        return Spec(name, e, stem, answer, list(texts)[1:], texts, self.stem_path(e, stem) + last, 2,
                    hidden=self.ix.ids[e], evidence=evidence)

    def drug_mechanism(self, e: int, rng: random.Random) -> Spec | str:
        """Disease → hidden drug indicated for it → the mechanism all its drugs share."""
        drugs, _ = self.rel.get("drugs")
        mech = self.rel.get("mechanisms")
        if not drugs[e]:
            return "disease has no drug"
        mine = sorted(drugs[e])
        if any(not mech.get(d) for d in mine):
            return "a drug for the disease has no known mechanism"
        common = sorted(frozenset.intersection(*(mech[d] for d in mine)))
        if not common:
            return "the disease's drugs act by different mechanisms"
        answer = rng.choice(common)
        used = set().union(*(mech[d] for d in mine))
        pool = sorted({c for v in mech.values() for c in v} - used)
        picks: list[str] = []
        seen = {_norm(self.label(answer))}
        for c in rng.sample(pool, len(pool)):
            if _norm(self.label(c)) not in seen:
                seen.add(_norm(self.label(c)))
                picks.append(c)
                if len(picks) == self.k - 1:
                    break
        if len(picks) < self.k - 1:
            return "too few other mechanisms"
        hidden = rng.choice(mine)
        member = next(mm for mm in self.ix.members[e] if any(s == hidden for s, _ in
                                                             self.ix.graph.into(mm, "indication")))
        texts = {c: self.label(c) for c in (answer, *picks)}
        path = [(hidden, "indication", member), (hidden, "mechanism", answer)]
        return Spec("drug-mechanism", e, [self.ix.ids[e]], answer, picks, texts, path, 2, hidden=hidden,
                    evidence={"drugs": mine})


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


def _norm(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())
