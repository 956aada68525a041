"""The plugin system: name clashes, unknown names, broken plugins, FLEMING_PLUGINS, hook docs, component args."""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pydantic
import pytest

from fleming import hookimpl, hookspecs
from fleming.components import build
from fleming.errors import PluginError, RecipeError, UnknownComponentError
from fleming.plugin_manager import build_registry, get_plugin_manager
from fleming.recipe import Component, load_recipe
from fleming.testing import fresh_registry, uniform_records, write_jsonl

HOOKS = {
    "register_data_sources", "register_synthesizers", "register_filters", "register_verifiers",
    "register_teachers", "register_rewards", "register_curricula", "register_trainers", "register_benchmarks",
    "register_engines",
    "checkpoint_saved", "stage_finished", "eval_finished",
}


# ---------------------------------------------------------------- small components and plugins

class TypedReward:
    """A reward whose args come from annotated parameters."""

    def __init__(self, temperature: float = 1.0, scale: int = 1) -> None:
        self.temperature, self.scale = temperature, scale


class RequiredArgReward:
    """A reward with a required argument."""

    def __init__(self, target: str) -> None:
        self.target = target


class ModelArgsReward:
    """A reward whose args are validated by its own pydantic model."""

    class Args(pydantic.BaseModel):
        threshold: float = pydantic.Field(default=0.5, ge=0, le=1)

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold


class KwargsReward:
    """A reward that accepts any extra argument."""

    def __init__(self, temperature: float = 1.0, **kwargs: Any) -> None:
        self.temperature, self.extra = temperature, kwargs


class NoArgs:
    """A trainer or curriculum with no arguments."""


class ArgsPlugin:
    """Registers the rewards above, plus a trainer and a curriculum so a recipe's rl section is complete."""

    @hookimpl
    def register_rewards(self, register: Callable[..., None]) -> None:
        register("typed", TypedReward)
        register("required", RequiredArgReward)
        register("modelled", ModelArgsReward)
        register("open", KwargsReward)

    @hookimpl
    def register_trainers(self, register: Callable[..., None]) -> None:
        register("test-trainer", NoArgs)

    @hookimpl
    def register_curricula(self, register: Callable[..., None]) -> None:
        register("test-curriculum", NoArgs)


class FirstPlugin:
    @hookimpl
    def register_rewards(self, register: Callable[..., None]) -> None:
        register("shared-name", TypedReward)


class SecondPlugin:
    @hookimpl
    def register_rewards(self, register: Callable[..., None]) -> None:
        register("shared-name", KwargsReward)


class JsonlImpostor:
    @hookimpl
    def register_data_sources(self, register: Callable[..., None]) -> None:
        register("jsonl", NoArgs)


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Return a function that writes an importable plugin module registering one reward; it returns the module name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []

    def make(reward: str) -> str:
        name = f"fleming_test_plugin_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(
            "from fleming import hookimpl\n\n"
            "class Reward:\n"
            "    def __init__(self, scale: float = 1.0) -> None:\n"
            "        self.scale = scale\n\n"
            "@hookimpl\n"
            "def register_rewards(register):\n"
            f"    register({reward!r}, Reward)\n", encoding="utf-8")
        made.append(name)
        return name

    yield make
    for name in made:
        sys.modules.pop(name, None)


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, **plugins: str) -> None:
    """Make the `fleming` entry-point group hold exactly `plugins` (entry-point name -> module)."""
    real = md.entry_points
    eps = [md.EntryPoint(name=name, value=module, group="fleming") for name, module in plugins.items()]

    def entry_points(**kwargs: Any) -> Any:
        return eps if kwargs.get("group") == "fleming" else real(**kwargs)

    monkeypatch.setattr("fleming.plugin_manager.md.entry_points", entry_points)


def write_rl_recipe(tmp_path: Path, reward: str, trainer: str = "test-trainer",
                    curriculum: str = "test-curriculum") -> Path:
    """Write a complete recipe whose rl section uses the given components, and its data file."""
    write_jsonl(tmp_path / "data.jsonl", uniform_records(4))
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "name: plugin-test\nmodel: tiny-random\n"
        "data:\n  sources: [{plugin: jsonl, args: {path: data.jsonl}}]\n"
        f"rl:\n  trainer: {{plugin: {trainer}}}\n  rewards: [{reward}]\n"
        f"  stages: [{{name: stage1, curriculum: {{plugin: {curriculum}}}}}]\n", encoding="utf-8")
    return path


