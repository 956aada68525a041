"""The recipe: a YAML file, validated completely before anything runs.

Every component is ``{plugin: NAME, args: {...}}`` (a bare ``NAME`` is accepted too); its args are
validated by the component's own model. ``${VAR}`` and ``${VAR:-default}`` in strings expand from the
environment, except variables that look like secrets: API keys are read by the providers from the
environment and never pass through a recipe, so they can never reach a manifest or a log.
Relative paths in component args are read relative to the recipe's folder. ``engine`` (and ``eval.engine``)
chooses the generation engine: ``auto``, a name, or ``{name, args}`` (see ``fleming.engines``).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, NonNegativeInt, PositiveInt

from fleming.components import build_named, instantiate, split_weight, validate_args
from fleming.engines import AUTO, EngineChoice
from fleming.errors import FlemingError, RecipeError, RecipeProblems, UnknownComponentError
from fleming.models import check_model_spec
from fleming.recipe_file import check_no_secrets, expand_env, read_recipe_data
from fleming.validation import bool_coercions, boolean_guard, validation_problems

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _engine_at(where: str) -> BeforeValidator:
    """A validator reading an engine choice (``EngineChoice.parse``); its message names field `where`."""

    def parse(value: Any) -> EngineChoice | None:
        if value is None and where != "engine":
            return None  # a use without its own engine: the run's engine
        try:
            return EngineChoice.parse(value, where)
        except RecipeError as exc:
            raise ValueError(str(exc)) from None

    return BeforeValidator(parse)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    _no_boolean_numbers = boolean_guard()


class Component(_Strict):
    """A component chosen by plugin name, with its arguments."""

    plugin: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"plugin": value} if isinstance(value, str) else value


class Mix(_Strict):
    """How collected and synthesised items are mixed and split (the splits: ``fleming.splits``):
    ``heldout_fraction`` of the diagnoses held out unseen, ``dev_fraction`` of them a dev split of their own,
    ``known_fraction`` of the trained diagnoses' KG items held out as new questions about them."""

    synthetic_fraction: float | None = Field(default=None, ge=0, le=1)
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1)
    dev_fraction: float = Field(default=0.0, ge=0, lt=1)
    known_fraction: float = Field(default=0.0, ge=0, lt=1)
    difficulty_quotas: dict[Literal["easy", "moderate", "difficult"], float] | None = None

    @pydantic.field_validator("dev_fraction")
    @classmethod
    def _diagnoses_left_to_train(cls, value: float, info: pydantic.ValidationInfo) -> float:
        held = info.data.get("heldout_fraction")
        if held is not None and held + value >= 1:
            raise ValueError(f"heldout_fraction + dev_fraction must be below 1 (heldout_fraction is {held}): no "
                             "diagnosis would be left to train on")
        return value


class Data(_Strict):
    """The data stages: collect, synthesize, filter, verify, annotate, mix."""

    sources: list[Component] = Field(default_factory=list)
    synthesize: list[Component] = Field(default_factory=list)
    filters: list[Component] = Field(default_factory=list)
    verify: list[Component] = Field(default_factory=list)
    annotate: list[Component] = Field(default_factory=list)
    mix: Mix | None = None


class ColdStart(_Strict):
    """Chain-of-thought cold start: a teacher writes rationales, a trainer fine-tunes on them."""

    teacher: Component
    trainer: Component


class RLStage(_Strict):
    """One GRPO stage with its curriculum and rollouts per prompt."""

    name: str = Field(pattern=NAME_PATTERN)
    curriculum: Component
    rollouts: PositiveInt = 8
    max_steps: PositiveInt | None = None


class RL(_Strict):
    """Reinforcement learning with verifiable rewards, in one or more stages."""

    trainer: Component
    rewards: list[Component] = Field(min_length=1)
    stages: list[RLStage] = Field(min_length=1)

    @pydantic.field_validator("stages")
    @classmethod
    def _unique_names(cls, stages: list[RLStage]) -> list[RLStage]:
        seen: set[str] = set()
        for i, stage in enumerate(stages):
            if stage.name in seen:
                raise ValueError(f"duplicate stage name '{stage.name}' (stages[{i}])")
            seen.add(stage.name)
        return stages


class Eval(_Strict):
    """Which benchmarks evaluate the base model and every checkpoint."""

    replaced_fields: ClassVar[dict[str, str]] = {
        "backend": "replaced by eval.engine (hf | openvino | vllm | auto); write engine: {value}"}

    benchmarks: list[Component] = Field(min_length=1)
    limit: PositiveInt | None = None
    engine: Annotated[EngineChoice | None, _engine_at("eval.engine")] = None  # None: the run's engine
    data_dir: str | None = None  # folder of uniform JSONL benchmark files; default $FLEMING_DATA_DIR
    max_tokens: PositiveInt | None = None  # generation budget per answer (default: each task's own)
    checkpoints: Literal["all", "final"] = "all"  # every saved checkpoint, or each stage's last one only
    batch_size: PositiveInt | None = None  # answers generated together (Inspect's max_connections; hf default 32)


class Leaderboard(_Strict):
    """The static HTML leaderboard built from the run's evaluation logs."""

    title: str = "fleming leaderboard"


