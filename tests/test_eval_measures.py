"""The measures of an evaluation row (one table, old summaries still load) and pinned benchmark data (the file's
sha256 in every task's metadata, a changed file reported in one line); logs are written by hand."""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from _hand_logs import BASIC, EXTRA, SHA_A, SHA_B, write_log
from fleming.eval_rows import FIELDS, HEADLINE, EvalRow, print_rows, read_summary, row_from_log

CONTRACT = {("faithful_accuracy", "mean"): "faithful_accuracy",
            ("faithful_accuracy", "stderr"): "faithful_accuracy_stderr",
            ("path_recall", "mean"): "path_recall", ("path_recall", "stderr"): "path_recall_stderr",
            ("contradiction_rate", "mean"): "contradiction_rate",
            ("contradiction_rate", "stderr"): "contradiction_rate_stderr",
            ("strict", "consistent"): "consistent", ("strict", "flip_rate"): "flip_rate",
            ("reasoning_alone", "mean"): "reasoning_alone", ("reasoning_alone", "stderr"): "reasoning_alone_stderr",
            ("strict", "accuracy"): "strict", ("strict", "stderr"): "strict_stderr",
            ("lenient", "accuracy"): "lenient", ("lenient", "stderr"): "lenient_stderr",
            ("no_answer", "mean"): "no_answer"}


def _header(path: Path) -> Any:
    from inspect_ai.log import read_eval_log

    return read_eval_log(str(path), header_only=True)


def test_the_measure_table_is_the_contract_and_every_row_type_has_its_fields() -> None:
    from fleming.leaderboard.logs import COLUMNS, LogRow

    assert HEADLINE == CONTRACT
    assert set(FIELDS) <= {f.name for f in fields(EvalRow)}
    assert set(FIELDS) <= {f.name for f in fields(LogRow)} and set(FIELDS) <= set(COLUMNS)


def test_row_from_log_reads_every_measure_and_leaves_the_unmeasured_none(tmp_path: Path) -> None:
    full = row_from_log(_header(write_log(tmp_path, "kg_heldout", {**BASIC, **EXTRA}, data_sha256=SHA_A,
                                          fleming={"model": "m"})))
    for (score, metric), name in CONTRACT.items():
        assert getattr(full, name) == pytest.approx({**BASIC, **EXTRA}[(score, metric)]), name
    assert (full.label, full.benchmark, full.data_sha256) == ("m", "kg_heldout", SHA_A)
    plain = row_from_log(_header(write_log(tmp_path, "medqa", {**BASIC, ("path_recall", "mean"): math.nan})))
    assert plain.strict == 0.5 and plain.data_sha256 is None
    assert all(getattr(plain, name) is None for name in set(FIELDS) - {CONTRACT[k] for k in BASIC})


def test_a_summary_written_before_the_new_measures_still_loads(tmp_path: Path) -> None:
    old = {"label": "m", "benchmark": "medqa", "status": "success", "samples": 3, "strict": 0.5,
           "strict_stderr": 0.1, "lenient": 0.6, "lenient_stderr": 0.1, "no_answer": 0.0, "log": "x.eval",
           "tag": {"stage": "base"}, "error": None, "something_later": 1}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps([old]), encoding="utf-8")
    [row] = read_summary(path)
    assert row.strict == 0.5 and row.tag == {"stage": "base"}
    assert row.faithful_accuracy is None and row.consistent is None and row.data_sha256 is None
    new = EvalRow(**{**asdict(row), "path_recall": 0.25})
    path.write_text(json.dumps([asdict(new)]), encoding="utf-8")
    assert read_summary(path) == [new]


def _printed(rows: list[EvalRow]) -> str:
    out = io.StringIO()
    print_rows(rows, Console(file=out, width=300, color_system=None))
    return out.getvalue()


def test_print_rows_shows_an_optional_measure_only_when_some_row_has_it() -> None:
    base = dict(label="m", benchmark="medqa", status="success", samples=4, strict=0.5, strict_stderr=0.1,
                lenient=0.5, lenient_stderr=0.1, no_answer=0.0, log="x")
    plain = _printed([EvalRow(**base)])  # type: ignore[arg-type]
    assert "strict acc" in plain and "faithful" not in plain and "flip rate" not in plain
    some = _printed([EvalRow(**base), EvalRow(**{**base, "benchmark": "kg_heldout",  # type: ignore[arg-type]
                                                  "faithful_accuracy": 0.25, "faithful_accuracy_stderr": 0.05,
                                                  "flip_rate": 0.125})])
    assert "faithful acc" in some and "0.250 ± 0.050" in some and "flip rate" in some and "0.125" in some
    assert "path recall" not in some and "reasoning alone" not in some


