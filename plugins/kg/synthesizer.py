"""Synthesizer `kg`: multiple-choice items from the knowledge graphs of the recipe's sources.

Each item masks one node of a sampled subgraph (templates in ``kg_templates``): findings → diagnosis;
findings → hidden diagnosis → inheritance / gene / onset; a disease's most frequent finding; the finding
a disease explicitly lacks; and, when a drug source is loaded, disease → hidden drug → mechanism and
findings → hidden disease → drug. Every item is checked against the graph before it is emitted
(``kg_checks``; "has" and "surely lacks" are defined in ``fleming.kg_index``, which the reasoning audit
shares); one that fails is not emitted and its reason is counted in the stage's notes
(``notes["kg"]["failed"]``), as are routine sampling failures.

Sampling favours rare diseases: a disease with ``a`` phenotype annotations is drawn with weight
``(1 + a) ** -rare_weight`` (0 = uniform; the default 1.0 makes a disease with 4 annotations 10 times as
likely as one with 49); ``diseases`` asks about that many diseases only, drawn once with the same weights, so
each has several items with different stems (what the mix stage's known-diagnosis split takes). Findings in a
stem are drawn by frequency times information content, never one an ancestor of another, none at or above the
generic depth. Templates take turns, the one with the fewest
items first, until ``n`` items are made or every template is exhausted. Per-disease templates
(frequent-finding, absent-finding, drug-mechanism) ask at most once per disease; no two items share a
stem (the same template and stem entities, or the same normalised question text). The seed is the recipe's.
A template with fewer possible answers than ``options`` makes no items (onset has 7 classes; inheritance
about 11 modes, fewer once related ones are left out), nor does ``diagnosis`` with one-finding stems (a
distractor must share a stem finding and lack another).

Item provenance (``meta`` in items.jsonl): ``kg`` (source, version, licence), ``template``, ``hops``,
``answer_entity``, ``option_entities`` (letter → id), ``stem_entities``, ``path`` ([src, rel, dst] edges),
``disease`` and ``diagnosis`` (the disease the item is about, named or hidden: group the held-out split by
``diagnosis`` so no held-out disease is taught through a two-hop item), ``hidden`` (the masked node of a
two-hop item) and ``evidence`` (why each distractor is wrong).
"""
from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveInt, model_validator

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.errors import StageError
from fleming.kg import KnowledgeGraph
from fleming.items import question_key
from fleming.kg_index import KgIndex, finding_text
from fleming.plugins.kg._checks import check
from fleming.plugins.kg._sampling import Relations, Spec
from fleming.plugins.kg._templates import Builder
from fleming.prompts import render

TemplateName = Literal["diagnosis", "inheritance", "gene", "onset", "frequent-finding", "absent-finding",
                       "drug-mechanism", "drug"]
TEMPLATES: tuple[str, ...] = TemplateName.__args__  # type: ignore[attr-defined]
PER_DISEASE = ("frequent-finding", "absent-finding", "drug-mechanism")
NEEDS = {"diagnosis": ("has_phenotype",), "inheritance": ("has_phenotype", "inheritance"),
         "gene": ("has_phenotype", "associated_gene"), "onset": ("has_phenotype", "onset"),
         "frequent-finding": ("has_phenotype",), "absent-finding": ("has_phenotype", "excludes_phenotype"),
         "drug-mechanism": ("indication", "mechanism"), "drug": ("has_phenotype", "indication")}
LETTERS = "ABCDEFGHIJ"
GIVE_UP = 400  # consecutive failures after which a template is taken to be exhausted


class KgArgs(BaseModel):
    """The `kg` synthesizer's recipe args."""

    n: PositiveInt = Field(default=2000, description="items wanted")
    templates: list[TemplateName] | None = Field(default=None, min_length=1,
                                                 description="templates to use (default: every applicable one)")
    options: int = Field(default=5, ge=2, le=10, description="options per item (k)")
    rare_weight: float = Field(default=1.0, ge=0, le=10,
                               description="a disease with a annotations is drawn with weight (1 + a) ** -rare_weight")
    min_findings: int = Field(default=3, ge=1, le=12, description="fewest findings in a vignette")
    max_findings: int = Field(default=6, ge=1, le=12, description="most findings in a vignette")
    generic_depth: int = Field(default=3, ge=0, le=20,
                               description="terms this close to the root are never shown and never make a "
                                           "finding uncertain")
    distractor_min_annotations: int = Field(default=5, ge=0,
                                            description="a distractor disease needs this many annotations")
    diseases: PositiveInt | None = Field(default=None,
                                         description="ask about this many diseases only, drawn once (rare-weighted): "
                                                     "several items, with different stems, per disease (default: all)")

    @model_validator(mode="after")
    def _findings_range(self) -> KgArgs:
        if self.max_findings < self.min_findings:
            raise ValueError(f"max_findings ({self.max_findings}) is below min_findings ({self.min_findings})")
        return self


