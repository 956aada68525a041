"""bench/quickstart_gain.py: its statistics on known numbers (per-split stage rows, paired stage-to-stage
differences, first- and last-quarter reward means), a steps.jsonl read back through the script, and the whole
report on a hand-written run with all three held-out splits."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import pytest
from _hand_logs import BASIC, sample, write_log

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gain = _load("quickstart_gain")
stats = _load("_gain_stats")


def _scores(strict: list[float], lenient: list[float] | None = None) -> dict[str, dict[str, float]]:
    return {"strict": {f"q{i}": v for i, v in enumerate(strict)},
            "lenient": {f"q{i}": v for i, v in enumerate(lenient or strict)}}


def test_the_paired_difference_and_its_se_by_hand() -> None:
    got = stats.paired({"a": 1, "b": 0, "c": 1, "d": 1}, {"a": 0, "b": 0, "c": 1, "d": 0, "e": 1})
    # differences 1, 0, 0, 1: mean 0.5, sample SD sqrt(1/3), SE sqrt(1/3) / 2
    assert got == {"n": 4, "diff": 0.5, "se": pytest.approx(math.sqrt(1 / 3) / 2)}
    assert stats.fmt_diff(got) == "+0.500 ± 0.289 (+1.7 SE)"
    assert stats.paired({"a": 1.0}, {"b": 1.0}) is None and stats.fmt_diff(None) == "—"


def test_stage_rows_hold_n_accuracy_and_se() -> None:
    rows = stats.stage_rows([("base", _scores([0, 0, 1, 0], [1, 0, 1, 0])), ("rl-a", _scores([1, 0, 1, 1]))])
    assert [r["stage"] for r in rows] == ["base", "rl-a"] and rows[0]["n"] == 4
    assert rows[0]["strict"] == 0.25 and rows[0]["strict_se"] == pytest.approx(0.5 / 2)
    assert rows[0]["lenient"] == 0.5 and rows[0]["lenient_se"] == pytest.approx(math.sqrt(1 / 3) / 2)
    assert rows[1]["strict"] == 0.75


def test_every_stage_difference_consecutive_then_final_vs_base_and_cold_start() -> None:
    assert stats.stage_pairs(["base", "cold_start", "rl-a", "rl-b"]) == [
        ("cold_start", "base", ""), ("rl-a", "cold_start", ""), ("rl-b", "rl-a", ""),
        ("rl-b", "base", "final vs base"), ("rl-b", "cold_start", "final vs cold start")]
    assert stats.stage_pairs(["base", "cold-start", "rl-a"]) == [
        ("cold-start", "base", ""), ("rl-a", "cold-start", ""), ("rl-a", "base", "final vs base")]
    assert stats.stage_pairs(["base", "rl-a"]) == [("rl-a", "base", "")]
    assert stats.stage_pairs(["base"]) == []
    diffs = stats.differences([("base", _scores([0, 0, 1, 0])), ("cold_start", _scores([1, 0, 1, 1])),
                               ("rl-a", _scores([1, 1, 1, 1]))])
    assert [(d["later"], d["earlier"]) for d in diffs] == [("cold_start", "base"), ("rl-a", "cold_start"),
                                                           ("rl-a", "base")]
    assert diffs[0]["n"] == 4 and diffs[0]["strict"]["diff"] == 0.5
    assert diffs[0]["strict"]["se"] == pytest.approx(math.sqrt(1 / 3) / 2)
    assert diffs[1]["lenient"]["diff"] == 0.25 and diffs[2]["strict"]["diff"] == 0.75


def test_quarter_means_of_eight_steps() -> None:
    got = stats.quarter_means([0.1, 0.3, 0.4, 0.4, 0.5, 0.5, 0.7, 0.9])
    assert got["steps"] == 8 and got["quarter"] == 2
    assert got["first"] == pytest.approx(0.2) and got["first_se"] == pytest.approx(0.1)
    assert got["last"] == pytest.approx(0.8) and got["last_se"] == pytest.approx(0.1)
    assert got["diff"] == pytest.approx(0.6) and got["se"] == pytest.approx(math.sqrt(0.02))
    assert stats.fmt_curve(got) == "first 2 steps 0.200 ± 0.100, last 2 0.800 ± 0.100: +0.600 ± 0.141 (+4.2 SE)"


def test_fewer_than_four_steps_are_too_few() -> None:
    assert stats.quarter_means([0.1, None, 0.5, 0.9]) == {"steps": 3, "too_few": True}
    assert "too few steps (3" in stats.fmt_curve(stats.quarter_means([0.1, 0.5, 0.9]))


def _write_steps(folder: Path, rewards: list[float]) -> None:
    folder.mkdir(parents=True)
    lines = [{"step": i + 1, "round": 1, "rewards": {"answer": r, "format": 1.0}, "reward": 2 * r,
              "frac_reward_zero_std": 0.5, "completion_length": 30.0, "clipped_ratio": 0.0, "loss": 0.1}
             for i, r in enumerate(rewards)]
    (folder / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def test_reward_curves_read_through_the_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_steps(tmp_path / "rl-stage1", [0.0, 0.5, 0.25, 0.25, 0.5, 0.5, 1.0, 0.5])
    _write_steps(tmp_path / "rl-stage2", [0.5, 1.0])
    (tmp_path / "rl-stage3").mkdir()
    got = gain.curves(tmp_path)
    assert set(got) == {"rl-stage1", "rl-stage2"} and got["rl-stage1"]["steps"] == 8
    reward = got["rl-stage1"]["reward"]
    assert reward["first"] == pytest.approx(0.5) and reward["last"] == pytest.approx(1.5)
    assert reward["first_se"] == pytest.approx(0.5) and reward["se"] == pytest.approx(math.hypot(0.5, 0.5))
    assert got["rl-stage1"]["rewards"]["answer"]["diff"] == pytest.approx(0.5)
    assert got["rl-stage1"]["rewards"]["format"]["se"] == 0.0
    assert got["rl-stage2"]["reward"]["too_few"] and got["rl-stage2"]["rewards"]["answer"]["too_few"]
    out = capsys.readouterr().out
    assert "rl-stage1, 8 steps: reward first 2 steps 0.500 ± 0.500, last 2 1.500 ± 0.500" in out
    assert "rl-stage2, 2 steps: reward too few steps" in out and "rl-stage3: no steps.jsonl" in out


def test_the_splits_are_the_runs_heldout_benchmarks() -> None:
    from fleming.tasks import HELDOUT_SPLITS

    assert [bench for bench, _ in stats.SPLITS] == [HELDOUT_SPLITS[s] for s in ("unseen", "known", "dev")]


def _run(folder: Path, splits: dict[str, list[list[float]]]) -> None:
    """A run whose logs hold, per split, one list of per-item strict scores per stage (base, cold_start, rl-a)."""
    names = ["base", "cold_start", "rl-a"]
    for bench, per_stage in splits.items():
        for index, values in enumerate(per_stage):
            samples = [sample(i, "A", {"strict": v, "lenient": v, "no_answer": 0.0}) for i, v in enumerate(values)]
            write_log(folder / "eval" / "logs", bench, BASIC, samples=samples,
                      fleming={"stage": names[index], "stage_index": index},
                      created=f"2026-01-01T00:0{index}:00+00:00")


def test_the_report_covers_every_split_and_against(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    _run(mine, {"kg_dev": [[0, 0], [1, 0]], "kg_heldout": [[0, 0, 1, 0], [1, 0, 1, 1], [1, 1, 1, 1]],
                "kg_heldout_known": [[0, 1], [1, 1]]})
    _run(theirs, {"kg_heldout": [[0, 0, 1, 0], [0, 0, 1, 1]], "kg_dev": [[0, 0], [0, 0]]})
    _write_steps(mine / "rl-a", [0.0] * 4 + [1.0] * 4)
    got = gain.main(mine)
    assert list(got["splits"]) == ["kg_heldout", "kg_heldout_known", "kg_dev"]
    held = got["splits"]["kg_heldout"]
    assert [r["stage"] for r in held["stages"]] == ["base", "cold_start", "rl-a"]
    assert [(d["later"], d["earlier"]) for d in held["differences"]] == [
        ("cold_start", "base"), ("rl-a", "cold_start"), ("rl-a", "base")]
    assert held["differences"][0]["strict"]["diff"] == 0.5 and held["gain_strict"]["diff"] == 0.75
    assert got["splits"]["kg_dev"]["differences"][0]["lenient"]["diff"] == 0.5
    assert got["reward_curves"]["rl-a"]["reward"]["diff"] == 2.0
    out = capsys.readouterr().out
    assert out.index("kg_heldout (unseen") < out.index("kg_heldout_known (new") < out.index("kg_dev (dev")
    assert "| cold_start − base | 4 | +0.500 ± 0.289 (+1.7 SE) |" in out
    assert "| rl-a − base (final vs base) | 4 | +0.750 ± 0.250 (+3.0 SE) |" in out
    other = gain.against(mine, theirs)
    assert list(other) == ["kg_heldout", "kg_dev"]
    assert [(r["stage"], r["n"]) for r in other["kg_heldout"]] == [("base", 4), ("cold_start", 4)]
    assert other["kg_heldout"][1]["strict"]["diff"] == 0.25 and other["kg_dev"][1]["strict"]["diff"] == 0.5
    assert "kg_dev: mine minus theirs" in capsys.readouterr().out


def test_a_run_with_one_stage_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, {"kg_heldout": [[1, 0]]})
    got = gain.main(tmp_path)
    assert got["splits"]["kg_heldout"]["differences"] == []
    assert "no kg_heldout logs for both the base model and a trained stage" in capsys.readouterr().out


def test_rl_charts_writes_one_standalone_svg_per_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import xml.etree.ElementTree as ET

    charts = _load("rl_charts")
    run = tmp_path / "quickstart"
    _write_steps(run / "rl-stage1", [0.0, 0.5, 0.25, 0.25, 0.5, 0.5, 1.0, 0.5])
    monkeypatch.setattr(sys, "argv", ["rl_charts.py", str(run), "--out", str(tmp_path / "docs")])
    charts.main()
    svg = tmp_path / "docs" / "quickstart-rl-stage1.svg"
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and len(root.findall(f"{ns}svg")) == 4  # the run page's four charts
    style = root.find(f"{ns}style").text
    assert "--accent" in style and "svg .series" in style  # the site's colours travel with the file
    assert "8 GRPO steps" in svg.read_text(encoding="utf-8")
    (run / "rl-stage1" / "steps.jsonl").unlink()
    with pytest.raises(SystemExit, match="no RL stage recorded signals"):
        charts.main()


def test_one_step_a_quarter_gives_no_standard_error() -> None:
    got = stats.quarter_means([0.2, 0.4, 0.6, 0.9])
    assert got["diff"] == pytest.approx(0.7) and got["se"] is None
    assert stats.fmt_curve(got) == "first step 0.200, last step 0.900: +0.700 (one step a quarter: no SE)"
