"""Turn pydantic validation errors into located, readable problems."""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from autumn_sync.config.format import (
    CUSTOMER_ID_PATTERN,
    CUSTOMER_ID_RULE,
    EMAIL_PATTERN,
    ID_PATTERN,
    ID_RULE,
    PROMO_CODE_PATTERN,
    PROMO_CODE_RULE,
    STRIPE_CUSTOMER_PATTERN,
    TEXT_PATTERN,
    TEXT_RULE,
)
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

    Errors are grouped by place. When a value matches none of a union's members, pydantic
    reports one error per member; only those of the member shaped like the value are kept (a
    mapping is not told it should have been a string), and the rest are merged into one
    message. A missing key that an unknown key at the same place is a typo of is not reported:
    the "did you mean" already says what to do.
    """
    by_place: dict[Path, list[ErrorDetails]] = {}
    for detail in error.errors(include_url=False):
        by_place.setdefault(_data_path(detail, data), []).append(detail)
    typos = _typo_targets(by_place, data, root)
    found: list[Problem] = []
    for path, group in by_place.items():
        if group[0]["type"] == "missing" and path in typos:
            continue
        if _other_member(path, group, by_place):
            continue
        found.append(_problem(_relevant(group), path, root, marks, prefix, data))
    return found


_SHAPE_ERRORS = ("model_type", "model_attributes_type", "dict_type", "list_type")


def _relevant(group: list[ErrorDetails]) -> list[ErrorDetails]:
    """Drop union-member errors (at one place) that concern a member of another shape."""
    kept = []
    for detail in group:
        value = detail.get("input")
        if detail["type"] == "literal_error" and isinstance(value, dict | list):
            continue
        if detail["type"] in _SHAPE_ERRORS and len(group) > 1:
            continue
        kept.append(detail)
    return kept or group


def _other_member(
    path: Path, group: list[ErrorDetails], by_place: dict[Path, list[ErrorDetails]]
) -> bool:
    """True for "not one of the choices" (or "must be text") on a mapping or list when errors
    inside it show that it was meant as the union's other, mapping or list shaped, member."""
    shaped = all(
        d["type"] in ("literal_error", "string_type") and isinstance(d.get("input"), dict | list)
        for d in group
    )
    return shaped and any(len(p) > len(path) and p[: len(path)] == path for p in by_place)


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


def _node_at(data: Any, path: Path) -> Any:
    node = data
    for step in path:
        node = node[step]
    return node


def _typo_targets(
    by_place: dict[Path, list[ErrorDetails]], data: Any, root: type[BaseModel]
) -> set[Path]:
    """Paths of the keys that unknown keys are probably typos of."""
    targets: set[Path] = set()
    for path, group in by_place.items():
        if group[0]["type"] == "extra_forbidden":
            close = _close_key(path, data, root)
            if close is not None:
                targets.add((*path[:-1], close))
    return targets


def _close_key(path: Path, data: Any, root: type[BaseModel]) -> str | None:
    """The field an unknown key at `path` is probably a typo of (one not already given)."""
    present = _node_at(data, path[:-1])
    free = [name for name in _fields_at(root, path[:-1]) if name not in present]
    close = difflib.get_close_matches(str(path[-1]), free, n=1, cutoff=0.6)
    return close[0] if close else None


def _problem(
    group: list[ErrorDetails],
    path: Path,
    root: type[BaseModel],
    marks: Marks,
    prefix: Path,
    data: Any,
) -> Problem:
    detail = group[0]
    kind, where = detail["type"], (*prefix, *path)
    if kind == "extra_forbidden":
        return marks.problem(where, _unknown_key(path, data, root), key=True)
    if kind == "missing":
        fix = ": add 'version: 1' at the top of the file" if where == ("version",) else ""
        return marks.problem(where[:-1], f"missing required key {path[-1]!r}{fix}", key=True)
    if "[key]" in detail["loc"]:
        text = _invalid(detail) or f"invalid id {path[-1]!r}: {_requirement(group)}"
        return marks.problem(where, text, key=True)
    label, entry = _label(where)
    text = _invalid(detail) or f"{entry}{_requirement(group)}, got {show(detail.get('input'))}"
    return marks.problem(where, f"{label}{text}{_hint(group)}")


def _unknown_key(path: Path, data: Any, root: type[BaseModel]) -> str:
    key = str(path[-1])
    close = _close_key(path, data, root)
    if close is not None:
        return f"unknown key {key!r} (did you mean {close!r}?)"
    known = _fields_at(root, path[:-1])
    return f"unknown key {key!r}" + (f" (expected one of: {', '.join(known)})" if known else "")


