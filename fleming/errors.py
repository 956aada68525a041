"""Every error fleming raises on purpose. The CLI prints them as one line (no traceback unless --debug)."""
from __future__ import annotations

from collections.abc import Sequence


class FlemingError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    def __str__(self) -> str:
        return " ".join(str(self.args[0] if self.args else "").split()) if self.args else ""


class RecipeError(FlemingError):
    """The recipe file cannot be read, or a field in it is wrong (the message names the field path)."""


class RecipeProblems(RecipeError):
    """A recipe has one or more problems, each one line naming the field (printed one per line)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = [" ".join(str(p).split()) for p in problems]
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class PluginError(FlemingError):
    """A plugin is broken: it failed to load, or two plugins register the same component name."""


class UnknownComponentError(RecipeError):
    """A recipe names a component that no loaded plugin registers (the message suggests close names)."""


class ModelError(FlemingError):
    """The `model:` field names nothing that can be loaded."""


class DataError(FlemingError):
    """A data file is missing or a row in it is malformed (the message names the file and line)."""


class StageError(FlemingError):
    """A pipeline stage cannot run, or failed while running (the message names the stage)."""


class MissingDependencyError(FlemingError):
    """An optional dependency is needed but not installed (the message names the extra to install)."""
