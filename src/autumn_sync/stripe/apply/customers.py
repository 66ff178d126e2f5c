"""Stripe appliers of customers and subscriptions. Each records the Stripe id it makes in the
database row it belongs to (`customers.stripe_id`, `customer_plans.stripe_subscription_id`)
in the same transaction as its journal entry.

A subscription bills the price objects its items name by address and version: the price an
address has once this apply made or replaced it, else the one of that version already in
Stripe (an older version's, kept for the customers on it). Its trial ends when the database
says (it knows the fingerprints that already had one); a trial already over is not sent.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from autumn_sync.model.address import Address, versioned
from autumn_sync.model.stripe import (
    ARCHIVED_KEY,
    CANCELLED_BY,
    ENTITY_KEY,
    NOT_STARTED,
    OWNER_KEY,
    PLAN_KEY,
    REWARDS_KEY,
    Phase,
    StripeCustomer,
    StripeSubscription,
    SubscriptionItem,
    SubscriptionParts,
)
from autumn_sync.plan.changes import Archive, Change, Create, Update
from autumn_sync.plan.plan import resubscribes
from autumn_sync.stripe.apply.writer import APPLIERS, StripeWriter
from autumn_sync.stripe.journal import (
    in_transaction,
    record_customer,
    record_subscription,
    trial_end,
)
from autumn_sync.stripe.read.customers import timestamp

SEND_INVOICE = "send_invoice"


def _key(customer_address: str) -> str:
    """`stripe_customer.user_1` → `.user_1`, the customer's key."""
    return Address.parse(customer_address).customer_key


# --- customers -----------------------------------------------------------------------------


@APPLIERS.made(Create, StripeCustomer)
def _create_customer(writer: StripeWriter, change: Create, customer: StripeCustomer) -> None:
    params: dict[str, Any] = {"metadata": {OWNER_KEY: customer.address}}
    if customer.email:
        params["email"] = customer.email
    if customer.name:
        params["name"] = customer.name
    also = record_customer(_key(customer.address))
    obj = writer.write(change, "/v1/customers", params, also=also)
    writer.ids[customer.address] = obj["id"]


@APPLIERS.changed(Update, StripeCustomer)
def _update_customer(
    writer: StripeWriter, change: Update, old: StripeCustomer, new: StripeCustomer
) -> None:
    params: dict[str, Any] = {}
    for name in ("email", "name"):
        if getattr(old, name) != getattr(new, name):
            params[name] = getattr(new, name) or ""
    metadata = {}
    if old.owner != new.owner:
        metadata[OWNER_KEY] = new.address
    if old.active != new.active:
        metadata[ARCHIVED_KEY] = "" if new.active else "true"
    if metadata:
        params["metadata"] = metadata
    stripe_id = writer.ids[new.address]
    also = record_customer(_key(new.address))
    if params:
        writer.write(change, f"/v1/customers/{stripe_id}", params, also=also)
    elif old.recorded != new.recorded:  # only the database did not know the id
        in_transaction(writer.journal.engine, lambda conn: also(conn, stripe_id))


@APPLIERS.gone(Archive, StripeCustomer)
def _archive_customer(writer: StripeWriter, change: Archive, _customer: StripeCustomer) -> None:
    path = f"/v1/customers/{writer.ids[change.address]}"
    writer.write(change, path, {"metadata": {ARCHIVED_KEY: "true"}})


# --- subscriptions -------------------------------------------------------------------------


def _price_id(writer: StripeWriter, address: str, version: int) -> str:
    """The price object `address` names at `version` (see the module's docstring)."""
    current = writer.ids.get(address)
    made = writer.existing.prices.get(address)
    wanted = writer.desired.prices.get(address)
    renewed = made is None or current != made.stripe_id
    now = wanted.version if renewed and wanted is not None else made.version if made else None
    if current is not None and (Address.parse(address).index is not None or now == version):
        return current
    older = writer.ids.get(versioned(address, version))  # made by this apply
    if older is not None:
        return older
    candidates = [
        p
        for p in (*writer.existing.prices.values(), *writer.existing.superseded)
        if p.address == address and p.version == version and p.stripe_id
    ]
    if not candidates:
        raise LookupError(f"{address}: no price of version {version} in Stripe")
    candidates.sort(key=lambda p: not p.active)
    return str(candidates[0].stripe_id)


