"""Data source `edge-table`: bring your own knowledge graph as edge tables (TSV/CSV) or PrimeKG's ``kg.csv``.

It yields no QA items; ``graph(ctx)`` returns a ``fleming.kg.KnowledgeGraph`` named ``name`` with
``version`` and ``licence`` recorded (synthesizers copy them into every item's provenance).

``format: table`` reads ``tables``, each one edge per row::

    tables:
      - path: indications.tsv          # sep: auto from .tsv/.tab/.txt (tab) or .csv (comma); .gz is read too
        src: drugbank_id               # columns holding the two ends
        dst: doid_id
        src_kind: drug                 # node kinds (fleming.kg): disease, phenotype, drug, drug_class, gene ...
        dst_kind: disease
        src_prefix: DrugBank           # CURIE prefix added to bare ids (DB00843 -> DrugBank:DB00843)
        src_name: drug                 # optional name columns (a node without one is named by its id)
        dst_name: disease
        relation: indication           # a constant, or relation_column (+ relation_map, "*" = otherwise)
        filter: {category: [DM, SYM]}  # keep rows whose column holds one of these values
        attrs: [category]              # columns kept as edge attrs (or {column: attr_name})
        join:                          # columns looked up in another table (right_on defaults to left_on)
          - {path: classes.tsv, left_on: class_id, right_on: class_id, columns: [class_type]}

``src_prefix_column`` / ``dst_prefix_column`` take the prefix from a column instead. ``xrefs`` tables give
nodes cross-references (``{path, id, xref, id_prefix, xref_prefix}``) so that ``KnowledgeGraph.union``
joins them to other graphs (DOID diseases to HPO's ``OMIM:`` / ``ORPHA:`` ones). Every prefix, whether
in the data or given, is renamed through ``prefix_map`` (merged over ``PREFIX_MAP``: ``MIM`` → ``OMIM``,
``ORDO`` / ``Orphanet`` → ``ORPHA``, ``MSH`` / ``MeSH`` → ``MESH``).

``format: primekg`` reads ``path`` (PrimeKG's ``kg.csv``), optionally ``nodes`` (``nodes.csv``: adds
nodes no edge mentions) and only the PrimeKG ``relations`` listed (default: all). The mapping:

=================================== ================================ ===============================
PrimeKG                             fleming                          kept orientation
=================================== ================================ ===============================
node type effect/phenotype          kind ``phenotype``
node type gene/protein              kind ``gene``
other node types                    kind = the PrimeKG type          (disease, drug, pathway ...)
ids by x_source / y_source          NCBI → NCBIGene:, DrugBank → DrugBank:, HPO → HP:0000000,
                                    MONDO → MONDO:0000000, GO → GO:0000000, UBERON → UBERON:0000000,
                                    REACTOME → REACT:, CTD → MESH:, MONDO_grouped → MONDO_grouped:
indication, contraindication        indication, contraindication     drug → disease
off-label use                       off_label_use                    drug → disease
disease_phenotype_positive          has_phenotype                    disease → phenotype
disease_phenotype_negative          excludes_phenotype               disease → phenotype
disease_protein                     associated_gene                  disease → gene
drug_protein (display target)       target                           drug → gene
drug_protein (enzyme, carrier,      drug_enzyme, drug_carrier,       drug → gene
transporter)                        drug_transporter
drug_effect                         side_effect                      drug → phenotype
other two-type relations            own name (phenotype_protein,     as the name reads (anatomy → gene,
                                    exposure_disease, ...)           exposure → disease, ...)
one-type relations, unknown ones    own name (disease_disease,       both copies (no direction)
                                    protein_protein, drug_drug, ...)
=================================== ================================ ===============================

A row missing a required field, with the wrong number of fields, or without a join match is never added
and never fatal: it is counted and reported as ``file:line: reason`` in the stage notes
(``rejected_rows[name]``: count, the first few, and the file in the stage folder that lists them).
A column the spec names but the file lacks is a one-line ``DataError``. Counts (rows, edges, nodes,
filtered rows, repeated edges, xrefs, PrimeKG's reverse copies, seconds) go to ``kg_sources[name]``.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleming import ExistingPath, QAItem, Rejected, StageContext, hookimpl
from fleming.kg import KnowledgeGraph
from fleming.plugins.graphs.edge_table._primekg import load_primekg
from fleming.plugins.graphs.edge_table._read import RowReport, bulk_load
from fleming.plugins.graphs.edge_table._rows import apply_xrefs, load_table

PREFIX_MAP = {"MIM": "OMIM", "ORDO": "ORPHA", "Orphanet": "ORPHA", "ORPHANET": "ORPHA", "MSH": "MESH",
              "MeSH": "MESH"}
Columns = list[str] | dict[str, str]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class JoinSpec(_Spec):
    """Columns looked up in another table: its rows whose `right_on` column equals this row's `left_on`."""

    path: ExistingPath
    left_on: str
    right_on: str | None = None
    columns: Columns = Field(min_length=1)
    sep: str | None = None


