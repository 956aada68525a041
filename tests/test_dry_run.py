"""`fleming run --dry-run`: the plan (skip / resume / run per stage), components, the commands trainers plan
(OpenRLHF's and a third-party trainer's), warnings, and nothing written; the paper recipes pass it offline."""
from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from fleming import hookimpl
from fleming.cli import cli
from fleming.dry_run import dry_run, print_dry_run
from fleming.pipeline import RunContext
from fleming.protocols import PlannedCommand, Requirement, TrainJob
from fleming.providers import needs
from fleming.recipe import load_recipe
from fleming.testing import fresh_registry, make_item, uniform_records, write_jsonl

REPO = Path(__file__).resolve().parents[1]
PROVIDER_ENV = ("OPENAI_API_KEY", "GPT_OSS_API_KEY", "GPT_OSS_BASE_URL", "RAY_ADDRESS", "FLEMING_DATA_DIR")


def _tree(folder: Path) -> dict[str, float]:
    """Every path under `folder` with its modification time (empty when the folder does not exist)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# ---------------------------------------------------------------- the paper recipes

@pytest.fixture
def paper_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A benchmark folder holding MedQA only, stand-in KG tables (validation checks only that they exist),
    and no provider keys or Ray address in the environment."""
    for var in PROVIDER_ENV:
        monkeypatch.delenv(var, raising=False)
    bench = tmp_path / "bench"
    write_jsonl(bench / "medqa_usmle_4opt_test.jsonl", uniform_records(2))
    kg = tmp_path / "kg"
    for name in ("fleming-r1-7b", "fleming-r1-32b"):
        text = (REPO / "recipes" / f"{name}.yaml").read_text(encoding="utf-8")
        for rel in re.findall(r"\$\{FLEMING_KG_DIR:-kg\}/([\w./-]+)", text):
            (kg / rel).parent.mkdir(parents=True, exist_ok=True)
            (kg / rel).touch()
    monkeypatch.setenv("FLEMING_DATA_DIR", str(bench))
    monkeypatch.setenv("FLEMING_KG_DIR", str(kg))
    return tmp_path