class KgSynthesizer:
    """Write verified multiple-choice items from knowledge graphs (see the module docstring)."""

    Args = KgArgs

    def __init__(self, **kwargs: Any) -> None:
        self.args = KgArgs(**kwargs)

    def synthesize(self, graphs: dict[str, KnowledgeGraph], ctx: StageContext) -> Iterator[QAItem | Rejected]:
        """Yield up to `n` checked items; failures are counted in ``ctx.notes["kg"]``."""
        graph = _one_graph(graphs)
        t0 = time.perf_counter()
        ix = KgIndex(graph, self.args.generic_depth)
        index_s = time.perf_counter() - t0
        run = _Run(self.args, ix, graph, "+".join(sorted(graphs)), ctx.seed)
        notes: dict[str, Any] = {"version": graph.version, "licence": graph.licence,
                                 "index_seconds": round(index_s, 3), "templates": run.names}
        ctx.notes["kg"] = notes
        t1 = time.perf_counter()
        yield from ctx.progress(run.items(), total=self.args.n, description="kg items")
        seconds = time.perf_counter() - t1
        notes.update(run.summary(), seconds=round(seconds, 3),
                     items_per_second=round(sum(run.made.values()) / max(seconds, 1e-9), 1))
        if sum(run.made.values()) < self.args.n:
            ctx.log(f"kg: made {sum(run.made.values())} of the {self.args.n} items asked for: every template "
                    "ran out of new stems (see notes.kg.failed in the manifest)")


def _one_graph(graphs: dict[str, KnowledgeGraph]) -> KnowledgeGraph:
    if not graphs:
        raise StageError("the kg synthesizer needs a knowledge-graph source in data.sources (e.g. hpo)")
    if len(graphs) == 1:
        return next(iter(graphs.values()))
    return KnowledgeGraph.union([graphs[k] for k in sorted(graphs)], name="+".join(sorted(graphs)))