def _label(path: Path) -> tuple[str, str]:
    """`name: ` for a value under a key; `items: ` and `each entry ` for a list entry."""
    if path and isinstance(path[-1], str):
        return f"{path[-1]}: ", ""
    if len(path) > 1 and isinstance(path[-2], str):
        return f"{path[-2]}: ", "each entry "
    return "", ""


def _invalid(detail: ErrorDetails) -> str | None:
    """The message for an id or promotion code that does not follow its rule."""
    if detail["type"] != "string_pattern_mismatch":
        return None
    pattern, value = str((detail.get("ctx") or {}).get("pattern")), detail.get("input")
    if pattern == f"^{ID_PATTERN.pattern}$":
        return f"invalid id {value!r}: {ID_RULE}"
    if pattern == PROMO_CODE_PATTERN:
        return f"invalid promotion code {value!r}: {PROMO_CODE_RULE}"
    if pattern == TEXT_PATTERN:
        return f"invalid text {value!r}: {TEXT_RULE}"
    rule = PATTERN_RULES.get(pattern)
    return rule.format(value=value) if rule else None


PATTERN_RULES = {
    CUSTOMER_ID_PATTERN: "invalid customer id {value!r}: " + CUSTOMER_ID_RULE,
    EMAIL_PATTERN: "invalid email {value!r}: write it as name@example.com",
    STRIPE_CUSTOMER_PATTERN: "invalid Stripe customer id {value!r}: it starts with 'cus_'",
}


def _requirement(group: list[ErrorDetails]) -> str:
    """What the value must be; a union's alternatives joined: `must be above 0 or 'inf'`."""
    phrases = list(dict.fromkeys(_phrase(detail) for detail in group))
    rest = [p.removeprefix("must be ") for p in phrases[1:]]
    return " or ".join([phrases[0], *rest])


_PHRASES = {
    "string_type": "must be text",
    "string_unicode": "must be valid Unicode text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


DATE_RULE = "must be a date written YYYY-MM-DD"
MOMENT_RULE = "must be a date written YYYY-MM-DD or a date and time YYYY-MM-DDTHH:MM:SSZ"
# Pydantic's date and date-time errors, by the format that was expected.
_FORMATS = {
    "date_type": DATE_RULE,
    "date_parsing": DATE_RULE,
    "date_from_datetime_parsing": DATE_RULE,
    "date_from_datetime_inexact": DATE_RULE,
    "datetime_type": MOMENT_RULE,
    "datetime_parsing": MOMENT_RULE,
    "datetime_from_date_parsing": MOMENT_RULE,
}


def _phrase(detail: ErrorDetails) -> str:
    kind, ctx = detail["type"], detail.get("ctx") or {}
    if kind in _PHRASES:
        return _PHRASES[kind]
    if kind in _FORMATS:
        reason = str(ctx.get("error", ""))  # kept when the date is impossible, not misspelt
        return f"{_FORMATS[kind]} ({reason})" if "range" in reason else _FORMATS[kind]
    if kind == "literal_error":
        expected = str(ctx.get("expected"))
        return f"must be {'one of ' if ' or ' in expected else ''}{expected}"
    if kind in _BOUNDS:
        return _bound(kind, ctx)
    if kind == "string_too_short":
        count = ctx.get("min_length")
        return "must not be empty" if count == 1 else f"must have at least {count} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "value_error":
        return str(ctx.get("error"))
    text = detail["msg"]
    return text[0].lower() + text[1:]


_BOUNDS = {
    "greater_than": ("gt", "must be greater than {}"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "less_than": ("lt", "must be less than {}"),
    "less_than_equal": ("le", "must be at most {}"),
}


def _bound(kind: str, ctx: dict[str, Any]) -> str:
    name, template = _BOUNDS[kind]
    if kind == "greater_than_equal" and ctx.get(name) == 0:
        return "must not be negative"
    return template.format(show(ctx.get(name)))


def _hint(group: list[ErrorDetails]) -> str:
    """A "did you mean" for a misspelt choice, and a way out of two YAML surprises."""
    value = group[0].get("input")
    options = [
        option
        for detail in group
        if detail["type"] == "literal_error"
        for option in re.findall(r"'([^']*)'", str((detail.get("ctx") or {}).get("expected")))
    ]
    if isinstance(value, float) and math.isinf(value) and "inf" in options:
        return " (write 'inf' without the dot)"
    if isinstance(value, str) and options:
        close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else ""
    if group[0]["type"] == "string_type" and isinstance(value, int | Decimal | float):
        return f" (put it in quotes: '{show(value)}')"
    return ""


def show(value: Any) -> str:
    """`value` as the user would write it in YAML."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, date):  # YAML read it as a date or a time
        return value.isoformat()
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
        return text if len(text) <= 40 else "a mapping"
    if isinstance(value, list):
        text = "[" + ", ".join(show(v) for v in value) + "]"
        return text if len(text) <= 40 else "a list"
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


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
