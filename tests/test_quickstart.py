"""The shipped recipes: every one validates, and the quickstart runs end to end on the real SmolLM2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_quickstart_runs_then_skips_everything(tmp_path: Path, benchmarks_dir: Path) -> None:
    env = {**os.environ, "FLEMING_DATA_DIR": str(benchmarks_dir)}
    first = _cli("run", str(REPO / "recipes" / "quickstart.yaml"), "--runs-dir", str(tmp_path), "--no-progress",
                 env=env)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "quickstart"
    model = json.loads((run_dir / "model" / "model.json").read_text())
    assert (Path(model["path"]) / "config.json").exists()
    mix = json.loads((run_dir / "mix" / "manifest.json").read_text())
    assert mix["counts"]["train"] + mix["counts"]["heldout"] + mix["counts"]["unused"] == 500
    assert mix["counts"]["heldout"] > 0
    second = _cli("run", str(REPO / "recipes" / "quickstart.yaml"), "--runs-dir", str(tmp_path), "--no-progress",
                  env=env)
    assert second.returncode == 0, second.stderr
    for stage in ("model", "collect", "mix"):
        assert f"{stage}: skipped" in second.stderr
    assert "0 stage(s) ran" in second.stderr