def _item_rows(
    writer: StripeWriter, items: tuple[tuple[str, SubscriptionItem], ...]
) -> list[dict[str, Any]]:
    rows = []
    for address, item in items:
        row: dict[str, Any] = {"price": _price_id(writer, address, item.version)}
        if item.quantity is not None:
            row["quantity"] = item.quantity
        rows.append(row)
    return rows


def _metadata(sub: StripeSubscription) -> dict[str, str]:
    """The metadata autumn-sync writes on a subscription (its owner as Stripe holds it)."""
    owner = sub.owner or ""
    metadata = {OWNER_KEY: owner, PLAN_KEY: ",".join(sub.plans), REWARDS_KEY: _rewards(sub)}
    if sub.entity:
        metadata[ENTITY_KEY] = sub.entity
    return metadata


def _rewards(sub: StripeSubscription) -> str:
    return ",".join(str(Address.parse(coupon).key) for coupon in sub.coupons)


def _collection(sub: StripeSubscription) -> dict[str, Any]:
    params: dict[str, Any] = {"collection_method": sub.collection_method}
    if sub.collection_method == SEND_INVOICE:
        params["days_until_due"] = sub.days_until_due
    return params


@APPLIERS.made(Create, StripeSubscription)
def _create_subscription(writer: StripeWriter, change: Create, sub: StripeSubscription) -> None:
    _subscribe(writer, change, sub)


def _subscribe(writer: StripeWriter, change: Change, sub: StripeSubscription) -> None:
    """Make the subscription: now, or by a schedule on the date it begins."""
    if not sub.items and sub.then is not None:
        _create_scheduled(writer, change, sub, sub.then)
        return
    params: dict[str, Any] = {
        "customer": writer.ids[sub.customer],
        "items": _item_rows(writer, sub.items),
        **_collection(sub),
        "metadata": _metadata(sub),
    }
    if sub.coupons:
        params["discounts"] = [{"coupon": writer.ids[c]} for c in sub.coupons]
    ends = trial_end(writer.journal.engine, _key(sub.customer), sub.entity, sub.plans)
    today = writer.journal.clock().date()
    if ends is not None and ends > today:
        params["trial_end"] = timestamp(ends)
        if not sub.card_required:  # no payment method needed: ends as `on_end` says
            missing = "create_invoice" if sub.on_end == "bill" else "cancel"
            params["trial_settings"] = {"end_behavior": {"missing_payment_method": missing}}
    resumed = resubscribes(change)
    also = record_subscription(_key(sub.customer), sub.entity, sub.records, resumed)
    obj = writer.write(change, "/v1/subscriptions", params, also=also)
    if sub.then is not None:
        _schedule_next(writer, change, sub, str(obj["id"]), None)


# --- what a subscription bills from a date ahead: a subscription schedule ---------------------


def _create_scheduled(
    writer: StripeWriter, change: Change, sub: StripeSubscription, then: Phase
) -> None:
    """A subscription that begins on a date ahead (a future `start`): a schedule that makes
    it then, with the plans' items and autumn-sync's metadata, left to run on its own after
    its first phase (`end_behavior: release`)."""
    phase: dict[str, Any] = {
        "items": _item_rows(writer, then.items),
        "metadata": _metadata(replace(sub, plans=then.plans)),
        **_phase_terms(writer, sub, None),
        **_trial(then),
    }
    params: dict[str, Any] = {
        "customer": writer.ids[sub.customer],
        "start_date": timestamp(then.start),
        "end_behavior": "release",
        "phases": [phase],
        "metadata": _metadata(sub),
    }
    writer.write(change, "/v1/subscription_schedules", params)


