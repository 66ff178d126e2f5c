"""What a subscription charges: per billing period, and as prorations when its items change.

A `Slot` is one item as it stands (price and quantity); a `Charge` is one future invoice line.
Stripe bills licensed prices in advance, for the period that starts, and metered prices in
arrears, for the period that ended: the usage of the price's meter (`recurring.meter`) for the
subscription's customer, aggregated as the meter says over the events timestamped in [period
start, period end) (see `meter_events`), through the price's tiers or unit amount and its
`transform_quantity`. An item added in the middle of a period bills the usage from the moment
it was added (Stripe's rule for a metered item added mid-cycle); a usage that adds up to less
than zero is billed as 0 (the line's quantity is 0). A preview bills the usage recorded so far.

Prorations follow Stripe's rule for a change in the middle of a period: the unused time of the
old item is credited and the remaining time of the new one charged, each as
`cost × (period end - proration moment) / (period end - period start)` rounded to a minor unit
(an item whose price or quantity changes gets both lines; an added item only the charge, a
removed one only the credit). Metered items are not prorated. Credits are worked out from the
item's current price and quantity, which is what was billed for the period unless it was
billed at a discount.
"""

from __future__ import annotations

from dataclasses import dataclass

from autumn_sync.emulator.resources import invoices, meter_events
from autumn_sync.emulator.resources.amounts import fraction_left, minor_units, price_cost
from autumn_sync.emulator.resources.invoices import Period
from autumn_sync.emulator.store import JsonDict, State, as_dict


@dataclass(frozen=True)
class Slot:
    """A subscription item as it stands, or as a change would leave it."""

    item_id: str
    price: JsonDict
    quantity: int | None


@dataclass(frozen=True)
class Charge:
    """One line to bill: what it bills for, over which period, and how much."""

    slot: Slot
    period: Period
    amount: int
    description: str
    proration: bool = False


def item_rows(state: State, sub: JsonDict) -> list[JsonDict]:
    """The subscription's stored items, in order."""
    ids = sub["items"] if isinstance(sub["items"], list) else []
    found = (state.find("subscription_item", str(i)) for i in ids)
    return [item for item in found if item is not None]


def snapshot(state: State, sub: JsonDict) -> list[Slot]:
    """The subscription's items as slots."""
    return [
        Slot(
            str(item["id"]),
            state.require("price", str(item["price"])),
            item["quantity"] if isinstance(item["quantity"], int) else None,
        )
        for item in item_rows(state, sub)
    ]


def current_period(state: State, sub: JsonDict) -> Period:
    """The billing period the subscription is in (that of its first item)."""
    items = item_rows(state, sub)
    if not items:
        start = int(str(sub["start_date"]))
        return start, start
    return int(str(items[0]["current_period_start"])), int(str(items[0]["current_period_end"]))


def metered(price: JsonDict) -> bool:
    """Whether the price bills usage in arrears."""
    return as_dict(price["recurring"]).get("usage_type") == "metered"


def interval(price: JsonDict) -> tuple[str, int]:
    """The price's billing interval and count."""
    recurring = as_dict(price["recurring"])
    return str(recurring["interval"]), int(str(recurring["interval_count"]))


def changes_interval(before: list[Slot], after: list[Slot]) -> bool:
    """Whether the change moves the subscription to a price of another interval (Stripe then
    starts a new billing period at once)."""
    if not before or not after:
        return False
    return interval(before[0].price) != interval(after[0].price)


def _quantity_text(state: State, slot: Slot) -> str:
    name = invoices.product_name(state, slot.price)
    return f"{slot.quantity} × {name}" if slot.quantity is not None else name


def period_charges(state: State, slots: list[Slot], period: Period) -> list[Charge]:
    """Licensed items billed in advance for `period`."""
    return [
        Charge(
            slot,
            period,
            minor_units(price_cost(slot.price, slot.quantity or 0)),
            _quantity_text(state, slot),
        )
        for slot in slots
        if not metered(slot.price)
    ]


