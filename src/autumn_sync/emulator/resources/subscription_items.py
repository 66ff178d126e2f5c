"""Changing a subscription's items on update: `items[n][id]` with `deleted=true` removes an
item, with `price`/`quantity`/`metadata` changes it, and a row without `id` adds an item.
Every row is validated before anything changes."""

from __future__ import annotations

from dataclasses import dataclass

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import subscription_rules as rules
from autumn_sync.emulator.resources.charges import Slot
from autumn_sync.emulator.store import JsonDict, State, mapping


@dataclass
class _Change:
    """One validated item row: the item it changes (None to add) and its resulting price."""

    row: Params
    item: JsonDict | None
    price: JsonDict
    quantity: int | None


@dataclass
class ItemPlan:
    """The validated rows of an update: the items now, those removed, and the changes."""

    items: list[JsonDict]
    removed: set[str]
    changes: list[_Change]


def apply_item_changes(state: State, sub: JsonDict, rows: list[Params]) -> None:
    """Apply the `items` rows of a subscription update."""
    if not rows:
        return
    plan = plan_item_changes(state, sub, rows)
    _commit(state, sub, plan.items, plan.removed, plan.changes)


def plan_item_changes(state: State, sub: JsonDict, rows: list[Params]) -> ItemPlan:
    """Validate the `items` rows of an update (or of a preview) without changing anything."""
    items = _items(state, sub)
    removed: set[str] = set()
    changes: list[_Change] = []
    for row in rows:
        if row.has("id"):
            item = rules.owned_item(state, sub, row)
            if row.boolean("deleted") is True:
                removed.add(str(item["id"]))
                continue
            changes.append(_changed(state, row, item))
        else:
            price = rules.item_price(state, row)
            changes.append(_Change(row, None, price, rules.item_quantity(row, price)))
    _check_result(state, items, removed, changes)
    return ItemPlan(items, removed, changes)


def slots_after(state: State, plan: ItemPlan) -> list[Slot]:
    """The items as the planned update would leave them (new ones under a fresh id)."""
    changed = {str(c.item["id"]): c for c in plan.changes if c.item is not None}
    slots = []
    for item in plan.items:
        item_id = str(item["id"])
        if item_id in plan.removed:
            continue
        change = changed.get(item_id)
        if change is None:
            quantity = item["quantity"] if isinstance(item["quantity"], int) else None
            slots.append(Slot(item_id, state.require("price", str(item["price"])), quantity))
        else:
            slots.append(Slot(item_id, change.price, change.quantity))
    for change in plan.changes:
        if change.item is None:
            slots.append(Slot(state.new_id("subscription_item"), change.price, change.quantity))
    return slots


def _items(state: State, sub: JsonDict) -> list[JsonDict]:
    ids = sub["items"] if isinstance(sub["items"], list) else []
    found = (state.find("subscription_item", str(i)) for i in ids)
    return [item for item in found if item is not None]


def _changed(state: State, row: Params, item: JsonDict) -> _Change:
    if row.has("price"):
        price = rules.item_price(state, row)
    else:
        row.check_known((*rules.ITEM_PARAMS, "id", "deleted", "clear_usage"))
        price = state.require("price", str(item["price"]))
    current = item["quantity"] if isinstance(item["quantity"], int) else None
    if row.has("price") and price["id"] != item["price"]:
        current = None
    return _Change(row, item, price, rules.item_quantity(row, price, current))


def _check_result(
    state: State, items: list[JsonDict], removed: set[str], changes: list[_Change]
) -> None:
    """The items after the update: at least one, one currency, no repeated price."""
    changed = {str(c.item["id"]): c.price for c in changes if c.item is not None}
    prices = [
        changed.get(str(item["id"])) or state.require("price", str(item["price"]))
        for item in items
        if item["id"] not in removed
    ]
    prices += [c.price for c in changes if c.item is None]
    if not prices:
        raise invalid("A subscription must keep at least one item.", "items")
    rules.check_prices(prices)


def _commit(
    state: State, sub: JsonDict, items: list[JsonDict], removed: set[str], changes: list[_Change]
) -> None:
    period = _period(items)
    kept = [str(item["id"]) for item in items if item["id"] not in removed]
    for item_id in removed:
        state.remove("subscription_item", item_id)
    for change in changes:
        if change.item is None:
            new = rules.build_item(state, change.row, change.price, str(sub["id"]), period)
            state.add(new)
            kept.append(str(new["id"]))
        else:
            change.item.update(
                price=change.price["id"],
                quantity=change.quantity,
                metadata=metadata.merged(mapping(change.item["metadata"]), change.row),
            )
    sub["items"] = kept


def _period(items: list[JsonDict]) -> tuple[int, int]:
    first = items[0]
    return int(str(first["current_period_start"])), int(str(first["current_period_end"]))