def _schedule_next(
    writer: StripeWriter,
    change: Change,
    sub: StripeSubscription,
    stripe_id: str,
    parts: SubscriptionParts | None,
) -> None:
    """Put the subscription under a schedule (or update the one it has) whose phases are
    what it bills now, until the date ahead, then what it bills from that date: a downgrade
    at the end of the paid period. No proration: the period paid ends as paid."""
    assert sub.then is not None
    schedule = parts.schedule if parts is not None else None
    start = parts.phase_start if parts is not None else None
    if schedule is None:
        made = writer.write(
            change, "/v1/subscription_schedules", {"from_subscription": stripe_id}, step="schedule"
        )
        schedule = str(made["id"])
        start = int(made["phases"][0]["start_date"])
    end = timestamp(sub.then.start)
    if parts is not None and parts.period_end is not None and _same_day(parts.period_end, end):
        end = parts.period_end  # the period's end to the second: nothing left to prorate
    terms = _phase_terms(writer, sub, parts)
    current: dict[str, Any] = {"items": _item_rows(writer, sub.items), "end_date": end, **terms}
    if start is not None:
        current["start_date"] = start
    following = {
        "items": _item_rows(writer, sub.then.items),
        "metadata": _metadata(replace(sub, plans=sub.then.plans)),
        "proration_behavior": "none",
        **terms,
        **_trial(sub.then),
    }
    params = {"phases": [current, following], "end_behavior": "release"}
    writer.write(change, f"/v1/subscription_schedules/{schedule}", params, step="phases")


def _phase_terms(
    writer: StripeWriter, sub: StripeSubscription, parts: SubscriptionParts | None
) -> dict[str, Any]:
    """What every phase of the subscription's schedule keeps: how it is collected, and its
    discounts (those the subscription has are reused, so a coupon's months go on counting;
    a phase that names none would drop them)."""
    terms: dict[str, Any] = {"collection_method": sub.collection_method}
    if sub.collection_method == SEND_INVOICE:
        terms["invoice_settings"] = {"days_until_due": sub.days_until_due}
    kept = {coupon: discount for discount, coupon in parts.discounts} if parts else {}
    if sub.coupons:
        terms["discounts"] = [
            {"discount": kept[c]} if c in kept else {"coupon": writer.ids[c]} for c in sub.coupons
        ]
    return terms


def _trial(phase: Phase) -> dict[str, Any]:
    """A phase's free trial, when its plans have one (the database's trial end)."""
    return {"trial_end": timestamp(phase.trial_end)} if phase.trial_end is not None else {}


def _same_day(moment: int, midnight: int) -> bool:
    return 0 <= moment - midnight < 86_400


def _release(writer: StripeWriter, change: Change, schedule: str) -> None:
    """The subscription leaves its schedule and bills what it bills now (a pending
    downgrade called off)."""
    writer.write(change, f"/v1/subscription_schedules/{schedule}/release", {}, step="release")


@APPLIERS.changed(Update, StripeSubscription)
def _update_subscription(
    writer: StripeWriter, change: Update, old: StripeSubscription, new: StripeSubscription
) -> None:
    if old.status == NOT_STARTED:  # nothing billed yet: the schedule is made again
        path = f"/v1/subscription_schedules/{writer.ids[new.address]}/cancel"
        writer.write(change, path, {}, step="cancel")
        _subscribe(writer, change, new)
        return
    params: dict[str, Any] = {}
    items = _item_changes(writer, old, new)
    if items:
        params["items"] = items
    if items and old.plans != new.plans:  # a plan change: as `settings.billing.upgrades` says
        params["proration_behavior"] = new.proration
    elif items and _versions_only(old, new):  # moved to a version: its prices next period
        params["proration_behavior"] = "none"
    if (old.collection_method, old.days_until_due) != (new.collection_method, new.days_until_due):
        params.update(_collection(new))
    if not old.active and new.active:
        params["cancel_at_period_end"] = False
        params["cancellation_details"] = {"comment": ""}
    elif old.active and not new.active:  # nothing paid is held after this period
        params["cancel_at_period_end"] = True
        params["cancellation_details"] = {"comment": f"{CANCELLED_BY}downgrade at period end"}
    if old.coupons != new.coupons:
        params["discounts"] = _discounts(writer, old, new) or ""
    metadata = {k: v for k, v in _metadata(new).items() if _metadata(old).get(k) != v}
    if metadata:
        params["metadata"] = metadata
    stripe_id = writer.ids[new.address]
    also = record_subscription(_key(new.customer), new.entity, new.records, resubscribes(change))
    if params:
        writer.write(change, f"/v1/subscriptions/{stripe_id}", params, also=also)
    elif old.recorded != new.recorded:
        in_transaction(writer.journal.engine, lambda conn: also(conn, stripe_id))
    if old.then != new.then:
        parts = writer.existing.parts.get(str(old.stripe_id))
        if new.then is not None:
            _schedule_next(writer, change, new, stripe_id, parts)
        elif parts is not None and parts.schedule is not None:
            _release(writer, change, parts.schedule)