class Recipe(_Strict):
    """A whole run: the base model, the data, training and evaluation."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    seed: NonNegativeInt = 0
    model: str = Field(min_length=1)
    engine: Annotated[EngineChoice, _engine_at("engine")] = EngineChoice()
    data: Data = Field(default_factory=Data)
    cold_start: ColdStart | None = None
    rl: RL | None = None
    eval: Eval | None = None
    leaderboard: Leaderboard | None = None

    def components(self) -> Iterator[tuple[str, str, Component]]:
        """Yield (kind, field path, component) for every component the recipe names."""
        kinds = {"sources": "data_sources", "synthesize": "synthesizers", "filters": "filters",
                 "verify": "verifiers", "annotate": "verifiers"}
        for field_name, kind in kinds.items():
            for i, comp in enumerate(getattr(self.data, field_name)):
                yield kind, f"data.{field_name}[{i}]", comp
        if self.cold_start:
            yield "teachers", "cold_start.teacher", self.cold_start.teacher
            yield "trainers", "cold_start.trainer", self.cold_start.trainer
        if self.rl:
            yield "trainers", "rl.trainer", self.rl.trainer
            for i, comp in enumerate(self.rl.rewards):
                yield "rewards", f"rl.rewards[{i}]", comp
            for i, stage in enumerate(self.rl.stages):
                yield "curricula", f"rl.stages[{i}].curriculum", stage.curriculum
        if self.eval:
            for i, comp in enumerate(self.eval.benchmarks):
                yield "benchmarks", f"eval.benchmarks[{i}]", comp

    def engines(self) -> Iterator[tuple[str, EngineChoice]]:
        """Yield (field path, choice) for the run's engine and every use's own engine the recipe sets."""
        yield "engine", self.engine
        if self.eval and self.eval.engine is not None:
            yield "eval.engine", self.eval.engine


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe, where it came from, and each component's validated args by field path."""

    recipe: Recipe
    path: Path
    args: dict[str, dict[str, Any]]

    @property
    def base_dir(self) -> Path:
        """The recipe's folder: relative paths in it are read from here."""
        return self.path.parent


Problem = tuple[type[FlemingError], str]  # the error class a lone problem is raised as, and its line


def _component_problems(recipe: Recipe, registry: Any, base_dir: Path,
                        loaded_args: dict[str, dict[str, Any]]) -> list[Problem]:
    """Resolve, validate and build every component; return each problem (validated args go to `loaded_args`).
    Building calls each factory, so a factory's own checks fail here, not mid-run."""
    problems: list[Problem] = []
    try:
        check_model_spec(recipe.model, base_dir=base_dir)
    except FlemingError as exc:
        problems.append((RecipeError, f"model: {exc}"))
    for kind, where, comp in recipe.components():
        try:
            reg = registry.get(kind, comp.plugin)
            args, _ = split_weight(kind, dict(comp.args), where)
            loaded_args[where] = validate_args(reg, args, where, base_dir)
            instantiate(reg, loaded_args[where], where)
        except RecipeProblems as exc:
            problems += [(RecipeError, line) for line in exc.problems]
        except FlemingError as exc:
            msg = str(exc)
            problems.append((type(exc), msg if msg.startswith(where) else f"{where}.plugin: {msg}"))
    return problems + _engine_problems(recipe, registry, base_dir)


def _engine_problems(recipe: Recipe, registry: Any, base_dir: Path) -> list[Problem]:
    """Check that every named engine is registered and build it with its args (``auto`` is resolved at run
    start, not here: what this machine can run is a preflight warning, not a recipe error)."""
    problems: list[Problem] = []
    for where, choice in recipe.engines():
        if choice.name == AUTO:
            continue
        try:
            build_named(registry, "engines", choice.name, choice.args, where, base_dir)
        except RecipeProblems as exc:
            problems += [(RecipeError, line) for line in exc.problems]
        except UnknownComponentError as exc:
            problems.append((RecipeError, f"{where}: {exc}"))
        except FlemingError as exc:
            problems.append((type(exc), str(exc)))
    return problems


def load_recipe(path: str | Path, registry: Any = None) -> LoadedRecipe:
    """Read and validate a recipe; with a registry, also resolve and build every component. Every problem
    found is reported, one line each, naming the recipe file and the field."""
    path = Path(path)
    data = read_recipe_data(path)
    try:
        check_no_secrets(data, "")
        data = expand_env(data, "")
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    try:
        recipe = Recipe.model_validate(data)
    except pydantic.ValidationError as exc:
        raise RecipeProblems([f"{path}: {p}" for p in validation_problems(exc, model=Recipe)]) from None
    problems: list[Problem] = [(RecipeError, line) for line in bool_coercions(data, recipe)]
    loaded_args: dict[str, dict[str, Any]] = {}
    if registry is not None:
        problems += _component_problems(recipe, registry, path.parent, loaded_args)
    if len(problems) == 1:
        kind, line = problems[0]
        raise kind(f"{path}: {line}")
    if problems:
        raise RecipeProblems([f"{path}: {line}" for _, line in problems])
    return LoadedRecipe(recipe=recipe, path=path.resolve(), args=loaded_args)
