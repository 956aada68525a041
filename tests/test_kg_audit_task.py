"""The KG audit where users meet it: the scores of a task over synthesised items (``kg_heldout``), and the
optional `kg-faithfulness` reward."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleming.errors import DataError
from fleming.kg import KnowledgeGraph
from fleming.kg_index import display_name, finding_text
from fleming.plugins.graphs.hpo.source import HpoSource
from fleming.plugins.kg.synthesizer import KgSynthesizer
from fleming.plugins.rewards import KgFaithfulnessReward
from fleming.tasks import load_task
from fleming.testing import make_item, stage_ctx
from fleming.types import QAItem


@pytest.fixture(scope="module")
def hpo() -> KnowledgeGraph:
    return HpoSource().graph()


@pytest.fixture(scope="module")
def items(hpo: KnowledgeGraph, tmp_path_factory: pytest.TempPathFactory) -> dict[str, QAItem]:
    ctx = stage_ctx(tmp_path_factory.mktemp("synth"), seed=3)
    first: dict[str, QAItem] = {}
    for x in KgSynthesizer(n=30, options=4, templates=["diagnosis", "absent-finding"]).synthesize({"hpo": hpo}, ctx):
        if isinstance(x, QAItem):
            first.setdefault(x.provenance["template"], x)
    return first


def completions(hpo: KnowledgeGraph, items: dict[str, QAItem]) -> list[tuple[QAItem, str]]:
    """(item, completion): faithful and right; contradicting an explicit NOT and right; right with no medicine."""
    diag, absent = items["diagnosis"], items["absent-finding"]
    stem = [finding_text(hpo.label(t)) for t in diag.provenance["stem_entities"]]
    name = display_name(hpo.label(diag.provenance["diagnosis"]))
    faithful = f"{', '.join(stem)}: together these point to {name}.\n<answer>{diag.answer}</answer>"
    lacked = finding_text(hpo.label(absent.provenance["answer_entity"]))
    absent_name = display_name(hpo.label(absent.provenance["diagnosis"]))
    contradicting = f"{absent_name} typically presents with {lacked}.\n<answer>{absent.answer}</answer>"
    empty = f"Let me think about it carefully.\n<answer>{diag.answer}</answer>"
    return [(diag, faithful), (absent, contradicting), (diag, empty)]


def test_a_task_over_kg_items_scores_faithful_accuracy_path_recall_and_contradictions(
        hpo: KnowledgeGraph, items: dict[str, QAItem], tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ModelOutput, get_model

    cases = completions(hpo, items)
    data = tmp_path / "heldout.jsonl"
    records = [{**item.to_record(), "id": f"{item.id}-{i}"} for i, (item, _) in enumerate(cases)]
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    outputs = [ModelOutput.from_content("mockllm/model", text) for _, text in cases]
    task = load_task("kg_heldout", data_file=str(data), all_items=True)
    [log] = inspect_eval(task, model=get_model("mockllm/model", custom_outputs=outputs), display="none",
                         log_dir=str(tmp_path / "logs"))
    assert log.status == "success"
    scores = {s.name: {k: m.value for k, m in s.metrics.items()} for s in log.results.scores}
    assert scores["strict"]["accuracy"] == 1.0
    # only the faithful completion is right, free of contradiction and names its path
    assert scores["faithful_accuracy"]["mean"] == pytest.approx(1 / 3)
    assert scores["contradiction_rate"]["mean"] == pytest.approx(1 / 3)
    by_id = {s.id: s.scores["answer_scorer"].metadata["audit"] for s in log.samples}
    assert by_id[records[0]["id"]]["path_recall"] == 1.0
    assert by_id[records[2]["id"]]["path_recall"] == 0.0 and by_id[records[2]["id"]]["claims"] == []
    [claim] = by_id[records[1]["id"]]["claims"]
    assert claim["verdict"] == "contradicted"
    text = cases[1][1]
    assert text[claim["start"]:claim["end"]].startswith(display_name(hpo.label(claim["disease"]))[:10])
    assert scores["path_recall"]["mean"] == pytest.approx(
        sum(a["path_recall"] for a in by_id.values()) / 3)


def test_the_audit_is_on_only_where_every_item_has_kg_provenance(items: dict[str, QAItem], tmp_path: Path) -> None:
    curated = tmp_path / "curated.jsonl"
    curated.write_text(json.dumps(make_item("q1").to_record()) + "\n", encoding="utf-8")
    plain = load_task("kg_heldout", data_file=str(curated), all_items=True)
    assert plain.metadata["audit"] is False and "kg" not in plain.dataset[0].metadata
    with pytest.raises(DataError, match=r"audit=true needs KG provenance.*\(first: fixture-q1\)"):
        load_task("kg_heldout", data_file=str(curated), all_items=True, audit=True)
    synthetic = tmp_path / "synthetic.jsonl"
    synthetic.write_text(json.dumps(items["diagnosis"].to_record()) + "\n", encoding="utf-8")
    assert load_task("kg_heldout", data_file=str(synthetic), all_items=True).metadata["audit"] is True
    assert load_task("kg_heldout", data_file=str(synthetic), all_items=True, audit=False).metadata["audit"] is False


def test_the_kg_faithfulness_reward_pays_path_recall_and_charges_contradictions(
        hpo: KnowledgeGraph, items: dict[str, QAItem]) -> None:
    cases = completions(hpo, items)
    reward = KgFaithfulnessReward(contradiction_penalty=1.0)
    got = reward([text for _, text in cases] + ["<answer>A</answer>"], [i for i, _ in cases] + [make_item("q")])
    assert got[0] == 1.0  # every path entity named, nothing contradicted
    assert got[1] == pytest.approx(1.0 - 1.0)  # the lacked finding and the disease named (recall 1), contradicted
    assert got[2] == 0.0 and got[3] is None  # no medicine; no KG provenance: no reward
    assert KgFaithfulnessReward(contradiction_penalty=0.5)([cases[1][1]], [cases[1][0]]) == [0.5]