def _versions_only(old: StripeSubscription, new: StripeSubscription) -> bool:
    """Whether only the versions of the items change (customers moved to a new version of
    their plan): the period paid stays at its price, the new one bills from the next."""
    before = {a: i.quantity for a, i in old.items}
    return before == {a: i.quantity for a, i in new.items}


def _item_changes(
    writer: StripeWriter, old: StripeSubscription, new: StripeSubscription
) -> list[dict[str, Any]]:
    """Rows of `items` that turn the old items into the new: an item whose price changes
    names its new price, one whose quantity changes the quantity; a new item is added, an
    item no longer wanted deleted."""
    parts = writer.existing.parts[str(old.stripe_id)]
    held = {address: (item_id, price_id) for address, item_id, price_id in parts.items}
    before = dict(old.items)
    rows: list[dict[str, Any]] = []
    for address, item in new.items:
        if address not in held:
            row: dict[str, Any] = {"price": _price_id(writer, address, item.version)}
        else:
            item_id, price_id = held[address]
            row = {"id": item_id}
            price = _price_id(writer, address, item.version)
            if price != price_id:
                row["price"] = price
            elif before[address].quantity == item.quantity:
                continue
        if item.quantity is not None:
            row["quantity"] = item.quantity
        rows.append(row)
    wanted = dict(new.items)
    rows += [
        {"id": item_id, "deleted": True} for a, (item_id, _) in held.items() if a not in wanted
    ]
    return rows


def _discounts(
    writer: StripeWriter, old: StripeSubscription, new: StripeSubscription
) -> list[dict[str, str]]:
    """The subscription's discounts after the change: those of rewards it keeps stay as they
    are (reused, so a limited duration is not started again), the new rewards' coupons are
    added."""
    parts = writer.existing.parts[str(old.stripe_id)]
    kept = {coupon: discount for discount, coupon in parts.discounts}
    return [{"discount": kept[c]} if c in kept else {"coupon": writer.ids[c]} for c in new.coupons]


@APPLIERS.gone(Archive, StripeSubscription)
def _archive_subscription(
    writer: StripeWriter, change: Archive, subscription: StripeSubscription
) -> None:
    """Cancel at the end of the period; or, when another subscription bills its plans now,
    cancel now with the unused time credited on a final invoice (the customer's credit)."""
    if subscription.status == NOT_STARTED:  # a schedule that never began: nothing billed
        writer.write(change, f"/v1/subscription_schedules/{writer.ids[change.address]}/cancel", {})
        return
    parts = writer.existing.parts.get(str(subscription.stripe_id))
    if parts is not None and parts.schedule is not None:
        _release(writer, change, parts.schedule)  # a schedule would make it bill on
    path = f"/v1/subscriptions/{writer.ids[change.address]}"
    ended = change.after
    signed = {"comment": f"{CANCELLED_BY}{change.reason or 'no longer in the file'}"[:500]}
    if isinstance(ended, StripeSubscription) and ended.status == "canceled":
        params = {"prorate": True, "invoice_now": True, "cancellation_details": signed}
        writer.cancel(change, path, params)
    else:
        writer.write(change, path, {"cancel_at_period_end": True, "cancellation_details": signed})
