"""Evaluation of models and checkpoints: `fleming eval`, and the run's eval and leaderboard stages."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from inspect_ai.log import list_eval_logs, read_eval_log
from rich.console import Console

from fleming.cli import cli
from fleming.pipeline import RunContext, run_pipeline
from fleming.recipe import load_recipe
from fleming.testing import fresh_registry, make_item, write_jsonl


def _logs(folder: Path) -> list[Any]:
    return [read_eval_log(p, header_only=True) for p in list_eval_logs(str(folder))]


def test_fleming_eval_reports_strict_and_lenient(tmp_path: Path, model_cache: Path, benchmarks_dir: Path) -> None:
    out = tmp_path / "logs"
    result = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "medqa,pubmedqa", "--limit", "3",
                                      "--max-tokens", "4", "--data-dir", str(benchmarks_dir),
                                      "--log-dir", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "strict" in result.output and "lenient" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["benchmark"] for r in summary) == ["medqa", "pubmedqa"]
    for row in summary:
        assert row["status"] == "success" and row["samples"] == 3
        assert 0.0 <= row["strict"] <= row["lenient"] <= 1.0  # lenient extends strict, never replaces it
        assert row["tag"]["model"] == "tiny-random" and row["tag"]["stage"] == "base"
        assert row["tag"]["engine"]["name"] in ("hf", "openvino", "vllm")  # auto, resolved to what answered
    # a second run finds the finished logs and evaluates nothing again
    before = {p.name for p in out.iterdir()}
    again = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "medqa,pubmedqa", "--limit", "3",
                                     "--max-tokens", "4", "--data-dir", str(benchmarks_dir), "--log-dir", str(out)])
    assert again.exit_code == 0, again.output
    assert {p.name for p in out.iterdir()} == before
    shas = {r["benchmark"]: r["data_sha256"] for r in summary}
    medqa = benchmarks_dir / "medqa_usmle_4opt_test.jsonl"
    assert shas["medqa"] == hashlib.sha256(medqa.read_bytes()).hexdigest() and "differs" not in again.output
    # another medqa file (one item fewer) in the same log folder: said in one line, naming the earlier log
    changed = tmp_path / "changed"
    changed.mkdir()
    shutil.copy(benchmarks_dir / "pubmedqa_pqal.jsonl", changed)
    (changed / medqa.name).write_text("".join(medqa.read_text(encoding="utf-8").splitlines(True)[:-1]),
                                      encoding="utf-8")
    third = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "medqa,pubmedqa", "--limit", "3",
                                     "--max-tokens", "4", "--data-dir", str(changed), "--log-dir", str(out)])
    assert third.exit_code == 0, third.output
    text = " ".join(third.output.split())  # the console wraps long lines
    assert text.count("data file differs") == 1 and "medqa: data file differs from the one log " in text
    new = hashlib.sha256((changed / medqa.name).read_bytes()).hexdigest()
    assert f"used (sha256 {new[:12]}… vs {shas['medqa'][:12]}…)" in text


def test_fleming_eval_names_a_bad_benchmark_and_task_arg(tmp_path: Path) -> None:
    bad = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "medqaa"])
    assert bad.exit_code == 1
    assert "unknown benchmark 'medqaa'" in bad.output and "medqa" in bad.output
    arg = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "medqa", "-T", "pubmedqa.x=1"])
    assert arg.exit_code == 1 and "'pubmedqa' is not among the benchmarks" in arg.output


def _recipe(folder: Path) -> Path:
    items = [make_item(i, entity=f"OMIM:{100 + i % 6}").to_record() for i in range(18)]
    write_jsonl(folder / "qa.jsonl", items)
    data: dict[str, Any] = {
        "name": "evalrun", "seed": 0, "model": "tiny-random",
        "data": {"sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}], "mix": {"heldout_fraction": 0.34}},
        "cold_start": {"teacher": {"plugin": "acme-echo"}, "trainer": {"plugin": "acme-copy", "args": {"steps": 2}}},
        "rl": {"trainer": {"plugin": "acme-copy", "args": {"steps": 1}},
               "rewards": [{"plugin": "acme-brevity"}],
               "stages": [{"name": "stage1", "curriculum": {"plugin": "acme-reverse"}}]},
        "eval": {"benchmarks": [{"plugin": "kg-heldout", "args": {"all_items": True}}, {"plugin": "acme-probe"}],
                 "limit": 2, "max_tokens": 4},
        "leaderboard": {"title": "Eval run <b>"},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_run_evaluates_base_and_every_checkpoint_then_builds_the_leaderboard(
        tmp_path: Path, model_cache: Path, with_acme: None) -> None:
    recipe = _recipe(tmp_path)
    pm, registry = fresh_registry(entry_points=True)
    loaded = load_recipe(recipe, registry)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=tmp_path / "runs" / "evalrun",
                     console=Console(file=open(os.devnull, "w")), show_progress=False)
    outcomes = run_pipeline(run)
    assert [o.name for o in outcomes][-2:] == ["eval", "leaderboard"]
    logs = _logs(run.run_dir / "eval" / "logs")
    for bench, task in (("kg_heldout", "fleming/kg_heldout"), ("acme-probe", "fleming_acme/acme_probe")):
        tags = sorted(((t := log.eval.metadata["fleming"])["stage_index"], t["step"], t["stage"], t["final"],
                       t["model"]) for log in logs if log.eval.metadata["fleming"]["benchmark"] == bench)
        assert tags == [
            (0, 0, "base", True, "tiny-random"),
            (1, 1, "cold_start", False, "evalrun/cold_start@1"),
            (1, 2, "cold_start", True, "evalrun/cold_start"),
            (2, 1, "rl-stage1", True, "evalrun/rl-stage1"),
        ]
        assert {log.eval.task for log in logs if log.eval.metadata["fleming"]["benchmark"] == bench} == {task}
    for log in logs:  # the eval section's limit and max_tokens reach the plugin's task as well as fleming's
        assert log.status == "success" and log.results.completed_samples == 2 and log.plan.config.max_tokens == 4
        assert log.eval.model.startswith("fleming/") and log.eval.model_args["engine"] != "auto"
    summary = json.loads((run.run_dir / "eval" / "summary.json").read_text())
    assert {r["benchmark"] for r in summary} == {"kg_heldout", "acme-probe"}  # one name each, as registered
    index = run.run_dir / "leaderboard" / "site" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert "Eval run &lt;b&gt;" in html and "evalrun/rl-stage1" in html
    assert "acme-probe" in html and "kg_heldout" in html and "kg-heldout" not in html
    # nothing changed: a re-run skips both stages
    again = run_pipeline(run)
    assert {o.name: o.status for o in again}["eval"] == "skipped"
