"""A subscription over time, as Stripe bills it.

- **Creation** makes the first invoice (`subscription_create`): licensed items for the first
  period, in advance; nothing for metered ones; free lines during a trial.
- **Renewal** at the end of each period (`subscription_cycle`): every item enters the next
  period, counted from the billing cycle anchor (a period ending on the 31st renews on the
  last day of shorter months, then on the 31st again); the invoice bills the new period of
  licensed items, the ended period of metered ones, and the pending invoice items; discounts
  whose `end` has passed are removed first. An unpaid automatic charge makes it `past_due`.
- **Trial end**: with a payment method (or `send_invoice`) the trial ends, a new billing cycle
  starts at that moment and its invoice is paid. Without one, `trial_settings.end_behavior.
  missing_payment_method` decides: `cancel` cancels, `pause` pauses (no invoice), and
  `create_invoice` (the default) makes the subscription `active` with an open invoice.
- **Cancellation** at `cancel_at` (which `cancel_at_period_end` sets to the period's end).
- **An incomplete subscription** expires 23 hours after creation (`incomplete_expired`, its
  first invoice voided).
- **Item changes** mid-period follow `proration_behavior`: `create_prorations` (the default)
  leaves proration items pending for the next invoice, `always_invoice` invoices them now
  (`subscription_update`), `none` makes none. A price of another interval resets the billing
  cycle: the new period starts now and is invoiced at once, with the unused time credited
  (unless `none`). Nothing is prorated during a trial.
"""

from __future__ import annotations

from collections.abc import Callable

from autumn_sync.emulator.resources import invoices
from autumn_sync.emulator.resources import subscription_rules as rules
from autumn_sync.emulator.resources.charges import (
    Charge,
    Slot,
    changes_interval,
    current_period,
    item_rows,
    lines,
    pending_lines,
    period_charges,
    proration_charges,
    snapshot,
    store_pending,
    trial_charges,
    usage_charges,
)
from autumn_sync.emulator.resources.invoices import Period
from autumn_sync.emulator.store import JsonDict, State, as_dict

PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
MISSING_PAYMENT_METHOD = ("cancel", "create_invoice", "pause")
INCOMPLETE_HOURS = 23
QUIET = ("canceled", "incomplete_expired", "paused")
Step = Callable[[State, JsonDict], None]


def next_end(sub: JsonDict, price: JsonDict, after: int) -> int:
    """The first period boundary after `after`, counted from the billing cycle anchor."""
    anchor = int(str(sub["billing_cycle_anchor"]))
    recurring = as_dict(price["recurring"])
    unit, count = str(recurring["interval"]), int(str(recurring["interval_count"]))
    steps = 1
    while (boundary := rules.add_interval(anchor, unit, count * steps)) <= after:
        steps += 1
    return boundary


def set_period(state: State, sub: JsonDict, period: Period) -> None:
    """Put every item of the subscription in `period`."""
    for item in item_rows(state, sub):
        item.update(current_period_start=period[0], current_period_end=period[1])


def start(state: State, sub: JsonDict) -> JsonDict:
    """Make and settle the first invoice of a new subscription."""
    now = state.now()
    slots = snapshot(state, sub)
    period = current_period(state, sub)
    if sub["status"] == "trialing":
        charges = trial_charges(state, slots, period)
    else:
        charges = period_charges(state, slots, period)
    discounts = invoices.live_discounts(state, sub, now)
    invoice = invoices.build(
        state, sub, lines(state, sub, charges), "subscription_create", (now, now), discounts
    )
    invoices.issue(state, invoice, sub)
    watch(state, sub)
    return invoice


def renewal(
    state: State, sub: JsonDict, slots: list[Slot], ended: Period, reason: str
) -> tuple[JsonDict, Period]:
    """The invoice that starts the period after `ended` (not issued), and that period."""
    upcoming = (ended[1], next_end(sub, slots[0].price, ended[1])) if slots else ended
    billed = pending_lines(state, sub)
    billed += lines(state, sub, period_charges(state, slots, upcoming))
    billed += lines(state, sub, usage_charges(state, sub, slots, ended))
    discounts = invoices.live_discounts(state, sub, ended[1])
    return invoices.build(state, sub, billed, reason, ended, discounts), upcoming


def renew(state: State, sub: JsonDict) -> None:
    """Move the subscription into its next period and invoice it."""
    ended = current_period(state, sub)
    invoice, upcoming = renewal(state, sub, snapshot(state, sub), ended, "subscription_cycle")
    set_period(state, sub, upcoming)
    expire_discounts(state, sub, ended[1])
    invoices.issue(state, invoice, sub)
    if invoice["status"] == "open" and sub["collection_method"] == "charge_automatically":
        sub["status"] = "past_due"
    elif invoice["status"] == "paid":
        sub["status"] = "active"


def expire_discounts(state: State, sub: JsonDict, moment: int) -> None:
    """Drop the discounts whose `end` has come (a repeating coupon's months are over)."""
    live = {str(d["id"]) for d in invoices.live_discounts(state, sub, moment)}
    discounts = sub["discounts"] if isinstance(sub["discounts"], list) else []
    sub["discounts"] = [d for d in discounts if str(d) in live]


def end_trial(state: State, sub: JsonDict) -> None:
    """End the trial: bill the first paid period, or do what `missing_payment_method` says."""
    moment = int(str(sub["trial_end"]))
    charging = sub["collection_method"] == "charge_automatically"
    if charging and invoices.payment_method(state, sub) is None:
        behavior = missing_payment_method(sub)
        if behavior == "cancel":
            cancel(state, sub)
            return
        if behavior == "pause":
            _pause(sub, moment)
            return
    sub.update(status="active", billing_cycle_anchor=moment)
    slots = snapshot(state, sub)
    trial = (int(str(sub["trial_start"] or moment)), moment)
    invoice, upcoming = renewal(state, sub, slots, trial, "subscription_cycle")
    set_period(state, sub, upcoming)
    expire_discounts(state, sub, moment)
    invoices.issue(state, invoice, sub)


