"""The shipped recipes: every one validates, and the quickstart's stages run end to end (on tiny-random: the
real quickstart on SmolLM2 takes about twenty minutes; its numbers are in the README)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleming.tasks import SUITES
from fleming.tasks._records import missing_data

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleming", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_shipped_recipes_validate(recipe: Path, benchmarks_dir: Path) -> None:
    env = {**os.environ, "FLEMING_DATA_DIR": str(benchmarks_dir)}
    if "${FLEMING_KG_DIR" in recipe.read_text(encoding="utf-8"):
        kg = REPO.parent / "shared" / "kg"
        if not (kg / "drugcentral").is_dir():
            pytest.skip(f"{recipe.name} reads KG tables from $FLEMING_KG_DIR; none found in {kg}")
        env["FLEMING_KG_DIR"] = str(kg)
    got = _cli("validate", str(recipe), env=env)
    assert got.returncode == 0, got.stderr
    assert "ok" in got.stdout


def _shrunk(quickstart: dict[str, Any]) -> dict[str, Any]:
    """The quickstart with its stages, plugins and plugin args kept, on tiny-random and a handful of items."""
    q = copy.deepcopy(quickstart)
    q["model"] = "tiny-random"
    q["data"]["synthesize"][0]["args"].update(n=24, diseases=8)  # several questions a disease: a known split
    q["eval"].pop("engine", None)  # the suite's reference engine
    q["data"]["annotate"][0]["args"].update(max_tokens=4)
    q["cold_start"]["trainer"]["args"].update(max_steps=1, train_layers=1)
    q["rl"]["trainer"]["args"].update(max_completion_length=8, train_layers=1)
    for stage in q["rl"]["stages"]:
        stage["max_steps"] = 1
    # a random model answers nothing right, so its pass rates call every item difficult
    q["rl"]["stages"][0]["curriculum"]["args"].update(max_steps=1, difficulties=["easy", "moderate", "difficult"])
    q["rl"]["stages"][1]["curriculum"]["args"].update(pool_limit=4, max_tokens=8)
    q["eval"].update(max_tokens=8)
    next(b for b in q["eval"]["benchmarks"] if b["plugin"] == "med9")["args"]["limit"] = 1
    return q


def test_the_quickstart_recipe_runs_every_stage_and_prints_where_the_leaderboard_is(
        tmp_path: Path, benchmarks_dir: Path) -> None:
    """Every stage of the quickstart, with its own plugin args (pass-rate read leniently, the concise kg-path
    teacher, top-block training, the benchmark subset of whatever the data folder holds), on tiny-random."""
    quickstart = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text(encoding="utf-8"))
    recipe = tmp_path / "quickstart.yaml"
    recipe.write_text(yaml.safe_dump(_shrunk(quickstart)), encoding="utf-8")
    env = {**os.environ, "FLEMING_DATA_DIR": str(benchmarks_dir)}
    got = _cli("run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress", env=env)
    assert got.returncode == 0, got.stderr[-3000:]
    run_dir = tmp_path / "runs" / "quickstart"
    site = run_dir / "leaderboard" / "site" / "index.html"
    assert f"leaderboard: {site}" in got.stderr  # on one line, whole, to be copied
    rows = json.loads((run_dir / "eval" / "summary.json").read_text(encoding="utf-8"))
    stages = {r["tag"]["stage"] for r in rows}
    assert stages == {"base", "cold_start", "rl-stage1", "rl-stage2"}
    present = {n for n in SUITES["med9"] if missing_data(n, benchmarks_dir) is None}
    assert {r["benchmark"] for r in rows} == {"kg_heldout", "kg_heldout_known", *present}
    assert len(rows) == 4 * (2 + len(present)) and all(r["status"] == "success" for r in rows)
    for split in ("heldout", "heldout_known", "dev"):
        assert (run_dir / "mix" / f"{split}.jsonl").read_text().strip(), split
    if len(present) < 9:
        assert f"skipping {9 - len(present)} of 9 benchmark(s)" in got.stderr
    annotated = [json.loads(line) for line in (run_dir / "annotate" / "items.jsonl").read_text().splitlines()]
    assert all(it["meta"]["pass_rate"]["parser"] == "lenient" for it in annotated)
    sft = [json.loads(line) for line in (run_dir / "cold_start" / "sft.jsonl").read_text().splitlines()]
    assert sft and all(len(it["meta"]["rationale"].splitlines()) == 2 for it in sft)  # concise: one line + tag
    page = site.read_text(encoding="utf-8")
    for stage in ("cold_start", "rl-stage1", "rl-stage2"):
        assert f"quickstart/{stage}" in page
    again = _cli("run", str(recipe), "--runs-dir", str(tmp_path / "runs"), "--no-progress", env=env)
    assert again.returncode == 0 and "0 stage(s) ran" in again.stderr
