"""Teacher `kg-path`: writes each KG item's rationale from its own graph path (faithful by construction).

The rationale follows the item's provenance (written by the `kg` synthesizer): the stem findings, what they
point to (the disease, named or hidden), why each distractor fails (the stem finding its disease lacks, from
``evidence``; the frequency it is reported with; or that no disorder matching the stem links to it), then the
answer, ending in ``<answer>X</answer>``. Phrasing varies by item (templates ``prompts/kg_rationale_*.jinja``)
but is deterministic for a given item id and seed. It is the CPU default: no model is called.

Entity names come from the recipe's knowledge-graph sources (``data.sources``, loaded once, as the synthesize
stage does); option texts are used as the items show them.

Args: ``fallback``: what to do with items that have no KG path (curated items): ``reject`` (default; a
`Rejected` with reason "no KG path") or ``answer-only`` (a minimal rationale naming the answer).
``concise``: leave out the line per distractor and the list of other matching disorders, keeping only
findings -> what they point to -> the answer (about a third of the tokens: cheaper to train on and to
generate, which is what a CPU run needs).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.kg import KnowledgeGraph
from fleming.kg_index import display_name, finding_text
from fleming.prompts import render

TWO_HOP = ("inheritance", "onset", "gene", "drug")
KNOWN = ("diagnosis", "frequent-finding", "absent-finding", "drug-mechanism", *TWO_HOP)
MAX_OTHERS = 3  # other matching diseases named in a two-hop rationale


class KgPathTeacher:
    """Write rationales from KG paths (see the module docstring)."""

    def __init__(self, fallback: Literal["reject", "answer-only"] = "reject", concise: bool = False) -> None:
        self.fallback = fallback
        self.concise = concise
        self.graph: KnowledgeGraph | None = None

    def explain(self, items: Sequence[QAItem], ctx: StageContext) -> Iterator[QAItem | Rejected]:
        """Yield each item with its rationale, or a `Rejected` saying why none could be written."""
        seed = getattr(ctx, "seed", 0)
        if self.graph is None and any(_has_path(it) for it in items):
            self.graph = load_graph(ctx)
        progress = getattr(ctx, "progress", None)
        for item in (progress(items, description="kg-path rationales") if progress else items):
            yield self.explain_one(item, seed)

    def explain_one(self, item: QAItem, seed: int = 0) -> QAItem | Rejected:
        """Return the item with its rationale, or a `Rejected`."""
        variant = int(hashlib.sha1(f"{seed}/{item.id}".encode()).hexdigest()[:8], 16)
        if not _has_path(item):
            if self.fallback == "answer-only":
                text = render("kg_rationale_answer_only", answer_letter=item.answer,
                              answer_text=item.options[item.answer])
                return item.replace(rationale=text)
            return Rejected("no KG path", item.source or item.id, item.to_record())
        template = item.provenance["template"]
        if template not in KNOWN:
            return Rejected(f"no KG path: unknown kg template '{template}'", item.source, item.to_record())
        if self.graph is None:
            return Rejected("no KG path: the recipe has no knowledge-graph source to name the path's entities",
                            item.source, item.to_record())
        try:
            values = _Values(item, self.graph).build(template)
        except KeyError as exc:
            return Rejected(f"no KG path: provenance lacks {exc}", item.source, item.to_record())
        name = "two_hop" if template in TWO_HOP else template.replace("-", "_")
        text = render(f"kg_rationale_{name}", template=template, variant=variant, concise=self.concise, **values)
        return item.replace(rationale=text)


def _has_path(item: QAItem) -> bool:
    prov = item.provenance
    return bool(prov.get("template") and prov.get("path") and prov.get("option_entities"))


def load_graph(ctx: StageContext) -> KnowledgeGraph | None:
    """Return the recipe's knowledge graph (every KG source, joined), or None when it has none."""
    graphs = list(ctx.graphs().values())
    if not graphs:
        return None
    return graphs[0] if len(graphs) == 1 else KnowledgeGraph.union(graphs, name="+".join(g.name for g in graphs))


class _Values:
    """The values a rationale template needs, read from one item's provenance and the graph's names."""

    def __init__(self, item: QAItem, graph: KnowledgeGraph) -> None:
        self.item, self.graph, self.prov = item, graph, item.provenance
        self.letter_of = {ent: letter for letter, ent in self.prov["option_entities"].items()}

    def disease(self, id: str) -> str:
        return display_name(self.graph.label(id))

    def finding(self, id: str) -> str:
        return finding_text(self.graph.label(id))

    def option(self, ent: str, **extra: Any) -> dict[str, Any]:
        letter = self.letter_of[ent]
        return {"letter": letter, "text": self.item.options[letter], **extra}

    def distractors(self) -> list[str]:
        answer = self.prov["answer_entity"]
        return [e for letter, e in sorted(self.prov["option_entities"].items()) if e != answer]

    def build(self, template: str) -> dict[str, Any]:
        item, prov = self.item, self.prov
        values: dict[str, Any] = {"answer_letter": item.answer, "answer_text": item.options[item.answer]}
        evidence: Mapping[str, Any] = prov.get("evidence") or {}
        if template == "diagnosis":
            values["findings"] = [self.finding(t) for t in prov["stem_entities"]]
            values["distractors"] = [self.option(e, lacks=self.finding(evidence[e]["lacks"]),
                                                 explicit=evidence[e].get("how", "").startswith("explicit"))
                                     for e in self.distractors()]
        elif template in TWO_HOP:
            hidden = prov["hidden"]
            others = [d for d in evidence.get("matching_diseases", []) if d != hidden]
            names = [self.disease(d) for d in others[:MAX_OTHERS]]
            if len(others) > MAX_OTHERS:
                names.append(f"{len(others) - MAX_OTHERS} more")
            values.update(findings=[self.finding(t) for t in prov["stem_entities"]], disease=self.disease(hidden),
                          others=names)
            values["distractors"] = [
                self.option(e, of=self.disease(evidence[e]["of"]), lacks=self.finding(evidence[e]["lacks"]),
                            explicit=evidence[e].get("how", "").startswith("explicit"))
                if isinstance(evidence.get(e), Mapping) and "of" in evidence[e] else self.option(e, of=None)
                for e in self.distractors()]
        elif template == "frequent-finding":
            values["disease"] = self.disease(prov["disease"])
            values["answer_freq"] = _frequency(evidence[prov["answer_entity"]]["frequency_range"])
            values["distractors"] = [self.option(e, freq=_frequency(evidence[e]["frequency_range"]))
                                     for e in self.distractors()]
        elif template == "absent-finding":
            values["disease"] = self.disease(prov["disease"])
            values["present"] = [self.finding(e) for e in self.distractors()]
        else:  # drug-mechanism
            drug = prov["hidden"]
            values.update(disease=self.disease(prov["disease"]), drug=self.graph.label(drug),
                          others=[self.graph.label(d) for d in evidence.get("drugs", []) if d != drug][:MAX_OTHERS])
            values["distractors"] = [self.option(e) for e in self.distractors()]
        return values


def _frequency(bounds: Sequence[float]) -> str:
    lo, hi = (round(100 * float(b)) for b in bounds)
    if lo == hi:
        return f"about {lo}%"
    if lo == 0:
        return f"up to {hi}%"
    return f"{lo}-{hi}%"


@hookimpl
def register_teachers(register: Any) -> None:
    """Register the `kg-path` teacher."""
    register("kg-path", KgPathTeacher)
