"""Reads Stripe customers and subscriptions through three list requests per page
(`/v1/customers`, `/v1/subscriptions?status=all` with `expand[]=data.discounts`, and the
schedules not begun, `/v1/subscription_schedules?scheduled=true`), and the schedule of each
subscription that has one (a pending downgrade): every one of them, owned or not; which
customer of the file each one is, is decided by `stripe.assign` with the ids the database
recorded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from autumn_sync.model.address import Kind, instance, named, unmanaged
from autumn_sync.model.stripe import (
    ARCHIVED_KEY,
    CANCELLED_BY,
    ENDED,
    ENTITY_KEY,
    NOT_STARTED,
    OWNER_KEY,
    PLAN_KEY,
    REWARDS_KEY,
    VERSION_KEY,
    Phase,
    StripeCustomer,
    StripeSubscription,
    SubscriptionItem,
    SubscriptionParts,
)
from autumn_sync.stripe.gateway import Gateway

Obj = dict[str, Any]


def read_customers(gateway: Gateway) -> tuple[StripeCustomer, ...]:
    """Every (not deleted) customer, with the address its metadata names, if any."""
    return tuple(_customer(obj) for obj in gateway.list_all("/v1/customers"))


def _customer(obj: Obj) -> StripeCustomer:
    metadata = obj.get("metadata") or {}
    settings = obj.get("invoice_settings") or {}
    owner = metadata.get(OWNER_KEY)
    return StripeCustomer(
        address=owner or "",
        email=obj.get("email"),
        name=obj.get("name"),
        active=metadata.get(ARCHIVED_KEY) != "true",
        owner=owner,
        has_payment_method=bool(
            settings.get("default_payment_method") or obj.get("default_source")
        ),
        stripe_id=obj["id"],
    )


def read_subscriptions(
    gateway: Gateway, coupons: Mapping[str, str], prices: Mapping[str, tuple[str, int]]
) -> tuple[tuple[StripeSubscription, ...], dict[str, SubscriptionParts]]:
    """Every subscription, ended ones too, with what its schedule bills from a date ahead,
    and the schedules that have not begun (a subscription to be), and the ids applying
    changes to them needs; `coupons` names the owned coupons' addresses by id, `prices` the
    owned prices' addresses and versions."""
    found = []
    parts = {}
    objects = gateway.list_all("/v1/subscriptions", status="all", expand=["data.discounts"])
    for obj in objects:
        record, part = _subscription(obj, coupons)
        schedule = obj.get("schedule")
        if isinstance(schedule, str) and record.owner and record.status not in ENDED:
            record, part = _under_schedule(gateway, record, part, schedule, prices)
        found.append(record)
        parts[obj["id"]] = part
    for obj in gateway.list_all("/v1/subscription_schedules", scheduled=True):
        if not (obj.get("metadata") or {}).get(OWNER_KEY):
            continue  # the application's own: not autumn-sync's to read
        record, part = _not_started(obj, coupons, prices)
        found.append(record)
        parts[obj["id"]] = part
    return tuple(found), parts


def _under_schedule(
    gateway: Gateway,
    record: StripeSubscription,
    part: SubscriptionParts,
    schedule_id: str,
    prices: Mapping[str, tuple[str, int]],
) -> tuple[StripeSubscription, SubscriptionParts]:
    """A subscription under a schedule: what its phase after the one in force bills, from
    when (the plans in that phase's metadata)."""
    schedule = gateway.request("get", f"/v1/subscription_schedules/{schedule_id}", {})
    phases = schedule.get("phases") or []
    current = schedule.get("current_phase") or {}
    started = current.get("start_date")
    following = [p for p in phases if isinstance(started, int) and p["start_date"] > started]
    then = _phase(following[0], prices) if following else None
    part = replace(part, schedule=schedule_id, phase_start=started)
    return replace(record, then=then), part


def _not_started(
    obj: Obj, coupons: Mapping[str, str], prices: Mapping[str, tuple[str, int]]
) -> tuple[StripeSubscription, SubscriptionParts]:
    """A schedule that makes a subscription on a date ahead: a subscription with no items
    yet, billing its first phase from then."""
    metadata = obj.get("metadata") or {}
    owner = metadata.get(OWNER_KEY)
    phases = obj.get("phases") or []
    first = phases[0] if phases else {}
    record = StripeSubscription(
        address=owner or "",
        customer="",
        entity=metadata.get(ENTITY_KEY) or None,
        collection_method=first.get("collection_method") or "charge_automatically",
        days_until_due=(first.get("invoice_settings") or {}).get("days_until_due"),
        coupons=_phase_coupons(first, coupons),
        owner=owner,
        status=NOT_STARTED,
        stripe_id=obj["id"],
        then=_phase(first, prices) if first else None,
    )
    return record, SubscriptionParts(customer_id=_id(obj.get("customer")), schedule=obj["id"])


