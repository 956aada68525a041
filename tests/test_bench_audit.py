"""bench/audit.py at a tiny size: synthesised items, built completions; the JSON it saves has every number the
README reports, and a file without KG items is a clear exit."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from fleming.testing import uniform_records, write_jsonl

REPO = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_audit", REPO / "bench" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_audit_bench_saves_every_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "result.json"
    assert _bench().main(["--n", "6", "--repeats", "1", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["items"] == 6 and got["source"] == "built"
    assert got["graph_load_s"] > 0 and got["first_call_s"] > 0 and got["audit_s_median"] > 0
    assert got["ratio_to_parser"] > 1 and got["target_s_per_500"] == 5.0 and got["seconds_per_500"] > 0
    assert got["mean_path_recall"] == 1.0 and got["claims"] >= 6
    assert set(got["verdicts"]) == {"supported", "contradicted", "unsupported"}
    assert "plain answer parser" in capsys.readouterr().out


def test_the_audit_bench_says_when_there_is_nothing_to_audit(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    items = write_jsonl(tmp_path / "plain.jsonl", uniform_records(3))
    assert _bench().main(["--items", str(items), "--repeats", "1"]) == 2
    assert "nothing to audit" in capsys.readouterr().err
