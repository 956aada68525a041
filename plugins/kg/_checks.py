"""The check every `kg` item passes before it is emitted: its answer and distractors re-derived from the graph.

It reads the spec alone (entity ids, never the builder's intermediate choices) and asks the index:

* every item: k distinct options, the answer not among the distractors, options that read differently;
* ``diagnosis``: the answer disease has every stem finding; each distractor surely lacks at least one;
* ``inheritance`` / ``onset``: every disease with all the stem findings has exactly the answer as its
  (most specific) mode / onset class, so no option other than the answer fits any of them;
* ``gene`` / ``drug``: every disease with all the stem findings has the answer gene / drug and none of
  the distractors;
* ``frequent-finding``: the answer's lowest frequency is above every distractor's highest, and no option
  is an ancestor of another;
* ``absent-finding``: the disease surely lacks the answer by an explicit NOT and has every distractor;
* ``drug-mechanism``: every drug indicated for the disease has the answer mechanism and no distractor.

"has" and "surely lacks" are defined in ``fleming.kg_index``.
"""
from __future__ import annotations

from fleming.kg_index import KgIndex, bits_of
from fleming.plugins.kg._sampling import Relations, Spec, effective_range


def check(spec: Spec, ix: KgIndex, rel: Relations, k: int) -> str | None:
    """Return None when the spec is right by the graph, else the reason it is not."""
    options = [spec.answer, *spec.distractors]
    if len(options) != k or len(set(options)) != k:
        return f"expected {k} distinct options, got {len(set(options))}"
    norm = {"".join(c for c in t.casefold() if c.isalnum()) for t in spec.texts.values()}
    if len(norm) != k or set(spec.texts) != set(options):
        return "two options read the same"
    e = spec.disease
    name = spec.template
    if name in ("diagnosis", "inheritance", "onset", "gene", "drug"):
        missing = [t for t in spec.stem if not ix.has.get(t, 0) >> e & 1]
        if missing:
            return f"{ix.ids[e]} lacks stem finding(s) {', '.join(missing)}"
    if name == "diagnosis":
        if spec.answer != ix.ids[e]:
            return "the answer is not the disease the item is about"
        for d_id in spec.distractors:
            d = ix.entity_of.get(d_id)
            if d is None or d == e or not any(ix.lacks(t) >> d & 1 for t in spec.stem):
                return f"distractor {d_id} does not surely lack any stem finding"
        return None
    if name in ("inheritance", "onset"):
        sets, _ = (rel.get("modes")[0], None) if name == "inheritance" else rel.get("onsets")
        for d in bits_of(_matching(ix, spec.stem)):
            if sets[d] != frozenset([spec.answer]):
                return f"{ix.ids[d]} matches the stem but its {name} is {sorted(sets[d]) or 'unknown'}"
        if any(ix.related(spec.answer, o) for o in spec.distractors):
            return f"a distractor is an ancestor or descendant of the answer {spec.answer}"
        return None
    if name in ("gene", "drug"):
        sets = rel.get("genes")[0] if name == "gene" else rel.get("drugs")[0]
        wrong = set(spec.distractors)
        for d in bits_of(_matching(ix, spec.stem)):
            if spec.answer not in sets[d] or wrong & sets[d]:
                return f"{ix.ids[d]} matches the stem but gives another {name}"
        return None
    if name == "frequent-finding":
        lo = effective_range(ix, e, spec.answer)[0]
        for t in spec.distractors:
            if effective_range(ix, e, t)[1] >= lo:
                return f"{t} may be as frequent as the answer {spec.answer}"
        return _unrelated(ix, options)
    if name == "absent-finding":
        if not (ix.explicit_not(e, spec.answer) and ix.lacks(spec.answer) >> e & 1):
            return f"{ix.ids[e]} has no explicit NOT for {spec.answer}"
        for t in spec.distractors:
            if not ix.has.get(t, 0) >> e & 1 or ix.explicit_not(e, t):
                return f"{ix.ids[e]} does not surely have {t}"
        return _unrelated(ix, options)
    if name == "drug-mechanism":
        mech = rel.get("mechanisms")
        wrong = set(spec.distractors)
        for drug in sorted(rel.get("drugs")[0][e]):
            got = mech.get(drug, frozenset())
            if spec.answer not in got or wrong & got:
                return f"drug {drug} for {ix.ids[e]} does not act only by the answer among the options"
        return None
    return f"unknown template {name!r}"


def _matching(ix: KgIndex, stem: list[str]) -> int:
    m = ix.all
    for t in stem:
        m &= ix.has.get(t, 0)
    return m


def _unrelated(ix: KgIndex, terms: list[str]) -> str | None:
    for i, a in enumerate(terms):
        for b in terms[i + 1:]:
            if ix.related(a, b):
                return f"options {a} and {b} are one an ancestor of the other"
    return None
