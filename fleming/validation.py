"""One-line messages for pydantic validation errors, naming the field path (``rl.stages[1].rollouts``)."""
from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

import pydantic

from fleming.suggest import did_you_mean


def field_path(loc: Sequence[Any], prefix: str = "") -> str:
    """Render a pydantic error location as ``a.b[1].c``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_at(model: Any, loc: Sequence[Any]) -> Any:
    """Walk pydantic model annotations along `loc`; return the model class there, or None."""
    current = model
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return None
    return current


def _unwrap(tp: Any, part: Any) -> Any:
    if isinstance(part, str) and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        f = tp.model_fields.get(part)
        return f.annotation if f is not None else None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for a in args:
            if a is type(None):
                continue
            got = _unwrap(a, part)
            if got is not None:
                return got
        return None
    if origin in (list, tuple, Sequence) and isinstance(part, int):
        return args[0] if args else None
    if origin is typing.Annotated:
        return _unwrap(args[0], part)
    if origin is dict and isinstance(part, str):
        return args[1] if len(args) == 2 else None
    return None


def format_validation_error(exc: pydantic.ValidationError, prefix: str = "", model: Any = None) -> str:
    """Return ONE line for a pydantic error: the first problem with its field path, plus a count of others."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "missing":  # a misspelt field also makes the intended one "missing": name the typo
        first = next((e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == first["loc"][:-1]),
                     first)
    loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    path = field_path(loc, prefix)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1]) if model is not None else None
        known = list(parent.model_fields) if isinstance(parent, type) and issubclass(parent, pydantic.BaseModel) else []
        msg = f"{path}: unknown field" + (did_you_mean(str(loc[-1]), known) if known else "")
    elif kind == "missing":
        msg = f"{path}: required field is missing"
    else:
        value = first.get("input")
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        text = first["msg"]
        if text.startswith("Value error, "):
            text = text[len("Value error, "):]
        msg = f"{path}: {text}" + ("" if isinstance(value, (dict, list)) else f" (got {shown})")
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return msg
