"""The KG reasoning audit on items the `kg` synthesizer makes from the embedded HPO graph: hand-written
completions (faithful, contradicting an explicit NOT annotation, empty of medicine) get the verdicts a reader
would give; negation flips them; offsets point into the completion; the graph loads from the provenance."""
from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fleming.answers import extract_answer, reasoning_end
from fleming.audit import Audit, audit_reasoning, has_kg_provenance
from fleming.errors import DataError
from fleming.kg import KnowledgeGraph
from fleming.kg_index import KgIndex, display_name, finding_text
from fleming.plugins.graphs.hpo.source import HpoSource
from fleming.plugins.kg.path_teacher import KgPathTeacher
from fleming.plugins.kg.synthesizer import KgSynthesizer
from fleming.testing import make_item, stage_ctx
from fleming.types import QAItem


@pytest.fixture(scope="module")
def hpo() -> KnowledgeGraph:
    return HpoSource().graph()


@pytest.fixture(scope="module")
def synthesised(hpo: KnowledgeGraph, tmp_path_factory: pytest.TempPathFactory) -> list[QAItem]:
    """Items of every template, synthesised as `fleming run` would (seed 11)."""
    ctx = stage_ctx(tmp_path_factory.mktemp("synth"), seed=11)
    return [x for x in KgSynthesizer(n=120, options=4).synthesize({"hpo": hpo}, ctx) if isinstance(x, QAItem)]


@pytest.fixture(scope="module")
def items(synthesised: list[QAItem]) -> dict[str, QAItem]:
    """The first item of each template."""
    first: dict[str, QAItem] = {}
    for item in synthesised:
        first.setdefault(item.provenance["template"], item)
    assert {"diagnosis", "absent-finding", "inheritance", "gene"} <= set(first)
    return first


@pytest.fixture(scope="module")
def ix(hpo: KnowledgeGraph) -> KgIndex:
    return KgIndex(hpo)


def disease(g: KnowledgeGraph, item: QAItem) -> str:
    return display_name(g.label(item.provenance["diagnosis"]))


def findings(g: KnowledgeGraph, ids: list[str]) -> list[str]:
    return [finding_text(g.label(t)) for t in ids]


def test_a_faithful_completion_names_the_path_and_every_claim_is_supported(hpo: KnowledgeGraph,
                                                                          items: dict[str, QAItem]) -> None:
    item = items["diagnosis"]
    stem = findings(hpo, item.provenance["stem_entities"])
    text = (f"The patient shows {', '.join(stem[:-1])} and {stem[-1]}, which together are typical of "
            f"{disease(hpo, item)}.\nSo the diagnosis is {item.options[item.answer]}.<answer>{item.answer}</answer>")
    audit = audit_reasoning(text, item, hpo)
    assert audit.path_recall == 1.0 and audit.named == audit.path_entities
    assert set(audit.path_entities) == {*item.provenance["stem_entities"], item.provenance["answer_entity"]}
    assert len(audit.claims) == len(stem) and not audit.contradicted
    assert audit.counts == {"supported": len(stem), "contradicted": 0, "unsupported": 0}
    assert {c.target for c in audit.claims} == set(item.provenance["stem_entities"])
    assert all(c.disease == item.provenance["diagnosis"] and c.relation == "has_phenotype" and not c.negated
               for c in audit.claims)


def test_asserting_a_finding_the_disease_is_annotated_not_to_have_is_contradicted(
        hpo: KnowledgeGraph, items: dict[str, QAItem], ix: KgIndex) -> None:
    item = items["absent-finding"]
    d, lacked = item.provenance["diagnosis"], item.provenance["answer_entity"]
    assert ix.lacks_term(d, lacked) == "explicit" and not ix.has_term(d, lacked)
    [name] = findings(hpo, [lacked])
    text = f"{disease(hpo, item)} typically presents with {name}.\n<answer>{item.answer}</answer>"
    audit = audit_reasoning(text, item, hpo)
    [claim] = audit.claims
    assert (claim.disease, claim.target, claim.negated, claim.verdict) == (d, lacked, False, "contradicted")
    assert audit.contradicted and audit.path_recall == 1.0


