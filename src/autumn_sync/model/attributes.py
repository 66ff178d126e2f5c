"""What of a record is compared, as plain nested data, and its flattened field paths.

Only what the file can state is compared: the current-state-only facts (version numbers,
customer counts, archived) are not attributes and never show up as differences.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

from autumn_sync.model.customers import Balance, Customer, CustomerPlan
from autumn_sync.model.records import Feature, Plan, Reward, Tier
from autumn_sync.model.state import Record
from autumn_sync.model.stripe import StripeRecord, StripeTier

_STATE_ONLY = frozenset(
    {
        "id",
        "archived",
        "version",
        "customers",
        "versions_in_use",
        "address",
        "stripe_id",
        "default_price_id",
        "owned",
        "proration",
        "scope",
        "records",
        "cancelled_outside",
        "ends_on",
        "card_required",
        "on_end",
        "trialed",
    }
)
CONTENT_FIELDS = ("price", "free_trial", "items")

Scalar = str | int | bool | Decimal | None


def attributes(record: Record | StripeRecord) -> dict[str, Any]:
    """The comparable data of `record` (plan items keyed by feature id)."""
    data = {
        field.name: _plain(getattr(record, field.name))
        for field in dataclasses.fields(record)
        if field.name not in _STATE_ONLY
    }
    if isinstance(record, Feature):
        data["credit_costs"] = {fid: cost for fid, cost in record.credit_costs}
    if isinstance(record, Plan):
        content = data.pop("content")
        content["items"] = {item.pop("feature"): _item(item) for item in content["items"]}
        data.update(content)
    if isinstance(record, Reward):
        return _reward(record, data)
    if isinstance(record, Customer):
        return _customer(record, data)
    if isinstance(record, Balance):
        for name in ("customer", "feature"):
            del data[name]
        data["grants"] = {g["id"]: _without(g, "id") for g in data["grants"]}
    return data


def _reward(reward: Reward, data: dict[str, Any]) -> dict[str, Any]:
    """A reward's data: its codes' restrictions keyed by code, each with what is set only,
    and left out when no code has any (a reward of plain codes reads as it always did)."""
    del data["code_restrictions"]
    restricted = {
        code: {k: v for k, v in _plain(terms).items() if v is not None and v is not False}
        for code, terms in reward.code_restrictions
    }
    return {**data, "code_restrictions": restricted} if restricted else data


def _customer(customer: Customer, data: dict[str, Any]) -> dict[str, Any]:
    """A customer's data: its plans as a set of ids, then keyed by plan id its custom
    versions (its own price or items) and the terms it has on plans (its own quantity, start
    or trial); entities by id, metadata as a map; the key and what only the database knows
    left out."""
    for name in ("key", "internal_id", "managed"):
        del data[name]
    data = {"id": data.pop("customer_id"), **data}
    data["metadata"] = dict(customer.metadata)
    data = _insert_after(data, "plans", _plans(customer.plans))
    data["entities"] = {
        e.id: {"feature": e.feature, "name": e.name, **_plans(e.plans)} for e in customer.entities
    }
    return data


def _insert_after(data: dict[str, Any], key: str, entries: dict[str, Any]) -> dict[str, Any]:
    """`data` with `entries` in place of `key` (the field order is the order shown)."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        out.update(entries if name == key else {name: value})
    return out


def _plans(plans: tuple[CustomerPlan, ...]) -> dict[str, Any]:
    """`plans` (ids), `custom` (plan id → price and items of the customer's own version) and
    `terms` (plan id → quantity, start, trial days, and when the database has it begin or
    end), each only with what is set."""
    custom: dict[str, Any] = {}
    terms: dict[str, Any] = {}
    for plan in plans:
        own = {
            "price": _plain(plan.price),
            "items": {i.feature: _item(_without(_plain(i), "feature")) for i in plan.items},
        }
        set_terms = {
            "quantity": plan.quantity if plan.quantity != 1 else None,
            "quantities": dict(plan.quantities) or None,
            "start": plan.start,
            "trial_days": plan.trial_days,
            "begins": plan.begins,
            "ends": plan.ends,
        }
        if plan.custom:
            custom[plan.plan] = {k: v for k, v in own.items() if v not in (None, {})}
        if any(v is not None for v in set_terms.values()):
            terms[plan.plan] = {k: v for k, v in set_terms.items() if v is not None}
    return {"plans": [p.plan for p in plans], "custom": custom, "terms": terms}


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def _item(item: dict[str, Any]) -> dict[str, Any] | bool:
    """An item without its unset fields (`unlimited` only when true, `interval_count` only
    when above 1, a rollover with what it sets); a bare item (a boolean feature) is `True`."""
    if item.get("interval_count") == 1:
        item = _without(item, "interval_count")
    if item.get("rollover") is not None:
        item = {**item, "rollover": _item(item["rollover"])}
    kept = {key: value for key, value in item.items() if value not in (None, False)}
    return kept or True


def _plain(value: Any) -> Any:
    if isinstance(value, Tier):
        return {"up_to": "inf" if value.up_to is None else value.up_to, "amount": value.amount}
    if isinstance(value, StripeTier):
        up_to = "inf" if value.up_to is None else value.up_to
        return {"up_to": up_to, "unit_amount_decimal": value.unit_amount_decimal}
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return {str(k): _plain(v) for k, v in value}  # pairs: credit costs
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


KEYED_BY_ID = (
    "items",
    "credit_costs",
    "custom",
    "terms",
    "entities",
    "grants",
    "code_restrictions",
)
# Sets of ids or codes: compared and shown as one value, never element by element (an index
# into a sorted set says nothing: adding "business" before "pro" is not "pro → business").
WHOLE = ("plans", "promo_codes", "applies_to", "rewards")

Value = Scalar | tuple[str, ...]
Step = str | int
Steps = tuple[Step, ...]


def path(steps: Sequence[Step]) -> str:
    """A field's path as plans show it: `("items", "messages", "included")` →
    `items[messages].included`; lists index as `tiers[0]`."""
    text = ""
    for step in steps:
        if isinstance(step, int) or keyed_by_id(text):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text


def keyed_by_id(path: str) -> bool:
    """Whether the map at `path` is keyed by id (its entries show as `items[messages]`)."""
    return bool(path) and path.endswith(KEYED_BY_ID)


def is_whole(path: str, value: Any) -> bool:
    """Whether `value` at `path` is a set of ids or codes, compared and shown whole."""
    return path.endswith(WHOLE) and isinstance(value, list)


def leaves(data: Any, steps: Steps = ()) -> Iterator[tuple[Steps, Any]]:
    """Each leaf of `data` (found at `steps`) with its value: a set whole, as a tuple; an
    empty map or list as `None`."""
    if is_whole(path(steps), data):
        yield steps, tuple(data)
    elif isinstance(data, dict) and data:
        for key, value in data.items():
            yield from leaves(value, (*steps, key))
    elif isinstance(data, list) and data:
        for index, value in enumerate(data):
            yield from leaves(value, (*steps, index))
    elif isinstance(data, dict | list):
        if steps:
            yield steps, None
    else:
        yield steps, data


def flatten(data: Any) -> dict[str, Value]:
    """`{"price": {"amount": 20}}` → `{"price.amount": 20}` (see `path` and `leaves`)."""
    return {path(steps): value for steps, value in leaves(data)}
