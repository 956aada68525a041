"""Choosing the generation engine: the recipe's `engine` and `eval.engine`, `--engine` over every use, `auto`
falling back with its note, the engine in every manifest, preflight and the dry run."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from fleming import hookimpl
from fleming.dry_run import dry_run, print_dry_run
from fleming.engines import AUTO_ORDER, GPU_ORDER, EngineChoice, auto_order, resolve
from fleming.errors import PluginError, RecipeError
from fleming.pipeline import RunContext, run_pipeline
from fleming.pipeline.context import stage_run
from fleming.plugin_manager import build_registry, get_plugin_manager
from fleming.plugins.curricula.hard_mining import HardMining
from fleming.preflight import check
from fleming.recipe import load_recipe
from fleming.testing import add_plugins, fresh_registry, make_item, stage_ctx, uniform_records, write_jsonl

NO_GPU = "no CUDA GPU is visible"
NO_OV = "openvino-genai is not installed"


class FakeEngine:
    """A third-party engine: every answer is B; the class attribute `why` says whether it can run here."""

    why: str | None = None
    asked = 0

    def __init__(self, speed: int = 1) -> None:
        self.speed = speed

    @classmethod
    def unavailable(cls) -> str | None:
        FakeEngine.asked += 1
        return cls.why

    def load(self, model_path: str) -> None:
        self.model = model_path

    def generate(self, prompts: Sequence[Sequence[dict[str, str]]], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, seed: int = 0) -> list[list[str]]:
        return [["<answer>B</answer>"] * n for _ in prompts]


class Engines:
    """A plugin registering a fake engine under each name given, with the reason it cannot run (None: it can)."""

    def __init__(self, **engines: str | None) -> None:
        self.engines = engines

    @hookimpl
    def register_engines(self, register: Any) -> None:
        for name, why in self.engines.items():
            register(name, type(f"Fake_{name}", (FakeEngine,), {"why": why}))


ACME = Engines(**{"acme-slow": None, "acme-fast": None})


@pytest.fixture(autouse=True)
def _no_engine_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests choose engines themselves: nothing from the environment overrides them."""
    monkeypatch.delenv("FLEMING_ENGINE", raising=False)


def only_engines(**engines: str | None) -> tuple[Any, Any]:
    """A fresh registry holding just these fake engines (named like the real ones: no default plugins)."""
    pm = get_plugin_manager(entry_points=False, extra=[Engines(**engines)], defaults=False)
    return pm, build_registry(pm)


def write_recipe(folder: Path, **fields: Any) -> Path:
    """A recipe (`name`, `model` tiny-random, then `fields`), with a small data file beside it."""
    write_jsonl(folder / "qa.jsonl", uniform_records(6))
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "enginerun", "model": "tiny-random", **fields}, sort_keys=False))
    return path


def make_run(recipe: Path, registry: tuple[Any, Any], override: str | None = None) -> tuple[RunContext, io.StringIO]:
    pm, reg = registry
    out = io.StringIO()
    run = RunContext(loaded=load_recipe(recipe, reg), registry=reg, pm=pm, run_dir=recipe.parent / "runs" / "r",
                     console=Console(file=out, width=200), show_progress=False, engine_override=override)
    return run, out


def manifest(run: RunContext, stage: str) -> dict[str, Any]:
    return json.loads((run.run_dir / stage / "manifest.json").read_text())


EVAL = {"benchmarks": ["medqa"], "limit": 2}


# ---------------------------------------------------------------- the recipe fields

def test_the_engine_is_auto_unless_named_and_a_use_falls_back_to_the_runs(tmp_path: Path) -> None:
    _, reg = fresh_registry()
    loaded = load_recipe(write_recipe(tmp_path, eval=EVAL), reg)
    assert loaded.recipe.engine == EngineChoice("auto") and loaded.recipe.eval.engine is None
    loaded = load_recipe(write_recipe(tmp_path, engine={"name": "hf", "args": {"dtype": "bfloat16"}},
                                      eval={**EVAL, "engine": "hf"}), reg)
    assert loaded.recipe.engine == EngineChoice("hf", {"dtype": "bfloat16"})
    assert loaded.recipe.eval.engine == EngineChoice("hf")
    assert loaded.recipe.model_dump()["eval"]["engine"] == {"name": "hf", "args": {}}
    assert stage_ctx(tmp_path / "s").engine == EngineChoice("hf")  # tests stay deterministic


