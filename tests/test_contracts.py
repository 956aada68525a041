"""The layout's contracts, read from the source with `ast`: the core knows no plugin, plugins talk only through
the public core, no function hides a fleming import, modules stay small, and every hook and optional component
method is loaded and documented."""
from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleming import hookspecs, protocols
from fleming.plugin_manager import DEFAULT_PLUGINS

REPO = Path(__file__).resolve().parents[1]
# source folder -> the package it is installed as
PACKAGES = {"fleming": "fleming", "plugins": "fleming.plugins", "tasks": "fleming.tasks",
            "leaderboard": "fleming.leaderboard"}
# what a plugin (built-in or third-party) may import from fleming: the public API listed in the README
PUBLIC = {"fleming", "fleming.answers", "fleming.audit", "fleming.context", "fleming.engines", "fleming.errors",
          "fleming.formats", "fleming.io", "fleming.items", "fleming.kg", "fleming.kg_index", "fleming.llm_calls",
          "fleming.prompts", "fleming.protocols", "fleming.review", "fleming.sampling", "fleming.suggest",
          "fleming.tasks", "fleming.types"}
MAX_LINES = 300
MAX_TOP_LEVEL_PLUGINS = 12


def module_name(path: Path) -> str:
    """The dotted name `path` is installed as."""
    rel = path.relative_to(REPO)
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:-1]]
    if rel.stem != "__init__":
        parts.append(rel.stem)
    return ".".join(parts)


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py") if "build" not in p.parts)


def is_package(name: str) -> bool:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None


def imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    """Every module `path` imports: (line, dotted name, inside a function). ``from a import b`` counts as
    ``a.b`` when ``b`` is a module, else as ``a`` (and as ``a._b`` for a private name ``_b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path).rsplit(".", 1)[0] if path.stem != "__init__" else module_name(path)

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[int, str, bool]]:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                yield from ((child.lineno, a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    base = ".".join([*parts[: len(parts) - child.level + 1], *([base] if base else [])])
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    yield child.lineno, full if private(alias.name) or is_package(full) else base, in_function
            yield from walk(child, nested)

    yield from walk(tree, False)


def fleming_imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    return ((line, name, fn) for line, name, fn in imports(path) if name == "fleming" or name.startswith("fleming."))


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


# ---------------------------------------------------------------- who imports whom

def test_the_core_imports_no_plugin() -> None:
    bad = [f"{where(p, line)} imports {name}" for p in sources("fleming", "tasks", "leaderboard")
           for line, name, _ in fleming_imports(p) if name.startswith("fleming.plugins")]
    assert not bad, "the core names a particular plugin:\n" + "\n".join(bad)


def private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def family(module: str) -> str | None:
    """A plugin module's family: its subpackage (``fleming.plugins.trainers.trl``); None for a module that sits
    directly in plugins/, which is a family of its own."""
    package = module.rsplit(".", 1)[0]
    return None if package == "fleming.plugins" else package


@pytest.mark.parametrize("path", sources("plugins"), ids=lambda p: str(p.relative_to(REPO)))
def test_a_plugin_imports_only_its_own_family_and_the_public_core(path: Path) -> None:
    own = family(module_name(path))
    bad = []
    for line, name, _ in fleming_imports(path):
        if name.startswith("fleming.plugins"):
            if own is None or not name.startswith(own + "."):
                bad.append(f"{where(path, line)} imports {name}, a module of another plugin")
        elif ".".join(name.split(".")[:2]) not in PUBLIC or any(private(part) for part in name.split(".")):
            bad.append(f"{where(path, line)} imports {name}, which is not the public API")
    assert not bad, "\n".join(bad)


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Every fleming module (core and plugins) -> the fleming modules it imports, at any depth of its code."""
    graph: dict[str, set[str]] = {}
    for path in sources("fleming", "plugins", "tasks", "leaderboard"):
        graph[module_name(path)] = {name for _, name, _ in fleming_imports(path)}
    return graph


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo += [n for n in graph.get(node, ()) if n in graph]
    return False


