"""bench/generation.py end to end on the tiny random model: the hf engine only, a written benchmark file, a few
tokens; the JSON it saves has every field the table reports."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from fleming.testing import uniform_records, write_jsonl

REPO = Path(__file__).resolve().parents[1]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generation", REPO / "bench" / "generation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generation_bench_saves_every_field(model_cache: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "bench" / "medqa_usmle_4opt_test.jsonl", uniform_records(3))
    out = tmp_path / "result.json"
    bench = _bench()
    bench.ROOFLINE_WINDOWS = 1  # a rougher roofline, sooner
    code = bench.main(["--engines", "hf", "--model", "tiny-random", "--prompts", "2", "--k", "2",
                          "--max-tokens", "4", "--rollout-max-tokens", "4", "--data-dir", str(data.parent),
                          "--json", str(out)])
    assert code == 0
    got = json.loads(out.read_text())
    assert {"model", "params", "threads", "greedy_items", "rollout_items", "k", "peaks", "load_average",
            "skipped", "engines"} <= set(got)
    assert got["greedy_items"] == 2 and got["rollout_items"] == 1 and got["params"] > 0
    assert {"fp32_decode", "bf16_decode", "fp32_prefill", "bf16_prefill"} <= set(got["peaks"]["rollout"])
    [ref] = got["engines"]  # hf with its default args is the reference itself
    assert ref["engine"] == "hf fp32 (reference)" and ref["load_s"] > 0 and ref["peak_rss_mb"] > 0
    assert {"seconds", "tokens", "prompt_tokens", "tok_per_s", "vs_hf", "gflop_per_s", "fp32_roofline_share",
            "bf16_roofline_share", "same_strict", "same_lenient", "same_text", "correct_strict",
            "correct_lenient"} <= set(ref["greedy"])
    assert {"seconds", "tok_per_s", "vs_hf", "correct_strict", "correct_strict_se", "correct_lenient",
            "correct_lenient_se"} <= set(ref["rollout"])
    assert ref["greedy"]["vs_hf"] == 1.0 and ref["greedy"]["same_text"] == 1.0
    assert "greedy (eval-style)" in capsys.readouterr().out


def test_the_generation_bench_says_when_there_is_no_benchmark(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _bench().main(["--engines", "hf", "--data-dir", str(tmp_path / "absent")]) == 2
    assert "no benchmark folder" in capsys.readouterr().err
