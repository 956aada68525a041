"""Jinja2 prompt templates (teacher CoT, refinement, label check, difficulty, evaluation, KG vignettes).

Templates are files ``<name>.jinja`` in this package. ``render(name, **values)`` fills one in;
``FLEMING_PROMPTS_DIR`` names a folder whose templates override the built-in ones of the same name.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import jinja2

__all__ = ["render", "environment", "template"]


@lru_cache(maxsize=4)
def _environment(override: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override:
        loaders.append(jinja2.FileSystemLoader(override))
    loaders.append(jinja2.PackageLoader("fleming.prompts", ""))
    return jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def environment() -> jinja2.Environment:
    """Return the prompt environment (built-in templates, overridable through FLEMING_PROMPTS_DIR)."""
    return _environment(os.environ.get("FLEMING_PROMPTS_DIR") or None)


def template(name: str) -> jinja2.Template:
    """Return the template ``<name>.jinja``."""
    return environment().get_template(name if name.endswith(".jinja") else f"{name}.jinja")


def render(name: str, **values: Any) -> str:
    """Render the template ``<name>.jinja`` with ``values`` (a missing value is an error) and strip it."""
    return template(name).render(**values).strip()
