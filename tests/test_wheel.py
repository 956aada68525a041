"""The non-editable wheel works on its own: every subpackage and data file ships, without the repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# build outputs and local state that never go into a wheel (ignored at the top level only)
_NOT_SOURCE = {".venv", ".git", "runs", "build", "dist", "tests", ".pytest_cache", "leaderboard-site"}


def _ignore_top_level(folder: str, names: list[str]) -> set[str]:
    if Path(folder) == REPO:
        return {n for n in names if n in _NOT_SOURCE or n.endswith(".egg-info")}
    return {n for n in names if n == "__pycache__"}


def _site_packages(venv: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})
    return Path(paths["purelib"])


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of the source tree and install it into a fresh venv; return its python."""
    tmp = tmp_path_factory.mktemp("wheel")
    # build from a copy so the test never writes build/ or egg-info into the checkout, and no stale
    # build/lib file can slip into the wheel
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=_ignore_top_level)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("fleming_med-*.whl")

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = _site_packages(venv)
    assert site.is_dir()
    # the main venv's dependencies, added as a plain path: its .pth hooks (the editable install) do not run
    (site / "main-venv-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return venv / "bin" / "python"


def _python(python: Path, code: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    got = subprocess.run([str(python), "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd,
                         env=env, timeout=120)
    assert got.returncode == 0, got.stderr
    return got.stdout


def test_installed_wheel_works_without_the_repository(wheel_venv: Path) -> None:
    cwd = wheel_venv.parents[2]  # the temporary folder, not the repository
    out = _python(wheel_venv, """
        import importlib, importlib.resources, json
        import fleming
        mods = ["fleming.plugins.sources.jsonl", "fleming.tasks", "fleming.prompts", "fleming.leaderboard",
                "fleming.recipes", "fleming.cli", "fleming.pipeline"]
        files = {m: importlib.import_module(m).__file__ for m in mods}
        quickstart = importlib.resources.files("fleming.recipes").joinpath("quickstart.yaml")
        print(json.dumps({"fleming": fleming.__file__, "modules": files, "quickstart": quickstart.is_file()}))
    """, cwd=cwd)
    got = json.loads(out)
    venv = wheel_venv.parents[1].resolve()
    assert Path(got["fleming"]).resolve().is_relative_to(venv)
    for module, file in got["modules"].items():
        assert Path(file).resolve().is_relative_to(venv), module
    assert got["quickstart"] is True

    listed = subprocess.run([str(wheel_venv), "-m", "fleming", "plugins", "--json"], capture_output=True, text=True,
                            cwd=cwd, timeout=120)
    assert listed.returncode == 0, listed.stderr
    components = json.loads(listed.stdout)["components"]
    (jsonl,) = [c for c in components if c["name"] == "jsonl"]
    assert jsonl["kind"] == "data source"
    assert jsonl["plugin"] == "fleming.plugins.sources.jsonl"
    assert jsonl["distribution"].startswith("fleming-med")

    data = _python(wheel_venv, """
        import importlib.resources as r, json
        print(json.dumps([r.files("fleming.prompts").joinpath("eval_mcq.jinja").is_file(),
                          r.files("fleming.leaderboard").joinpath("reference.json").is_file(),
                          r.files("fleming.leaderboard").joinpath("templates", "index.html").is_file(),
                          r.files("fleming.leaderboard").joinpath("static", "style.css").is_file()]))
    """, cwd=cwd)
    assert json.loads(data) == [True, True, True, True]


def test_plain_inspect_finds_the_installed_tasks(wheel_venv: Path, benchmarks_dir: Path) -> None:
    cwd = wheel_venv.parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    got = subprocess.run([str(wheel_venv), "-m", "inspect_ai", "eval", "fleming/medqa", "--model", "mockllm/model",
                          "--limit", "2", "-T", f"data_dir={benchmarks_dir}", "--log-dir", str(cwd / "logs"),
                          "--display", "plain"], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    assert list((cwd / "logs").glob("*medqa*.eval"))
