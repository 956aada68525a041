"""The review cycle: a run queues flagged items; a person decides in the JSONL or CSV; `fleming review apply`
records the decisions and re-runs what they change, making no new label-check calls."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import _scripted_llm as scripted
from fleming.cli import cli
from fleming.testing import make_item, write_jsonl

RIGHT, WRONG = "<answer>B</answer>", "<answer>A</answer>"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _edit_jsonl(path: Path, item_id: str, **fields: Any) -> None:
    rows = [({**r, **fields} if r["id"] == item_id else r) for r in _jsonl(path)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _edit_csv(path: Path, item_id: str, **fields: str) -> None:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([({**r, **fields} if r["id"] == item_id else r) for r in rows])


@pytest.fixture
def run(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run a recipe whose label check flags items 1, 2 and 3 (policy review); return the run folder."""
    monkeypatch.setenv("FLEMING_CACHE", str(model_cache))
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "qa.jsonl", [make_item(i).to_record() for i in range(5)])
    recipe = {"name": "reviewed", "seed": 0, "model": "tiny-random", "data": {
        "sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl", "name": "qa"}}],
        "verify": [{"plugin": "label-check", "args": {"model": "fleming-scripted/checker", "policy": "review",
                                                      "cache": True}}],
        "annotate": [{"plugin": "difficulty", "args": {"model": "fleming-scripted/grader"}}]}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    # a fresh cache per test for the model calls, but the session's tiny-random model folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    scripted.reset({"How difficult": ["<difficulty>moderate</difficulty>"],  # first: its prompt holds the question
                    "number 0?": [RIGHT], "number 4?": [RIGHT], "number 1?": [WRONG], "number 2?": [WRONG],
                    "number 3?": [WRONG]})
    result = CliRunner().invoke(cli, ["run", "recipe.yaml", "--no-progress", "--runs-dir", "runs"])
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "reviewed"


def _calls(prefix: str) -> int:
    return sum(n for k, n in scripted.CALLS.items() if k.startswith(prefix))


def test_review_cycle_end_to_end(run: Path) -> None:
    verify = run / "verify"
    assert [r["id"] for r in _jsonl(verify / "items.jsonl")] == ["qa:fixture-0", "qa:fixture-4"]
    held = {r["record"]["id"]: r["reason"] for r in _jsonl(verify / "rejects.jsonl")}
    assert set(held) == {"qa:fixture-1", "qa:fixture-2", "qa:fixture-3"}
    assert all("awaiting review" in reason for reason in held.values())
    assert [r["id"] for r in _jsonl(verify / "review_queue.jsonl")] == ["qa:fixture-1", "qa:fixture-2",
                                                                        "qa:fixture-3"]
    manifest = json.loads((verify / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["notes"]["label-check"]["calls"] == 25 and manifest["notes"]["label-check"]["cost"] > 0
    assert manifest["counts"]["label-check:queue"] == 3

    _edit_jsonl(verify / "review_queue.jsonl", "qa:fixture-1", decision="accept", note="label is right")
    _edit_csv(verify / "review_queue.csv", "qa:fixture-2", decision="relabel", new_answer="A")
    label_calls = _calls("number")
    assert label_calls == 25 and _calls("How") == 2
    result = CliRunner().invoke(cli, ["review", "apply", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 decision(s) changed" in result.output and "1 item(s) still pending" in result.output
    assert "verify" in result.output and "annotate" in result.output
    assert _calls("number") == label_calls  # the label check re-ran from its cache
    assert _calls("How") == 4  # only the two items back in training are new to the annotator

    kept = {r["id"]: r for r in _jsonl(run / "annotate" / "items.jsonl")}
    assert set(kept) == {"qa:fixture-0", "qa:fixture-1", "qa:fixture-2", "qa:fixture-4"}
    assert kept["qa:fixture-2"]["answer"] == "A" and kept["qa:fixture-2"]["meta"]["original_answer"] == "B"
    assert kept["qa:fixture-1"]["meta"]["label_check"]["review"] == "accept by reviewer (label is right)"
    assert kept["qa:fixture-1"]["meta"]["difficulty"] == "moderate"
    # nothing flagged is lost: the pending item is still held and queued; decisions show in the new queue
    assert [r["record"]["id"] for r in _jsonl(verify / "rejects.jsonl")] == ["qa:fixture-3"]
    queue = {r["id"]: r for r in _jsonl(verify / "review_queue.jsonl")}
    assert set(queue) == {"qa:fixture-1", "qa:fixture-2", "qa:fixture-3"}
    assert queue["qa:fixture-2"]["decision"] == "relabel" and queue["qa:fixture-3"]["decision"] is None

    # a second apply changes nothing and re-runs nothing
    before = (run / "review" / "decisions.jsonl").read_text(encoding="utf-8")
    again = CliRunner().invoke(cli, ["review", "apply", str(run), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "0 decision(s) changed" in again.output and "nothing" in again.output
    assert (run / "review" / "decisions.jsonl").read_text(encoding="utf-8") == before

    # dropping the last one moves it from "awaiting review" to "dropped by reviewer"
    _edit_jsonl(verify / "review_queue.jsonl", "qa:fixture-3", decision="drop", note="two right answers")
    assert CliRunner().invoke(cli, ["review", "apply", "reviewed", "--runs-dir", str(run.parent),
                                    "--no-progress"]).exit_code == 0
    (reject,) = _jsonl(verify / "rejects.jsonl")
    assert reject["reason"].startswith("label-check: drop by reviewer (two right answers)")
    shown = CliRunner().invoke(cli, ["review", "show", str(run)])
    assert "3 item(s) in the queue, 0 pending, decided: 1 accept, 1 drop, 1 relabel" in shown.output


@pytest.mark.parametrize(("edit", "message"), [
    ({"decision": "maybe"}, "decision 'maybe' is not one of accept, relabel, drop"),
    ({"decision": "relabel"}, "relabel needs new_answer set to one of the option letters (A, B, C, D)"),
    ({"decision": "relabel", "new_answer": "Z"}, "got 'Z'"),
    ({"decision": "accept", "new_answer": "C"}, "new_answer 'C' is only read with decision 'relabel'"),
])
def test_bad_decisions_are_one_line_errors_naming_file_and_line(run: Path, edit: dict[str, str],
                                                               message: str) -> None:
    _edit_jsonl(run / "verify" / "review_queue.jsonl", "qa:fixture-2", **edit)
    result = CliRunner().invoke(cli, ["review", "apply", str(run)])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and message in line and "review_queue.jsonl:2 (id qa:fixture-2)" in line
    assert not (run / "review" / "decisions.jsonl").exists()


def test_jsonl_and_csv_disagreeing_is_an_error(run: Path) -> None:
    _edit_jsonl(run / "verify" / "review_queue.jsonl", "qa:fixture-1", decision="accept")
    _edit_csv(run / "verify" / "review_queue.csv", "qa:fixture-1", decision="drop")
    result = CliRunner().invoke(cli, ["review", "apply", str(run), "--no-rerun"])
    assert result.exit_code == 1
    assert "item qa:fixture-1 has different decisions in the JSONL (accept) and the CSV (drop)" in result.output