@pytest.mark.parametrize("path", sources("fleming", "plugins", "tasks", "leaderboard"),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_no_import_cycle_hides_inside_a_function(path: Path) -> None:
    """A fleming import inside a function must not close a cycle (the module it imports, or anything that one
    imports, importing this module back); a module may still be loaded lazily because it pulls in a heavy
    third-party package (the trl trainer's callbacks load transformers)."""
    graph, me = import_graph(), module_name(path)
    bad = [f"{where(path, line)} imports {name} inside a function, and {name} imports {me} back"
           for line, name, in_function in fleming_imports(path) if in_function and reaches(graph, name, me)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", sources("plugins"), ids=lambda p: str(p.relative_to(REPO)))
def test_a_plugin_imports_only_at_module_level_or_lazily_for_a_heavy_package(path: Path) -> None:
    """Inside a plugin, a fleming import in a function is allowed only for a helper of its own family that
    loads a heavy third-party package at import time (so ``fleming plugins`` stays fast)."""
    own = family(module_name(path))
    bad = []
    for line, name, in_function in fleming_imports(path):
        if not in_function:
            continue
        target = plugin_paths().get(name)
        heavy = target is not None and any(not fn and top in HEAVY for _, top, fn in third_party(target))
        if own is None or not name.startswith(own + ".") or not heavy:
            bad.append(f"{where(path, line)} imports {name} inside a function")
    assert not bad, "\n".join(bad)


@functools.cache
def plugin_paths() -> dict[str, Path]:
    return {module_name(p): p for p in sources("plugins")}


HEAVY = {"torch", "transformers", "trl", "peft", "datasets", "inspect_ai", "ray", "vllm", "openrlhf", "deepspeed"}


def third_party(path: Path) -> Iterator[tuple[int, str, bool]]:
    """The non-fleming packages `path` imports, by their top-level name."""
    return ((line, name.split(".")[0], fn) for line, name, fn in imports(path)
            if not (name == "fleming" or name.startswith("fleming.")))


# ---------------------------------------------------------------- layout and size

def test_few_modules_sit_directly_in_plugins() -> None:
    top = sorted(p.name for p in (REPO / "plugins").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_PLUGINS, f"{len(top)} modules directly in plugins/: {top}"


@pytest.mark.parametrize("path", sources("fleming", "plugins", "tasks", "leaderboard"),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_no_source_module_is_over_300_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines (split it by concern)"


def test_every_plugin_module_with_a_hookimpl_is_loaded_by_default() -> None:
    def has_hookimpl(path: Path) -> bool:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        return any(isinstance(d, (ast.Name, ast.Attribute)) and ast.unparse(d).split(".")[-1] == "hookimpl"
                   for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for d in node.decorator_list)

    with_hooks = {module_name(p) for p in sources("plugins") if has_hookimpl(p)}
    assert with_hooks, "no plugin module implements a hook: is the scan broken?"
    assert not with_hooks - set(DEFAULT_PLUGINS), "not in DEFAULT_PLUGINS: " + ", ".join(sorted(with_hooks -
                                                                                             set(DEFAULT_PLUGINS)))
    assert not set(DEFAULT_PLUGINS) - with_hooks, "DEFAULT_PLUGINS lists modules without a hook"


# ---------------------------------------------------------------- documented

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_hook_is_documented_in_the_readme() -> None:
    hooks = [n for n, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "fleming_spec")]
    assert len(hooks) >= 12
    missing = [h for h in hooks if f"`{h}`" not in README]
    assert not missing, f"hooks missing from README.md: {missing}"


def test_every_optional_component_method_is_documented_in_the_readme() -> None:
    methods = [name for proto in protocols.OPTIONAL for name in vars(proto)
               if not name.startswith("_") and inspect.isfunction(getattr(proto, name))]  # static methods too
    assert {"requirements", "preflight", "planned_commands", "unavailable"} <= set(methods)
    missing = [m for m in methods if f"`{m}(" not in README]
    assert not missing, f"optional component methods missing from README.md: {missing}"


def test_the_public_api_is_written_down() -> None:
    """The README's list of public modules is the one this file enforces, and each of them imports."""
    missing = [m for m in sorted(PUBLIC) if f"`{m}`" not in README]
    assert not missing, f"public modules missing from README.md: {missing}"
    assert all(is_package(m) for m in PUBLIC)


def test_registration_hooks_are_typed_with_the_documented_register_callback() -> None:
    specs = {n: fn for n, fn in vars(hookspecs).items() if inspect.isfunction(fn) and n.startswith("register_")}
    assert len(specs) == 10
    untyped = [n for n, fn in specs.items() if inspect.signature(fn).parameters["register"].annotation != "Register"]
    assert not untyped, f"register hooks not typed with hookspecs.Register: {untyped}"
    assert (inspect.getdoc(hookspecs.Register) or "").strip()
