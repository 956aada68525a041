"""The data stages: resolve the model, collect and synthesize items, filter, verify, annotate and mix them."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fleming.errors import StageError
from fleming.formats import write_training_shapes
from fleming.items import jsonl_text, read_items, write_items, write_rejects
from fleming.mixing import mix_items
from fleming.context import StageContext
from fleming.models import resolve_model
from fleming.pipeline.context import StageRun
from fleming.pipeline.rundir import atomic_write_json, atomic_write_text
from fleming.splits import SPLIT_FILES
from fleming.types import QAItem, Rejected


def upstream_items(s: StageRun, inputs: Sequence[str]) -> list[QAItem]:
    """The items the named upstream stages wrote (the mix stage's training split)."""
    items: list[QAItem] = []
    for name in inputs:
        folder = s.run.run_dir / name
        if (folder / "train").exists() and name == "mix":
            items.extend(read_items(folder, "train"))
        elif (folder / "items").exists():
            items.extend(read_items(folder))
    return items


def split_results(results: Sequence[QAItem | Rejected]) -> tuple[list[QAItem], list[Rejected]]:
    """Separate a component's items from its rejects."""
    items = [r for r in results if isinstance(r, QAItem)]
    rejects = [r for r in results if isinstance(r, Rejected)]
    return items, rejects


def run_model(s: StageRun) -> None:
    """Resolve the base model (building the embedded model's HF folder once) and record where it is."""
    ctx = s.ctx
    recipe = s.recipe
    with ctx.spinner(f"resolving model '{recipe.model}' (an embedded model is built once, ~30 s)"):
        resolved = resolve_model(recipe.model, s.run.loaded.base_dir, status=ctx.log)
    atomic_write_json(ctx.dir / "model.json", {"spec": resolved.spec, "path": resolved.path,
                                               "local": resolved.local, "label": resolved.label})
    ctx.notes["model"] = resolved.path


def run_collect(s: StageRun) -> None:
    """Read every curated source into items; unreadable rows go to rejects.jsonl."""
    ctx = s.ctx
    recipe = s.recipe
    items: list[QAItem] = []
    rejects: list[Rejected] = []
    for i, spec in enumerate(recipe.data.sources):
        source = s.run.build("data_sources", f"data.sources[{i}]", spec)
        got, bad = split_results(list(ctx.progress(source.items(ctx), description=f"reading {spec.plugin}")))
        items += [it.replace(provenance={**it.provenance, "origin": it.provenance.get("origin", "curated")})
                  for it in got]
        rejects += bad
        ctx.counts[f"source:{spec.plugin}:{i}"] = len(got)
    _write_unique(ctx, items, rejects)


def run_synthesize(s: StageRun) -> None:
    """Load the sources' knowledge graphs and run every synthesizer over them."""
    ctx = s.ctx
    recipe = s.recipe
    graphs = ctx.graphs()
    items: list[QAItem] = []
    rejects: list[Rejected] = []
    for i, spec in enumerate(recipe.data.synthesize):
        synth = s.run.build("synthesizers", f"data.synthesize[{i}]", spec)
        got, bad = split_results(list(synth.synthesize(graphs, ctx)))
        items += [it.replace(provenance={**it.provenance, "origin": "synthetic"}) for it in got]
        rejects += bad
        ctx.counts[f"synthesizer:{spec.plugin}:{i}"] = len(got)
    _write_unique(ctx, items, rejects)


def _write_unique(ctx: StageContext, items: list[QAItem], rejects: list[Rejected]) -> None:
    seen: set[str] = set()
    unique: list[QAItem] = []
    for it in items:
        if it.id in seen:
            where = str(it.provenance.get("where") or it.source)  # file:line when the source recorded it
            rejects.append(Rejected(f"duplicate id '{it.id}'", where, it.to_record()))
            continue
        seen.add(it.id)
        unique.append(it)
    write_items(ctx.dir, unique)
    write_rejects(ctx.dir, rejects)
    ctx.counts.update(items=len(unique), rejected=len(rejects))


def run_filter(s: StageRun) -> None:
    """Apply every filter in order; each reject records the filter that removed it and why."""
    ctx = s.ctx
    recipe = s.recipe
    items = upstream_items(s, s.inputs)
    ctx.counts["in"] = len(items)
    rejects: list[Rejected] = []
    for i, spec in enumerate(recipe.data.filters):
        flt = s.run.build("filters", f"data.filters[{i}]", spec)
        items, bad = flt.apply(items, ctx)
        rejects += [Rejected(f"{spec.plugin}: {r.reason}", r.where, r.record) for r in bad]
        ctx.counts[f"filter:{spec.plugin}:{i}:rejected"] = len(bad)
    write_items(ctx.dir, items)
    write_rejects(ctx.dir, rejects)
    ctx.counts.update(items=len(items), rejected=len(rejects))


def _run_verifiers(s: StageRun, field_name: str) -> None:
    ctx = s.ctx
    specs = getattr(s.recipe.data, field_name)
    items = upstream_items(s, s.inputs)
    ctx.counts["in"] = len(items)
    verdict_rows: list[dict[str, Any]] = []
    rejects: list[Rejected] = []
    for i, spec in enumerate(specs):
        verifier = s.run.build("verifiers", f"data.{field_name}[{i}]", spec)
        verdicts = verifier.verify(items, ctx)
        if len(verdicts) != len(items):
            raise StageError(f"data.{field_name}[{i}]: verifier '{spec.plugin}' returned {len(verdicts)} "
                             f"verdicts for {len(items)} items")
        kept: list[QAItem] = []
        for v in verdicts:
            verdict_rows.append({"verifier": spec.plugin, "id": v.item.id, "status": v.status,
                                 "reason": v.reason, "details": dict(v.details)})
            if v.status == "drop":
                rejects.append(Rejected(f"{spec.plugin}: {v.reason}", v.item.source, v.item.to_record()))
            else:
                kept.append(v.item)
            ctx.counts[f"{spec.plugin}:{v.status}"] = ctx.counts.get(f"{spec.plugin}:{v.status}", 0) + 1
        items = kept
    write_items(ctx.dir, items)
    write_rejects(ctx.dir, rejects)
    atomic_write_text(ctx.dir / "verdicts.jsonl", jsonl_text(verdict_rows))
    ctx.counts.update(items=len(items), rejected=len(rejects))


def run_verify(s: StageRun) -> None:
    """Run the label checkers."""
    _run_verifiers(s, "verify")


def run_annotate(s: StageRun) -> None:
    """Run the annotators (difficulty labels)."""
    _run_verifiers(s, "annotate")


def run_mix(s: StageRun) -> None:
    """Mix curated and synthetic items and split off the held-out splits: unseen diagnoses (``heldout``), and,
    when the recipe asks, new questions about trained diagnoses (``heldout_known``) and a dev split (``dev``)."""
    ctx = s.ctx
    recipe = s.recipe
    mix = recipe.data.mix
    items = upstream_items(s, s.inputs)
    result = mix_items(items, mix, recipe.seed)
    write_items(ctx.dir, result.train, "train")
    write_items(ctx.dir, result.heldout, SPLIT_FILES["unseen"])
    ctx.counts.update(train=len(result.train), heldout=len(result.heldout))
    for split, got in (("known", result.known), ("dev", result.dev)):
        if mix is not None and getattr(mix, f"{split}_fraction") > 0:  # asked for: written even when empty
            write_items(ctx.dir, got, SPLIT_FILES[split])
            ctx.counts[SPLIT_FILES[split]] = len(got)
    write_training_shapes(ctx.dir, "train", result.train)
    write_rejects(ctx.dir, result.unused, "unused")
    ctx.counts["unused"] = len(result.unused)
    ctx.notes["mix"] = result.notes
