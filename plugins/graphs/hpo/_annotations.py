"""Reading ``phenotype.hpoa`` (annotations, folded into one edge per disease and term) and
``genes_to_phenotype.txt`` (disease-gene links). Part of the `hpo` data source (``fleming.plugins.graphs.hpo.source``).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from fleming import Rejected
from fleming.errors import DataError
from fleming.kg import KnowledgeGraph

FREQUENCY_TERMS = {"HP:0040280": (1.0, 1.0), "HP:0040281": (0.80, 0.99), "HP:0040282": (0.30, 0.79),
                   "HP:0040283": (0.05, 0.29), "HP:0040284": (0.01, 0.04), "HP:0040285": (0.0, 0.0)}
# aspect -> (relation for a positive row, relation for a NOT row, node kinds the term may have)
ASPECTS = {"P": ("has_phenotype", "excludes_phenotype", {"phenotype"}),
           "H": ("medical_history", "excludes_medical_history", {"hpo_term"}),
           "I": ("inheritance", None, {"inheritance"}),
           "C": ("clinical_course", None, {"onset", "clinical_modifier"}),
           "M": ("clinical_modifier", None, {"clinical_modifier"})}


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


def annotations_release(path: Path) -> str:
    """Return the ``#version:`` of an annotation file ("" when it has none)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            if line.startswith("#version:"):
                return line.split(":", 1)[1].strip()
    return ""


def read_annotations(path: Path, graph: KnowledgeGraph, current: dict[str, str], kinds: dict[str, str],
                     qualifiers: set[str], databases: set[str], rejects: list[Rejected],
                     stats: dict[str, int]) -> None:
    """Add the diseases and their annotation edges to `graph`; unreadable rows go to `rejects`."""
    edges: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    named: dict[tuple[str, str], int] = defaultdict(int)  # (id, name) -> rows: a few diseases have two names
    classified: dict[tuple[str, str, str], tuple[str, str, str]] = {}
    freqs: dict[str, tuple[tuple[float, float] | None, float | None, str]] = {"": (None, None, "")}
    labels = {tid: f"{graph.nodes[tid].name} ({tid})" for tid in FREQUENCY_TERMS if tid in graph.nodes}
    skipped = 0
    last_did, db = "", ""
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
        if did != last_did:  # rows come grouped by disease: look its database up once per group
            last_did, db = did, did.split(":", 1)[0]
            db = "ok" if db in databases else "skip" if db in ("OMIM", "ORPHA", "DECIPHER") else "bad"
        if db != "ok":
            if db == "bad":
                rejects.append(Rejected(f"unknown disease database in id {did!r}", f"{path}:{lineno}",
                                        {"line": line[:500]}))
            skipped += db == "skip"
            continue
        key = (qualifier, hp, aspect)
        try:
            problem, rel, term = classified[key]
        except KeyError:
            problem, rel, term = classified[key] = _classify(key, current, kinds, qualifiers)
        if problem:
            rejects.append(Rejected(problem, f"{path}:{lineno}", {"line": line[:500]}))
            continue
        if rel != "has_phenotype":
            freq = ""
        if freq not in freqs:
            try:
                rng = parse_frequency(freq, f"{path}:{lineno}")
            except DataError as exc:
                rejects.append(Rejected(str(exc).split(": ", 1)[1], f"{path}:{lineno}", {"line": line[:500]}))
                continue
            freqs[freq] = (rng, round((rng[0] + rng[1]) / 2, 4) if rng else None, labels.get(freq, freq))
        rng, mid, label = freqs[freq]
        named[(did, name)] += 1
        edge_key = (did, rel, term)
        if rel != "has_phenotype":
            edges[edge_key] = None
            continue
        if onset or sex or modifier:
            onset = current.get(onset, onset) if onset else ""
            mods = [current.get(m, m) for m in modifier.split(";") if m] if modifier else []
        else:
            mods = []
        if edge_key in edges:
            _merge(edges[edge_key], rng, label, onset, sex.lower(), mods)  # type: ignore[arg-type]
            continue
        attrs = edges[edge_key] = ({"frequency": None} if rng is None else
                                   {"frequency": mid, "frequency_range": rng, "frequency_label": label})
        if onset or sex or mods:
            _merge(attrs, None, "", onset, sex.lower(), mods)
    diseases: dict[str, dict[str, int]] = {}
    for (did, name), rows in named.items():
        diseases.setdefault(did, {})[name] = rows
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


def read_genes(path: Path, graph: KnowledgeGraph, rejects: list[Rejected], stats: dict[str, int]) -> None:
    """Add genes and ``associated_gene`` edges for the diseases already in `graph`."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    header = lines[0].split("\t")
    if header[:2] != ["ncbi_gene_id", "gene_symbol"] or header[-1] != "disease_id":
        raise DataError(f"{path}:1: unexpected header (want ncbi_gene_id, gene_symbol, ..., disease_id)")
    width = len(header)
    pairs: dict[tuple[str, str], str] = {}
    tabs = width - 1
    for lineno, line in enumerate(lines[1:], start=2):
        key = (line[: line.find("\t")], line[line.rfind("\t") + 1:])  # most lines repeat a (gene, disease) pair
        if key in pairs and line.count("\t") == tabs:
            continue
        row = line.split("\t")
        if len(row) != width or not row[0].isdigit():
            if line:
                rejects.append(Rejected(f"expected {width} tab-separated columns starting with an NCBI gene id",
                                        f"{path}:{lineno}", {"line": line[:500]}))
            continue
        pairs[key] = row[1]
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
