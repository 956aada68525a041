"""What a real run of a recipe needs that this machine lacks, found without running or calling anything.

`check(loaded, registry)` returns one-line warnings, each starting with the recipe field it concerns:

* optional packages of the chosen trainers (``openrlhf``: ray to submit, OpenRLHF to check the command;
  ``trl`` with ``lora``: peft) and of the evaluation backend (``vllm``), with the install hint the plugins use;
* the Inspect model providers named by the ``model`` args of teachers and verifiers: their packages and
  environment variables (presence only: a value is never read into a message);
* data a real run fetches or reads: a base model or dataset that comes from the HF hub, the benchmark folder
  (``eval.data_dir`` / ``FLEMING_DATA_DIR``) and a file in it for every benchmark evaluated, the Ray address;
* ``${VAR:-default}`` references in the recipe whose variable is unset (the default is used).
"""
from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleming.errors import FlemingError
from fleming.models import ALIASES, HUB_ID
from fleming.providers import needs
from fleming.recipe import LoadedRecipe, read_recipe_data
from fleming.tasks._records import missing_data

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}")
OPENRLHF_HINT = "pip install --no-deps openrlhf==0.11.2"
_TRAINER_PACKAGES: dict[str, list[tuple[str, str, str]]] = {
    "openrlhf": [("ray", "it submits each job with `ray job submit`", "pip install 'fleming-med[openrlhf]'"),
                 ("openrlhf", "the commands are not checked against OpenRLHF's own parser here", OPENRLHF_HINT)],
    "trl": [("trl", "it trains with TRL", "pip install trl")],
}


def installed(module: str) -> bool:
    """True when `module` can be imported here (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def check(loaded: LoadedRecipe) -> list[str]:
    """Return the warnings for a validated recipe (see the module docstring); a warning that several fields
    share is given once, naming them all."""
    found = [*_env_defaults(loaded.path), *_model(loaded), *_trainers(loaded), *_providers(loaded),
             *_hub_datasets(loaded), *_evaluation(loaded)]
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


def _trainers(loaded: LoadedRecipe) -> Iterator[tuple[str, str]]:
    for kind, where, comp in loaded.recipe.components():
        if kind != "trainers":
            continue
        for module, why, hint in _TRAINER_PACKAGES.get(comp.plugin, []):
            if not installed(module):
                yield where, f"{module} is not installed ({why}): {hint}"
        args = loaded.args.get(where, comp.args)
        if comp.plugin == "trl" and args.get("lora") and not installed("peft"):
            yield where, "trainer 'trl' with lora: true needs peft: pip install peft"
        if comp.plugin == "openrlhf" and not args.get("address") and not os.environ.get("RAY_ADDRESS"):
            yield where, ("no Ray cluster named (args.address or RAY_ADDRESS): `ray job submit` will look for "
                          "one on this machine")


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


def _evaluation(loaded: LoadedRecipe) -> Iterator[tuple[str, str]]:
    ev = loaded.recipe.eval
    if ev is None:
        return
    if ev.backend == "vllm" and not installed("vllm"):
        yield "eval.backend", "the vllm evaluation backend needs vLLM: pip install 'fleming-med[vllm]' (GPU machines)"
    folder = ev.data_dir or os.environ.get("FLEMING_DATA_DIR")
    wanted = []  # (field, benchmark name, args) of every benchmark read from the benchmark folder
    for i, comp in enumerate(ev.benchmarks):
        args = loaded.args.get(f"eval.benchmarks[{i}]", comp.args)
        if not args.get("data_file"):
            wanted += [(f"eval.benchmarks[{i}]", name, args) for name in _benchmark_names(comp.plugin)]
    if wanted and not folder:
        names = ", ".join(name for _, name, _ in wanted)
        yield "eval", (f"no benchmark folder (eval.data_dir or FLEMING_DATA_DIR): {names} are read from the HF hub "
                       "(network)")
    elif folder:
        for where, name, args in wanted:
            if args.get("missing") == "skip":
                continue  # a suite told to leave out members without a file
            problem = missing_data(name, Path(os.path.expanduser(folder)), args.get("options"))
            if problem:
                yield where, f"{problem} (a real run stops there)"


def _benchmark_names(plugin: str) -> list[str]:
    """fleming's own benchmark names behind a benchmark plugin name (a suite expanded; none for others)."""
    from fleming.tasks import expand_benchmarks

    try:
        names = expand_benchmarks(plugin)
    except FlemingError:  # a third-party benchmark: its data is its own business
        return []
    return [n for n in names if n != "kg_heldout"]  # the run's own held-out items, made by the mix stage