class TableSpec(_Spec):
    """One edge table: which columns hold the ends, their kinds and prefixes, and the relation."""

    path: ExistingPath
    sep: str | None = None
    src: str
    dst: str
    src_kind: str
    dst_kind: str
    relation: str | None = None
    relation_column: str | None = None
    relation_map: dict[str, str] = Field(default_factory=dict)
    src_prefix: str | None = None
    dst_prefix: str | None = None
    src_prefix_column: str | None = None
    dst_prefix_column: str | None = None
    src_name: str | None = None
    dst_name: str | None = None
    attrs: Columns = Field(default_factory=list)
    filter: dict[str, str | list[str]] = Field(default_factory=dict)
    join: list[JoinSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TableSpec:
        if (self.relation is None) == (self.relation_column is None):
            raise ValueError("give exactly one of relation (a constant) or relation_column")
        if self.relation_map and self.relation_column is None:
            raise ValueError("relation_map needs relation_column")
        for side in ("src", "dst"):
            if getattr(self, f"{side}_prefix") and getattr(self, f"{side}_prefix_column"):
                raise ValueError(f"give {side}_prefix or {side}_prefix_column, not both")
        return self


class XrefSpec(_Spec):
    """A cross-reference table: node id column and xref column (one pair per row)."""

    path: ExistingPath
    id: str
    xref: str
    id_prefix: str | None = None
    xref_prefix: str | None = None
    sep: str | None = None


class EdgeTableArgs(_Spec):
    """The `edge-table` source's recipe args (see the module docstring)."""

    format: Literal["table", "primekg"] = "table"
    tables: list[TableSpec] = Field(default_factory=list)
    path: ExistingPath | None = None
    nodes: ExistingPath | None = None
    relations: list[str] | None = Field(default=None, min_length=1)
    xrefs: list[XrefSpec] = Field(default_factory=list)
    prefix_map: dict[str, str] = Field(default_factory=dict)
    name: str = ""
    version: str = ""
    licence: str = ""

    @model_validator(mode="after")
    def _format_fields(self) -> EdgeTableArgs:
        if self.format == "table":
            if not self.tables:
                raise ValueError("format: table needs tables (a list of edge tables)")
            extra = [f for f in ("path", "nodes", "relations") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} belong(s) to format: primekg; format: table reads tables")
        elif self.path is None:
            raise ValueError("format: primekg needs path (PrimeKG's kg.csv)")
        elif self.tables:
            raise ValueError("format: primekg reads path, not tables")
        return self


class EdgeTableSource:
    """A knowledge graph read from edge tables or PrimeKG's kg.csv."""

    Args = EdgeTableArgs

    def __init__(self, **args: Any) -> None:
        self.args = EdgeTableArgs.model_validate(args)
        self.report: RowReport | None = None

    def items(self, ctx: StageContext | None = None) -> Iterator[QAItem | Rejected]:
        """A graph source has no QA items."""
        return iter(())

    def graph(self, ctx: StageContext | None = None) -> KnowledgeGraph:
        """Read the tables into a graph; counts and rejected rows go to the stage notes."""
        a = self.args
        name = a.name or ("primekg" if a.format == "primekg" else "edge-table")
        graph = KnowledgeGraph(name, a.version, a.licence)
        report = RowReport(name)
        prefix_map = {**PREFIX_MAP, **a.prefix_map}
        start = time.perf_counter()
        with bulk_load():
            if a.format == "primekg":
                assert a.path is not None
                load_primekg(graph, a.path, a.nodes, a.relations, prefix_map, report, ctx)
            else:
                seen: set[tuple[str, str, str]] = set()
                for i, table in enumerate(a.tables):
                    load_table(graph, table, f"args.tables[{i}]", prefix_map, report, seen, ctx)
            for i, xref in enumerate(a.xrefs):
                apply_xrefs(graph, xref, f"args.xrefs[{i}]", prefix_map, report, ctx)
        report.counts.update(nodes=len(graph.nodes), rejected=report.rejected_count)
        report.counts["seconds"] = round(time.perf_counter() - start, 2)  # type: ignore[assignment]
        report.publish(ctx)
        self.report = report
        return graph


@hookimpl
def register_data_sources(register: Any) -> None:
    """Register the `edge-table` source."""
    register("edge-table", EdgeTableSource)
