"""Data source `icd10cm`: the ICD-10-CM classification as a knowledge graph, from `simple-icd-10-cm`.

Nodes are ``ICD10CM:<code>`` (the dotted code, ``ICD10CM:A00.0``; Disease Ontology's cross-references
use the same form, so ``KnowledgeGraph.union`` joins DOID diseases to them). Chapters (``ICD10CM:1`` ...
``ICD10CM:22``) and blocks (``ICD10CM:A00-A09``) have kind ``category``; categories, subcategories and
the codes made with a 7th character are kind ``disease`` (injuries, external causes and Z factors
included), named by their description, with the inclusion terms as synonyms. ``is_a`` links each code to
its parent (a block that holds a single category of the same name, such as B99, is skipped: the
category links to the chapter). Node attrs: ``level`` (chapter, block, category, subcategory,
extended subcategory), ``billable`` (a code without subdivisions) and ``chapter``.

Args: ``chapters`` keeps only those chapters (numbers 1-22); ``billable_only`` turns every
non-billable code into kind ``category``, so that questions are asked about billable diagnoses while
the hierarchy stays whole. The graph's ``version`` names the ICD-10-CM release the package ships.
Loading takes ~3-4 s (the package parses its XML once per process at import).
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from fleming import QAItem, Rejected, StageContext, hookimpl
from fleming.kg import KnowledgeGraph

LICENCE = ("ICD-10-CM, National Center for Health Statistics (CDC): public domain; "
           "read with simple-icd-10-cm (MIT)")
Chapter = Annotated[int, Field(ge=1, le=22)]


def release() -> str:
    """Return the ICD-10-CM release the installed package ships, e.g. ``ICD-10-CM 2026 (April 1, 2026)``."""
    package = md.version("simple-icd-10-cm")
    spec = importlib.util.find_spec("simple_icd_10_cm")
    folder = Path(next(iter(spec.submodule_search_locations or []))) / "data" if spec else None
    tabular = sorted(folder.glob("icd10c*-tabular-*.xml")) if folder and folder.is_dir() else []
    if not tabular:
        return f"ICD-10-CM (simple-icd-10-cm {package})"
    with open(tabular[-1], encoding="utf-8") as fh:
        head = fh.read(400)
    year = re.search(r"<version>\s*([^<]+?)\s*</version>", head)
    date = re.search(r"tabular-([A-Za-z]+)-(\d+)-(\d{4})", tabular[-1].name)
    when = f" ({date[1]} {date[2]}, {date[3]})" if date else ""
    return f"ICD-10-CM {year[1] if year else ''}{when}, simple-icd-10-cm {package}".replace("  ", " ")


class Icd10cmSource:
    """The ICD-10-CM tabular list as a disease hierarchy."""

    def __init__(self, chapters: list[Chapter] | None = None, billable_only: bool = False) -> None:
        self.chapters = {str(c) for c in chapters} if chapters else None
        self.billable_only = billable_only

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """A graph source has no QA items."""
        return iter(())

    def graph(self, ctx: StageContext | None = None) -> KnowledgeGraph:
        """Build the graph from the package's code tree."""
        spinner = getattr(ctx, "spinner", None)
        if callable(spinner):
            with spinner("loading ICD-10-CM (simple-icd-10-cm)"):
                import simple_icd_10_cm as cm
        else:
            import simple_icd_10_cm as cm
        start = time.perf_counter()
        graph = KnowledgeGraph("icd10cm", release(), LICENCE)
        chapter = ""
        for code in dict.fromkeys(cm.get_all_codes(with_dots=True)):  # a one-category block repeats its code
            if cm.is_chapter(code):
                chapter = code
            if self.chapters is not None and chapter not in self.chapters:
                continue
            self._add(graph, cm, code, chapter)
        notes = getattr(ctx, "notes", None)
        if notes is not None:
            notes.setdefault("kg_sources", {})["icd10cm"] = {
                "nodes": len(graph.nodes), "edges": graph.edge_count, "seconds": round(time.perf_counter() - start, 2)}
        return graph

    def _add(self, graph: KnowledgeGraph, cm: Any, code: str, chapter: str) -> None:
        """Add one code and its is_a edge."""
        if cm.is_chapter(code):
            level = "chapter"
        elif cm.is_block(code) and not cm.is_category(code):
            level = "block"
        elif cm.is_extended_subcategory(code):
            level = "extended subcategory"
        else:
            level = "category" if cm.is_category(code) else "subcategory"
        billable = cm.is_leaf(code)
        kind = "category" if level in ("chapter", "block") or (self.billable_only and not billable) else "disease"
        graph.add_node(f"ICD10CM:{code}", kind, cm.get_description(code), cm.get_inclusion_term(code),
                       level=level, billable=billable, chapter=int(chapter))
        parent = cm.get_parent(code)
        if parent == code:  # the category of a one-category block: link it to the block's parent
            parent = cm.get_parent(code, prioritize_blocks=True)
        if parent:
            graph.add_edge(f"ICD10CM:{code}", "is_a", f"ICD10CM:{parent}")


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `icd10cm` source."""
    register("icd10cm", Icd10cmSource)