@pytest.mark.parametrize("fields, line", [
    ({"engine": "hff"}, "engine: unknown engine 'hff' — did you mean 'hf'?"),
    ({"eval": {**EVAL, "engine": "vlm"}}, "eval.engine: unknown engine 'vlm' — did you mean 'vllm'?"),
    ({"engine": {"name": "hf", "args": {"dtype": "fp8"}}}, "engine.args.dtype: Input should be 'float32' or"),
    ({"engine": {"name": "hf", "args": {"batchsize": 2}}},
     "engine.args.batchsize: unknown field — did you mean 'batch_size'?"),
    ({"engine": {"name": "auto", "args": {"dtype": "bfloat16"}}}, "engine.args: engine auto takes no args"),
    ({"eval": {**EVAL, "engine": {"nam": "hf"}}}, "eval.engine.nam: unknown field — did you mean 'name'?"),
    ({"engine": 3}, "engine: expected an engine name (auto, hf, openvino, vllm, ...) or {name, args}, got 3"),
    ({"eval": {**EVAL, "backend": "vllm"}},
     "eval.backend: replaced by eval.engine (hf | openvino | vllm | auto); write engine: vllm"),
], ids=["unknown", "unknown-eval", "bad-arg", "unknown-arg", "auto-with-args", "bad-key", "not-a-name", "backend"])
def test_a_wrong_engine_is_one_line_naming_the_field(tmp_path: Path, fields: dict[str, Any], line: str) -> None:
    recipe = write_recipe(tmp_path, **fields)
    with pytest.raises(RecipeError) as err:
        load_recipe(recipe, fresh_registry()[1])
    assert str(err.value).startswith(f"{recipe}: {line}"), str(err.value)
    assert "\n" not in str(err.value)


