"""`POST /v1/invoices/create_preview`: the next invoice, as it is or after proposed changes.

Nothing is stored: the preview is worked out with the same rules as the real billing.

- **An existing subscription** (`subscription`): its renewal at the end of the current period
  (the next period of licensed items, the current one of metered items with the usage their
  meters recorded so far, the pending invoice items), or, during a trial, the first invoice
  after it.
- **Proposed changes** (`subscription_details`: `items` rows with `id`/`price`/`quantity`/
  `deleted`, `proration_behavior`, `proration_date`, `trial_end`, `cancel_at_period_end`):
  with `create_prorations` (the default) the renewal carries the proration lines; with
  `always_invoice` the preview is the invoice that would be made now, the prorations alone;
  with `none` the renewal bills the new items without prorations. A price of another interval
  previews the invoice made at once for the new period. A subscription that will have ended by
  then has no upcoming invoice (`invoice_upcoming_none`).
- **A subscription not made yet** (`customer` + `subscription_details[items]`, optional
  `start_date` and `trial_end`): its first invoice.
- **A schedule** (`schedule`, or `schedule_details[phases]`): the next invoice of its
  subscription with the items of the phase in force then, or, before it starts, its first.

`discounts` replaces the discounts the preview applies (coupons, promotion codes or existing
discounts); by default those of the subscription apply.
"""

from __future__ import annotations

from autumn_sync.emulator.errors import StripeError, invalid, no_such
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import invoices, schedules
from autumn_sync.emulator.resources import subscription_rules as rules
from autumn_sync.emulator.resources.charges import (
    Slot,
    changes_interval,
    current_period,
    lines,
    pending_lines,
    period_charges,
    proration_charges,
    snapshot,
    trial_charges,
    usage_charges,
)
from autumn_sync.emulator.resources.invoices import Period
from autumn_sync.emulator.resources.lifecycle import PRORATION_BEHAVIORS, next_end
from autumn_sync.emulator.resources.subscription_items import plan_item_changes, slots_after
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict
from autumn_sync.emulator.views import present

PARAMS = (
    "customer",
    "discounts",
    "schedule",
    "schedule_details",
    "subscription",
    "subscription_details",
)
DETAILS = (
    "cancel_at_period_end",
    "items",
    "proration_behavior",
    "proration_date",
    "start_date",
    "trial_end",
)
ENDED = ("canceled", "incomplete_expired")


def create_preview(call: Call) -> JsonDict:
    """POST /v1/invoices/create_preview."""
    state, p = call.state, call.params
    p.check_known(PARAMS)
    details = p.sub("subscription_details")
    if details is not None:
        details.check_known(DETAILS)
    sub = _subscription(state, p)
    if p.has("schedule") or p.has("schedule_details"):
        invoice = _schedule(state, p, sub)
    elif sub is None:
        invoice = _new_subscription(state, p, details)
    else:
        invoice = _existing(state, p, sub, details)
    return present(state, invoice, call.expand)


def _subscription(state: State, p: Params) -> JsonDict | None:
    """The subscription previewed, which must belong to `customer` when both are given."""
    customer_id = p.string("customer")
    if customer_id is not None:
        state.require("customer", customer_id, "customer", status=400)
    sub_id = p.string("subscription")
    if sub_id is None:
        return None
    sub = state.require("subscription", sub_id, "subscription", status=400)
    if customer_id is not None and sub["customer"] != customer_id:
        raise no_such("subscription", sub_id, "subscription", status=400)
    return sub


def no_upcoming() -> StripeError:
    """Stripe's answer when nothing will be invoiced."""
    return invalid(
        "No upcoming invoices for this customer: the subscription will have ended.",
        None,
        "invoice_upcoming_none",
    )


def preview_discounts(state: State, p: Params, sub: JsonDict, moment: int) -> list[JsonDict]:
    """The discounts the preview applies: those sent, else the subscription's live ones."""
    if not p.has("discounts"):
        return invoices.live_discounts(state, sub, moment)
    customer_id = str(sub["customer"])
    sources = rules.discount_sources(state, p, customer_id, sub if sub.get("object") else None)
    found: list[JsonDict] = []
    for coupon, promo_id, kept in sources:
        if kept is not None:
            found.append(state.require("discount", kept))
            continue
        found.append(rules.new_discount(state, coupon, promo_id, sub))
    return found


def draft_subscription(state: State, customer_id: str, slots: list[Slot], start: int) -> JsonDict:
    """A stand-in for a subscription not made yet (only what invoices read)."""
    return {
        "id": None,
        "billing_cycle_anchor": start,
        "collection_method": "charge_automatically",
        "currency": slots[0].price["currency"],
        "customer": customer_id,
        "discounts": [],
        "metadata": {},
    }


