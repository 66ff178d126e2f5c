"""Turn pydantic validation errors into located, readable problems."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from autumn_sync.config.format import ID_RULE
from autumn_sync.config.problems import Problem
from autumn_sync.config.yamlfile import Marks, Path


def problems_from(
    error: ValidationError,
    data: Any,
    root: type[BaseModel],
    marks: Marks,
    prefix: Path = (),
) -> list[Problem]:
    """Located problems for pydantic's errors on `data` (found at `prefix` in the file).

    When a value matches none of a union's members, pydantic reports one error per member;
    only those of the member shaped like the value are kept (a mapping is not told it should
    have been a string), and the rest at one place are merged into one message.
    """
    details = _relevant(error.errors(include_url=False), data)
    by_place: dict[Path, list[ErrorDetails]] = {}
    for detail in details:
        by_place.setdefault(_data_path(detail, data), []).append(detail)
    found: list[Problem] = []
    for path, group in by_place.items():
        found.append(_problem(group, path, root, marks, prefix))
    return found


_SHAPE_ERRORS = ("model_type", "model_attributes_type", "dict_type", "list_type")


def _relevant(details: list[ErrorDetails], data: Any) -> list[ErrorDetails]:
    """Drop union-member errors that concern a member of another shape than the value."""
    kept = []
    for detail in details:
        value = detail.get("input")
        if detail["type"] == "literal_error" and isinstance(value, dict | list):
            continue
        if detail["type"] in _SHAPE_ERRORS and len(details) > 1:
            continue
        kept.append(detail)
    return kept or details


def _data_path(detail: ErrorDetails, data: Any) -> Path:
    """The part of pydantic's `loc` that names places in the data (drops union member tags)."""
    loc = detail["loc"]
    path: list[str | int] = []
    node = data
    for i, step in enumerate(loc):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        elif not (i == len(loc) - 1 and detail["type"] == "missing"):
            continue
        path.append(step)
    return tuple(path)


def _problem(
    group: list[ErrorDetails], path: Path, root: type[BaseModel], marks: Marks, prefix: Path
) -> Problem:
    detail = group[0]
    kind, where = detail["type"], (*prefix, *path)
    if kind == "extra_forbidden":
        key = str(path[-1])
        hint = _suggest(key, _fields_at(root, path[:-1]))
        return marks.problem(where, f"unknown key {key!r}{hint}", key=True)
    if kind == "missing":
        return marks.problem(where[:-1], f"missing required key {path[-1]!r}")
    message = ", or ".join(dict.fromkeys(_message(d) for d in group))
    if "[key]" in detail["loc"]:
        return marks.problem(where, f"invalid id {path[-1]!r}: {message}", key=True)
    return marks.problem(where, f"{_where(where)}{message}")


def _where(path: Path) -> str:
    return f"{path[-1]}: " if path and isinstance(path[-1], str) else ""


def _message(detail: ErrorDetails) -> str:
    kind, value = detail["type"], detail.get("input")
    ctx = detail.get("ctx") or {}
    if kind == "literal_error":
        return f"{value!r} is not one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return (
            f"{value!r} is not valid: {ID_RULE}"
            if "a-z0-9" in str(ctx.get("pattern"))
            else (f"{value!r} does not match {ctx.get('pattern')}")
        )
    text = detail["msg"]
    text = text[0].lower() + text[1:]
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{text}, got {value!r}"
    return text


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(known)})" if known else ""


def _fields_at(root: type[BaseModel], path: Path) -> list[str]:
    """Field names of the model found at `path` under `root` (empty if none)."""
    current: Any = root
    for step in path:
        current = _step(current, step)
        if current is None:
            return []
    model = _model_in(current)
    return list(model.model_fields) if model else []


def _step(annotation: Any, step: str | int) -> Any:
    model = _model_in(annotation)
    if model is not None and isinstance(step, str) and step in model.model_fields:
        return model.model_fields[step].annotation
    for arg in _members(annotation):
        origin = typing.get_origin(arg)
        if origin is dict:
            return typing.get_args(arg)[1]
        if origin is list and isinstance(step, int):
            return typing.get_args(arg)[0]
    return None


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None
