"""Stripe appliers of customers and subscriptions. Each records the Stripe id it makes in the
database row it belongs to (`customers.stripe_id`, `customer_plans.stripe_subscription_id`)
in the same transaction as its journal entry.

A subscription bills the price objects its items name by address and version: the price an
address has once this apply made or replaced it, else the one of that version already in
Stripe (an older version's, kept for the customers on it). Its trial ends when the database
says (it knows the fingerprints that already had one); a trial already over is not sent.
"""

from __future__ import annotations

from typing import Any

from autumn_sync.model.address import Address, versioned
from autumn_sync.model.stripe import (
    ARCHIVED_KEY,
    CANCELLED_BY,
    ENTITY_KEY,
    OWNER_KEY,
    PLAN_KEY,
    REWARDS_KEY,
    StripeCustomer,
    StripeSubscription,
)
from autumn_sync.plan.changes import Archive, Create, Update
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


def _item_rows(writer: StripeWriter, sub: StripeSubscription) -> list[dict[str, Any]]:
    rows = []
    for address, item in sub.items:
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
    params: dict[str, Any] = {
        "customer": writer.ids[sub.customer],
        "items": _item_rows(writer, sub),
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
    also = record_subscription(_key(sub.customer), sub.entity, sub.records)
    writer.write(change, "/v1/subscriptions", params, also=also)


@APPLIERS.changed(Update, StripeSubscription)
def _update_subscription(
    writer: StripeWriter, change: Update, old: StripeSubscription, new: StripeSubscription
) -> None:
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
    if old.coupons != new.coupons:
        params["discounts"] = _discounts(writer, old, new) or ""
    metadata = {k: v for k, v in _metadata(new).items() if _metadata(old).get(k) != v}
    if metadata:
        params["metadata"] = metadata
    stripe_id = writer.ids[new.address]
    also = record_subscription(_key(new.customer), new.entity, new.records)
    if params:
        writer.write(change, f"/v1/subscriptions/{stripe_id}", params, also=also)
    elif old.recorded != new.recorded:
        in_transaction(writer.journal.engine, lambda conn: also(conn, stripe_id))


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
    writer: StripeWriter, change: Archive, _subscription: StripeSubscription
) -> None:
    """Cancel at the end of the period; or, when another subscription bills its plans now,
    cancel now with the unused time credited on a final invoice (the customer's credit)."""
    path = f"/v1/subscriptions/{writer.ids[change.address]}"
    ended = change.after
    signed = {"comment": f"{CANCELLED_BY}{change.reason or 'no longer in the file'}"[:500]}
    if isinstance(ended, StripeSubscription) and ended.status == "canceled":
        params = {"prorate": True, "invoice_now": True, "cancellation_details": signed}
        writer.cancel(change, path, params)
    else:
        writer.write(change, path, {"cancel_at_period_end": True, "cancellation_details": signed})