def first_invoice(
    state: State,
    p: Params,
    sub: JsonDict,
    slots: list[Slot],
    start: int,
    trial_end: int | None,
) -> JsonDict:
    """The first invoice of a subscription starting at `start`."""
    if trial_end is not None and trial_end > start:
        charges = trial_charges(state, slots, (start, trial_end))
    else:
        charges = period_charges(state, slots, (start, next_end(sub, slots[0].price, start)))
    discounts = preview_discounts(state, p, sub, start)
    return _draft(state, sub, lines(state, sub, charges), (start, start), discounts)


def _draft(
    state: State, sub: JsonDict, billed: list[JsonDict], period: Period, discounts: list[JsonDict]
) -> JsonDict:
    invoice_id = "upcoming_" + state.new_id("invoice")
    invoice = invoices.build(state, sub, billed, "upcoming", period, discounts, invoice_id)
    invoice["created"] = period[1]
    return invoice


def _new_subscription(state: State, p: Params, details: Params | None) -> JsonDict:
    """The first invoice of a subscription the customer does not have yet."""
    customer_id = p.string("customer")
    rows = details.items("items") if details is not None else []
    if customer_id is None or not rows:
        raise invalid(
            "Pass `subscription`, or `customer` with `subscription_details[items]`.",
            "subscription_details[items]",
            "parameter_missing",
        )
    assert details is not None
    prices = [rules.item_price(state, row) for row in rows]
    rules.check_prices(prices)
    slots = [
        Slot(state.new_id("subscription_item"), price, rules.item_quantity(row, price))
        for row, price in zip(rows, prices, strict=True)
    ]
    start = details.integer("start_date") or state.now()
    sub = draft_subscription(state, customer_id, slots, start)
    return first_invoice(state, p, sub, slots, start, _trial_end(state, details))


def _trial_end(state: State, details: Params) -> int | None:
    if details.string("trial_end") == "now":
        return state.now()
    return details.integer("trial_end")


def _existing(state: State, p: Params, sub: JsonDict, details: Params | None) -> JsonDict:
    """The next invoice of an existing subscription, with the proposed changes."""
    if sub["status"] in ENDED:
        raise no_upcoming()
    before = snapshot(state, sub)
    after = before
    rows = details.items("items") if details is not None else []
    if rows:
        after = slots_after(state, plan_item_changes(state, sub, rows))
    cancel_at_end = sub["cancel_at_period_end"]
    if details is not None and details.has("cancel_at_period_end"):
        cancel_at_end = details.boolean("cancel_at_period_end") is True
    if cancel_at_end:
        raise no_upcoming()
    behavior = "create_prorations"
    moment = state.now()
    trial_end = sub["trial_end"] if sub["status"] == "trialing" else None
    if details is not None:
        behavior = details.string("proration_behavior", choices=PRORATION_BEHAVIORS) or behavior
        moment = details.integer("proration_date") or moment
        if details.has("trial_end"):
            trial_end = _trial_end(state, details)
    if isinstance(trial_end, int):
        return _after_trial(state, p, sub, after, trial_end)
    return _changed(state, p, sub, before, after, behavior, moment)


def _after_trial(
    state: State, p: Params, sub: JsonDict, slots: list[Slot], trial_end: int
) -> JsonDict:
    """The first invoice after the trial: a new cycle starting when it ends."""
    start = max(trial_end, state.now())
    anchored = {**sub, "billing_cycle_anchor": start}
    upcoming = (start, next_end(anchored, slots[0].price, start))
    ended = (int(str(sub["trial_start"] or sub["start_date"])), start)
    billed = pending_lines(state, sub) + lines(state, sub, period_charges(state, slots, upcoming))
    billed += lines(state, sub, usage_charges(state, sub, slots, ended))
    discounts = preview_discounts(state, p, sub, start)
    return _draft(state, sub, billed, ended, discounts)


