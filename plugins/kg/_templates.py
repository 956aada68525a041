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
from typing import Any

from fleming.kg_index import ONSET_CLASSES, bits_of
from fleming.plugins.kg._sampling import Sampler, Spec, effective_range, norm

MAX_MATCHING = 64  # a two-hop stem that more diseases match than this is too unspecific to check cheaply


class Builder(Sampler):
    """Builds one template's spec for a disease, or returns why it cannot."""

    def diagnosis(self, e: int, rng: random.Random) -> Spec | str:
        """Findings → the disease that has them all."""
        ix = self.ix
        stem = self.sample_stem(e, rng)
        if isinstance(stem, str):
            return stem
        texts = {ix.ids[e]: ix.names[e]}
        seen = {norm(ix.names[e])}
        evidence = {}
        for d, lacked in self.similar(stem, e, rng, self.k - 1):
            if norm(ix.names[d]) in seen:
                continue
            seen.add(norm(ix.names[d]))
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
        seen = {norm(texts[answer])}
        evidence: dict[str, Any] = {"matching_diseases": [self.ix.ids[d] for d in bits_of(m)]}
        for d, lacked in self.similar(stem, e, rng, self.k - 1):
            for g in sorted(sets[d] - excluded):
                if norm(self.label(g)) not in seen:
                    seen.add(norm(self.label(g)))
                    texts[g] = self.label(g)
                    evidence[g] = {"of": self.ix.ids[d], **self.lack_evidence(d, lacked)}
                    break
            if len(texts) == self.k:
                break
        if len(texts) < self.k:
            pool = sorted(g for g in having if g not in excluded and g not in texts)
            for g in rng.sample(pool, min(len(pool), 4 * self.k)):
                if norm(self.label(g)) not in seen and len(texts) < self.k:
                    seen.add(norm(self.label(g)))
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
        seen = {norm(self.label(answer))}
        for c in rng.sample(pool, len(pool)):
            if norm(self.label(c)) not in seen:
                seen.add(norm(self.label(c)))
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
