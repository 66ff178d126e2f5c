"""The Stripe diff: owned objects as Stripe holds them (`existing`) against what the catalog
maps to (`desired`). Pure: no I/O.

Prices and coupons have immutable terms: a change of terms is a `Replace`. Nothing is ever
deleted: objects the catalog no longer needs are archived (a meter deactivated, a promotion
code deactivated, a coupon marked archived and its codes deactivated). Older prices of a plan
version that customers are on stay active for them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from autumn_sync.diff.catalog import field_changes
from autumn_sync.model.stripe import (
    OWNER_KEY,
    StripeCoupon,
    StripeMeter,
    StripePrice,
    StripeProduct,
    StripePromotionCode,
    StripeRecord,
    StripeState,
)
from autumn_sync.plan.changes import Archive, Change, Create, FieldChange, Replace, Update

S = TypeVar("S", StripeProduct, StripePrice, StripeMeter, StripeCoupon, StripePromotionCode)


@dataclass(frozen=True)
class Context:
    """What the Stripe diff needs besides the two states: the product names last written to
    Stripe (a dashboard rename is cosmetic unless the file's name changed) and the plan
    versions customers are on (their prices stay active)."""

    written_names: Mapping[str, str] = field(default_factory=dict)
    versions_in_use: Mapping[str, frozenset[int]] = field(default_factory=dict)


def diff_stripe(existing: StripeState, desired: StripeState, ctx: Context) -> list[Change]:
    """The Stripe changes, unordered (the caller orders them with the catalog's)."""
    replaced_coupons = {c.address for c in _coupons(existing, desired) if isinstance(c, Replace)}
    return [
        *_simple(existing.meters, desired.meters),
        *_products(existing, desired, ctx),
        *_prices(existing, desired, ctx),
        *_coupons(existing, desired),
        *_promotion_codes(existing, desired, replaced_coupons),
        *_superseded(existing, desired, ctx),
    ]


def _pairs(
    existing: Mapping[str, S], desired: Mapping[str, S]
) -> Iterator[tuple[S | None, S | None]]:
    for address in sorted(set(existing) | set(desired)):
        yield existing.get(address), desired.get(address)


def _simple(existing: Mapping[str, S], desired: Mapping[str, S]) -> Iterator[Change]:
    """Create what is missing, update in place what differs, archive what is not wanted."""
    for old, new in _pairs(existing, desired):
        if old is None and new is not None:
            yield Create(new.address, None, new)
        elif new is None and old is not None:
            if _active(old):
                yield Archive(
                    old.address, old, replace(old, active=False), reason="not in the catalog"
                )
        elif old is not None and new is not None:
            fields = _ownership(old) + field_changes(old, replace(new, stripe_id=old.stripe_id))
            if fields:
                yield Update(new.address, old, replace(new, stripe_id=old.stripe_id), fields)


def _ownership(old: StripeRecord) -> tuple[FieldChange, ...]:
    """Writing the ownership metadata back on an object that lost it outside the tool."""
    if getattr(old, "owned", True):
        return ()
    return (FieldChange(f"metadata.{OWNER_KEY}", None, old.address),)


def _active(record: StripeRecord) -> bool:
    return bool(getattr(record, "active", True))


def _products(existing: StripeState, desired: StripeState, ctx: Context) -> Iterator[Change]:
    """Products; the default price is set by the price's own change when the price is new or
    replaced, and a name differing only because of a dashboard rename is left alone."""
    changing = {c.address for c in _prices(existing, desired, ctx) if not isinstance(c, Archive)}
    wanted = {}
    for address, product in desired.products.items():
        old = existing.products.get(address)
        if old is not None:
            written = ctx.written_names.get(address)
            if written is not None and written == product.name and old.name != product.name:
                product = replace(product, name=old.name)
            if product.default_price in changing:
                product = replace(product, default_price=old.default_price)
        elif product.default_price in changing:
            product = replace(product, default_price=None)
        wanted[address] = product
    yield from _simple(existing.products, wanted)


def _prices(existing: StripeState, desired: StripeState, ctx: Context) -> Iterator[Change]:
    for old, new in _pairs(existing.prices, desired.prices):
        if old is None and new is not None:
            yield Create(new.address, None, new)
        elif new is None and old is not None:
            if old.active:
                yield Archive(
                    old.address, old, replace(old, active=False), reason="not in the catalog"
                )
        elif old is not None and new is not None:
            yield from _price_change(old, new, ctx)


def _price_change(old: StripePrice, new: StripePrice, ctx: Context) -> Iterator[Change]:
    new = replace(new, stripe_id=old.stripe_id)
    if old.terms() != new.terms():
        keep = _kept_for(old, ctx)
        reason = "price terms are immutable in Stripe"
        if keep:
            reason += f"; the old price stays active for {keep}"
        fields = field_changes(old, replace(new, active=True))
        yield Replace(new.address, old, replace(new, stripe_id=None), fields, reason, keep_old=keep)
        return
    comparable = replace(new, version=old.version)
    fields = _ownership(old) + field_changes(old, comparable)
    if fields:
        yield Update(new.address, old, comparable, fields)


def _kept_for(price: StripePrice, ctx: Context) -> str | None:
    plan_id = price.address.split(".")[1]
    if price.version in ctx.versions_in_use.get(plan_id, frozenset()):
        return f"the customers on version {price.version}"
    return None


def _superseded(existing: StripeState, desired: StripeState, ctx: Context) -> Iterator[Change]:
    """Older prices of an address that are still active: archived unless their plan version
    has customers (and the plan is still offered)."""
    for price in existing.superseded:
        plan_offered = price.address.replace("stripe_price.", "stripe_product.", 1).rsplit(".", 1)[
            0
        ]
        keep = _kept_for(price, ctx) and plan_offered in desired.products
        if price.active and not keep:
            address = f"{price.address}#{price.stripe_id}"
            yield Archive(address, price, replace(price, active=False), reason="an older price")


def _coupons(existing: StripeState, desired: StripeState) -> Iterator[Change]:
    for old, new in _pairs(existing.coupons, desired.coupons):
        if old is None and new is not None:
            yield Create(new.address, None, new)
        elif new is None and old is not None:
            if old.active:
                archived = replace(old, active=False)
                yield Archive(old.address, old, archived, reason="its promotion codes stop working")
        elif old is not None and new is not None:
            new = replace(new, coupon_id=old.coupon_id, stripe_id=old.stripe_id)
            if old.terms() != new.terms():
                fields = field_changes(old, new)
                reason = "coupon terms are immutable in Stripe: a new coupon replaces it"
                yield Replace(new.address, old, replace(new, stripe_id=None), fields, reason)
            elif fields := _ownership(old) + field_changes(old, new):
                yield Update(new.address, old, new, fields)


def _promotion_codes(
    existing: StripeState, desired: StripeState, replaced_coupons: set[str]
) -> Iterator[Change]:
    for old, new in _pairs(existing.promotion_codes, desired.promotion_codes):
        if old is not None and new is not None and new.coupon in replaced_coupons:
            reason = "its coupon is replaced"
            yield Replace(new.address, old, new, (), reason)
        else:
            yield from _simple({old.address: old} if old else {}, {new.address: new} if new else {})
