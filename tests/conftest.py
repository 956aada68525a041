"""Shared test setup: no third-party plugins unless a test opts in, and paths to the shared data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _no_third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed third-party plugins stay out unless a test sets FLEMING_PLUGINS itself."""
    monkeypatch.setenv("FLEMING_PLUGINS", "")


@pytest.fixture(autouse=True)
def _reference_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """`engine: auto` means the `hf` reference engine in tests (it would convert every checkpoint for OpenVINO;
    FLEMING_TEST_ENGINE=openvino runs the suite's auto on it instead); an engine a test names is used as named."""
    monkeypatch.setenv("FLEMING_ENGINE", os.environ.get("FLEMING_TEST_ENGINE", "hf"))


@pytest.fixture
def with_acme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to the installed fixture plugin package fleming-acme (tests/fixtures/fleming-acme)."""
    import importlib.metadata as md

    try:
        md.distribution("fleming-acme")
    except md.PackageNotFoundError:
        pytest.skip("fleming-acme is not installed (make test installs it from tests/fixtures/fleming-acme)")
    monkeypatch.setenv("FLEMING_PLUGINS", "acme")


@pytest.fixture
def benchmarks_dir() -> Path:
    """The shared folder of benchmark JSONL files; tests using it skip when it is absent."""
    path = Path(os.environ.get("FLEMING_DATA_DIR") or SHARED / "benchmarks")
    if not (path / "medqa_usmle_4opt_test.jsonl").exists():
        pytest.skip(f"benchmark files not found in {path} (set FLEMING_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def _session_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fleming cache folder for the whole session, so tiny-random is built once (~15 s)."""
    return tmp_path_factory.mktemp("fleming-cache")


@pytest.fixture
def model_cache(_session_model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point FLEMING_CACHE at the session's shared cache (tiny-random is built there on first use)."""
    monkeypatch.setenv("FLEMING_CACHE", str(_session_model_cache))
    return _session_model_cache


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty fleming cache for this test (model calls are cached there)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FLEMING_CACHE", str(folder))
    return folder