def test_negation_flips_the_verdict(hpo: KnowledgeGraph, items: dict[str, QAItem]) -> None:
    item = items["absent-finding"]
    lacked = item.provenance["answer_entity"]
    present = next(t for t in item.provenance["option_entities"].values() if t != lacked)
    d = disease(hpo, item)
    [lacked_name, present_name] = findings(hpo, [lacked, present])
    cases = {f"{d} has no {lacked_name}.": (True, "supported"),
             f"In {d}, {lacked_name} is absent.": (True, "supported"),
             f"{d} is not associated with {present_name}.": (True, "contradicted"),
             f"{d} is associated with {present_name}.": (False, "supported"),
             f"Without doubt {d} shows {present_name}.": (False, "supported")}  # "without doubt" sits before D
    for sentence, (negated, verdict) in cases.items():
        [claim] = audit_reasoning(sentence, item, hpo).claims
        assert (claim.negated, claim.verdict) == (negated, verdict), sentence


def test_two_hop_claims_use_the_inheritance_and_gene_edges(hpo: KnowledgeGraph, items: dict[str, QAItem],
                                                           ix: KgIndex) -> None:
    item = items["inheritance"]
    d, mode = item.provenance["diagnosis"], item.provenance["answer_entity"]
    wrong = next(m for m in item.provenance["option_entities"].values() if ix.value_status(d, "inheritance", m)
                 == "lacks")
    name = disease(hpo, item)
    audit = audit_reasoning(f"{name} follows {hpo.label(mode)}. {name} is not {hpo.label(wrong)}.", item, hpo)
    assert [(c.relation, c.target, c.negated, c.verdict) for c in audit.claims] == [
        ("inheritance", mode, False, "supported"), ("inheritance", wrong, True, "supported")]
    audit = audit_reasoning(f"{name} shows {hpo.label(wrong)}.", item, hpo)
    assert [c.verdict for c in audit.claims] == ["contradicted"]
    gene_item = items["gene"]
    gene = gene_item.provenance["answer_entity"]
    audit = audit_reasoning(f"{disease(hpo, gene_item)} is caused by variants in {hpo.label(gene)}.", gene_item, hpo)
    assert [(c.relation, c.target, c.verdict) for c in audit.claims] == [("associated_gene", gene, "supported")]


def test_the_path_teachers_rationales_name_the_whole_path_and_are_never_contradicted(
        hpo: KnowledgeGraph, synthesised: list[QAItem]) -> None:
    """The kg-path teacher writes each rationale from the graph, distractors' missing findings included
    ("(B) X does not fit: it has no reported Y"), so by the synthesizer's rules every claim holds."""
    teacher = KgPathTeacher()
    teacher.graph = hpo
    audits = [audit_reasoning(r.rationale or "", item, hpo) for item in synthesised
              if isinstance(r := teacher.explain_one(item), QAItem)]
    assert len(audits) == len(synthesised)
    claims = [c for a in audits for c in a.claims]
    assert len(claims) > 2 * len(audits) and {c.verdict for c in claims} == {"supported"}
    assert any(c.negated for c in claims) and any(c.relation != "has_phenotype" for c in claims)
    assert sum(a.path_recall == 1.0 for a in audits) >= 0.98 * len(audits)


def test_audits_from_worker_threads_equal_audits_in_order(hpo: KnowledgeGraph,
                                                           synthesised: list[QAItem]) -> None:
    """An Inspect scorer audits from worker threads: same answers as one after the other."""
    teacher = KgPathTeacher()
    teacher.graph = hpo
    pairs = [(r.rationale or "", item) for item in synthesised[:40]
             if isinstance(r := teacher.explain_one(item), QAItem)]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda p: audit_reasoning(p[0], p[1], hpo), pairs))
    assert threaded == [audit_reasoning(text, item, hpo) for text, item in pairs]


def test_the_right_letter_without_medical_content_names_nothing(items: dict[str, QAItem],
                                                                hpo: KnowledgeGraph) -> None:
    item = items["diagnosis"]
    text = (f"Let me think about this step by step. Looking at the options carefully, one of them fits "
            f"better than the others, so I will go with it.\n<answer>{item.answer}</answer>")
    audit = audit_reasoning(text, item, hpo)
    assert extract_answer(text, list(item.options)) == item.answer
    assert audit.path_recall == 0.0 and audit.named == () and audit.links == () and audit.claims == ()
    assert not audit.contradicted and audit.counts == {"supported": 0, "contradicted": 0, "unsupported": 0}