def missing_payment_method(sub: JsonDict) -> str:
    """What the subscription does when its trial ends without a payment method."""
    settings = as_dict(as_dict(sub.get("trial_settings")).get("end_behavior"))
    return str(settings.get("missing_payment_method") or "create_invoice")


def _pause(sub: JsonDict, moment: int) -> None:
    sub["status"] = "paused"
    sub["status_details"] = {
        "paused": {
            "subscription": {"type": "trial_end_without_payment_method"},
            "transitioned_at": moment,
            "type": "subscription",
        }
    }


def cancel(state: State, sub: JsonDict) -> None:
    """Cancel the subscription now (a requested cancellation coming due)."""
    now = state.now()
    details = as_dict(sub["cancellation_details"])
    details["reason"] = details.get("reason") or "cancellation_requested"
    sub.update(
        status="canceled",
        canceled_at=sub["canceled_at"] or now,
        ended_at=now,
        cancellation_details=details,
    )


def expire_incomplete(state: State, sub: JsonDict) -> None:
    """An incomplete subscription whose first invoice stayed unpaid expires; the invoice is
    voided."""
    sub.update(status="incomplete_expired", ended_at=state.now())
    invoice = state.find("invoice", str(sub["latest_invoice"]))
    if invoice is not None and invoice["status"] == "open":
        transitions = as_dict(invoice["status_transitions"])
        transitions["voided_at"] = state.now()
        invoice.update(status="void", amount_remaining=0, status_transitions=transitions)


def next_step(state: State, sub: JsonDict) -> tuple[int, Step] | None:
    """When the subscription next changes by itself, and what happens then."""
    status = sub["status"]
    if status in QUIET:
        return None
    if status == "incomplete":
        return int(str(sub["created"])) + INCOMPLETE_HOURS * 3600, expire_incomplete
    step: tuple[int, Step]
    if status == "trialing":
        step = (int(str(sub["trial_end"])), end_trial)
    else:
        step = (current_period(state, sub)[1], renew)
    cancel_at = sub["cancel_at"]
    if isinstance(cancel_at, int) and cancel_at <= step[0]:
        return cancel_at, cancel
    return step


def watch(state: State, sub: JsonDict) -> None:
    """Make sure the emulator wakes up when the subscription next changes by itself."""
    step = next_step(state, sub)
    if step is not None:
        state.wake_at(step[0])


def items_changed(
    state: State,
    sub: JsonDict,
    before: list[Slot],
    behavior: str,
    moment: int,
) -> None:
    """Prorate an update of the subscription's items (`before` is how they stood)."""
    after = snapshot(state, sub)
    if sub["status"] == "trialing" or before == after:
        return
    period = current_period(state, sub)
    if changes_interval(before, after):
        reset_cycle(state, sub, before, behavior, moment)
        return
    if behavior == "none":
        return
    charges = proration_charges(state, before, after, period, moment)
    if not charges:
        return
    store_pending(state, sub, charges)
    if behavior == "always_invoice":
        invoice_now(state, sub, "subscription_update", [])


def settle_cancel(state: State, sub: JsonDict, prorate: bool, invoice: bool) -> None:
    """What cancelling now leaves to bill: with `prorate`, a credit for the unused time of
    the licensed items (none during a trial); with `invoice_now`, a final invoice of the
    pending items now (a negative total becomes the customer's credit), else they wait for
    the customer's next invoice."""
    if prorate and sub["status"] != "trialing":
        period = current_period(state, sub)
        before = snapshot(state, sub)
        store_pending(state, sub, proration_charges(state, before, [], period, state.now()))
    if invoice and pending_lines(state, sub):
        invoice_now(state, sub, "subscription_update", [])


def reset_cycle(
    state: State, sub: JsonDict, before: list[Slot], behavior: str, moment: int
) -> None:
    """A change of interval: credit the unused time at `moment` (unless `none`) and bill a
    new period that starts now."""
    period = current_period(state, sub)
    if behavior != "none":
        store_pending(state, sub, proration_charges(state, before, [], period, moment))
    after = snapshot(state, sub)
    now = state.now()
    sub["billing_cycle_anchor"] = now
    upcoming = (now, next_end(sub, after[0].price, now))
    set_period(state, sub, upcoming)
    invoice_now(state, sub, "subscription_update", period_charges(state, after, upcoming))


def invoice_now(state: State, sub: JsonDict, reason: str, charges: list[Charge]) -> JsonDict:
    """Invoice the pending items (and `charges`) of the subscription now."""
    now = state.now()
    billed = pending_lines(state, sub) + lines(state, sub, charges)
    discounts = invoices.live_discounts(state, sub, now)
    invoice = invoices.build(state, sub, billed, reason, (now, now), discounts)
    return invoices.issue(state, invoice, sub)


def move_trial(state: State, sub: JsonDict, moment: int) -> None:
    """`trial_end` on update: `now` (or a past moment) ends the trial at once; a future one
    starts or extends it, the current period ending with it."""
    if moment <= state.now():
        if sub["status"] == "trialing":
            sub["trial_end"] = state.now()
            end_trial(state, sub)
        return
    sub.update(
        status="trialing",
        trial_end=moment,
        trial_start=sub["trial_start"] or state.now(),
        billing_cycle_anchor=moment,
    )
    for item in item_rows(state, sub):
        item["current_period_end"] = moment