def _phase(phase: Obj, prices: Mapping[str, tuple[str, int]]) -> Phase:
    metadata = phase.get("metadata") or {}
    items = []
    for item in phase.get("items") or ():
        price_id = _id(item.get("price"))
        address, version = prices.get(price_id, (unmanaged(price_id), 0))
        items.append((address, SubscriptionItem(version, item.get("quantity"))))
    return Phase(
        start=_date(phase.get("start_date")) or date.min,
        plans=tuple(p for p in (metadata.get(PLAN_KEY) or "").split(",") if p),
        items=tuple(sorted(items)),
        trial_end=_date(phase.get("trial_end")),
    )


def _phase_coupons(phase: Obj, coupons: Mapping[str, str]) -> tuple[str, ...]:
    found = (coupons.get(_id(d.get("coupon"))) for d in phase.get("discounts") or ())
    return tuple(sorted({c for c in found if c}))


def _subscription(
    obj: Obj, coupons: Mapping[str, str]
) -> tuple[StripeSubscription, SubscriptionParts]:
    metadata = obj.get("metadata") or {}
    owner = metadata.get(OWNER_KEY)
    items = [_item(item) for item in (obj.get("items") or {}).get("data") or ()]
    discounts = tuple(_discount(d, coupons) for d in obj.get("discounts") or () if d)
    applied = metadata.get(REWARDS_KEY)
    if applied is not None:
        used = tuple(named(Kind.STRIPE_COUPON, r) for r in applied.split(",") if r)
    else:
        used = tuple(coupon for _, coupon in discounts)
    customer = _id(obj.get("customer"))
    record = StripeSubscription(
        address=owner or "",
        customer="",  # an address: given by `stripe.assign`
        plans=tuple(p for p in (metadata.get(PLAN_KEY) or "").split(",") if p),
        entity=metadata.get(ENTITY_KEY) or None,
        items=_unique(items),
        collection_method=obj.get("collection_method") or "charge_automatically",
        days_until_due=obj.get("days_until_due"),
        coupons=tuple(sorted(set(used))),
        trial_end=_date(obj.get("trial_end")),
        active=not obj.get("cancel_at_period_end"),
        owner=owner,
        status=obj.get("status"),
        stripe_id=obj["id"],
        cancelled_outside=_cancelled_outside(obj),
        ends_on=_ends_on(obj),
    )
    part = SubscriptionParts(
        customer_id=customer,
        items=tuple((address, item_id, price_id) for address, _, item_id, price_id in items),
        discounts=discounts,
        period_end=_period_end(obj),
    )
    return record, part


def _period_end(obj: Obj) -> int | None:
    """When the subscription's current billing period ends (on its items since API version
    2025-03-31)."""
    for item in (obj.get("items") or {}).get("data") or ():
        end = item.get("current_period_end")
        if isinstance(end, int):
            return end
    end = obj.get("current_period_end")
    return end if isinstance(end, int) else None


def _ends_on(obj: Obj) -> date | None:
    """The day a cancelled subscription ended (`ended_at`) or ends (`cancel_at`, else the end
    of its current period); None while it is not cancelled."""
    if obj.get("status") in ENDED:
        return _date(obj.get("ended_at") or obj.get("canceled_at"))
    if not obj.get("cancel_at_period_end") and not obj.get("cancel_at"):
        return None
    return _date(obj.get("cancel_at") or _period_end(obj))


def _cancelled_outside(obj: Obj) -> bool:
    """Whether the subscription ended, or is set to end, by a cancellation autumn-sync did
    not sign (its `cancellation_details.comment`)."""
    cancelling = obj.get("status") in ENDED or bool(obj.get("cancel_at_period_end"))
    comment = (obj.get("cancellation_details") or {}).get("comment") or ""
    return cancelling and not comment.startswith(CANCELLED_BY)


def _item(item: Obj) -> tuple[str, SubscriptionItem, str, str]:
    """(price address, item, item id, price id); a price autumn-sync does not own is
    `unmanaged:<id>`."""
    price = item.get("price") or {}
    if not isinstance(price, dict):
        price = {"id": price}
    metadata = price.get("metadata") or {}
    address = metadata.get(OWNER_KEY) or unmanaged(price["id"])
    version = int(metadata.get(VERSION_KEY) or 0)
    return address, SubscriptionItem(version, item.get("quantity")), item["id"], price["id"]


def _unique(
    items: list[tuple[str, SubscriptionItem, str, str]],
) -> tuple[tuple[str, SubscriptionItem], ...]:
    """Items by price address (a second item at one address is told apart by its price id)."""
    keyed: dict[str, SubscriptionItem] = {}
    for address, item, _, price_id in items:
        keyed[address if address not in keyed else instance(address, price_id)] = item
    return tuple(sorted(keyed.items()))


def _discount(discount: Any, coupons: Mapping[str, str]) -> tuple[str, str]:
    """(discount id, coupon address); the coupon is `source.coupon` (or `coupon`, as older
    API versions show it)."""
    if not isinstance(discount, dict):
        return str(discount), ""
    coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
    coupon_id = _id(coupon)
    return discount["id"], coupons.get(coupon_id, unmanaged(coupon_id))


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _date(timestamp: Any) -> date | None:
    if not isinstance(timestamp, int):
        return None
    return datetime.fromtimestamp(timestamp, UTC).date()


def timestamp(day: date) -> int:
    """Midnight UTC of `day`, as Stripe's timestamps count."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