def test_offsets_point_into_the_completion_and_stop_at_the_answer_tag(hpo: KnowledgeGraph,
                                                                      items: dict[str, QAItem]) -> None:
    item = items["diagnosis"]
    [first, *_] = findings(hpo, item.provenance["stem_entities"])
    name = disease(hpo, item)
    text = f"Findings: {first.upper()}!\n{name} has {first}.\n<ANSWER>{item.answer}</ANSWER> {name} again"
    audit = audit_reasoning(text, item, hpo)
    assert audit.reasoning_end == text.index("<ANSWER>")
    assert reasoning_end("İİ <answer>A</answer>") == 3 and reasoning_end("no tag") == 6  # "İ".lower() is 2 long
    assert all(x.end <= audit.reasoning_end for x in audit.links)
    assert [text[x.start:x.end] for x in audit.links] == [first.upper(), name, first]
    assert [x.on_path for x in audit.links] == [True, True, True]
    [claim] = audit.claims  # the first mention has no disease in its sentence
    assert text[claim.start:claim.end] == f"{name} has {first}"


def test_the_graph_loads_from_the_provenance_and_a_record_works_like_the_item(
        hpo: KnowledgeGraph, items: dict[str, QAItem]) -> None:
    item = items["diagnosis"]
    stem = findings(hpo, item.provenance["stem_entities"])
    text = f"{disease(hpo, item)} explains {' and '.join(stem)}.<answer>{item.answer}</answer>"
    record: dict[str, Any] = json.loads(json.dumps(item.to_record()))
    given = audit_reasoning(text, item, hpo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert audit_reasoning(text, record) == given
    record["meta"]["kg"]["version"] = "HPO 1999-01-01"
    with pytest.warns(UserWarning, match="HPO 1999-01-01"):
        assert audit_reasoning(text, record) == given
    assert Audit.from_dict(json.loads(json.dumps(given.to_dict()))) == given
    assert set(given.to_dict()) == {"path_recall", "path_entities", "named", "links", "claims", "reasoning_end"}


def test_an_item_without_kg_provenance_is_a_one_line_error(tmp_path: Path) -> None:
    item = make_item(3)
    assert not has_kg_provenance(item) and not has_kg_provenance({"id": "x", "meta": None})
    with pytest.raises(DataError, match="item fixture-3 has no KG provenance") as err:
        audit_reasoning("Marfan syndrome.<answer>B</answer>", item)
    assert "\n" not in str(err.value)
    record = {"id": "kg:x", "meta": {"kg": {"source": "no-such-source"}, "stem_entities": [],
                                     "answer_entity": "HP:0000001"}}
    with pytest.raises(DataError, match="item kg:x: cannot load its knowledge graph from source 'no-such-source'"):
        audit_reasoning("text", record)


def test_has_and_surely_lacks_per_pair_say_which_way(ix: KgIndex, items: dict[str, QAItem]) -> None:
    """Marfan syndrome (OMIM:154700) has ectopia lentis, FBN1 and autosomal dominant inheritance."""
    assert ix.has_term("OMIM:154700", "HP:0001083") and ix.lacks_term("OMIM:154700", "HP:0001083") is None
    e = ix.entity_of["OMIM:154700"]
    silent = next(t for t in ("HP:0001250", "HP:0002240", "HP:0001744") if ix.lacks(t) >> e & 1)
    assert ix.lacks_term("OMIM:154700", silent) == "silent" and not ix.has_term("OMIM:154700", silent)
    absent = items["absent-finding"].provenance
    assert ix.lacks_term(absent["diagnosis"], absent["answer_entity"]) == "explicit"
    assert ix.value_status("OMIM:154700", "inheritance", "HP:0000006") == "has"
    assert ix.value_status("OMIM:154700", "inheritance", "HP:0000007") == "lacks"
    assert ix.value_status("OMIM:154700", "inheritance", "HP:0034345") == "has"  # Mendelian: an ancestor
    assert ix.value_status("OMIM:154700", "associated_gene", "NCBIGene:2200") == "has"  # FBN1
    assert ix.value_status("OMIM:154700", "onset", "HP:0003581") is None  # no onset recorded: no verdict