def fleming(*args: str, cwd: Path) -> str:
    """Run the CLI; assert it failed with one clean error line and return that line."""
    proc = subprocess.run([sys.executable, "-m", "fleming", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "FLEMING_PLUGINS": ""})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_the_cli_refuses_eval_backend_and_an_unknown_engine_in_one_line(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, eval={**EVAL, "backend": "hf"})
    assert "eval.backend: replaced by eval.engine (hf | openvino | vllm | auto); write engine: hf" in \
        fleming("validate", str(recipe), cwd=tmp_path)
    recipe = write_recipe(tmp_path)
    line = fleming("run", str(recipe), "--engine", "hff", "--dry-run", "--runs-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert line == "error: --engine: unknown engine 'hff' — did you mean 'hf'?"
    assert fleming("eval", "tiny-random", "--engine", "vlm", cwd=tmp_path) == \
        "error: --engine: unknown engine 'vlm' — did you mean 'vllm'?"
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- auto, and --engine over every use

def test_auto_takes_the_first_engine_that_can_run_and_says_what_it_passed_over() -> None:
    _, reg = only_engines(vllm=NO_GPU, openvino=NO_OV, hf=None)
    assert resolve(EngineChoice(), registry=reg) == (EngineChoice("hf"),
                                                     f"engine auto: using hf (vllm: {NO_GPU}; openvino: {NO_OV})")
    _, reg = only_engines(vllm=None, hf=None)
    assert resolve(EngineChoice(), registry=reg) == (EngineChoice("vllm"), None)
    assert resolve(EngineChoice("vllm", {"x": 1}), registry=reg) == (EngineChoice("vllm", {"x": 1}), None)
    _, reg = only_engines(vllm=NO_GPU, hf="broken")
    with pytest.raises(PluginError, match=f"engine auto: no engine can run here \\(vllm: {NO_GPU}; hf: broken\\)"):
        resolve(EngineChoice(), registry=reg)


def test_on_a_gpu_machine_auto_prefers_hf_on_the_gpu_to_the_cpu_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert auto_order() == GPU_ORDER
    _, reg = only_engines(vllm="vllm is not installed", openvino=None, hf=None)
    assert resolve(EngineChoice(), registry=reg) == (
        EngineChoice("hf"), "engine auto: using hf on the GPU (vllm: vllm is not installed)")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto_order() == AUTO_ORDER
    assert resolve(EngineChoice(), registry=reg)[0] == EngineChoice("openvino")


def test_a_run_resolves_auto_once_logs_the_note_and_records_the_engine_in_every_manifest(
        tmp_path: Path, model_cache: Path) -> None:
    FakeEngine.asked = 0
    run, out = make_run(write_recipe(tmp_path), only_engines(vllm=NO_GPU, openvino=NO_OV, hf=None))
    run_pipeline(run)
    assert out.getvalue().count(f"engine auto: using hf (vllm: {NO_GPU}; openvino: {NO_OV})") == 1
    assert FakeEngine.asked == 3  # each engine asked once, for the whole run
    assert manifest(run, "model")["engine"] == {"name": "hf", "args": {}}
    again, _ = make_run(run.loaded.path, only_engines(vllm=NO_GPU, openvino=NO_OV, hf=None), override="vllm")
    assert [o.status for o in run_pipeline(again)] == ["skipped"]  # the engine is recorded, not fingerprinted
    run_pipeline(again, from_stage="model")
    assert manifest(again, "model")["engine"] == {"name": "vllm", "args": {}}


def test_engine_override_replaces_the_runs_engine_and_every_uses_own(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, engine={"name": "acme-slow", "args": {"speed": 2}},
                          eval={**EVAL, "engine": {"name": "acme-fast", "args": {"speed": 3}}})
    run, _ = make_run(recipe, fresh_registry(ACME))
    ctx = stage_run(run, "rl-s", tmp_path / "s", (), None).ctx
    assert run.engine == ctx.engine == EngineChoice("acme-slow", {"speed": 2}) and run.engine_note is None
    assert run.use_engine(run.loaded.recipe.eval.engine, "eval.engine") == EngineChoice("acme-fast", {"speed": 3})
    assert ctx.engine_for("hf", {"dtype": "bfloat16"}) == EngineChoice("hf", {"dtype": "bfloat16"})
    assert ctx.engine_for() == run.engine
    run, _ = make_run(recipe, fresh_registry(ACME), override="acme-fast")
    ctx = stage_run(run, "rl-s", tmp_path / "s", (), None).ctx
    assert run.engine == ctx.engine == EngineChoice("acme-fast")  # the recipe's args were for another engine
    assert run.use_engine(run.loaded.recipe.eval.engine, "eval.engine") == EngineChoice("acme-fast", {"speed": 3})
    assert ctx.engine_for("hf", {"dtype": "bfloat16"}) == EngineChoice("acme-fast")


def _with_acme_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the fake engines for every registry fleming loads in this test (`build_component` too)."""
    add_plugins(monkeypatch, ACME)


def test_hard_mining_samples_with_the_runs_engine_unless_told_and_records_the_concrete_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_acme_engines(monkeypatch)
    pool = [make_item(i) for i in range(4)]
    ctx = stage_ctx(tmp_path / "a", "rl-s", engine="acme-fast", rollouts=4, start_model="/models/start")
    HardMining(k=2).select(pool, 0, None, ctx)
    assert ctx.notes["hard-mining"]["rounds"][0]["engine"] == {"name": "acme-fast", "args": {}}
    assert json.loads((ctx.dir / "mining" / "round-0.json").read_text())["engine"] == {"name": "acme-fast", "args": {}}
    run, _ = make_run(write_recipe(tmp_path), fresh_registry(ACME), override="acme-slow")
    ctx = stage_run(run, "rl-s", tmp_path / "b", (), None).ctx
    ctx.start_model = "/models/start"
    HardMining(k=2, engine="hf", engine_args={"dtype": "bfloat16"}).select(pool, 0, None, ctx)
    assert ctx.notes["hard-mining"]["rounds"][0]["engine"] == {"name": "acme-slow", "args": {}}


def test_the_eval_stage_answers_with_its_own_engine_and_its_manifest_records_it(
        tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[EngineChoice | None] = []

    def fake_evaluate(targets: Any, makers: Any, log_dir: Path, *, engine: EngineChoice | None = None,
                      **kwargs: Any) -> list[Any]:
        used.append(engine)
        return []

    monkeypatch.setattr("fleming.pipeline.stages.evaluation.evaluate", fake_evaluate)
    recipe = write_recipe(tmp_path, engine="acme-slow", eval={**EVAL, "engine": "acme-fast"})
    run, _ = make_run(recipe, fresh_registry(ACME))
    run_pipeline(run)
    assert used == [EngineChoice("acme-fast")]
    assert manifest(run, "eval")["engine"] == {"name": "acme-fast", "args": {}}
    assert manifest(run, "model")["engine"] == {"name": "acme-slow", "args": {}}
    run, _ = make_run(recipe, fresh_registry(ACME), override="acme-slow")
    run_pipeline(run, only="eval")
    assert used[-1] == EngineChoice("acme-slow") and manifest(run, "eval")["engine"]["name"] == "acme-slow"


# ---------------------------------------------------------------- preflight and the dry run

def test_preflight_warns_about_a_named_engine_that_cannot_run_here_never_about_auto(tmp_path: Path) -> None:
    registry = only_engines(vllm=NO_GPU, hf=None)
    warned = f"engine 'vllm' cannot run here: {NO_GPU}"
    run, _ = make_run(write_recipe(tmp_path, engine="vllm"), registry)
    assert f"engine: {warned}" in check(run.loaded, run.registry)
    run, _ = make_run(write_recipe(tmp_path), registry)
    assert not any("cannot run here" in w for w in check(run.loaded, run.registry))
    assert f"--engine: {warned}" in check(run.loaded, run.registry, "vllm")


def _printed(run: RunContext) -> tuple[list[tuple[str, str, str]], str]:
    report = dry_run(run)
    out = io.StringIO()
    print_dry_run(report, Console(file=out, width=250), "recipe.yaml", run.run_dir)
    return report.engines, out.getvalue()


def test_the_dry_run_shows_the_runs_engine_its_auto_note_and_each_uses_own(tmp_path: Path) -> None:
    run, _ = make_run(write_recipe(tmp_path), only_engines(vllm=NO_GPU, openvino=NO_OV, hf=None))
    rows, text = _printed(run)
    assert rows == [("engine", "hf", f"auto: using hf (vllm: {NO_GPU}; openvino: {NO_OV})")]
    assert "generation engines" in text and f"auto: using hf (vllm: {NO_GPU}; openvino: {NO_OV})" in text
    rl = {"trainer": "trl", "rewards": ["answer"],
          "stages": [{"name": "s2", "curriculum": {"plugin": "hard-mining", "args": {"engine": "hf"}}}]}
    recipe = write_recipe(tmp_path, engine={"name": "acme-slow", "args": {"speed": 2}},
                          data={"sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}]}, rl=rl,
                          eval={**EVAL, "engine": "acme-fast"})
    run, _ = make_run(recipe, fresh_registry(ACME))
    rows, text = _printed(run)
    assert rows == [("engine", "acme-slow (speed=2)", ""), ("eval.engine", "acme-fast", ""),
                    ("rl.stages[0].curriculum.args.engine", "hf", "")]
    run, _ = make_run(recipe, fresh_registry(ACME), override="acme-fast")
    rows, text = _printed(run)
    assert rows == [("engine", "acme-fast", "--engine acme-fast"),
                    ("eval.engine", "acme-fast", "--engine acme-fast (the recipe says acme-fast)"),
                    ("rl.stages[0].curriculum.args.engine", "acme-fast", "--engine acme-fast (the recipe says hf)")]
    assert "--engine acme-fast (the recipe says hf)" in text


def test_fleming_run_dry_run_engine_reaches_the_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fleming.cli import cli

    recipe = write_recipe(tmp_path, eval={**EVAL, "engine": "hf"})
    got = CliRunner().invoke(cli, ["run", str(recipe), "--dry-run", "--engine", "hf", "--runs-dir",
                                   str(tmp_path / "r")], catch_exceptions=False)
    assert got.exit_code == 0, got.output
    assert "--engine hf (the recipe says hf)" in got.output and not (tmp_path / "r").exists()