def trial_charges(state: State, slots: list[Slot], period: Period) -> list[Charge]:
    """The free lines of a trial period (one per licensed item)."""
    return [
        Charge(slot, period, 0, f"Trial period for {invoices.product_name(state, slot.price)}")
        for slot in slots
        if not metered(slot.price)
    ]


def usage_charges(state: State, sub: JsonDict, slots: list[Slot], period: Period) -> list[Charge]:
    """Metered items billed in arrears for `period`: the usage their meters recorded."""
    charges: list[Charge] = []
    for slot in slots:
        if not metered(slot.price):
            continue
        quantity = max(usage(state, sub, slot, period), 0)
        billed = Slot(slot.item_id, slot.price, quantity)
        amount = minor_units(price_cost(slot.price, quantity))
        charges.append(Charge(billed, period, amount, _quantity_text(state, billed)))
    return charges


def usage(state: State, sub: JsonDict, slot: Slot, period: Period) -> int:
    """The usage a metered item recorded over `period` (from the moment it was added, when
    that was later than the subscription's start)."""
    meter_id = as_dict(slot.price["recurring"]).get("meter")
    if not meter_id:
        return 0
    start = period[0]
    item = state.find("subscription_item", slot.item_id)
    began = sub.get("start_date")
    if item is not None and isinstance(began, int) and int(str(item["created"])) > began:
        start = max(start, int(str(item["created"])))
    return meter_events.usage(state, str(meter_id), str(sub["customer"]), start, period[1])


def proration_charges(
    state: State, before: list[Slot], after: list[Slot], period: Period, moment: int
) -> list[Charge]:
    """Credits for the unused time of items that changed or went, charges for the remaining
    time of items that changed or came, at `moment` within `period`."""
    share = fraction_left(period[0], period[1], moment)
    remaining = (moment, period[1])
    old = {slot.item_id: slot for slot in before}
    new = {slot.item_id: slot for slot in after}
    date = invoices.day_text(moment)
    charges: list[Charge] = []
    for slot in before:
        kept = new.get(slot.item_id)
        if metered(slot.price) or (kept is not None and _same(kept, slot)):
            continue
        amount = -minor_units(price_cost(slot.price, slot.quantity or 0) * share)
        text = f"Unused time on {_quantity_text(state, slot)} after {date}"
        charges.append(Charge(slot, remaining, amount, text, proration=True))
    for slot in after:
        was = old.get(slot.item_id)
        if metered(slot.price) or (was is not None and _same(was, slot)):
            continue
        amount = minor_units(price_cost(slot.price, slot.quantity or 0) * share)
        text = f"Remaining time on {_quantity_text(state, slot)} after {date}"
        charges.append(Charge(slot, remaining, amount, text, proration=True))
    return [charge for charge in charges if charge.amount != 0]


def _same(one: Slot, other: Slot) -> bool:
    return one.price["id"] == other.price["id"] and one.quantity == other.quantity


def _billed(charge: Charge) -> tuple[str, JsonDict, int | None, Period, int, str]:
    """What an invoice line or a pending item bills for `charge`: the item, its price and
    quantity, the period, the amount and the description."""
    slot = charge.slot
    return slot.item_id, slot.price, slot.quantity, charge.period, charge.amount, charge.description


def lines(state: State, sub: JsonDict, charges: list[Charge]) -> list[JsonDict]:
    """Invoice lines for `charges`."""
    return [
        invoices.build_line(state, sub, *_billed(charge), proration=charge.proration)
        for charge in charges
    ]


def store_pending(state: State, sub: JsonDict, charges: list[Charge]) -> list[JsonDict]:
    """Store proration charges as pending invoice items of the subscription."""
    return [state.add(invoices.pending_item(state, sub, *_billed(c))) for c in charges]


def pending_lines(state: State, sub: JsonDict) -> list[JsonDict]:
    """Invoice lines for the subscription's pending invoice items."""
    return [invoices.item_line(state, sub, item) for item in invoices.pending_items(state, sub)]
