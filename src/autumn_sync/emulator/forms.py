"""Decoding of Stripe's form encoding into nested values.

`recurring[interval]=month` becomes `{"recurring": {"interval": "month"}}`; indexed arrays such
as `tiers[0][up_to]=inf` stay dicts keyed by the index (`{"tiers": {"0": {...}}}`) because a
metadata key may itself be a number; `Params.items` turns them into lists where a list is
expected. A trailing `[]` (`expand[]=x`) appends to a list. Values are always strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from autumn_sync.emulator.errors import StripeError, invalid

# A decoded value: a string, a list of strings (from `[]`), or a nested mapping.
Node = str | list[str] | dict[str, "Node"]
Form = dict[str, Node]


def decode(body: str) -> Form:
    """Decode an `application/x-www-form-urlencoded` body or query string."""
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise invalid(f"Could not decode the request body: {exc}") from exc
    form: Form = {}
    for key, value in pairs:
        _insert(form, split_key(key), value, key)
    return form


def split_key(key: str) -> list[str]:
    """`a[b][0][]` -> `["a", "b", "0", ""]`; a key without brackets is one part."""
    head, sep, rest = key.partition("[")
    parts = [head]
    if not sep:
        return parts
    rest = "[" + rest
    while rest:
        if not rest.startswith("[") or "]" not in rest:
            raise invalid(f"Malformed parameter name: {key}", key)
        inner, _, rest = rest[1:].partition("]")
        parts.append(inner)
    return parts


def _insert(node: Form, parts: list[str], value: str, key: str) -> None:
    """Store `value` at the path `parts` inside `node`, creating mappings on the way."""
    head = parts[0]
    if not head:
        raise invalid(f"Malformed parameter name: {key}", key)
    if len(parts) == 1:
        _set_leaf(node, head, value, key)
    elif parts[1:] == [""]:
        _append(node, head, value, key)
    else:
        child = node.setdefault(head, {})
        if not isinstance(child, dict):
            raise _conflict(key)
        _insert(child, parts[1:], value, key)


def _set_leaf(node: Form, name: str, value: str, key: str) -> None:
    existing = node.get(name)
    if isinstance(existing, dict | list) and value != "":
        raise _conflict(key)
    node[name] = value


def _append(node: Form, name: str, value: str, key: str) -> None:
    existing = node.setdefault(name, [])
    if not isinstance(existing, list):
        raise _conflict(key)
    existing.append(value)


def _conflict(key: str) -> StripeError:
    return invalid(f"Invalid parameter {key}: it is given both as a value and as a hash.", key)


def from_mapping(values: Mapping[str, object]) -> Form:
    """Python values encoded as the `stripe` client would send them, then decoded."""
    return {key: _encode(value) for key, value in values.items() if value is not None}


def _encode(value: object) -> Node:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return {str(i): _encode(v) for i, v in enumerate(value)}
    return str(value)
