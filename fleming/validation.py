"""One-line messages for pydantic validation errors, naming the field path (``rl.stages[1].rollouts``).

A model may list fields that are gone in a ``replaced_fields`` class variable (field -> what to write instead,
``{value}`` standing for the value given); such a field is an error saying so, not an unknown field.
"""
from __future__ import annotations

import difflib
import types
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
    if origin in (typing.Union, types.UnionType):
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


def _as_model(tp: Any) -> Any:
    """The pydantic model class `tp` stands for (``Eval | None`` -> ``Eval``), or None."""
    if typing.get_origin(tp) is typing.Annotated:
        return _as_model(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        models = [m for m in map(_as_model, typing.get_args(tp)) if m is not None]
        return models[0] if len(models) == 1 else None
    return tp if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel) else None


def _is_union(tp: Any) -> bool:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return False
    return sum(a is not type(None) for a in typing.get_args(tp)) > 1


def _field_key(model: Any, loc: Sequence[Any]) -> tuple[Any, ...]:
    """The part of `loc` that names a field: a union's member tag and what follows it are cut off, so the
    union's failed alternatives count as one problem."""
    if model is None:
        return tuple(loc)
    for i in range(len(loc)):
        if isinstance(loc[i], str) and _is_union(_model_at(model, loc[:i])):
            return tuple(loc[:i])
    return tuple(loc)


def _one(error: Any, loc: Sequence[Any], prefix: str, model: Any) -> str:
    path = field_path(loc, prefix)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _as_model(_model_at(model, loc[:-1])) if model is not None else None
        is_model = parent is not None
        replaced = getattr(parent, "replaced_fields", {}) if is_model else {}
        if str(loc[-1]) in replaced:  # a field that is gone: say what took its place
            return f"{path}: " + replaced[str(loc[-1])].format(value=error.get("input"))
        known = list(parent.model_fields) if is_model else []
        return f"{path}: unknown field" + (did_you_mean(str(loc[-1]), known) if known else "")
    if kind == "missing":
        return f"{path}: required field is missing"
    value = error.get("input")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    text = error["msg"]
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
    if text.startswith(path):  # a validator's message that names the field itself (e.g. ``engine.args: ...``)
        return text
    return f"{path}: {text}" + ("" if isinstance(value, (dict, list)) else f" (got {shown})")


def validation_problems(exc: pydantic.ValidationError, prefix: str = "", model: Any = None) -> list[str]:
    """Return one line per problem of a pydantic error, each naming its field path."""
    errors = exc.errors(include_url=False)
    typos = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
    lines: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    for error in errors:
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        if error["type"] == "missing" and any(  # a misspelt field also makes the intended one missing
                t[:-1] == error["loc"][:-1] and difflib.get_close_matches(str(t[-1]), [str(loc[-1])], cutoff=0.6)
                for t in typos):
            continue
        key = _field_key(model, loc)
        if key in seen:
            continue
        seen.add(key)
        lines.append(_one(error, loc, prefix, model))
    return lines or [f"{prefix or '(top level)'}: invalid"]


def is_number_type(tp: Any) -> bool:
    """Whether annotation `tp` only admits numbers (``int``, ``float | None``, ``PositiveInt``), not booleans."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return bool(members) and all(is_number_type(a) for a in members)
    return isinstance(tp, type) and issubclass(tp, (int, float)) and not issubclass(tp, bool)


def _refuse_boolean_numbers(cls: type[pydantic.BaseModel], value: Any, info: pydantic.ValidationInfo) -> Any:
    field = cls.model_fields.get(info.field_name or "")
    if isinstance(value, bool) and field is not None and is_number_type(field.annotation):
        raise ValueError("expected a number, not a boolean")
    return value


def boolean_guard() -> Any:
    """A field validator for a model's namespace: a boolean given to a number field is an error (pydantic
    would read ``true`` as 1)."""
    return pydantic.field_validator("*", mode="before")(_refuse_boolean_numbers)


def bool_coercions(data: Any, value: Any, prefix: str = "") -> list[str]:
    """Return a problem per place where a boolean in `data` became a number in the validated `value`
    (pydantic turns ``true`` into 1; a recipe's ``true`` is never an integer)."""
    if isinstance(data, bool):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            want = "an integer" if isinstance(value, int) else "a number"
            return [f"{prefix or '(top level)'}: expected {want}, not a boolean (got {data})"]
        return []
    found: list[str] = []
    if isinstance(data, dict):
        if isinstance(value, pydantic.BaseModel):
            fields = type(value).model_fields
            pairs = [(k, getattr(value, name)) for name, f in fields.items()
                     for k in [f.alias or name] if k in data]
            pairs += [(k, v) for k, v in (value.model_extra or {}).items() if k in data]
        elif isinstance(value, dict):
            pairs = [(k, value[k]) for k in data if k in value]
        else:
            return []
        for k, v in pairs:
            found += bool_coercions(data[k], v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(data, list) and isinstance(value, (list, tuple)) and len(data) == len(value):
        for i, (d, v) in enumerate(zip(data, value)):
            found += bool_coercions(d, v, f"{prefix}[{i}]")
    return found