@pytest.mark.parametrize("name", ["fleming-r1-7b", "fleming-r1-32b"])
def test_paper_recipe_dry_run_plans_every_stage_warns_and_writes_nothing(paper_env: Path, name: str) -> None:
    runs = paper_env / "runs"
    recipe = REPO / "recipes" / f"{name}.yaml"
    assert _cli("validate", str(recipe)).exit_code == 0
    result = _cli("run", str(recipe), "--dry-run", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    out = result.output
    stages = ["model", "collect", "synthesize", "filter", "verify", "annotate", "mix", "rl-stage1", "rl-stage2",
              "eval", "leaderboard"] + (["cold_start"] if name.endswith("7b") else [])
    for stage in stages:
        assert re.search(rf"^│ {re.escape(stage)}\s+│ run\s+│ not run before", out, re.M), stage
    assert ("cold_start" in out) == name.endswith("7b")
    # the GRPO command of each RL stage, built with the paper's advantage and no KL term, accepted by OpenRLHF
    assert out.count("would submit openrlhf.cli.train_ppo_ray") == 2
    assert "--algo.advantage.estimator dr_grpo" in out and "--algo.kl.init_coef 0.0" in out
    assert "--rollout.n_samples_per_prompt 8" in out and "--rollout.n_samples_per_prompt 16" in out
    if importlib.util.find_spec("openrlhf") is not None:
        assert "accepted by OpenRLHF's own parser" in out
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert "warning: data.verify[0], data.annotate[0]: model 'openai/gpt-4o' reads OPENAI_API_KEY from the " \
           "environment (not set)" in warnings
    if name.endswith("7b"):
        assert "would submit openrlhf.cli.train_sft" in out
        assert any("GPT_OSS_API_KEY and GPT_OSS_BASE_URL" in w for w in warnings)
    assert any("no Ray cluster named" in w for w in warnings)
    assert any("medxpertqa: no file matching 'medxpertqa_text.jsonl'" in w for w in warnings)
    assert not any(": medqa: no file" in w for w in warnings)
    for module, hint in (("openai", "pip install openai"), ("ray", "fleming-med[openrlhf]"),
                         ("vllm", "fleming-med[vllm]")):
        assert (importlib.util.find_spec(module) is None) == any(hint in w for w in warnings), module
    assert not runs.exists()


def test_provider_keys_are_checked_for_presence_and_never_printed(paper_env: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"OPENAI_API_KEY": "sk-dry-run-0123456789", "GPT_OSS_API_KEY": "gptoss-key-0123456789"}
    for var, value in secrets.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("GPT_OSS_BASE_URL", "http://teacher.example:8000/v1")
    result = _cli("run", str(REPO / "recipes" / "fleming-r1-7b.yaml"), "--dry-run", "--runs-dir",
                  str(paper_env / "runs"))
    assert result.exit_code == 0, result.output
    assert "OPENAI_API_KEY" not in result.output and "GPT_OSS" not in result.output
    assert not any(value in result.output for value in secrets.values())


def test_inspect_model_names_map_to_packages_and_environment() -> None:
    assert needs("openai/gpt-4o").env == ("OPENAI_API_KEY",)
    got = needs("openai-api/gpt-oss/openai/gpt-oss-120b")
    assert got.packages == (("openai", "openai"),) and got.env == ("GPT_OSS_API_KEY", "GPT_OSS_BASE_URL")
    assert needs("together/openai/gpt-oss-120b").env == ("TOGETHER_API_KEY",)
    assert ("vllm", "vllm") in needs("vllm/openai/gpt-oss-120b", environ={}).packages
    assert ("vllm", "vllm") not in needs("vllm/x", environ={"VLLM_BASE_URL": "http://h:8000/v1"}).packages
    assert not needs("acme/model").known


# ---------------------------------------------------------------- a small finished run

def _data_recipe(folder: Path, heldout: float = 0.3) -> Path:
    """A data-only recipe on a local model folder (the model stage only records where it is)."""
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "config.json").write_text("{}", encoding="utf-8")
    write_jsonl(folder / "qa.jsonl", [make_item(i, entity=f"OMIM:{100 + i % 6}").to_record() for i in range(18)])
    data = {"name": "tiny", "model": "model",
            "data": {"sources": [{"plugin": "jsonl", "args": {"path": "qa.jsonl"}}],
                     "mix": {"heldout_fraction": heldout}}}
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _actions(recipe: Path, runs: Path, **options: Any) -> dict[str, tuple[str, str]]:
    pm, registry = fresh_registry()
    loaded = load_recipe(recipe, registry)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=runs / loaded.recipe.name)
    report = dry_run(run, **options)
    out = io.StringIO()
    print_dry_run(report, Console(file=out, width=200), str(recipe), run.run_dir)  # printing works too
    return {s.name: (s.action, s.reason) for s in report.stages}


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, Path]:
    recipe, runs = _data_recipe(tmp_path), tmp_path / "runs"
    result = _cli("run", str(recipe), "--runs-dir", str(runs), "--no-progress")
    assert result.exit_code == 0, result.output
    return recipe, runs


