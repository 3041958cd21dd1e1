"""Turn pydantic's validation errors into problems a person can act on."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from builder.common.errors import Problem
from builder.format.strict_yaml import Document, Path_

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


_SHOWN_CHARS = 60  # longer texts are cut in messages
_LENGTH_ERRORS = {
    "too_short": ("at least", "min_length", "item"),
    "too_long": ("at most", "max_length", "item"),
    "string_too_short": ("at least", "min_length", "character"),
    "string_too_long": ("at most", "max_length", "character"),
}


def describe(value: Any) -> str:
    """Describe a parsed YAML value the way its author wrote it."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
        return (
            f"the text {shown!r} ({len(value)} characters)"
            if shown != value
            else (f"the text {value!r}")
        )
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__


def field_name(loc: Path_) -> str:
    """Render a location as `owners[0].keys[1]` or `dependencies.auth-jwt.version`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        shown = part if part.isprintable() else repr(part)
        text += f".{shown}" if text else shown
    return text


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional to the type a mapping or list holds."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            return annotation


def allowed_keys(model: type[BaseModel], loc: Path_) -> list[str]:
    """Return the field names of the model that stands at `loc` (for unknown-key hints)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _message(error: Any, doc: Document, model: type[BaseModel]) -> str:
    kind = error["type"]
    loc: Path_ = tuple(error["loc"])
    value = error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        known = allowed_keys(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown field (expected one of: {', '.join(known)}){did_you_mean}"
    if kind in _TYPE_WORDS:
        message = f"expected {_TYPE_WORDS[kind]}, got {describe(value)}"
        raw = doc.raw.get(loc)
        if kind == "string_type" and raw is not None:
            message += f' ({raw} was read as {value!r}; put it in quotes: "{raw}")'
        return message
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in _LENGTH_ERRORS:
        bound, key, unit = _LENGTH_ERRORS[kind]
        limit = error["ctx"][key]
        found = len(value) if hasattr(value, "__len__") else "?"
        return f"expected {bound} {limit} {unit}{'s' if limit != 1 else ''}, got {found}"
    text: str = error["msg"]
    text = text.removeprefix("Input should be ").removeprefix("Value should ")
    return f"expected {text}; got {describe(value)}"


def to_problems(
    error: ValidationError, model: type[BaseModel], doc: Document, shown: Path
) -> list[Problem]:
    """Return one problem per pydantic error, each with the line of its field."""
    problems = []
    for item in error.errors(include_url=False):
        loc: Path_ = tuple(item["loc"])
        if loc and loc[-1] == "[key]":  # the key of a mapping itself is wrong
            loc = loc[:-1]
        line = doc.line_of(loc)
        problems.append(Problem(shown, line, field_name(loc), _message(item, doc, model)))
    return problems
