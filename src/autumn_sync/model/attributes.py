"""What of a record is compared, as plain nested data, and its flattened field paths.

Only what the file can state is compared: the current-state-only facts (version numbers,
customer counts, archived) are not attributes and never show up as differences.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from enum import Enum
from typing import Any

from autumn_sync.model.records import Plan, Record, Tier

_STATE_ONLY = frozenset({"id", "archived", "version", "customers", "versions_in_use"})
CONTENT_FIELDS = ("price", "free_trial", "items")

Scalar = str | int | bool | Decimal | None


def attributes(record: Record) -> dict[str, Any]:
    """The comparable data of `record` (plan items keyed by feature id)."""
    data = {
        field.name: _plain(getattr(record, field.name))
        for field in dataclasses.fields(record)
        if field.name not in _STATE_ONLY
    }
    if isinstance(record, Plan):
        content = data.pop("content")
        content["items"] = {item.pop("feature"): _item(item) for item in content["items"]}
        data.update(content)
    return data


def _item(item: dict[str, Any]) -> dict[str, Any] | bool:
    """An item without its unset fields; a bare item (a boolean feature) is `True`."""
    kept = {key: value for key, value in item.items() if value is not None}
    return kept or True


def _plain(value: Any) -> Any:
    if isinstance(value, Tier):
        return {"up_to": "inf" if value.up_to is None else value.up_to, "amount": value.amount}
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return {str(k): _plain(v) for k, v in value}  # pairs: credit costs
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


KEYED_BY_ID = ("items", "credit_costs")


def flatten(data: Any, prefix: str = "") -> dict[str, Scalar]:
    """`{"price": {"amount": 20}}` → `{"price.amount": 20}`; lists index as `tiers[0]`,
    maps keyed by id as `items[messages]`."""
    if isinstance(data, dict) and data:
        out: dict[str, Scalar] = {}
        for key, value in data.items():
            if prefix.endswith(KEYED_BY_ID):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, path))
        return out
    if isinstance(data, list) and data:
        out = {}
        for index, value in enumerate(data):
            out.update(flatten(value, f"{prefix}[{index}]"))
        return out
    if isinstance(data, dict | list):
        return {prefix: None} if prefix else {}
    return {prefix: data}
