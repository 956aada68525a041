"""The `jsonl` data source: uniform-schema rows become items; every bad row becomes a reject naming file:line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleming import QAItem, Rejected
from fleming.plugins.sources.jsonl import JsonlSource
from fleming.testing import uniform_records, write_jsonl


def _split(got: list[QAItem | Rejected]) -> tuple[list[QAItem], list[Rejected]]:
    return [g for g in got if isinstance(g, QAItem)], [g for g in got if isinstance(g, Rejected)]


def test_valid_rows_become_items_with_dataset_and_row(tmp_path: Path) -> None:
    records = uniform_records(3)
    records[1]["meta"]["answer_entity"] = "HP:0001250"
    path = write_jsonl(tmp_path / "medqa_small.jsonl", records)
    items, rejects = _split(list(JsonlSource(path).items()))
    assert rejects == []
    assert [i.id for i in items] == [f"medqa_small:{r['id']}" for r in records]
    for lineno, (item, rec) in enumerate(zip(items, records), start=1):
        assert item.question == rec["question"]
        assert list(item.options.items()) == list(rec["options"].items())  # order kept
        assert item.answer == rec["answer"]
        assert item.provenance["dataset"] == "medqa_small"
        assert item.provenance["row"] == lineno
    assert items[1].provenance["answer_entity"] == "HP:0001250"


def test_name_overrides_the_dataset_name(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "file.jsonl", uniform_records(1))
    (item,) = JsonlSource(path, name="medqa").items()
    assert isinstance(item, QAItem)
    assert item.provenance["dataset"] == "medqa"
    assert item.id.startswith("medqa:")


def test_bad_rows_are_rejected_with_file_and_line(tmp_path: Path) -> None:
    good = uniform_records(1)[0]
    no_answer = {k: v for k, v in good.items() if k != "answer"}
    list_options = {**good, "options": ["a", "b"]}
    wrong_answer = {**good, "answer": "Z"}
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        good,                       # line 1
        '{"id": "x", "question": ',  # line 2: truncated JSON
        no_answer,                  # line 3
        list_options,               # line 4
        "[1, 2]",                   # line 5: JSON but not an object
        wrong_answer,               # line 6
    ])
    items, rejects = _split(list(JsonlSource(path).items()))
    assert len(items) == 1
    assert [r.where for r in rejects] == [f"{path}:{n}" for n in (2, 3, 4, 5, 6)]
    reasons = [r.reason for r in rejects]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1] == "missing field(s): answer"
    assert "options must be an object" in reasons[2]
    assert "expected a JSON object" in reasons[3]
    assert "'Z' is not one of the options" in reasons[4]
    assert rejects[0].record["line"].startswith('{"id": "x"')  # the raw line is kept for review


def test_limit_keeps_the_first_rows_of_each_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", uniform_records(5))
    write_jsonl(tmp_path / "b.jsonl", uniform_records(5, start=100))
    items, _ = _split(list(JsonlSource(tmp_path, limit=2).items()))
    assert [i.id for i in items] == ["a:fixture-0", "a:fixture-1", "b:fixture-100", "b:fixture-101"]


def test_a_folder_reads_every_jsonl_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "one.jsonl", uniform_records(2))
    write_jsonl(tmp_path / "two.jsonl", uniform_records(3, start=10))
    (tmp_path / "notes.txt").write_text("not data\n")
    source = JsonlSource(tmp_path)
    assert [f.name for f in source.files()] == ["one.jsonl", "two.jsonl"]
    items, rejects = _split(list(source.items()))
    assert rejects == []
    assert {i.provenance["dataset"] for i in items} == {"one", "two"}
    assert len(items) == 5


def test_every_medqa_row_loads(benchmarks_dir: Path) -> None:
    path = benchmarks_dir / "medqa_usmle_4opt_test.jsonl"
    items, rejects = _split(list(JsonlSource(path).items()))
    assert rejects == []
    assert len(items) == 1273
    with open(path, encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert items[0].id == f"medqa_usmle_4opt_test:{first['id']}"
    assert items[0].answer in items[0].options
    assert len({i.id for i in items}) == 1273


def test_rows_of_the_wrong_type_are_rejected(tmp_path: Path) -> None:
    """meta, question, id, options and answer of the wrong type are rejects at file:line, never items."""
    good = uniform_records(1)[0]
    path = write_jsonl(tmp_path / "typed.jsonl", [
        good,
        {**good, "id": "a", "meta": 5},
        {**good, "id": "b", "question": None},
        {**good, "id": "c", "question": ["What", "?"]},
        {**good, "id": 7},
        {**good, "id": "d", "options": {"A": "x", "B": 2}},
        {**good, "id": "e", "answer": 0},
    ])
    items, rejects = _split(list(JsonlSource(path).items()))
    assert [i.id for i in items] == ["typed:fixture-0"]
    assert items[0].provenance["where"] == f"{path}:1"
    assert [r.where for r in rejects] == [f"{path}:{n}" for n in range(2, 8)]
    assert [r.reason for r in rejects] == [
        "meta must be an object, not a int",
        "question must be a string, not null",
        "question must be a string, not a list",
        "id must be a non-empty string, not a int",
        "options must be an object of letter -> text (strings)",
        "answer must be a string, not a int",
    ]


def test_malformed_rows_are_set_aside_and_the_run_goes_on(tmp_path: Path) -> None:
    """`fleming run` through collect, filter and mix: each malformed row lands in the collect stage's rejects
    with file:line and its reason, and the valid rows reach train.jsonl."""
    good = uniform_records(12)
    bad = [{**good[0], "id": "m", "meta": 5}, {**good[0], "id": "n", "question": None},
           {**good[0], "id": "l", "question": ["What", "?"]}, {**good[0], "id": 7}, good[3]]
    path = write_jsonl(tmp_path / "qa.jsonl", good + bad)  # the malformed rows are lines 13-17
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: rows\nmodel: tiny-random\ndata:\n  sources: [{plugin: jsonl, args: {path: qa.jsonl}}]\n"
                      "  filters: [structure]\n  mix: {heldout_fraction: 0.25}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "fleming", "run", str(recipe), "--no-progress",
                           "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "rows"
    rejects = [json.loads(line) for line in (run / "collect" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["where"], r["reason"]) for r in rejects] == [
        (f"{path}:13", "meta must be an object, not a int"),
        (f"{path}:14", "question must be a string, not null"),
        (f"{path}:15", "question must be a string, not a list"),
        (f"{path}:16", "id must be a non-empty string, not a int"),
        (f"{path}:17", "duplicate id 'qa:fixture-3'"),
    ]
    mixed = [json.loads(line) for name in ("train", "heldout")
             for line in (run / "mix" / f"{name}.jsonl").read_text().splitlines()]
    assert len(mixed) == 12 and all(isinstance(r["question"], str) for r in mixed)