def test_finished_stages_are_skipped_and_a_changed_stage_runs(finished: tuple[Path, Path]) -> None:
    recipe, runs = finished
    before = _tree(runs)
    result = _cli("run", str(recipe), "--dry-run", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    assert re.search(r"^│ mix\s+│ skip\s+│ finished, fingerprint [0-9a-f]{16} matches", result.output, re.M)
    assert {k: v[0] for k, v in _actions(recipe, runs).items()} == {"model": "skip", "collect": "skip", "mix": "skip"}
    _data_recipe(recipe.parent, heldout=0.2)  # the mix config changes, nothing upstream does
    got = _actions(recipe, runs)
    assert got["model"][0] == got["collect"][0] == "skip"
    assert got["mix"][0] == "run" and got["mix"][1].startswith("config, inputs or versions changed")
    assert _tree(runs) == before  # nothing written, not even a lock or recipe.json


def test_from_only_and_a_killed_stage(finished: tuple[Path, Path]) -> None:
    recipe, runs = finished
    got = _actions(recipe, runs, from_stage="collect")
    assert got == {"model": got["model"], "collect": ("run", "--from collect"), "mix": ("run", "--from collect")}
    assert got["model"][0] == "skip"
    assert _actions(recipe, runs, only="mix") == {"model": ("not selected", "--only mix"),
                                                  "collect": ("not selected", "--only mix"), "mix": ("run", "--only")}
    (runs / "tiny" / "collect" / "manifest.json").unlink()  # killed: its work and .fingerprint are left
    got = _actions(recipe, runs)
    assert got["collect"][0] == "resume"
    assert got["mix"][0] == "run" and got["mix"][1].startswith("collect runs first")


def test_only_a_stage_whose_inputs_never_ran_is_blocked_not_refused(tmp_path: Path) -> None:
    recipe = _data_recipe(tmp_path)
    result = _cli("run", str(recipe), "--dry-run", "--only", "mix", "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert "warning: mix: stage 'mix' needs 'collect', which has not finished; run without --only first " \
           "(a real run stops there)" in result.output
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- errors stay one line

@pytest.mark.parametrize("change, expected", [
    ({"data": {"sources": [{"plugin": "jsnol", "args": {"path": "qa.jsonl"}}]}}, "did you mean 'jsonl'"),
    ({"model": "./no-such-model"}, "model:"),
])
def test_a_bad_recipe_is_one_error_line(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    path = _data_recipe(tmp_path)
    data = {**yaml.safe_load(path.read_text(encoding="utf-8")), **change}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]


def test_an_unknown_stage_name_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(_data_recipe(tmp_path)), "--dry-run", "--from", "mx"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: --from: unknown stage 'mx' — did you mean 'mix'? (this recipe's stages: model, collect, mix)"]


# ---------------------------------------------------------------- a third-party trainer gets the same dry run

class PlanningTrainer:
    """A trainer that launches a command; it answers dry run and preflight through the optional methods."""

    def __init__(self, host: str = "") -> None:
        self.host = host

    def train(self, job: Any, ctx: Any) -> Any:
        raise AssertionError("a dry run never trains")

    def requirements(self) -> list[Requirement]:
        return [Requirement("no_such_launcher_xyz", "it launches each job", "pip install launcher-xyz"),
                Requirement("yaml", "it reads its config", "pip install pyyaml")]

    def preflight(self) -> list[str]:
        return [] if self.host else ["no launch host set (args.host)"]

    def planned_commands(self, job: TrainJob) -> list[PlannedCommand]:
        argv = ["launch", "--kind", job.kind, "--model", job.model_path, "--out", str(job.output_dir),
                "--rollouts", str(job.rollouts)]
        return [PlannedCommand("launcher", argv, "the launcher's own parser", False,
                               "--rollouts must be even" if job.rollouts % 2 else None)]


class PlanningPlugin:
    @hookimpl
    def register_trainers(self, register: Any) -> None:
        register("planner", PlanningTrainer)


def test_a_third_party_trainer_gets_its_commands_and_requirements_shown(tmp_path: Path) -> None:
    recipe = _data_recipe(tmp_path)
    data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data["rl"] = {"trainer": {"plugin": "planner"}, "rewards": [{"plugin": "answer"}],
                  "stages": [{"name": "s1", "curriculum": {"plugin": "difficulty-mix"}, "rollouts": 3}]}
    recipe.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    pm, registry = fresh_registry(PlanningPlugin())
    loaded = load_recipe(recipe, registry)
    run = RunContext(loaded=loaded, registry=registry, pm=pm, run_dir=tmp_path / "runs" / "tiny")
    report = dry_run(run)
    stage = next(s for s in report.stages if s.name == "rl-s1")
    [cmd] = stage.commands
    assert cmd.argv[:3] == ["launch", "--kind", "grpo"] and cmd.argv[-1] == "3"
    assert cmd.argv[cmd.argv.index("--out") + 1] == str(run.run_dir / "rl-s1" / "checkpoints" / "round-0")
    assert "rl.trainer: no_such_launcher_xyz is not installed (it launches each job): pip install launcher-xyz" \
        in report.warnings
    assert "rl.trainer: no launch host set (args.host)" in report.warnings
    assert "rl.trainer: --rollouts must be even" in report.warnings
    assert not any("yaml is not installed" in w for w in report.warnings)  # installed: no warning
    out = io.StringIO()
    print_dry_run(report, Console(file=out, width=200), str(recipe), run.run_dir)
    text = out.getvalue()
    assert "rl-s1 would submit launcher (round 0; later rounds differ in data, seed and rollouts); refused by " \
           "the launcher's own parser:" in text
    assert "launch --kind grpo" in text
    assert not (tmp_path / "runs").exists()


def test_the_trl_trainer_declares_trl_and_with_lora_peft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = _data_recipe(tmp_path)
    data = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    data["rl"] = {"trainer": {"plugin": "trl", "args": {"lora": True}}, "rewards": [{"plugin": "answer"}],
                  "stages": [{"name": "s1", "curriculum": {"plugin": "difficulty-mix"}}]}
    recipe.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    monkeypatch.setattr("fleming.preflight.installed", lambda module: module not in ("trl", "peft"))
    pm, registry = fresh_registry()
    run = RunContext(loaded=load_recipe(recipe, registry), registry=registry, pm=pm, run_dir=tmp_path / "runs")
    warnings = dry_run(run).warnings
    assert "rl.trainer: trl is not installed (it trains with TRL): pip install trl" in warnings
    assert "rl.trainer: peft is not installed (lora: true trains a LoRA adapter): pip install peft" in warnings
