"""What a real run of a recipe needs that this machine lacks, found without running or calling anything.

`check(loaded, registry)` returns one-line warnings, each starting with the recipe field it concerns:

* what each component of the recipe says it needs, through the optional methods of ``fleming.protocols``
  (built from its validated args; factories are cheap): the packages of ``requirements()`` that are not
  installed, with their install hints, and the warnings of ``preflight()`` (e.g. no Ray address);
* each named engine (the recipe's ``engine``, ``eval.engine``, a component's ``engine`` arg, or ``--engine``
  instead of them all) whose factory's ``unavailable()`` gives a reason it cannot run here (``auto`` never
  warns: it takes the first engine that can);
* the Inspect model providers named by the ``model`` args of teachers and verifiers: their packages and
  environment variables (presence only: a value is never read into a message);
* data a real run fetches or reads: a base model or dataset that comes from the HF hub, the benchmark folder
  (``eval.data_dir`` / ``FLEMING_DATA_DIR``) and a file in it for every benchmark evaluated;
* ``${VAR:-default}`` references in the recipe whose variable is unset (the default is used).
"""
from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleming.components import build_at
from fleming.engines import AUTO, unavailable
from fleming.errors import FlemingError
from fleming.models import ALIASES, HUB_ID
from fleming.plugin_manager import Registry
from fleming.protocols import HasPreflight, HasRequirements
from fleming.providers import needs
from fleming.recipe import LoadedRecipe, read_recipe_data

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}")


def installed(module: str) -> bool:
    """True when `module` can be imported here (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def check(loaded: LoadedRecipe, registry: Registry, engine_override: str | None = None) -> list[str]:
    """Return the warnings for a validated recipe (see the module docstring; `engine_override` is
    ``fleming run --engine``); a warning that several fields share is given once, naming them all."""
    found = [*_env_defaults(loaded.path), *_model(loaded), *_components(loaded, registry), *_providers(loaded),
             *_hub_datasets(loaded), *_engines(loaded, registry, engine_override), *_evaluation(loaded, registry)]
    fields: dict[str, list[str]] = {}
    for where, message in found:
        fields.setdefault(message, []).append(where)
    return [f"{', '.join(dict.fromkeys(wheres))}: {message}" for message, wheres in fields.items()]


def _env_defaults(path: Path) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for var, default in _env_refs(read_recipe_data(path)):
        if var not in seen and not os.environ.get(var):
            seen.add(var)
            yield "recipe", f"{var} is not set; its default '{default}' is used"


def _env_refs(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _env_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _env_refs(v)
    elif isinstance(value, str):
        yield from ((m.group(1), m.group(2)) for m in ENV_REF.finditer(value))


def _in_hub_cache(repo: str) -> bool:
    """True when the hub model `repo` has its config in the local HF cache (nothing is fetched)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


def _model(loaded: LoadedRecipe) -> Iterator[tuple[str, str]]:
    spec = loaded.recipe.model
    if spec in ALIASES or (loaded.base_dir / spec).exists() or Path(os.path.expanduser(spec)).exists():
        return
    if HUB_ID.match(spec) and not _in_hub_cache(spec):
        yield "model", (f"'{spec}' is not in the local HF cache: the model stage downloads it from the hub "
                        "(network; HF_TOKEN for a gated model)")


def _components(loaded: LoadedRecipe, registry: Registry) -> Iterator[tuple[str, str]]:
    for kind, where, spec in loaded.recipe.components():
        component = build_at(loaded, registry, kind, where, spec)
        if isinstance(component, HasRequirements):
            for req in component.requirements():
                if not installed(req.module):
                    yield where, f"{req.module} is not installed ({req.why}): {req.install}"
        if isinstance(component, HasPreflight):
            yield from ((where, warning) for warning in component.preflight())


def _providers(loaded: LoadedRecipe) -> Iterator[tuple[str, str]]:
    for kind, where, comp in loaded.recipe.components():
        model = loaded.args.get(where, comp.args).get("model")
        if kind not in ("teachers", "verifiers") or not isinstance(model, str) or "/" not in model:
            continue
        need = needs(model)
        for module, pip_name in need.packages:
            if not installed(module):
                yield where, f"model '{model}' needs the {pip_name} package: pip install {pip_name}"
        missing = [v for v in need.env if not os.environ.get(v)]
        if missing:
            yield where, f"model '{model}' reads {' and '.join(missing)} from the environment (not set)"


def _hub_datasets(loaded: LoadedRecipe) -> Iterator[tuple[str, str]]:
    for kind, where, comp in loaded.recipe.components():
        dataset = loaded.args.get(where, {}).get("dataset") if kind == "data_sources" else None
        if isinstance(dataset, str):
            yield where, f"dataset '{dataset}' is read from the HF hub (network, or the local HF cache)"


def engine_uses(loaded: LoadedRecipe) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield (field path, engine name, args) for every engine the recipe names: the run's, ``eval.engine`` and
    each component's ``engine`` arg (with its ``engine_args``) when set."""
    for where, choice in loaded.recipe.engines():
        yield where, choice.name, dict(choice.args)
    for _, where, comp in loaded.recipe.components():
        args = loaded.args.get(where, comp.args)
        if isinstance(args.get("engine"), str):
            yield f"{where}.args.engine", args["engine"], dict(args.get("engine_args") or {})


def _engines(loaded: LoadedRecipe, registry: Registry, override: str | None) -> Iterator[tuple[str, str]]:
    uses = [("--engine", override)] if override else [(where, name) for where, name, _ in engine_uses(loaded)]
    for where, name in uses:
        if name == AUTO:
            continue
        try:
            why = unavailable(name, registry)
        except FlemingError as exc:
            why = str(exc)
        if why:
            yield where, f"engine '{name}' cannot run here: {why}"


def _evaluation(loaded: LoadedRecipe, registry: Registry) -> Iterator[tuple[str, str]]:
    ev = loaded.recipe.eval
    if ev is None:
        return
    folder = ev.data_dir or os.environ.get("FLEMING_DATA_DIR")
    data_dir = Path(os.path.expanduser(folder)) if folder else None
    for i, spec in enumerate(ev.benchmarks):
        where = f"eval.benchmarks[{i}]"
        check_data = getattr(build_at(loaded, registry, "benchmarks", where, spec), "missing_data", None)
        if callable(check_data):  # the optional method of the Benchmark contract
            yield from ((where, problem) for problem in check_data(data_dir))