def _changed(
    state: State,
    p: Params,
    sub: JsonDict,
    before: list[Slot],
    after: list[Slot],
    behavior: str,
    moment: int,
) -> JsonDict:
    """The next invoice after an item change made at `moment` (or without one)."""
    period = current_period(state, sub)
    prorations = []
    if behavior != "none" and before != after:
        prorations = proration_charges(state, before, after, period, moment)
    if changes_interval(before, after):
        credits = [] if behavior == "none" else proration_charges(state, before, [], period, moment)
        now = state.now()
        anchored = {**sub, "billing_cycle_anchor": now}
        upcoming = (now, next_end(anchored, after[0].price, now))
        billed = pending_lines(state, sub) + lines(state, sub, credits)
        billed += lines(state, sub, period_charges(state, after, upcoming))
        return _with_date(
            _draft(state, sub, billed, (moment, moment), _live(state, p, sub, moment)), moment
        )
    if behavior == "always_invoice" and before != after:
        billed = pending_lines(state, sub) + lines(state, sub, prorations)
        return _with_date(
            _draft(state, sub, billed, (moment, moment), _live(state, p, sub, moment)), moment
        )
    upcoming = (period[1], next_end(sub, after[0].price, period[1]))
    billed = pending_lines(state, sub) + lines(state, sub, prorations)
    billed += lines(state, sub, period_charges(state, after, upcoming))
    billed += lines(state, sub, usage_charges(state, sub, after, period))
    invoice = _draft(state, sub, billed, period, _live(state, p, sub, period[1]))
    return _with_date(invoice, moment) if prorations else invoice


def _live(state: State, p: Params, sub: JsonDict, moment: int) -> list[JsonDict]:
    return preview_discounts(state, p, sub, moment)


def _invoiced_now(
    state: State, p: Params, sub: JsonDict, billed: list[JsonDict], moment: int
) -> JsonDict:
    """The invoice an update at `moment` would make at once."""
    invoice = _draft(state, sub, billed, (moment, moment), _live(state, p, sub, moment))
    return _with_date(invoice, moment)


def _with_date(invoice: JsonDict, moment: int) -> JsonDict:
    """Note the moment the previewed prorations were worked out at."""
    parent = as_dict(invoice["parent"])
    details = as_dict(parent.get("subscription_details"))
    details["subscription_proration_date"] = moment
    invoice["parent"] = {**parent, "subscription_details": details}
    return invoice


def _schedule(state: State, p: Params, sub: JsonDict | None) -> JsonDict:
    """The next invoice of a schedule (stored, or the phases in `schedule_details`)."""
    schedule = None
    if p.has("schedule"):
        schedule_id = str(p.string("schedule"))
        schedule = state.require("subscription_schedule", schedule_id, "schedule", status=400)
        if sub is None and schedule["subscription"] is not None:
            sub = state.require("subscription", str(schedule["subscription"]))
    stored = (schedule or {}).get("phases")
    phases = [as_dict(phase) for phase in stored] if isinstance(stored, list) else []
    end_behavior = str((schedule or {}).get("end_behavior") or "release")
    details = p.sub("schedule_details")
    if details is not None:
        details.check_known(("end_behavior", "phases", "proration_behavior"))
        end_behavior = details.string("end_behavior", choices=("cancel", "release")) or end_behavior
        rows = details.items("phases")
        if rows:
            start = _schedule_start(state, phases, sub)
            phases = schedules.parse_phases(state, rows, start)
    if not phases:
        raise invalid(
            "Missing required param: schedule_details[phases].",
            "schedule_details[phases]",
            "parameter_missing",
        )
    if sub is not None and sub["status"] not in ENDED:
        return _scheduled_renewal(state, p, sub, phases, end_behavior)
    customer_id = str((schedule or {}).get("customer") or p.string("customer") or "")
    if not customer_id:
        raise invalid("Missing required param: customer.", "customer", "parameter_missing")
    first = phases[0]
    slots = schedules.phase_slots(state, None, first)
    start = int(str(first["start_date"]))
    draft = draft_subscription(state, customer_id, slots, start)
    trial_end = first["trial_end"] if isinstance(first["trial_end"], int) else None
    return first_invoice(state, p, draft, slots, start, trial_end)


def _schedule_start(state: State, phases: list[JsonDict], sub: JsonDict | None) -> int:
    """Where proposed phases start: the schedule's first phase, else the current period."""
    if phases:
        return int(str(phases[0]["start_date"]))
    if sub is not None:
        return current_period(state, sub)[0]
    return state.now()


def _scheduled_renewal(
    state: State, p: Params, sub: JsonDict, phases: list[JsonDict], end_behavior: str
) -> JsonDict:
    """The renewal of a scheduled subscription, with the items of the phase then in force."""
    period = current_period(state, sub)
    phase = schedules.phase_at(phases, period[1])
    if phase is None and end_behavior == "cancel":
        raise no_upcoming()
    current = snapshot(state, sub)
    slots = current if phase is None else schedules.phase_slots(state, sub, phase)
    upcoming = (period[1], next_end(sub, slots[0].price, period[1]))
    billed = pending_lines(state, sub) + lines(state, sub, period_charges(state, slots, upcoming))
    billed += lines(state, sub, usage_charges(state, sub, current, period))
    return _draft(state, sub, billed, period, _live(state, p, sub, period[1]))


ROUTES = [Route("POST", "/v1/invoices/create_preview", create_preview)]
