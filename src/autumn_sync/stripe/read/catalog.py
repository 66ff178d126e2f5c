"""Reads the Stripe objects autumn-sync owns, through list endpoints only (`limit=100`,
`expand` for price tiers, coupon products and subscription discounts): the number of
requests is the number of pages, never one per object. Owned objects carry
`autumn_sync_address` in their metadata (meters, which have no metadata, are owned by their
`autumn_sync.` event name); customers and subscriptions are all read, and planning tells
which are the file's (`stripe.assign`)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from autumn_sync.model.address import instance, unmanaged
from autumn_sync.model.money import canonical
from autumn_sync.model.stripe import (
    ARCHIVED_KEY,
    OWNER_KEY,
    VERSION_KEY,
    Recurring,
    StripeCoupon,
    StripeMeter,
    StripePrice,
    StripeProduct,
    StripePromotionCode,
    StripeState,
    StripeTier,
    UnmanagedObject,
)
from autumn_sync.stripe.gateway import Gateway
from autumn_sync.stripe.map.catalog import METER_PREFIX, meter_address
from autumn_sync.stripe.read.customers import read_customers, read_subscriptions

__all__ = ["ARCHIVED_KEY", "METER_PREFIX", "read_stripe"]
Obj = dict[str, Any]
log = logging.getLogger(__name__)


def read_stripe(gateway: Gateway, recorded: Mapping[str, str] | None = None) -> StripeState:
    """The owned Stripe objects, current prices by address and older ones as superseded.

    `recorded` (address → Stripe id, from the database) lets an object whose ownership
    metadata was removed outside the tool be recognised (`owned=False`) rather than made
    again: the plan then writes the metadata back."""
    requests_before = gateway.requests
    unmanaged: list[UnmanagedObject] = []
    adopt = {stripe_id: address for address, stripe_id in (recorded or {}).items()}
    meters = _meters(gateway, unmanaged)

    def owned(path: str, kind: str, **params: Any) -> list[Obj]:
        return _owned(gateway.list_all(path, **params), kind, unmanaged, adopt)

    products = owned("/v1/products", "products")
    prices = owned("/v1/prices", "prices", expand=["data.tiers"])
    coupons = owned("/v1/coupons", "coupons", expand=["data.applies_to"])
    promos = owned("/v1/promotion_codes", "promotion_codes")
    names = _addresses(products, prices, coupons, meters)
    records = [_price(p, names) for p in prices]
    versions = {str(p.stripe_id): (p.address, p.version) for p in records}
    current, superseded = _pick_prices(records)
    for old in superseded:  # a default price left on an older price (a run died) is not current
        names[str(old.stripe_id)] = instance(old.address, str(old.stripe_id))
    counts = Counter(o["metadata"][OWNER_KEY] for o in (*prices, *coupons))
    customers = read_customers(gateway)
    subscriptions, parts = read_subscriptions(gateway, names, versions)
    log.info(
        "read Stripe in %d requests: %d products, %d prices, %d meters, %d coupons, "
        "%d promotion codes owned; %d customers, %d subscriptions",
        gateway.requests - requests_before,
        len(products),
        len(prices),
        len(meters),
        len(coupons),
        len(promos),
        len(customers),
        len(subscriptions),
    )
    return StripeState(
        products={r.address: r for r in (_product(p, names) for p in products)},
        prices=current,
        meters={m.address: m for m in meters.values()},
        coupons=_newest_active([_coupon(c, names) for c in _by_created(coupons)]),
        promotion_codes=_newest_active([_promo(p, names) for p in _by_created(promos)]),
        superseded=superseded,
        unmanaged=tuple(unmanaged),
        generations=dict(counts),
        recorded=dict(recorded or {}),
        found_customers=customers,
        found_subscriptions=subscriptions,
        parts=parts,
    )


def _by_created(objects: list[Obj]) -> list[Obj]:
    return sorted(objects, key=lambda o: (o.get("created") or 0, o["id"]))


R = TypeVar("R", StripeCoupon, StripePromotionCode)


def _newest_active(records: list[R]) -> dict[str, R]:
    """Per address, an active object wins over inactive ones, a newer over an older
    (`records` come oldest first)."""
    current: dict[str, R] = {}
    for record in records:
        held = current.get(record.address)
        if held is None or record.active or not held.active:
            current[record.address] = record
    return current


ORPHAN_KEY = "__orphaned"  # set on objects recognised by their recorded id only


def _owned(
    objects: Any, kind: str, unmanaged: list[UnmanagedObject], adopt: Mapping[str, str]
) -> list[Obj]:
    owned = []
    for obj in objects:
        if (obj.get("metadata") or {}).get(OWNER_KEY):
            owned.append(obj)
        elif obj["id"] in adopt:
            metadata = {**(obj.get("metadata") or {}), OWNER_KEY: adopt[obj["id"]]}
            owned.append({**obj, "metadata": metadata, ORPHAN_KEY: True})
        else:
            unmanaged.append(UnmanagedObject(kind, obj["id"], _label(obj)))
    return owned


def _label(obj: Obj) -> str:
    for key in ("name", "nickname", "code", "lookup_key", "event_name", "display_name"):
        if obj.get(key):
            return str(obj[key])
    return ""


def _meters(gateway: Gateway, unmanaged: list[UnmanagedObject]) -> dict[str, StripeMeter]:
    meters = {}
    for obj in gateway.list_all("/v1/billing/meters"):
        event = obj.get("event_name") or ""
        if not event.startswith(METER_PREFIX):
            unmanaged.append(UnmanagedObject("meters", obj["id"], _label(obj)))
            continue
        address = meter_address(event)
        meters[obj["id"]] = StripeMeter(
            address=address,
            display_name=obj.get("display_name") or "",
            event_name=event,
            active=obj.get("status") == "active",
            stripe_id=obj["id"],
        )
    return meters


def _addresses(
    products: list[Obj], prices: list[Obj], coupons: list[Obj], meters: dict[str, StripeMeter]
) -> dict[str, str]:
    """Stripe id → address, to turn references into addresses."""
    names = {o["id"]: o["metadata"][OWNER_KEY] for o in (*products, *prices, *coupons)}
    names.update({mid: meter.address for mid, meter in meters.items()})
    return names


def _product(obj: Obj, names: dict[str, str]) -> StripeProduct:
    default = obj.get("default_price")
    if isinstance(default, dict):
        default = default.get("id")
    return StripeProduct(
        address=obj["metadata"][OWNER_KEY],
        name=obj.get("name") or "",
        description=obj.get("description"),
        active=bool(obj.get("active")),
        default_price=names.get(default, unmanaged(default)) if default else None,
        default_price_id=default,
        stripe_id=obj["id"],
        owned=not obj.get(ORPHAN_KEY),
    )


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else canonical(Decimal(str(value)))


def _price(obj: Obj, names: dict[str, str]) -> StripePrice:
    recurring = obj.get("recurring")
    tiers = tuple(
        StripeTier(
            up_to=t.get("up_to"),
            unit_amount_decimal=_decimal(t.get("unit_amount_decimal")) or Decimal(0),
        )
        for t in obj.get("tiers") or ()
    )
    product = str(obj.get("product"))
    return StripePrice(
        address=obj["metadata"][OWNER_KEY],
        product=names.get(product, unmanaged(product)),
        currency=obj.get("currency") or "",
        lookup_key=obj.get("lookup_key") or None,
        version=int(obj["metadata"].get(VERSION_KEY) or 0),
        unit_amount_decimal=None if tiers else _decimal(obj.get("unit_amount_decimal")),
        recurring=_recurring(recurring, names) if recurring else None,
        tiers=tiers,
        tiers_mode=obj.get("tiers_mode") if tiers else None,
        active=bool(obj.get("active")),
        stripe_id=obj["id"],
        owned=not obj.get(ORPHAN_KEY),
    )


def _recurring(obj: Obj, names: dict[str, str]) -> Recurring:
    meter = obj.get("meter")
    return Recurring(
        interval=obj["interval"],
        interval_count=int(obj.get("interval_count") or 1),
        usage_type=obj.get("usage_type") or "licensed",
        meter=names.get(meter, unmanaged(meter)) if meter else None,
    )


def _pick_prices(
    prices: list[StripePrice],
) -> tuple[dict[str, StripePrice], tuple[StripePrice, ...]]:
    """Per address, the price of the newest version is current (an active one before an
    archived one of that version: a price archived in the dashboard is reactivated, not
    replaced by an older one); the rest are superseded."""
    current: dict[str, StripePrice] = {}
    superseded: list[StripePrice] = []
    for price in sorted(prices, key=lambda p: (p.version, p.active), reverse=True):
        if price.address in current:
            superseded.append(price)
        else:
            current[price.address] = price
    return current, tuple(sorted(superseded, key=lambda p: (p.address, p.stripe_id or "")))


def _coupon(obj: Obj, names: dict[str, str]) -> StripeCoupon:
    applies = (obj.get("applies_to") or {}).get("products") or []
    return StripeCoupon(
        address=obj["metadata"][OWNER_KEY],
        coupon_id=obj["id"],
        duration=obj.get("duration") or "once",
        name=obj.get("name"),
        percent_off=_decimal(obj.get("percent_off")),
        amount_off=obj.get("amount_off"),
        currency=obj.get("currency"),
        duration_in_months=obj.get("duration_in_months"),
        applies_to=tuple(sorted(names.get(p, unmanaged(p)) for p in applies)),
        active=obj["metadata"].get(ARCHIVED_KEY) != "true",
        stripe_id=obj["id"],
        owned=not obj.get(ORPHAN_KEY),
    )


def _promo(obj: Obj, names: dict[str, str]) -> StripePromotionCode:
    promotion = obj.get("promotion") or {}
    coupon = promotion.get("coupon")
    if isinstance(coupon, dict):
        coupon = coupon.get("id")
    restrictions = obj.get("restrictions") or {}
    return StripePromotionCode(
        address=obj["metadata"][OWNER_KEY],
        code=obj.get("code") or "",
        coupon=names.get(coupon, unmanaged(coupon)) if coupon else "",
        active=bool(obj.get("active")),
        stripe_id=obj["id"],
        owned=not obj.get(ORPHAN_KEY),
        max_redemptions=obj.get("max_redemptions"),
        expires_at=_moment(obj.get("expires_at")),
        first_time_transaction=bool(restrictions.get("first_time_transaction")),
    )


def _moment(timestamp: Any) -> datetime | None:
    """A Unix timestamp from Stripe as a UTC datetime without tzinfo (as the model keeps
    times)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(int(timestamp), UTC).replace(tzinfo=None)
