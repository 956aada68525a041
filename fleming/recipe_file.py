"""Reading a recipe file: the safe YAML loader with bounded alias expansion, ``${VAR}`` expansion, and the
refusal of secrets (API keys are read by the providers from the environment, never from a recipe)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from fleming.errors import RecipeError

SECRET_KEY = re.compile(r"^(.*[_-])?(api[_-]?key|secret|password|passwd|token|access[_-]?key)$", re.I)
SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.I)
MAX_NODES = 100_000  # values a recipe may expand to through YAML aliases
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, where: str) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of `value`; a secret-looking or unset
    variable is an error naming the field."""
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
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


def check_no_secrets(value: Any, where: str) -> None:
    """Refuse a secret-looking key (``api_key``, ``token``, ...) that has a value anywhere in `value`."""
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            if isinstance(k, str) and SECRET_KEY.match(k) and v not in (None, ""):
                raise RecipeError(f"{path}: secrets are not allowed in a recipe; set them in the environment "
                                  "(e.g. OPENAI_API_KEY) where the provider reads them")
            check_no_secrets(v, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_no_secrets(v, f"{where}[{i}]")


class _RecipeLoader(yaml.SafeLoader):
    """The safe loader, refusing a document whose aliases expand to more than MAX_NODES nodes."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node)
        return node


def _expanded_size(root: yaml.Node) -> int:
    """Count the nodes `root` stands for once every alias is expanded (each shared node's size counted once)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise RecipeError("an alias refers to a node that contains it (a recursive structure)")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_NODES:
            raise RecipeError(f"aliases expand to more than {MAX_NODES:,} values (an alias bomb?); "
                              "a recipe is far smaller")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def read_recipe_data(path: Path) -> dict[str, Any]:
    """Read a recipe file with the safe YAML loader; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc}") from None
    try:
        data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{where}: invalid YAML: {problem}") from None
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    except RecursionError:
        raise RecipeError(f"{path}: the YAML is nested too deeply") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise RecipeError(f"{path}: a recipe must be a mapping (name:, model:, data:, ...), got {got}")
    return data
