"""Broken recipes, through the real CLI: each exits non-zero with ONE line naming the problem, no traceback."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleming.errors import RecipeError
from fleming.recipe_file import read_recipe_data
from fleming.testing import uniform_records, write_jsonl

SOURCE = "data:\n  sources: [{plugin: jsonl, args: {path: data.jsonl}}]\n"
BASE = "name: broken\nmodel: tiny-random\n" + SOURCE
RL = """rl:
  trainer: {plugin: acme-copy}
  rewards: [{plugin: acme-brevity}]
  stages:
"""
STAGES = "    - {name: stage1, curriculum: {plugin: acme-reverse}}\n    - {name: stage2, curriculum: {plugin: acme-reverse}}\n"


def write_recipe(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    """Write a recipe and the small JSONL data file it reads; return the recipe's path."""
    write_jsonl(tmp_path / "data.jsonl", uniform_records(4))
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fleming(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m fleming ARGS` as a user would."""
    return subprocess.run([sys.executable, "-m", "fleming", *args], cwd=cwd, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the command failed with exactly one clean error line on stderr, and return it."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    return lines[0]


@pytest.mark.parametrize("text", [BASE, BASE + RL + STAGES], ids=["data-only", "with-rl"])
def test_the_unbroken_recipes_validate(tmp_path: Path, with_acme: None, text: str) -> None:
    """The recipes the broken cases start from are fine, so each failure below is the one we introduced."""
    proc = fleming("validate", str(write_recipe(tmp_path, text)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


@pytest.mark.parametrize("text, needles", [
    pytest.param("name: broken\nmodel: tiny-random\ndata: [a, b\nseed: 1\n",
                 ["recipe.yaml:4:", "invalid YAML"], id="bad-yaml-names-file-and-line"),
    pytest.param("- name: broken\n- model: tiny-random\n",
                 ["recipe.yaml", "must be a mapping", "got a list"], id="top-level-list"),
    pytest.param("", ["recipe.yaml", "must be a mapping", "empty file"], id="empty-file"),
    pytest.param(BASE.replace("plugin: jsonl", "plugin: jsonll"),
                 ["data.sources[0].plugin", "unknown data source 'jsonll'", "did you mean 'jsonl'?"],
                 id="unknown-plugin"),
    pytest.param(BASE.replace("model:", "modle:"),
                 ["modle: unknown field", "did you mean 'model'?"], id="misspelt-top-level-field"),
    pytest.param(BASE + "seed: abc\n", ["seed:", "'abc'"], id="wrong-type"),
    pytest.param(BASE.replace("path: data.jsonl", "path: data.jsonl, limit: -5"),
                 ["data.sources[0].args.limit", "-5"], id="negative-limit"),
    pytest.param(BASE.replace("path: data.jsonl", "path: missing.jsonl"),
                 ["data.sources[0].args.path", "missing.jsonl", "not found"], id="missing-data-file"),
    pytest.param(BASE.replace("path: data.jsonl", "path: data.jsonl, liimit: 3"),
                 ["data.sources[0].args.liimit: unknown field", "did you mean 'limit'?"], id="misspelt-plugin-arg"),
])
def test_broken_recipe_is_one_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    """Each broken recipe fails `fleming validate` with one line naming the recipe file and the problem."""
    line = error_line(fleming("validate", str(write_recipe(tmp_path, text)), cwd=tmp_path))
    assert line.startswith(f"error: {tmp_path / 'recipe.yaml'}")
    for needle in needles:
        assert needle in line


@pytest.mark.parametrize("stages, needles", [
    pytest.param(STAGES.replace("}}\n", "}, rolouts: 4}\n", 1),
                 ["rl.stages[0].rolouts: unknown field", "did you mean 'rollouts'?"], id="misspelt-stage-field"),
    pytest.param(STAGES.replace("}}\n", "}, rollouts: -1}\n", 1),
                 ["rl.stages[0].rollouts", "-1"], id="negative-rollouts"),
    pytest.param(STAGES.replace("stage2", "stage1"),
                 ["rl.stages", "duplicate stage name 'stage1'"], id="duplicate-stage-names"),
    pytest.param(STAGES.replace("acme-reverse", "acme-revers", 1),
                 ["rl.stages[0].curriculum.plugin", "unknown curriculum 'acme-revers'", "did you mean 'acme-reverse'?"],
                 id="unknown-curriculum"),
])
def test_broken_rl_section_is_one_line(tmp_path: Path, with_acme: None, stages: str, needles: list[str]) -> None:
    """Mistakes in the RL section (third-party components) name their field path too."""
    line = error_line(fleming("validate", str(write_recipe(tmp_path, BASE + RL + stages)), cwd=tmp_path))
    assert line.startswith(f"error: {tmp_path / 'recipe.yaml'}: rl.")
    for needle in needles:
        assert needle in line


def test_unknown_from_stage_suggests_close_names(tmp_path: Path, with_acme: None) -> None:
    """`fleming run --from` with a misspelt stage fails before anything runs or is written."""
    recipe = write_recipe(tmp_path, BASE + RL + STAGES)
    runs = tmp_path / "runs"
    line = error_line(fleming("run", str(recipe), "--from", "rl-stag1", "--runs-dir", str(runs), cwd=tmp_path))
    assert "--from" in line and "unknown stage 'rl-stag1'" in line
    assert "'rl-stage1'" in line and "'rl-stage2'" in line
    assert not runs.exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """`--debug` adds the traceback, and the last line is still the one-line error."""
    recipe = write_recipe(tmp_path, BASE.replace("plugin: jsonl", "plugin: jsonll"))
    proc = fleming("--debug", "validate", str(recipe), cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error:") and "did you mean 'jsonl'?" in last


def test_secret_in_args_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """An API key written into a recipe is refused by field name, and its value is never printed."""
    secret = "sk-abcdef0123456789abcdef"
    recipe = write_recipe(tmp_path, BASE.replace("path: data.jsonl", f"path: data.jsonl, api_key: {secret}"))
    line = error_line(fleming("validate", str(recipe), cwd=tmp_path))
    assert "data.sources[0].args.api_key" in line and "secret" in line
    assert secret not in line


def test_secret_environment_variable_is_not_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`${OPENAI_API_KEY}` in a recipe is refused, set or not, and its value never shows."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fromtheenvironment0123")
    recipe = write_recipe(tmp_path, BASE.replace("path: data.jsonl", 'path: "${OPENAI_API_KEY}"'))
    line = error_line(fleming("validate", str(recipe), cwd=tmp_path))
    assert "data.sources[0].args.path" in line and "${OPENAI_API_KEY}" in line and "secret" in line
    assert "sk-fromtheenvironment0123" not in line


def test_unset_variable_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`${VAR}` with VAR unset and no default names the variable and the field."""
    monkeypatch.delenv("FLEMING_TEST_DATA_FILE", raising=False)
    recipe = write_recipe(tmp_path, BASE.replace("path: data.jsonl", 'path: "${FLEMING_TEST_DATA_FILE}"'))
    line = error_line(fleming("validate", str(recipe), cwd=tmp_path))
    assert "FLEMING_TEST_DATA_FILE" in line and "not set" in line and "data.sources[0].args.path" in line


def test_variable_with_default_expands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`${VAR:-default}` uses the default when VAR is unset, and VAR's value when it is set."""
    recipe = write_recipe(tmp_path, BASE.replace("path: data.jsonl", 'path: "${FLEMING_TEST_DATA_FILE:-data.jsonl}"'))
    monkeypatch.delenv("FLEMING_TEST_DATA_FILE", raising=False)
    proc = fleming("validate", str(recipe), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
    monkeypatch.setenv("FLEMING_TEST_DATA_FILE", "elsewhere.jsonl")
    line = error_line(fleming("validate", str(recipe), cwd=tmp_path))
    assert "data.sources[0].args.path" in line and "elsewhere.jsonl" in line


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Assert the command failed with clean error lines only (no traceback), and return them."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), proc.stderr
    return lines


def test_every_problem_is_listed_one_line_each(tmp_path: Path) -> None:
    """Several mistakes are all reported, each on its own line naming the recipe file and the field."""
    recipe = write_recipe(tmp_path, BASE.replace("path: data.jsonl", "path: data.jsonl, limit: -5")
                          + "  filters: [{plugin: dedup, args: {threshold: 7}}, {plugin: structur}]\n")
    lines = error_lines(fleming("validate", str(recipe), cwd=tmp_path))
    assert len(lines) == 3, lines
    assert all(line.startswith(f"error: {recipe}: ") for line in lines)
    joined = "\n".join(lines)
    assert "data.sources[0].args.limit" in joined and "data.filters[0].args.threshold" in joined
    assert "data.filters[1].plugin: unknown filter 'structur'" in joined and "more problem" not in joined
    recipe.write_text("name: broken\nseed: -1\nmodle: tiny-random\nrl: {rewards: []}\n", encoding="utf-8")
    lines = error_lines(fleming("validate", str(recipe), cwd=tmp_path))
    fields = [line.split(": ")[2] for line in lines]
    assert sorted(fields) == ["modle", "rl.rewards", "rl.stages", "rl.trainer", "seed"], lines


@pytest.mark.parametrize("text, field, kind", [
    pytest.param(BASE + "seed: true\n", "seed", "a number", id="recipe-int"),
    pytest.param(BASE + "  mix: {heldout_fraction: false}\n", "data.mix.heldout_fraction", "a number",
                 id="recipe-float"),
    pytest.param(BASE.replace("path: data.jsonl", "path: data.jsonl, limit: true"), "data.sources[0].args.limit",
                 "a number", id="plugin-arg-int"),
    pytest.param(BASE + "  filters: [{plugin: dedup, args: {threshold: true}}]\n",
                 "data.filters[0].args.threshold", "a number", id="plugin-arg-float"),
    pytest.param(BASE + "  mix: {difficulty_quotas: {easy: true}}\n", "data.mix.difficulty_quotas.easy",
                 "a number", id="number-inside-a-mapping"),
])
def test_a_boolean_is_not_a_number(tmp_path: Path, text: str, field: str, kind: str) -> None:
    """YAML's `true` given to an int or float field is an error naming the field, not the number 1."""
    line = error_line(fleming("validate", str(write_recipe(tmp_path, text)), cwd=tmp_path))
    assert f"recipe.yaml: {field}: expected {kind}, not a boolean" in line


def test_a_factory_failure_is_a_validate_time_error(tmp_path: Path) -> None:
    """A component whose factory refuses its args fails `validate` and `run --dry-run`, naming the field."""
    recipe = write_recipe(tmp_path, BASE + "  verify: [{plugin: label-check, args: {model: mockllm/model, "
                                           "trials: 2, min_correct: 3}}]\n")
    for args in (["validate", str(recipe)], ["run", str(recipe), "--dry-run", "--runs-dir", str(tmp_path / "r")]):
        line = error_line(fleming(*args, cwd=tmp_path))
        assert f"error: {recipe}: data.verify[0]: verifier 'label-check'" in line
        assert "failed to start: ValueError: min_correct (3) cannot exceed trials (2)" in line
    assert not (tmp_path / "r").exists()


BOMB = "name: bomb\nmodel: tiny-random\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """Nine levels of nine aliases (387 million values once expanded) are refused in well under a second."""
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(BOMB, encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(RecipeError, match="aliases expand to more than"):
        read_recipe_data(recipe)
    assert time.perf_counter() - start < 1.0
    line = error_line(fleming("validate", str(recipe), cwd=tmp_path))
    assert line.startswith(f"error: {recipe}: aliases expand")


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    """An alias inside its own anchor is refused by name instead of recursing forever."""
    recipe = tmp_path / "loop.yaml"
    recipe.write_text("name: loop\nmodel: tiny-random\nx: &x [1, *x]\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="loop.yaml: an alias refers to a node that contains it"):
        read_recipe_data(recipe)


def test_small_aliases_still_work(tmp_path: Path) -> None:
    """Ordinary anchors and merges (a shared args block) load as before."""
    recipe = write_recipe(tmp_path, BASE.replace("{plugin: jsonl, args: {path: data.jsonl}}",
                                                 "&src {plugin: jsonl, args: {path: data.jsonl}}, *src"))
    proc = fleming("validate", str(recipe), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_data_path_must_be_a_regular_file(tmp_path: Path, kind: str) -> None:
    """A FIFO or /dev/zero given as a data file is an error at validate time, not a hang."""
    if kind == "fifo":
        target = tmp_path / "pipe.jsonl"
        os.mkfifo(target)
    else:
        target = Path("/dev/zero")
    recipe = write_recipe(tmp_path, BASE.replace("path: data.jsonl", f"path: {target}"))
    line = error_line(fleming("validate", str(recipe), cwd=tmp_path))
    assert f"recipe.yaml: data.sources[0].args.path: {target} is not a regular file or a folder" in line
