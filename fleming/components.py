"""Turning a recipe's ``{plugin, args}`` into a component: validate the args, then call the factory.

A factory declares its arguments in one of two ways:

* an ``Args`` attribute that is a pydantic model (full control: validators, constraints), or
* plain annotated keyword parameters (``def __init__(self, weight: float = 1.0)``), from which a
  pydantic model is built.

Unknown arguments are errors either way (with "did you mean" suggestions), unless the factory takes
``**kwargs``. Relative paths in arguments are read relative to the recipe's folder (see
``fleming.paths``).
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from fleming.errors import PluginError, RecipeError, RecipeProblems
from fleming.plugin_manager import KINDS, Registration, Registry
from fleming.validation import bool_coercions, boolean_guard, validation_problems

if TYPE_CHECKING:
    from fleming.recipe import LoadedRecipe


@lru_cache(maxsize=None)
def args_model(factory: Any) -> type[pydantic.BaseModel]:
    """Return the pydantic model that validates `factory`'s recipe args."""
    declared = getattr(factory, "Args", None)
    if isinstance(declared, type) and issubclass(declared, pydantic.BaseModel):
        namespace: dict[str, Any] = {"__module__": declared.__module__, "_no_boolean_numbers": boolean_guard()}
        if declared.model_config.get("extra") is None:
            # pydantic ignores unknown fields by default; a recipe typo must be an error, not dropped
            namespace["model_config"] = pydantic.ConfigDict(extra="forbid")
        return type(declared.__name__, (declared,), namespace)
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"cannot read the arguments of component factory {factory!r}: {exc}") from exc
    fields: dict[str, Any] = {}
    extra = "forbid"
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            extra = "allow"
            continue
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        annotation = Any if p.annotation is p.empty else p.annotation
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (annotation, default)
    hints = _resolved_hints(factory)
    for name, (ann, default) in list(fields.items()):
        if name in hints:
            fields[name] = (hints[name], default)
    name = getattr(factory, "__name__", "Component") + "Args"
    return pydantic.create_model(  # type: ignore[call-overload]
        name, __config__=pydantic.ConfigDict(extra=extra, arbitrary_types_allowed=True),
        __validators__={"_no_boolean_numbers": boolean_guard()}, **fields
    )


def _resolved_hints(factory: Any) -> dict[str, Any]:
    """Resolve string annotations (``from __future__ import annotations``) of the factory's parameters."""
    import typing

    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:
        return {}


def split_weight(kind: str, args: dict[str, Any], where: str) -> tuple[dict[str, Any], float]:
    """Take a reward's ``weight`` out of its args (fleming applies it); other kinds keep their args."""
    if kind != "rewards" or "weight" not in args:
        return args, 1.0
    rest = dict(args)
    weight = rest.pop("weight")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise RecipeError(f"{where}.args.weight: a reward weight must be a number (got {weight!r})")
    return rest, float(weight)


def validate_args(reg: Registration, args: dict[str, Any], where: str, base_dir: Path,
                  prefix: str | None = None) -> dict[str, Any]:
    """Validate a component's args; each problem is one line naming ``<prefix>.<field>`` (the prefix defaults
    to ``where.args``, the recipe field)."""
    model = args_model(reg.factory)
    prefix = f"{where}.args" if prefix is None else prefix
    try:
        validated = model.model_validate(args, context={"base_dir": base_dir})
    except pydantic.ValidationError as exc:
        raise RecipeProblems(validation_problems(exc, prefix=prefix, model=model)) from None
    problems = bool_coercions(args, validated, prefix)
    if problems:
        raise RecipeProblems(problems)
    out = {k: getattr(validated, k) for k in type(validated).model_fields}
    out.update(validated.model_extra or {})
    return out


def instantiate(reg: Registration, kwargs: dict[str, Any], where: str) -> Any:
    """Call a component's factory with already validated args; a failure names the field path and plugin."""
    try:
        return reg.factory(**kwargs)
    except Exception as exc:
        raise PluginError(
            f"{where}: {KINDS[reg.kind]} '{reg.name}' "
            f"(plugin '{reg.plugin}') failed to start: {type(exc).__name__}: {exc}"
        ) from exc


def build(registry: Registry, kind: str, spec: Any, where: str, base_dir: Path) -> Any:
    """Validate a recipe spec's args (``spec.plugin`` + ``spec.args``), then instantiate the component."""
    return build_named(registry, kind, spec.plugin, spec.args, where, base_dir)


def build_named(registry: Registry, kind: str, plugin: str, args: Mapping[str, Any], where: str,
                base_dir: Path) -> Any:
    """Validate `args` of component `plugin` of `kind` (a reward's ``weight`` left out), then instantiate it."""
    reg = registry.get(kind, plugin)
    rest, _ = split_weight(kind, dict(args), where)
    return instantiate(reg, validate_args(reg, rest, where, base_dir), where)


def build_at(loaded: LoadedRecipe, registry: Registry, kind: str, where: str, spec: Any) -> Any:
    """Build the component at recipe field `where`, reusing the args the recipe loader validated."""
    validated = loaded.args.get(where)
    if validated is None:
        return build(registry, kind, spec, where, loaded.base_dir)
    return instantiate(registry.get(kind, spec.plugin), validated, where)