def fleming_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m fleming ARGS` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "fleming", *args], env=env, capture_output=True, text=True,
                          timeout=120)


# ---------------------------------------------------------------- name clashes and unknown names

def test_two_plugins_registering_one_name_is_an_error_naming_both() -> None:
    """A reward name registered twice stops startup, and the message names both plugins."""
    with pytest.raises(PluginError) as err:
        fresh_registry(FirstPlugin(), SecondPlugin())
    msg = str(err.value)
    assert "'shared-name'" in msg and "FirstPlugin" in msg and "SecondPlugin" in msg


def test_a_plugin_cannot_take_a_default_plugins_name() -> None:
    """Re-registering a built-in name clashes with the default plugin instead of replacing it silently."""
    with pytest.raises(PluginError) as err:
        fresh_registry(JsonlImpostor())
    msg = str(err.value)
    assert "'jsonl'" in msg and "fleming.plugins.sources.jsonl" in msg and "JsonlImpostor" in msg


def test_unknown_component_suggests_close_names() -> None:
    """A misspelt name gets "did you mean" with the registered name."""
    _, registry = fresh_registry(ArgsPlugin())
    with pytest.raises(UnknownComponentError, match=r"unknown reward 'typd' — did you mean 'typed'\?"):
        registry.get("rewards", "typd")
    with pytest.raises(UnknownComponentError, match=r"did you mean 'jsonl'\?"):
        registry.get("data_sources", "jsnl")


def test_unknown_component_with_nothing_close_lists_what_is_known() -> None:
    """With no close name, the message lists the registered names instead."""
    _, registry = fresh_registry(ArgsPlugin())
    with pytest.raises(UnknownComponentError) as err:
        registry.get("trainers", "zzzzzz")
    assert "'test-trainer'" in str(err.value)


DEFAULT_REWARDS = {"answer", "format", "kg-faithfulness"}  # registered by fleming's own plugins


# ---------------------------------------------------------------- broken third-party plugins

def test_broken_entry_point_warns_and_the_others_still_load(monkeypatch: pytest.MonkeyPatch,
                                                            plugin_module: Callable[[str], str]) -> None:
    """A plugin that fails to import is a warning naming it; working plugins and the defaults still load."""
    fake_entry_points(monkeypatch, broken="no_such_module_xyz", good=plugin_module("good-reward"))
    monkeypatch.delenv("FLEMING_PLUGINS")
    with pytest.warns(UserWarning, match="'broken'.*no_such_module_xyz"):
        pm = get_plugin_manager()
    registry = build_registry(pm)
    assert set(registry.names("rewards")) - DEFAULT_REWARDS == {"good-reward"}
    assert "jsonl" in registry.names("data_sources")
    assert set(registry.broken) == {"broken"}


def test_recipe_naming_a_component_of_a_broken_plugin_mentions_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugin_module: Callable[[str], str]) -> None:
    """The recipe error for a component that a broken plugin would have provided says that plugin failed."""
    fake_entry_points(monkeypatch, broken="no_such_module_xyz", good=plugin_module("good-reward"))
    monkeypatch.delenv("FLEMING_PLUGINS")
    with pytest.warns(UserWarning):
        pm = get_plugin_manager(extra=[ArgsPlugin()])
    registry = build_registry(pm)
    recipe = write_rl_recipe(tmp_path, "{plugin: broken-reward}")
    with pytest.raises(UnknownComponentError) as err:
        load_recipe(recipe, registry)
    msg = str(err.value)
    assert "rl.rewards[0].plugin: unknown reward 'broken-reward'" in msg
    assert "plugin 'broken' failed to load" in msg and "no_such_module_xyz" in msg


def test_cli_survives_a_broken_installed_plugin(tmp_path: Path) -> None:
    """With a really installed broken plugin, `fleming plugins` works and `validate` names the broken plugin."""
    site = tmp_path / "site"
    info = site / "fleming_broken_xyz-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fleming-broken-xyz\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fleming]\nbroken = no_such_module_xyz\n")
    env = {**os.environ, "FLEMING_PLUGINS": "broken",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}

    proc = fleming_cli("plugins", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert "no_such_module_xyz" in listing["failed_to_load"]["broken"]
    assert {"jsonl"} <= {c["name"] for c in listing["components"]}
    assert "Traceback" not in proc.stderr and "broken" in proc.stderr

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\nmodel: tiny-random\ndata:\n  sources: [{plugin: broken-source}]\n")
    proc = fleming_cli("validate", str(recipe), env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "data.sources[0].plugin: unknown data source 'broken-source'" in errors[0]
    assert "plugin 'broken' failed to load" in errors[0]


# ---------------------------------------------------------------- FLEMING_PLUGINS

@pytest.mark.parametrize("setting, expected", [
    (None, {"alpha-reward", "beta-reward"}),
    ("", set()),
    ("alpha", {"alpha-reward"}),
    ("-alpha", {"beta-reward"}),
    ("alpha,beta", {"alpha-reward", "beta-reward"}),
    (" -alpha , -beta ", set()),
])
def test_fleming_plugins_selects_entry_points(monkeypatch: pytest.MonkeyPatch, plugin_module: Callable[[str], str],
                                              setting: str | None, expected: set[str]) -> None:
    """Unset loads all, empty loads none, names allow, -names block; the default plugins always load."""
    fake_entry_points(monkeypatch, alpha=plugin_module("alpha-reward"), beta=plugin_module("beta-reward"))
    if setting is None:
        monkeypatch.delenv("FLEMING_PLUGINS")
    else:
        monkeypatch.setenv("FLEMING_PLUGINS", setting)
    registry = build_registry(get_plugin_manager())
    assert set(registry.names("rewards")) - DEFAULT_REWARDS == expected
    assert "jsonl" in registry.names("data_sources")


@pytest.mark.parametrize("setting, loaded", [
    ("acme", True), ("fleming-acme", True), ("-acme", False), ("-fleming-acme", False), ("", False),
])
def test_fleming_plugins_accepts_entry_point_or_distribution_names(
        monkeypatch: pytest.MonkeyPatch, with_acme: None, setting: str, loaded: bool) -> None:
    """The installed fleming-acme is selected by its entry-point name or its distribution name."""
    monkeypatch.setenv("FLEMING_PLUGINS", setting)
    registry = build_registry(get_plugin_manager())
    assert ("acme-brevity" in registry.names("rewards")) is loaded


def test_fresh_registry_keeps_installed_plugins_out_unless_asked(with_acme: None) -> None:
    """fleming.testing.fresh_registry ignores entry points by default, so plugin tests never see installed ones."""
    _, registry = fresh_registry()
    assert "acme-brevity" not in registry.names("rewards")
    _, registry = fresh_registry(entry_points=True)
    assert "acme-brevity" in registry.names("rewards")


# ---------------------------------------------------------------- every hook is documented

def _hookspecs() -> dict[str, Any]:
    return {name: fn for name, fn in vars(hookspecs).items()
            if inspect.isfunction(fn) and hasattr(fn, "fleming_spec")}


def test_the_hooks_are_exactly_the_documented_set() -> None:
    """The hookspecs are the nine registration hooks and the three observers, no more and no fewer."""
    assert set(_hookspecs()) == HOOKS


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_and_its_arguments_are_documented(name: str) -> None:
    """Each hookspec has a docstring with a `:param name:` line for every argument."""
    fn = _hookspecs()[name]
    doc = inspect.getdoc(fn) or ""
    assert doc.strip(), f"hook {name} has no docstring"
    undocumented = [p for p in inspect.signature(fn).parameters if f":param {p}:" not in doc]
    assert not undocumented, f"hook {name}: arguments without a ':param name:' line: {undocumented}"


# ---------------------------------------------------------------- component args

@pytest.mark.parametrize("reward, needles", [
    pytest.param("{plugin: typed, args: {temperature: hot}}", ["rl.rewards[0].args.temperature:", "'hot'"],
                 id="wrong-type"),
    pytest.param("{plugin: typed, args: {temprature: 2}}",
                 ["rl.rewards[0].args.temprature: unknown field — did you mean 'temperature'?"], id="misspelt-arg"),
    pytest.param("{plugin: required}", ["rl.rewards[0].args.target: required field is missing"], id="missing-arg"),
    pytest.param("{plugin: modelled, args: {threshold: 2}}", ["rl.rewards[0].args.threshold:", "1"],
                 id="args-model-constraint"),
    pytest.param("{plugin: modelled, args: {treshold: 0.2}}",
                 ["rl.rewards[0].args.treshold: unknown field — did you mean 'threshold'?"], id="args-model-typo"),
])
def test_bad_component_args_name_the_field(tmp_path: Path, reward: str, needles: list[str]) -> None:
    """Wrong, misspelt or missing component args are recipe errors naming `rl.rewards[0].args.<field>`."""
    _, registry = fresh_registry(ArgsPlugin())
    with pytest.raises(RecipeError) as err:
        load_recipe(write_rl_recipe(tmp_path, reward), registry)
    msg = str(err.value)
    assert "recipe.yaml" in msg
    for needle in needles:
        assert needle in msg


@pytest.mark.parametrize("reward, expected", [
    pytest.param("{plugin: typed, args: {temperature: '0.5'}}", {"temperature": 0.5, "scale": 1},
                 id="annotated-coerced"),
    pytest.param("{plugin: modelled, args: {threshold: 0.25}}", {"threshold": 0.25}, id="args-model"),
    pytest.param("{plugin: modelled}", {"threshold": 0.5}, id="args-model-default"),
    pytest.param("{plugin: open, args: {temperature: 2, anything: x, more: [1, 2]}}",
                 {"temperature": 2.0, "anything": "x", "more": [1, 2]}, id="kwargs-accepts-extra"),
])
def test_good_component_args_are_validated_and_passed(tmp_path: Path, reward: str, expected: dict[str, Any]) -> None:
    """Valid args come back validated (coerced, defaults filled) and are what the factory receives."""
    _, registry = fresh_registry(ArgsPlugin())
    loaded = load_recipe(write_rl_recipe(tmp_path, reward), registry)
    assert loaded.args["rl.rewards[0]"] == expected
    spec = loaded.recipe.rl.rewards[0]  # type: ignore[union-attr]
    component = build(registry, "rewards", spec, "rl.rewards[0]", loaded.base_dir)
    for key, value in expected.items():
        got = getattr(component, key) if hasattr(component, key) else component.extra[key]
        assert got == value


def test_a_failing_factory_is_an_error_naming_the_component(tmp_path: Path) -> None:
    """A factory that raises while starting is reported with the field path, the name and the plugin."""
    class Exploding:
        def __init__(self) -> None:
            raise RuntimeError("no GPU here")

    class Plugin:
        @hookimpl
        def register_rewards(self, register: Callable[..., None]) -> None:
            register("exploding", Exploding)

    _, registry = fresh_registry(Plugin())
    with pytest.raises(PluginError) as err:
        build(registry, "rewards", Component(plugin="exploding"), "rl.rewards[0]", tmp_path)
    msg = str(err.value)
    assert "rl.rewards[0]" in msg and "'exploding'" in msg and "Plugin" in msg and "no GPU here" in msg


# ---------------------------------------------------------------- the acceptance case: an installed plugin

def test_installed_plugin_is_listed_with_its_distribution(with_acme: None) -> None:
    """`fleming plugins --json` lists fleming-acme's components with the distribution and version."""
    proc = fleming_cli("plugins", "--json", env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    rows = {(c["kind"], c["name"]): c for c in json.loads(proc.stdout)["components"]}
    for kind, name in [("reward", "acme-brevity"), ("curriculum", "acme-reverse"), ("trainer", "acme-copy")]:
        assert rows[(kind, name)]["distribution"] == f"fleming-acme {md.version('fleming-acme')}"
        assert rows[(kind, name)]["plugin"] == "acme" and rows[(kind, name)]["module"] == "fleming_acme"


def test_fleming_plugins_names_the_module_behind_each_recipe_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recipe name leads to its code in one step, in the JSON and in the table."""
    from click.testing import CliRunner

    from fleming.cli import cli

    monkeypatch.setenv("FLEMING_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "300")
    got = CliRunner().invoke(cli, ["plugins", "--json"], catch_exceptions=False)
    assert got.exit_code == 0, got.output
    rows = {(c["kind"], c["name"]): c["module"] for c in json.loads(got.output)["components"]}
    assert rows[("curriculum", "hard-mining")] == "fleming.plugins.curricula.hard_mining"
    assert rows[("trainer", "openrlhf")] == "fleming.plugins.trainers.openrlhf.trainer"
    assert rows[("reward", "format")] == "fleming.plugins.rewards"
    for module in set(rows.values()):
        assert importlib.util.find_spec(module) is not None, module
    table = CliRunner().invoke(cli, ["plugins"], catch_exceptions=False).output
    assert any("hard-mining" in line and "fleming.plugins.curricula.hard_mining" in line
               for line in table.splitlines())


def test_recipe_using_an_installed_plugin_validates(tmp_path: Path, with_acme: None) -> None:
    """A recipe naming fleming-acme's trainer, reward and curriculum passes `fleming validate`."""
    recipe = write_rl_recipe(tmp_path, "{plugin: acme-brevity, args: {max_chars: 200}}", trainer="acme-copy",
                             curriculum="acme-reverse")
    proc = fleming_cli("validate", str(recipe), env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "rl-stage1" in proc.stdout


def test_build_component_builds_a_registered_component_as_a_recipe_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one public way to build a component outside a run (the OpenRLHF reward file rebuilds rewards so)."""
    from fleming import build_component

    monkeypatch.setenv("FLEMING_PLUGINS", "")
    reward = build_component("rewards", "format", {"weight": 0.5, "eos_tokens": ["[END]"]})
    assert reward(["Because. <answer>A</answer>[END]"], [{"options": {"A": "x", "B": "y"}, "answer": "A"}]) == [1.0]
    with pytest.raises(RecipeError, match=r"rl.rewards\[3\].args.eos_tokens"):
        build_component("rewards", "format", {"eos_tokens": 5}, where="rl.rewards[3]")
    with pytest.raises(UnknownComponentError, match="did you mean 'format'"):
        build_component("rewards", "fromat")
    with pytest.raises(PluginError, match="unknown component kind 'reward' "):
        build_component("reward", "format")
