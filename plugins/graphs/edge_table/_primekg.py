"""PrimeKG's ``kg.csv`` (and optional ``nodes.csv``) for the `edge-table` source (``format: primekg``).

PrimeKG stores every edge twice, once per direction. For a relation between two different node types
the copy in the canonical orientation (the table below) is kept and the other is counted as a
``reverse_copies`` note; when a file holds a relation only in the reverse orientation, a second pass adds
those rows flipped. Relations within one node type (``disease_disease`` parent-child, ``protein_protein``
...) carry no recoverable direction and keep both copies under their own names. The mapping to node ids,
kinds and relations is documented in ``fleming.plugins.graphs.edge_table.source``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from operator import itemgetter
from pathlib import Path

from fleming import StageContext
from fleming.errors import DataError
from fleming.kg import KnowledgeGraph
from fleming.plugins.graphs.edge_table._read import RowReport, TableFile, curie
from fleming.plugins.graphs.edge_table._rows import ensure_node
from fleming.suggest import did_you_mean

COLUMNS = ("relation", "display_relation", "x_id", "x_type", "x_name", "x_source",
           "y_id", "y_type", "y_name", "y_source")
NODE_COLUMNS = ("node_id", "node_type", "node_name", "node_source")
KINDS = {"effect/phenotype": "phenotype", "gene/protein": "gene"}  # other PrimeKG types keep their name
# PrimeKG node source -> (CURIE prefix, zero-padded width of numeric ids)
SOURCES = {"NCBI": ("NCBIGene", 0), "DrugBank": ("DrugBank", 0), "HPO": ("HP", 7), "MONDO": ("MONDO", 7),
           "MONDO_grouped": ("MONDO_grouped", 0), "GO": ("GO", 7), "REACTOME": ("REACT", 0),
           "UBERON": ("UBERON", 7), "CTD": ("MESH", 0)}
REQUIRED = ("relation", "x_id", "x_type", "x_source", "y_id", "y_type", "y_source")
GENE, PHENO = "gene/protein", "effect/phenotype"
# PrimeKG relation -> (fleming relation, x_type, y_type) in the orientation that is kept
DIRECTED: dict[str, tuple[str, str, str]] = {
    "indication": ("indication", "drug", "disease"),
    "contraindication": ("contraindication", "drug", "disease"),
    "off-label use": ("off_label_use", "drug", "disease"),
    "disease_phenotype_positive": ("has_phenotype", "disease", PHENO),
    "disease_phenotype_negative": ("excludes_phenotype", "disease", PHENO),
    "disease_protein": ("associated_gene", "disease", GENE),
    "drug_protein": ("target", "drug", GENE),
    "drug_effect": ("side_effect", "drug", PHENO),
    "phenotype_protein": ("phenotype_protein", PHENO, GENE),
    "bioprocess_protein": ("bioprocess_protein", "biological_process", GENE),
    "molfunc_protein": ("molfunc_protein", "molecular_function", GENE),
    "cellcomp_protein": ("cellcomp_protein", "cellular_component", GENE),
    "pathway_protein": ("pathway_protein", "pathway", GENE),
    "exposure_protein": ("exposure_protein", "exposure", GENE),
    "exposure_disease": ("exposure_disease", "exposure", "disease"),
    "exposure_bioprocess": ("exposure_bioprocess", "exposure", "biological_process"),
    "exposure_molfunc": ("exposure_molfunc", "exposure", "molecular_function"),
    "exposure_cellcomp": ("exposure_cellcomp", "exposure", "cellular_component"),
    "anatomy_protein_present": ("anatomy_protein_present", "anatomy", GENE),
    "anatomy_protein_absent": ("anatomy_protein_absent", "anatomy", GENE),
}
# drug_protein's display_relation -> relation: only "target" is a drug target
DRUG_PROTEIN = {"target": "target", "enzyme": "drug_enzyme", "carrier": "drug_carrier",
                "transporter": "drug_transporter"}


class _Ids:
    """PrimeKG (source, id) -> CURIE, computed once per node."""

    def __init__(self, prefix_map: Mapping[str, str]) -> None:
        self.prefix_map = prefix_map
        self.cache: dict[tuple[str, str], str] = {}

    def __call__(self, source: str, raw: str) -> str:
        key = (source, raw)
        got = self.cache.get(key)
        if got is None:
            prefix, width = SOURCES.get(source, (source, 0))
            value = raw.zfill(width) if width and raw.isdigit() else raw
            got = self.cache[key] = curie(value, prefix, self.prefix_map)
        return got


def load_primekg(graph: KnowledgeGraph, path: Path, nodes: Path | None, relations: Collection[str] | None,
                 prefix_map: Mapping[str, str], report: RowReport, ctx: StageContext | None = None) -> None:
    """Add PrimeKG's edges (and the nodes file's nodes) to `graph`; bad rows go to `report`."""
    ids = _Ids(prefix_map)
    seen: Counter[tuple[str, str]] = Counter()  # (relation, orientation) of the rows loaded
    present: set[str] = set()  # every relation in the file
    _pass(graph, path, relations, ids, report, ctx, seen, present, flip=frozenset())
    unknown = sorted(set(relations or ()) - present)
    if unknown:
        hint = did_you_mean(unknown[0], present)
        hint = hint if "did you mean" in hint else f"; the file's relations are: {', '.join(sorted(present))}"
        raise DataError(f"{path}: no rows with relation {unknown[0]!r} (named by relations){hint}")
    flip = frozenset(rel for rel in present if seen[rel, "reverse"] and not seen[rel, "forward"])
    if flip:
        _pass(graph, path, flip, ids, report, ctx, seen, present, flip=flip)
    report.counts["reverse_copies"] = sum(n for (rel, way), n in seen.items()
                                          if way == "reverse" and rel not in flip)
    if nodes is not None:
        _load_nodes(graph, nodes, ids, report, ctx)


def _orient(rel: str, display: str, x_type: str, y_type: str) -> tuple[str, str]:
    """Return (fleming relation, orientation): forward, reverse, wrong (types do not fit) or undirected."""
    spec = DIRECTED.get(rel)
    if spec is None:
        return rel, "undirected"
    name, a, b = spec
    if rel == "drug_protein":
        name = DRUG_PROTEIN.get(display, f"drug_{display or 'protein'}")
    if (x_type, y_type) == (a, b):
        return name, "forward"
    return name, "reverse" if (x_type, y_type) == (b, a) else "wrong"


def _pass(graph: KnowledgeGraph, path: Path, relations: Collection[str] | None, ids: _Ids, report: RowReport,
          ctx: StageContext | None, seen: Counter[tuple[str, str]], present: set[str], flip: frozenset[str]) -> None:
    """Read kg.csv once; with `flip`, add only those relations' reverse-orientation rows, flipped.

    The loop runs once per row of an 8-million-row file, so it caches what repeats (orientations, nodes).
    """
    orientations: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    known: dict[tuple[str, str], str] = {}  # (source, raw id) -> node id in the graph
    rows = edges = skipped = 0
    ways: Counter[tuple[str, str]] = Counter()

    def node(source: str, raw: str, type_: str, name: str) -> str:
        got = known.get((source, raw))
        if got is None:
            got = known[source, raw] = ensure_node(graph, ids(source, raw), KINDS.get(type_, type_), name, report)
        return got

    with TableFile(path) as table:
        pick = itemgetter(*(table.index(c, "format: primekg") for c in COLUMNS))
        width = len(table.columns)
        label = "adding reverse-only relations from" if flip else "reading"
        for line, f in table.rows(ctx, f"{label} {path.name}"):
            rows += 1
            if len(f) != width:
                if not flip:
                    report.reject(f"{len(f)} fields where the header has {width}", f"{path}:{line}",
                                  {"fields": f})
                continue
            values = pick(f)
            rel, display, x_id, x_type, x_name, x_src, y_id, y_type, y_name, y_src = values
            present.add(rel)
            if relations is not None and rel not in relations:
                skipped += 1
                continue
            if not (rel and x_id and x_type and x_src and y_id and y_type and y_src):
                if not flip:
                    empty = [c for c, v in zip(COLUMNS, values) if c in REQUIRED and not v.strip()]
                    report.reject(f"missing {', '.join(empty)}", f"{path}:{line}", dict(zip(COLUMNS, values)))
                continue
            key = (rel, display, x_type, y_type)
            got = orientations.get(key)
            if got is None:
                got = orientations[key] = _orient(*key)
            name, way = got
            if flip:
                if way != "reverse":
                    continue
                x_id, x_type, x_name, x_src, y_id, y_type, y_name, y_src = (
                    y_id, y_type, y_name, y_src, x_id, x_type, x_name, x_src)
            else:
                ways[rel, way] += 1
                if way == "wrong":
                    a, b = DIRECTED[rel][1:]
                    report.reject(f"{rel} links {a} to {b}, not {x_type} to {y_type}", f"{path}:{line}",
                                  dict(zip(COLUMNS, values)))
                    continue
                if way == "reverse":
                    continue
            graph.add_edge(node(x_src, x_id, x_type, x_name), name, node(y_src, y_id, y_type, y_name))
            edges += 1
    if not flip:
        seen.update(ways)
        report.counts["rows"] += rows
        report.counts["rows_skipped_by_relations"] += skipped
    report.counts["edges"] += edges


def _load_nodes(graph: KnowledgeGraph, path: Path, ids: _Ids, report: RowReport, ctx: StageContext | None) -> None:
    """Add the nodes of PrimeKG's nodes.csv that no edge mentioned (isolated nodes)."""
    with TableFile(path) as table:
        cols = [table.index(c, "nodes") for c in NODE_COLUMNS]
        for line, f in table.rows(ctx, f"reading {path.name}"):
            if len(f) <= max(cols):
                report.reject(f"{len(f)} fields, too few for {', '.join(NODE_COLUMNS)}", f"{path}:{line}",
                              {"fields": f})
                continue
            node_id, node_type, node_name, source = (f[i].strip() for i in cols)
            if not (node_id and node_type and source):
                report.reject("missing node_id, node_type or node_source", f"{path}:{line}",
                              dict(zip(NODE_COLUMNS, f)))
                continue
            before = len(graph.nodes)
            ensure_node(graph, ids(source, node_id), KINDS.get(node_type, node_type), node_name, report)
            report.counts["isolated_nodes"] += len(graph.nodes) - before
