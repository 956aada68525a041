"""A third-party benchmark (fleming-acme's `acme-probe`, public API only) runs like a built-in one: listed by
`fleming plugins`, evaluated by `fleming eval` under its own name with the eval's generation settings, shown
on the leaderboard, and run by plain `inspect eval` offline. (The recipe's eval stage: test_evaluation.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from inspect_ai.log import list_eval_logs, read_eval_log

from fleming.cli import cli
from fleming.leaderboard.logs import collect


def test_plugins_lists_the_benchmark_with_its_module(with_acme: None) -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = [c for c in json.loads(result.output)["components"] if c["name"] == "acme-probe"]
    assert found == [{"kind": "benchmark", "name": "acme-probe", "module": "fleming_acme", "plugin": "acme",
                      "distribution": found[0]["distribution"]}]
    assert found[0]["distribution"].startswith("fleming-acme ")


def test_fleming_eval_runs_a_plugin_benchmark_under_its_name(tmp_path: Path, model_cache: Path,
                                                            with_acme: None) -> None:
    out = tmp_path / "logs"
    result = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "acme-probe", "--limit", "2",
                                      "--max-tokens", "3", "--log-dir", str(out), "-T", "shuffle_seed=1"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "acme-probe" in result.output
    [row] = json.loads((out / "summary.json").read_text())
    assert (row["benchmark"], row["status"], row["samples"]) == ("acme-probe", "success", 2)
    assert row["strict"] is not None and row["tag"]["benchmark"] == "acme-probe"
    [log] = [read_eval_log(p) for p in list_eval_logs(str(out))]
    assert log.plan.config.max_tokens == 3  # --max-tokens overrides the task's own 512
    assert {s.id for s in log.samples} == {"probe-2", "probe-3"}  # -T shuffle_seed=1 reached the component
    site = tmp_path / "site"
    board = CliRunner().invoke(cli, ["leaderboard", str(out), "--out", str(site), "--no-progress"],
                               catch_exceptions=False)
    assert board.exit_code == 0, board.output
    assert "acme-probe" in (site / "index.html").read_text(encoding="utf-8")


def test_fleming_eval_names_a_plugin_benchmark_arg_and_suggests(with_acme: None) -> None:
    bad = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "acme-probe", "-T", "shufle_seed=1"])
    assert bad.exit_code == 1
    assert "-T acme-probe.shufle_seed: unknown field" in bad.output and "shuffle_seed" in bad.output
    unknown = CliRunner().invoke(cli, ["eval", "tiny-random", "--benchmarks", "acme-prob"])
    assert unknown.exit_code == 1 and "unknown benchmark 'acme-prob'" in unknown.output
    assert "acme-probe" in unknown.output


def test_inspect_eval_runs_the_plugin_task_offline_with_a_mock_model(tmp_path: Path, with_acme: None) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_PROXY": "*", "HTTPS_PROXY": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9"}  # no network: tiktoken cannot fetch its encoding
    inspect = Path(sys.executable).with_name("inspect")
    done = subprocess.run([str(inspect), "eval", "fleming_acme/acme_probe", "--model", "mockllm/model",
                           "--log-dir", str(tmp_path), "--display", "none", "--max-tokens", "5"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [log] = [read_eval_log(p) for p in list_eval_logs(str(tmp_path))]
    assert log.status == "success" and log.results.completed_samples == 3
    assert {s.name for s in log.results.scores} == {"strict", "lenient", "no_answer"}
    frame = collect([tmp_path])
    assert frame["benchmark"].tolist() == ["acme-probe"]  # the task's own name, not its Inspect path
