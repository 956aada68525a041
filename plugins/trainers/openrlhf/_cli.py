"""Checking an OpenRLHF command line with OpenRLHF's own argument parser and checks, without its GPU stack.

The CLI modules build their parser under ``if __name__ == "__main__":`` and import ray, deepspeed and
vLLM at the top, so the parser cannot be imported on a machine without them. This runs that block
itself (from the installed package's source) with ``train`` replaced by a function that keeps the parsed
arguments: the flags, their types and choices, and OpenRLHF's own consistency checks are the real ones.
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fleming.errors import MissingDependencyError, StageError
from fleming.plugins.trainers.openrlhf._config import OPENRLHF_HINT


def _main_block(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise MissingDependencyError(f"{module} is not installed: {OPENRLHF_HINT}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return ast.Module(body=node.body, type_ignores=[])
    raise StageError(f"{spec.origin}: no __main__ block with an argument parser (an OpenRLHF version fleming "
                     "does not know)")


@contextlib.contextmanager
def _light_utils() -> Iterator[None]:
    """Let ``openrlhf.utils.config`` import without running ``openrlhf.utils/__init__`` (which pulls in
    math and GPU helpers the parser does not use)."""
    if "openrlhf.utils" in sys.modules:
        yield
        return
    spec = importlib.util.find_spec("openrlhf")
    assert spec is not None and spec.submodule_search_locations
    pkg = types.ModuleType("openrlhf.utils")
    pkg.__path__ = [str(Path(list(spec.submodule_search_locations)[0]) / "utils")]
    sys.modules["openrlhf.utils"] = pkg
    try:
        yield
    finally:
        for name in [n for n in sys.modules if n == "openrlhf.utils" or n.startswith("openrlhf.utils.")]:
            del sys.modules[name]


def parse_openrlhf_args(module: str, argv: Sequence[str]) -> Any:
    """Parse `argv` as ``python -m <module>`` would, returning the hierarchical args; a bad flag or a failed
    OpenRLHF check raises StageError with OpenRLHF's own message."""
    import argparse
    import os
    from datetime import datetime

    got: dict[str, Any] = {}
    scope: dict[str, Any] = {"argparse": argparse, "os": os, "datetime": datetime, "__name__": "__main__",
                             "train": lambda args: got.setdefault("args", args)}
    code = compile(_main_block(module), f"<{module} __main__>", "exec")
    err = io.StringIO()
    old_argv = sys.argv
    sys.argv = [module, *argv]
    try:
        with _light_utils(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            exec(code, scope)  # noqa: S102 - OpenRLHF's own parser code from the installed package
    except SystemExit:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        raise StageError(f"{module} rejects the command: {lines[-1] if lines else 'argument error'}") from None
    except AssertionError as exc:
        raise StageError(f"{module} rejects the command: {exc}") from None
    finally:
        sys.argv = old_argv
    return got["args"]
