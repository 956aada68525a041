"""The recipe: a YAML file, validated completely before anything runs.

Every component is ``{plugin: NAME, args: {...}}`` (a bare ``NAME`` is accepted too); its args are
validated by the component's own model. ``${VAR}`` and ``${VAR:-default}`` in strings expand from the
environment, except variables that look like secrets: API keys are read by the providers from the
environment and never pass through a recipe, so they can never reach a manifest or a log.
Relative paths in component args are read relative to the recipe's folder.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from fleming.errors import FlemingError, RecipeError
from fleming.validation import format_validation_error

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SECRET_KEY = re.compile(r"^(.*[_-])?(api[_-]?key|secret|password|passwd|token|access[_-]?key)$", re.I)
SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.I)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Strict):
    """A component chosen by plugin name, with its arguments."""

    plugin: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"plugin": value} if isinstance(value, str) else value


class Mix(_Strict):
    """How collected and synthesised items are mixed and split."""

    synthetic_fraction: float | None = Field(default=None, ge=0, le=1)
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1)
    difficulty_quotas: dict[Literal["easy", "moderate", "difficult"], float] | None = None


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

    benchmarks: list[Component] = Field(min_length=1)
    limit: PositiveInt | None = None
    backend: Literal["hf", "vllm"] = "hf"
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


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if SECRET_ENV.search(var):
            raise RecipeError(f"{where}: ${{{var}}} looks like a secret; secrets are read from the environment "
                              "by the component that needs them and never go into a recipe")
        got = os.environ.get(var, default)
        if got is None:
            raise RecipeError(f"{where}: environment variable {var} is not set (write ${{{var}:-default}} "
                              "for a fallback)")
        return got

    return _ENV_REF.sub(sub, value)


def _check_no_secrets(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            if isinstance(k, str) and SECRET_KEY.match(k) and v not in (None, ""):
                raise RecipeError(f"{path}: secrets are not allowed in a recipe; set them in the environment "
                                  "(e.g. OPENAI_API_KEY) where the provider reads them")
            _check_no_secrets(v, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_no_secrets(v, f"{where}[{i}]")


def read_recipe_data(path: Path) -> dict[str, Any]:
    """Read a recipe file with the safe YAML loader; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise RecipeError(f"{path}: a recipe must be a mapping (name:, model:, data:, ...), got {got}")
    return data


def load_recipe(path: str | Path, registry: Any = None) -> LoadedRecipe:
    """Read and validate a recipe; with a registry, also resolve every component and validate its args."""
    path = Path(path)
    data = read_recipe_data(path)
    try:
        _check_no_secrets(data, "")
        data = _expand(data, "")
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    try:
        recipe = Recipe.model_validate(data)
    except pydantic.ValidationError as exc:
        raise RecipeError(f"{path}: {format_validation_error(exc, model=Recipe)}") from None
    loaded_args: dict[str, dict[str, Any]] = {}
    if registry is not None:
        from fleming.components import split_weight, validate_args
        from fleming.models import check_model_spec

        try:
            check_model_spec(recipe.model, base_dir=path.parent)
        except FlemingError as exc:
            raise RecipeError(f"{path}: model: {exc}") from None
        for kind, where, comp in recipe.components():
            try:
                reg = registry.get(kind, comp.plugin)
                args, _ = split_weight(kind, dict(comp.args), where)
                loaded_args[where] = validate_args(reg, args, where, path.parent)
            except RecipeError as exc:
                msg = str(exc)
                msg = msg if msg.startswith(where) else f"{where}.plugin: {msg}"
                raise type(exc)(f"{path}: {msg}") from None
    return LoadedRecipe(recipe=recipe, path=path.resolve(), args=loaded_args)