def test_data_sha256_is_streamed_once_per_file_version(tmp_path: Path) -> None:
    from fleming.tasks._records import _file_sha256, data_sha256

    path = tmp_path / "bench.jsonl"
    path.write_bytes(b"x" * 3_000_000)
    want = hashlib.sha256(path.read_bytes()).hexdigest()
    _file_sha256.cache_clear()
    assert data_sha256(str(path)) == want and data_sha256(path) == want
    assert _file_sha256.cache_info().hits == 1 and _file_sha256.cache_info().misses == 1
    path.write_bytes(b"y" * 10)  # another size: hashed again
    assert data_sha256(str(path)) == hashlib.sha256(b"y" * 10).hexdigest()
    assert [data_sha256(x) for x in (None, "", "hf://org/set", str(tmp_path), str(tmp_path / "none"))] == [None] * 5


def test_every_task_records_its_data_file_hash(tmp_path: Path) -> None:
    from fleming.tasks import load_task, mcq_task
    from fleming.testing import make_item, write_jsonl

    records = [make_item(i).to_record() for i in range(3)]
    assert mcq_task(records, name="probe").metadata["data_sha256"] is None  # items in memory
    path = tmp_path / "heldout.jsonl"
    write_jsonl(path, [{**r, "meta": {**r["meta"], "origin": "synthetic"}} for r in records])
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert mcq_task(records, name="probe", origin=str(path)).metadata["data_sha256"] == sha
    assert load_task("kg_heldout", data_file=str(path)).metadata["data_sha256"] == sha


def test_a_benchmark_file_hash_reaches_the_task(benchmarks_dir: Path) -> None:
    from fleming.tasks import load_task

    task = load_task("medqa", data_dir=benchmarks_dir)
    file = benchmarks_dir / "medqa_usmle_4opt_test.jsonl"
    assert task.metadata["data_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()


def _task(bench: str, sha: str | None) -> Any:
    return SimpleNamespace(name=f"fleming/{bench}", metadata={"benchmark": bench, "data_sha256": sha,
                                                               "fleming": {"benchmark": bench}},
                           model=SimpleNamespace(api=SimpleNamespace(close=lambda: None)))


def test_a_changed_data_file_is_named_in_one_line(tmp_path: Path) -> None:
    from fleming.data_pins import data_changes, earlier_pins

    write_log(tmp_path, "medqa", BASIC, data_sha256=SHA_B, created="2026-01-01T00:00:00+00:00", name="old")
    write_log(tmp_path, "medqa", BASIC, data_sha256=SHA_A, created="2026-01-02T00:00:00+00:00", name="new")
    write_log(tmp_path, "pubmedqa", BASIC, data_sha256=None, name="hub")
    (tmp_path / "2026-01-03T00-00-00+00-00_medqa_broken.eval").write_bytes(b"not a zip")
    pins = earlier_pins(tmp_path)
    assert [(p.benchmark, p.sha256[:1]) for p in pins] == [("medqa", "b"), ("medqa", "a")]
    assert data_changes([_task("medqa", SHA_A), _task("pubmedqa", SHA_B), _task("medqa", None)], pins) == []
    [line] = data_changes([_task("medqa", SHA_B)], pins)
    assert line == ("medqa: data file differs from the one log 2026-01-02T00-00-00+00-00_medqa_new.eval used "
                    f"(sha256 {SHA_B[:12]}… vs {SHA_A[:12]}…)")
    assert earlier_pins(tmp_path / "absent") == []


def test_evaluate_reports_a_changed_data_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect_ai

    from fleming import evaluation
    from fleming.evaluation import EvalTarget

    log_dir = tmp_path / "logs"
    earlier = write_log(log_dir, "medqa", BASIC, data_sha256=SHA_A, fleming={"model": "old"}, name="first")
    fresh = _header(write_log(tmp_path / "new", "medqa", BASIC, data_sha256=SHA_B, fleming={"model": "m"}))
    monkeypatch.setattr(evaluation, "build_tasks", lambda targets, makers, **kw: [_task("medqa", SHA_B)])
    monkeypatch.setattr(inspect_ai, "eval_set", lambda tasks, **kw: (True, [fresh]))
    said: list[str] = []
    targets = [EvalTarget(label="m", path="/nowhere"), EvalTarget(label="n", path="/nowhere")]
    rows = evaluation.evaluate(targets, [("medqa", lambda: None)], log_dir, status=said.append)
    changed = [line for line in said if "data file differs" in line]
    assert changed == [f"medqa: data file differs from the one log {earlier.name} used "
                       f"(sha256 {SHA_B[:12]}… vs {SHA_A[:12]}…)"]
    assert [r.data_sha256 for r in rows] == [SHA_B, SHA_B]