class _Run:
    """One synthesis run: template pools, the turn-taking loop, rendering and bookkeeping."""

    def __init__(self, args: KgArgs, ix: KgIndex, graph: KnowledgeGraph, source: str, seed: int) -> None:
        self.args, self.ix, self.graph, self.source = args, ix, graph, source
        self.rng = random.Random(seed)
        self.rel = Relations(ix)
        self.builder = Builder(ix, self.rel, args.options, args.min_findings, args.max_findings,
                               args.distractor_min_annotations)
        self.weights = [(1 + a) ** -args.rare_weight for a in ix.n_ann]
        self.subset = self._subset(args.diseases, seed)
        self.names = self._applicable(args.templates)
        self.pools = {name: self._pool(name) for name in self.names}
        self.names = [n for n in self.names if self.pools[n][0]]
        self.made = {n: 0 for n in self.names}
        self.failed: dict[str, dict[str, int]] = {n: {} for n in self.names}
        self.attempts = 0
        self.seen_keys: set[tuple[str, frozenset[str]]] = set()
        self.seen_text: set[str] = set()
        self.diseases: list[int] = []

    def _applicable(self, wanted: list[str] | None) -> list[str]:
        have = set(self.graph.relations())
        if wanted is None:
            return [t for t in TEMPLATES if set(NEEDS[t]) <= have]
        for t in wanted:
            missing = [r for r in NEEDS[t] if r not in have]
            if missing:
                raise StageError(f"kg template '{t}' needs {', '.join(missing)} edges, which none of the loaded "
                                 "knowledge graphs has (add a source that provides them, or drop the template)")
        return list(dict.fromkeys(wanted))

    def _subset(self, size: int | None, seed: int) -> set[int] | None:
        """The diseases every item is about when `size` is set: a weighted draw without replacement."""
        if size is None:
            return None
        rng = random.Random(f"{seed}:diseases")
        ok = [e for e in range(self.ix.size) if len(self.ix.pos[e]) >= self.args.min_findings]
        return {e for _, e in sorted((rng.random() ** (1 / self.weights[e]), e) for e in ok)[-size:]}

    def _pool(self, name: str) -> tuple[list[int], list[float]]:
        """Return (entities, cumulative weights) to draw from; per-disease templates get a weighted order."""
        ix, rel = self.ix, self.rel
        if name == "frequent-finding":
            ok = [e for e in range(ix.size) if any(r and r[0] >= 0.5 for r in ix.ann[e].values())]
        elif name == "absent-finding":
            ok = [e for e in range(ix.size) if ix.nots[e]]
        elif name == "drug-mechanism":
            ok = [e for e in range(ix.size) if rel.get("drugs")[0][e]]
        else:
            ok = [e for e in range(ix.size) if len(ix.pos[e]) >= self.args.min_findings]
            extra = {"inheritance": lambda e: len(rel.get("modes")[0][e]) == 1,
                     "onset": lambda e: len(rel.get("onsets")[0][e]) == 1 and "?" not in rel.get("onsets")[0][e],
                     "gene": lambda e: bool(rel.get("genes")[0][e]),
                     "drug": lambda e: bool(rel.get("drugs")[0][e])}.get(name)
            if extra is not None:
                ok = [e for e in ok if extra(e)]
        if self.subset is not None:
            ok = [e for e in ok if e in self.subset]
        if name in PER_DISEASE:  # weighted order without replacement (exponential keys)
            keys = sorted((-math.log(1.0 - self.rng.random()) / self.weights[e], e) for e in ok)
            return [e for _, e in keys][::-1], []
        cum, acc = [], 0.0
        for e in ok:
            acc += self.weights[e]
            cum.append(acc)
        return ok, cum

    def _draw(self, name: str) -> int | None:
        pool, cum = self.pools[name]
        if name in PER_DISEASE:
            return pool.pop() if pool else None
        return self.rng.choices(pool, cum_weights=cum)[0]

    def items(self) -> Iterator[QAItem | Rejected]:
        """Yield items until `n` are made or every template is exhausted."""
        active = list(self.names)
        streak = {n: 0 for n in active}
        while active and sum(self.made.values()) < self.args.n:
            name = min(active, key=lambda t: (self.made[t], active.index(t)))
            e = self._draw(name)
            if e is None:
                active.remove(name)
                continue
            self.attempts += 1
            got = self._one(name, e)
            if isinstance(got, str):
                self.failed[name][got] = self.failed[name].get(got, 0) + 1
                streak[name] += 1
                if streak[name] >= GIVE_UP:
                    active.remove(name)
                continue
            streak[name] = 0
            if isinstance(got, Rejected):
                yield got
                continue
            self.made[name] += 1
            self.diseases.append(e)
            yield got

    def _one(self, name: str, e: int) -> QAItem | Rejected | str:
        spec: Spec | str = getattr(self.builder, name.replace("-", "_"))(e, self.rng)
        if isinstance(spec, str):
            return spec
        key = (name, frozenset(spec.stem))
        if key in self.seen_keys:
            return "duplicate stem"
        item = self._render(spec)
        norm = question_key(item.question)
        if norm in self.seen_text:
            return "duplicate question text"
        problem = check(spec, self.ix, self.rel, self.args.options)
        if problem:
            self.failed[name]["check: " + problem.split(" ", 1)[0]] = self.failed[name].get(
                "check: " + problem.split(" ", 1)[0], 0) + 1
            return Rejected(f"kg check failed: {problem}", f"kg:{name}", item.to_record())
        self.seen_keys.add(key)
        self.seen_text.add(norm)
        return item

    def _render(self, spec: Spec) -> QAItem:
        ix, rng = self.ix, self.rng
        values: dict[str, Any] = {"variant": rng.randrange(1 << 30), "disease": ix.names[spec.disease]}
        if spec.template not in PER_DISEASE:
            values["findings"] = [finding_text(self.graph.label(t)) for t in spec.stem]
        question = render(f"kg_{spec.template.replace('-', '_')}", **values)
        order = [spec.answer, *spec.distractors]
        rng.shuffle(order)
        letters = LETTERS[: len(order)]
        options = {letters[i]: spec.texts[ent] for i, ent in enumerate(order)}
        answer = letters[order.index(spec.answer)]
        digest = hashlib.sha1(f"{question}\n{spec.texts[spec.answer]}".encode()).hexdigest()[:12]
        provenance = {
            "kg": {"source": self.source, "version": self.graph.version, "licence": self.graph.licence},
            "template": spec.template, "hops": spec.hops, "answer_entity": spec.answer,
            "option_entities": {letters[i]: ent for i, ent in enumerate(order)},
            "stem_entities": list(spec.stem), "path": [list(p) for p in spec.path],
            "disease": ix.ids[spec.disease], "diagnosis": ix.ids[spec.disease], "hidden": spec.hidden,
            "evidence": spec.evidence,
        }
        return QAItem(id=f"kg:{spec.template}:{digest}", question=question, options=options, answer=answer,
                      source=f"kg:{self.source}", difficulty=None, provenance=provenance)

    def summary(self) -> dict[str, Any]:
        """Return what the run made and why candidates failed, for the manifest's notes."""
        ranked = sorted((a, self.ix.ids[e]) for e, a in enumerate(self.ix.n_ann) if a > 0)
        rare = {self.ix.entity_of[i] for _, i in ranked[: len(ranked) // 2]}
        share = sum(1 for e in self.diseases if e in rare) / max(1, len(self.diseases))
        return {"made": dict(self.made), "attempts": self.attempts,
                "failed": {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in self.failed.items() if v},
                "rarer_half_share": round(share, 4)}


@hookimpl
def register_synthesizers(register: Any) -> None:
    """Register the `kg` synthesizer."""
    register("kg", KgSynthesizer)
