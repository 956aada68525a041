"""The `jsonl` data source: uniform-schema rows become items; every bad row becomes a reject naming file:line."""
from __future__ import annotations

import json
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
