"""Curated QA sources in their original formats: MedQA, MedMCQA, PubMedQA, CMExam and any HF dataset.

Original-format fixtures are rebuilt at test time from the shared uniform benchmark files where the formats
allow it (so the sources are checked against the same questions, option for option), otherwise written here.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from fleming import QAItem, Rejected
from fleming.errors import DataError, RecipeError
from fleming.plugins.sources.cmexam import CmexamSource
from fleming.plugins.sources.hf_dataset import FieldMap, HfDatasetSource
from fleming.plugins.sources.medmcqa import MedmcqaSource
from fleming.plugins.sources.medqa import MedqaSource
from fleming.plugins.sources.pubmedqa import PubmedqaSource
from fleming.testing import fresh_registry, write_jsonl


def _split(got: Any) -> tuple[list[QAItem], list[Rejected]]:
    got = list(got)
    return [g for g in got if isinstance(g, QAItem)], [g for g in got if isinstance(g, Rejected)]


def _uniform(path: Path, n: int) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


# ---------------------------------------------------------------- MedQA

def test_medqa_original_rows_match_the_benchmark_items(benchmarks_dir: Path, tmp_path: Path) -> None:
    bench = _uniform(benchmarks_dir / "medqa_usmle_4opt_test.jsonl", 40)
    rows = [{"question": r["question"], "answer": r["meta"]["answer_text"], "options": r["options"],
             "meta_info": r["meta"]["meta_info"], "answer_idx": r["answer"], "metamap_phrases": ["x"]}
            for r in bench]
    path = write_jsonl(tmp_path / "US" / "phrases_no_exclude_test.jsonl", rows)
    items, rejects = _split(MedqaSource(path.parent).items())
    assert rejects == []
    assert [i.id for i in items] == [f"medqa:test-{n}" for n in range(1, 41)]
    for item, rec in zip(items, bench):
        assert (item.question, dict(item.options), item.answer) == (rec["question"], rec["options"], rec["answer"])
        assert item.provenance["split"] == "test" and item.provenance["meta_info"] == rec["meta"]["meta_info"]
    assert items[6].provenance["row"] == 7 and items[6].source == "medqa"


def test_medqa_bad_rows_are_rejected_with_file_and_line(tmp_path: Path) -> None:
    good = {"question": "Q?", "answer": "beta", "options": {"A": "alpha", "B": "beta"}, "answer_idx": "B",
            "meta_info": "step1"}
    path = write_jsonl(tmp_path / "train.jsonl", [
        good,
        {**good, "answer_idx": "E"},
        {**good, "answer": "gamma"},
        {k: v for k, v in good.items() if k != "options"},
        '{"question": ',
    ])
    items, rejects = _split(MedqaSource(path, split="custom", name="mq").items())
    assert [i.id for i in items] == ["mq:custom-1"]
    assert [r.where for r in rejects] == [f"{path}:{n}" for n in (2, 3, 4, 5)]
    assert "answer_idx 'E' is not one of the options (A, B)" in rejects[0].reason
    assert "'gamma' differs from option B" in rejects[1].reason
    assert rejects[2].reason == "missing field(s): options"
    assert rejects[3].reason.startswith("invalid JSON")


# ---------------------------------------------------------------- MedMCQA

def _mcqa(i: int, cop: Any, **extra: Any) -> dict[str, Any]:
    row = {"id": f"uuid-{i}", "question": f"Which nerve number {i}?", "opa": "Ulnar", "opb": "Radial",
           "opc": "Median", "opd": "Axillary", "cop": cop, "choice_type": "single", "exp": f"Because {i}.",
           "subject_name": "Anatomy", "topic_name": None}
    row.update(extra)
    if cop is ...:
        del row["cop"]
    return row


def test_medmcqa_github_release_is_one_based(benchmarks_dir: Path, tmp_path: Path) -> None:
    bench = _uniform(benchmarks_dir / "medmcqa_dev.jsonl", 60)
    rows = [{"id": r["id"], "question": r["question"], **dict(zip(("opa", "opb", "opc", "opd"), r["options"].values())),
             "cop": "ABCD".index(r["answer"]) + 1, "exp": r["meta"]["explanation"],
             "subject_name": r["meta"]["subject_name"], "topic_name": r["meta"]["topic_name"]} for r in bench]
    path = write_jsonl(tmp_path / "dev.json", rows)
    source = MedmcqaSource(path)
    assert source.base_of(path) == 1
    items, rejects = _split(source.items())
    assert rejects == []
    for item, rec in zip(items, bench):
        assert item.id == f"medmcqa:{rec['id']}"
        assert (item.question, dict(item.options), item.answer) == (rec["question"], rec["options"], rec["answer"])
        assert item.rationale == (rec["meta"]["explanation"] or None)
        assert item.provenance["split"] == "dev" and item.provenance["subject_name"] == rec["meta"]["subject_name"]


def test_medmcqa_hf_copy_is_zero_based_and_unlabelled_rows_are_rejected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [_mcqa(0, 0), _mcqa(1, 3), _mcqa(2, -1), _mcqa(3, ...),
                                                    _mcqa(4, None), _mcqa(5, "x"), _mcqa(6, 2)])
    source = MedmcqaSource(path)
    assert source.base_of(path) == 0
    items, rejects = _split(source.items())
    assert [(i.id, i.answer) for i in items] == [("medmcqa:uuid-0", "A"), ("medmcqa:uuid-1", "D"),
                                                 ("medmcqa:uuid-6", "C")]
    assert items[0].rationale == "Because 0." and items[0].provenance["choice_type"] == "single"
    assert "topic_name" not in items[0].provenance  # null columns are left out
    assert [r.reason for r in rejects[:3]] == ["no answer label"] * 3
    assert [r.where for r in rejects] == [f"{path}:{n}" for n in (3, 4, 5, 6)]
    assert "'x' is not an option number" in rejects[3].reason


def test_medmcqa_cop_base_auto_refuses_to_guess(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "small.json", [_mcqa(0, 1), _mcqa(1, 3), _mcqa(2, 2)])
    with pytest.raises(DataError, match="cannot tell whether cop is 0-based.*cop values are 1, 2, 3; set cop_base"):
        list(MedmcqaSource(path).items())
    items, _ = _split(MedmcqaSource(path, cop_base=1).items())
    assert [i.answer for i in items] == ["A", "C", "B"]
    items, _ = _split(MedmcqaSource(path, cop_base=0).items())
    assert [i.answer for i in items] == ["B", "D", "C"]
    mixed = write_jsonl(tmp_path / "mixed.json", [_mcqa(0, 0), _mcqa(1, 4)])
    with pytest.raises(DataError, match="cop values are 0, 4"):
        list(MedmcqaSource(mixed).items())


def test_medmcqa_cop_out_of_range_is_rejected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.json", [_mcqa(0, 4), _mcqa(1, 0)])
    items, rejects = _split(MedmcqaSource(path, cop_base=1).items())
    assert [i.answer for i in items] == ["D"]
    assert rejects[0].reason == "cop 0 is out of range 1-4 (cop_base 1)"


# ---------------------------------------------------------------- PubMedQA

def _ori_pqal(bench: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for r in bench:
        m = r["meta"]
        out[r["id"]] = {"QUESTION": m["original_question"], "CONTEXTS": m["contexts"], "LABELS": m["context_labels"],
                        "MESHES": m["meshes"], "YEAR": m["year"], "reasoning_required_pred": "yes",
                        "reasoning_free_pred": "yes", "final_decision": m["final_decision"],
                        "LONG_ANSWER": m["long_answer_DO_NOT_SHOW_TO_MODEL"]}
    return out


def test_pubmedqa_question_text_matches_the_benchmark(benchmarks_dir: Path, tmp_path: Path) -> None:
    bench = _uniform(benchmarks_dir / "pubmedqa_pqal.jsonl", 30)
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps(_ori_pqal(bench)), encoding="utf-8")
    items, rejects = _split(PubmedqaSource(path).items())
    assert rejects == [] and len(items) == 30
    for item, rec in zip(items, bench):
        assert item.id == f"pubmedqa:{rec['id']}"
        assert item.question == rec["question"]
        assert dict(item.options) == {"A": "yes", "B": "no", "C": "maybe"} and item.answer == rec["answer"]
        assert item.rationale == rec["meta"]["long_answer_DO_NOT_SHOW_TO_MODEL"]
        assert item.provenance["row"] == rec["id"] and item.provenance["meshes"] == rec["meta"]["meshes"]
    bare, _ = _split(PubmedqaSource(path, contexts=False).items())
    assert [i.question for i in bare] == [r["meta"]["original_question"] for r in bench]


def test_pubmedqa_bad_entries_are_rejected_and_bad_files_named(tmp_path: Path) -> None:
    good = {"QUESTION": "Does it work?", "CONTEXTS": ["One.", "Two."], "final_decision": "no", "LONG_ANSWER": "No."}
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps({"1": good, "2": {**good, "final_decision": "unsure"}, "3": {"CONTEXTS": []},
                                "4": {**good, "CONTEXTS": "One."}}), encoding="utf-8")
    items, rejects = _split(PubmedqaSource(path).items())
    assert items[0].question == "Context: One.\nTwo.\n\nQuestion: Does it work?" and items[0].answer == "B"
    assert [r.where for r in rejects] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert "final_decision 'unsure' is not yes, no or maybe" in rejects[0].reason
    assert rejects[1].reason == "missing field(s): QUESTION, final_decision"
    broken = tmp_path / "broken.json"
    broken.write_text('{"1": {"QUESTION": "x",\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken.json: invalid JSON: .* at line 2"):
        list(PubmedqaSource(broken).items())


# ---------------------------------------------------------------- CMExam

def _cmexam_csv(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["Question", "Options", "Answer", "Explanation", "Disease Group", "Clinical Department",
                     "Medical Discipline", "Competency", "Difficulty level"])
    writer.writerows(rows)
    path.write_text("\ufeff" + buf.getvalue(), encoding="utf-8")  # the public files carry a BOM
    return path


def test_cmexam_reads_chinese_rows_and_rejects_what_it_cannot_use(tmp_path: Path) -> None:
    opts = "A 阿司匹林\nB 布洛芬\nC 对乙酰氨基酚\nD 吗啡\nE 地塞米松"
    path = _cmexam_csv(tmp_path / "train.csv", [
        ["患者，男，45岁，发热3天。首选的退热药物是", opts, "C", "对乙酰氨基酚副作用少。", "感染性疾病", "内科", "临床医学",
         "药物治疗", "3"],
        ["下列哪些是非甾体抗炎药", opts, "AB", "", "", "", "", "", ""],
        ["没有答案的题", opts, "", "", "", "", "", "", ""],
        ["答案不在选项中", "A 甲\nB 乙", "D", "", "", "", "", "", ""],
        ["选项格式错误", "A 甲\n乙丙丁", "A", "", "", "", "", "", ""],
        ["第二题", "A．甲\nB、乙\nC:丙", "b", "", "", "", "", "", ""],
    ])
    items, rejects = _split(CmexamSource(tmp_path).items())
    assert [i.id for i in items] == ["cmexam:train-1", "cmexam:train-6"]
    first = items[0]
    assert first.question.startswith("患者，男，45岁")
    assert dict(first.options) == {"A": "阿司匹林", "B": "布洛芬", "C": "对乙酰氨基酚", "D": "吗啡", "E": "地塞米松"}
    assert first.answer == "C" and first.rationale == "对乙酰氨基酚副作用少。"
    assert first.provenance["disease_group"] == "感染性疾病" and first.provenance["difficulty_level"] == "3"
    assert dict(items[1].options) == {"A": "甲", "B": "乙", "C": "丙"} and items[1].answer == "B"
    reasons = [r.reason for r in rejects]
    assert reasons[0] == "multi-answer not supported (answer 'AB')"
    assert reasons[1] == "no answer label"
    assert reasons[2] == "answer 'D' is not one of the options (A, B)"
    assert reasons[3] == "option line 2 '乙丙丁' does not start with a letter"
    # each option cell spans 5 (or 2) physical lines, so rejects name the line each record starts on
    assert [r.where for r in rejects] == [f"{path}:{n}" for n in (7, 12, 17, 19)]
    assert rejects[0].record["Question"] == "下列哪些是非甾体抗炎药"


def test_cmexam_file_without_the_columns_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("question,answer\nq,A\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a CMExam csv: missing column"):
        list(CmexamSource(path).items())


# ---------------------------------------------------------------- hf-dataset

ROWS = [
    {"qid": "a", "stem": "Which drug?", "choices": ["Aspirin", "Heparin", "Warfarin"], "label": 1, "why": "It is."},
    {"qid": "b", "stem": "Which organ?", "choices": ["Liver", "Lung"], "label": 0, "why": ""},
    {"qid": "c", "stem": "No label here", "choices": ["x", "y"], "label": -1, "why": ""},
    {"qid": "d", "stem": "Out of range", "choices": ["x", "y"], "label": 5, "why": ""},
]


def _check_rows(items: list[QAItem], rejects: list[Rejected]) -> None:
    assert [(i.id, i.answer) for i in items] == [("demo:a", "B"), ("demo:b", "A")]
    assert dict(items[0].options) == {"A": "Aspirin", "B": "Heparin", "C": "Warfarin"}
    assert items[0].rationale == "It is." and items[1].rationale is None
    assert {k: v for k, v in items[0].provenance.items() if k != "where"} == {"dataset": "demo", "split": "train",
                                                                             "row": 0}
    assert items[0].provenance["where"] == rejects[0].where.replace("[2]", "[0]").replace(":3", ":1")
    assert [r.reason for r in rejects] == ["no answer label", "answer 5 is out of range for 2 options (index)"]


def _source(dataset: Any, **kw: Any) -> HfDatasetSource:
    fields = FieldMap(question="stem", options="choices", answer="label", id="qid", rationale="why")
    return HfDatasetSource(dataset=dataset, fields=kw.pop("fields", fields), name="demo",
                           answer_format=kw.pop("answer_format", "index"), **kw)


def test_hf_dataset_reads_jsonl_json_parquet_and_saved_folders(tmp_path: Path) -> None:
    import datasets

    jsonl = write_jsonl(tmp_path / "d.jsonl", ROWS)
    _check_rows(*_split(_source(jsonl).items()))
    array = tmp_path / "d.json"
    array.write_text(json.dumps(ROWS), encoding="utf-8")
    _check_rows(*_split(_source(array).items()))
    ds = datasets.Dataset.from_list(ROWS)
    ds.to_parquet(str(tmp_path / "d.parquet"))
    _check_rows(*_split(_source(tmp_path / "d.parquet").items()))
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "saved"))
    items, rejects = _split(_source(tmp_path / "saved").items())
    _check_rows(items, rejects)
    assert rejects[0].where == f"{tmp_path / 'saved'}[train][2]"
    items, _ = _split(_source(tmp_path / "saved", split="test").items())
    assert [i.id for i in items] == ["demo:a"] and items[0].provenance["split"] == "test"
    with pytest.raises(DataError, match="no split 'dev' \\(splits: train, test\\)"):
        list(_source(tmp_path / "saved", split="dev").items())


def test_hf_dataset_option_columns_letters_and_texts(tmp_path: Path) -> None:
    path = tmp_path / "mcqa.csv"
    path.write_text("id,question,opa,opb,opc,ope,cop,ans\n"
                    "1,First?,red,green,blue,,2,Green\n"
                    "2,Second?,one,two,three,,9,four\n"
                    "3,Third?,\"[1, 2]\",b,c,,1,C\n", encoding="utf-8")
    fields = FieldMap(question="question", options=["opa", "opb", "opc", "ope"], answer="cop", id="id")
    items, rejects = _split(HfDatasetSource(path, fields=fields, answer_format="index1").items())
    assert dict(items[0].options) == {"A": "red", "B": "green", "C": "blue"}  # the empty trailing column dropped
    assert items[0].answer == "B" and items[0].id == "mcqa:1"
    assert rejects[0].where == f"{path}:3" and "out of range" in rejects[0].reason
    by_text = fields.model_copy(update={"answer": "ans"})
    items, rejects = _split(HfDatasetSource(path, fields=by_text, answer_format="text").items())
    assert [(i.answer, i.options["A"]) for i in items] == [("B", "red"), ("C", "[1, 2]")]  # case-insensitive
    assert [r.reason for r in rejects] == ["answer text 'four' matches 0 options (need exactly 1)"]
    letters = write_jsonl(tmp_path / "l.jsonl", [
        {"q": "Q1", "o": {"A": "x", "B": "y", "C": None}, "a": "(b)"},
        {"q": "Q2", "o": {"opa": "x"}, "a": "A"},
        {"q": "Q3", "o": {"A": "x", "B": "y"}, "a": 1},
        {"q": "Q4", "o": "x y", "a": "A"},
    ])
    items, rejects = _split(HfDatasetSource(letters, fields=FieldMap(question="q", options="o", answer="a")).items())
    assert [(i.id, dict(i.options), i.answer) for i in items] == [("l:train-0", {"A": "x", "B": "y"}, "B")]
    assert [r.reason for r in rejects] == [
        "options mapping key 'opa' is not a letter",
        "answer 1 is not an option letter (set answer_format: index or index1)",
        "options column 'o' must hold a list or a letter -> text mapping, not str"]


def test_hf_dataset_missing_column_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("question,answer\nq,A\n", encoding="utf-8")
    with pytest.raises(DataError, match="has no column\\(s\\) opts \\(columns: question, answer\\)"):
        list(HfDatasetSource(path, fields=FieldMap(question="question", options="opts", answer="answer")).items())


def test_hf_dataset_hub_id_offline_suggests_a_local_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    source = HfDatasetSource("openlifescienceai/medmcqa", fields=FieldMap(question="q", options="o", answer="a"))
    assert source.local is None and source.name == "medmcqa"
    with pytest.raises(DataError) as err:
        list(source.items())
    message = str(err.value)
    assert "cannot load 'openlifescienceai/medmcqa' (split train) from the HF hub" in message
    assert "save_to_disk" in message and "local path" in message and "\n" not in message


# ---------------------------------------------------------------- through a recipe and the pipeline

def test_recipe_args_resolve_paths_and_name_bad_fields(tmp_path: Path) -> None:
    from fleming.recipe import load_recipe

    _, registry = fresh_registry()
    write_jsonl(tmp_path / "data" / "d.jsonl", ROWS)
    recipe = {"name": "r", "model": "tiny-random", "data": {"sources": [{"plugin": "hf-dataset", "args": {
        "dataset": "data/d.jsonl", "fields": {"question": "stem", "options": "choices", "answer": "label"},
        "answer_format": "index"}}]}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    loaded = load_recipe(path, registry)
    assert loaded.args["data.sources[0]"]["dataset"] == tmp_path / "data" / "d.jsonl"
    recipe["data"]["sources"][0]["args"]["dataset"] = "data/missing.jsonl"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    with pytest.raises(RecipeError, match=r"data.sources\[0\].args.dataset: file not found"):
        load_recipe(path, registry)
    recipe["data"]["sources"][0]["args"].update(dataset="data/d.jsonl", answer_format="idx")
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    with pytest.raises(RecipeError, match=r"data.sources\[0\].args.answer_format"):
        load_recipe(path, registry)
    recipe["data"]["sources"] = [{"plugin": "medmcqa", "args": {"path": "data/d.jsonl", "cop_base": 2}}]
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    with pytest.raises(RecipeError, match=r"data.sources\[0\].args.cop_base"):
        load_recipe(path, registry)


def test_curated_sources_run_through_the_collect_stage(tmp_path: Path) -> None:
    from fleming.pipeline import RunContext, run_pipeline
    from fleming.recipe import load_recipe

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}", encoding="utf-8")
    write_jsonl(tmp_path / "medqa" / "dev.jsonl", [
        {"question": "Q?", "answer": "b", "options": {"A": "a", "B": "b"}, "answer_idx": "B"}])
    write_jsonl(tmp_path / "medmcqa.json", [_mcqa(0, 4), _mcqa(1, 1), _mcqa(2, -1)])
    _cmexam_csv(tmp_path / "cm.csv", [["题？", "A 甲\nB 乙", "B", "", "", "", "", "", ""]])
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"7": {"QUESTION": "Q?", "CONTEXTS": ["C."],
                                                              "final_decision": "maybe"}}), encoding="utf-8")
    recipe = {"name": "curated-mini", "model": "model", "data": {"sources": [
        {"plugin": "medqa", "args": {"path": "medqa"}}, {"plugin": "medmcqa", "args": {"path": "medmcqa.json"}},
        {"plugin": "cmexam", "args": {"path": "cm.csv"}}, {"plugin": "pubmedqa", "args": {"path": "ori_pqal.json"}}]}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    pm, registry = fresh_registry()
    loaded = load_recipe(path, registry)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=tmp_path / "runs" / "curated-mini",
                     console=Console(file=io.StringIO()), show_progress=False)
    run_pipeline(run)
    collect = run.run_dir / "collect"
    manifest = json.loads((collect / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["items"] == 5 and manifest["counts"]["rejected"] == 1
    ids = [json.loads(line)["id"] for line in (collect / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert ids == ["medqa:dev-1", "medmcqa:uuid-0", "medmcqa:uuid-1", "cmexam:cm-1", "pubmedqa:7"]
    (reject,) = [json.loads(line) for line in (collect / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert reject["reason"] == "no answer label" and reject["where"].endswith("medmcqa.json:3")


# ---------------------------------------------------------------- every source checks its rows' types

def test_every_curated_source_rejects_a_question_that_is_not_text(tmp_path: Path) -> None:
    """A list or object where the question (or an option) text should be is a reject at file:line in every
    curated source, never an item whose question is a list."""
    medqa = {"question": "Q?", "options": {"A": "alpha", "B": "beta"}, "answer_idx": "B"}
    medqa_path = write_jsonl(tmp_path / "medqa.jsonl", [medqa, {**medqa, "question": ["Q", "?"]},
                                                        {**medqa, "options": {"A": "alpha", "B": {"x": 1}}}])
    medmcqa = {"id": "m1", "question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 1}
    medmcqa_path = write_jsonl(tmp_path / "medmcqa.jsonl", [medmcqa, {**medmcqa, "id": "m2", "question": None},
                                                            {**medmcqa, "id": "m3", "opb": ["b"]}])
    pub = {"QUESTION": "Q?", "final_decision": "yes"}
    pub_path = tmp_path / "ori_pqal.json"
    pub_path.write_text(json.dumps({"1": pub, "2": {**pub, "QUESTION": {"text": "Q?"}}}), encoding="utf-8")
    hf_path = write_jsonl(tmp_path / "hf.jsonl", [{"q": "Q?", "o": ["a", "b"], "a": "A"},
                                                  {"q": ["Q?"], "o": ["a", "b"], "a": "A"}])
    hf = HfDatasetSource(str(hf_path), FieldMap(question="q", options="o", answer="a"))
    cases = [(MedqaSource(medqa_path, split="s"), medqa_path, [2, 3]),
             (MedmcqaSource(medmcqa_path, cop_base=1, split="s"), medmcqa_path, [2, 3]),
             (PubmedqaSource(pub_path), pub_path, [2]),
             (hf, hf_path, [2])]
    for source, path, bad_lines in cases:
        items, rejects = _split(source.items())
        assert len(items) == 1 and isinstance(items[0].question, str), type(source).__name__
        assert items[0].provenance["where"] == f"{path}:1"
        assert [r.where for r in rejects] == [f"{path}:{n}" for n in bad_lines], type(source).__name__
        assert all("must be text, not " in r.reason for r in rejects), [r.reason for r in rejects]
