"""fleming: build verifiable medical reasoning models (the Fleming-R1 recipe as plugins).

The public API for plugin authors: ``hookimpl`` to implement hooks, the value types, the
``StageContext`` every component method receives, ``build_component``, and the component contracts in
``fleming.protocols``. The public modules (listed in the README's "Writing a plugin"): ``fleming.answers``,
``fleming.audit``, ``fleming.context``, ``fleming.engines``, ``fleming.errors``, ``fleming.formats``,
``fleming.io``, ``fleming.items``, ``fleming.kg``, ``fleming.kg_index``, ``fleming.llm_calls``,
``fleming.prompts``, ``fleming.protocols``, ``fleming.review``, ``fleming.sampling``, ``fleming.suggest``,
``fleming.tasks`` and ``fleming.types``; everything else is internal.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fleming.context import RunInfo, StageContext
from fleming.hookspecs import hookimpl
from fleming.paths import DataPath, ExistingPath
from fleming.types import Checkpoint, QAItem, Rejected, Verdict

__version__ = "0.1.0"
__all__ = ["Checkpoint", "DataPath", "ExistingPath", "QAItem", "Rejected", "RunInfo", "StageContext", "Verdict",
           "__version__", "build_component", "hookimpl"]


def build_component(kind: str, plugin: str, args: dict[str, Any] | None = None, base_dir: Path | None = None,
                    where: str | None = None) -> Any:
    """Build the component registered as `plugin` of `kind` (``"rewards"``, ``"trainers"``, ...) with every
    installed plugin loaded, its `args` validated as a recipe's are (relative paths from `base_dir`, default
    the current folder; a reward's ``weight`` is left out). `where` names it in errors."""
    from fleming.components import build_named
    from fleming.errors import PluginError
    from fleming.plugin_manager import KINDS, load_registry

    if kind not in KINDS:
        raise PluginError(f"unknown component kind '{kind}' (known: {', '.join(KINDS)})")
    where = where or f"{kind}.{plugin}"
    _, registry = load_registry()
    return build_named(registry, kind, plugin, args or {}, where, base_dir or Path.cwd())
