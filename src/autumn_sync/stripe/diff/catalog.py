"""The Stripe diff: owned objects as Stripe holds them (`existing`) against what the catalog
maps to (`desired`). Pure: no I/O.

Prices, coupons and promotion codes have immutable terms (a code's coupon and restrictions):
a change of terms is a `Replace`. Nothing is ever
deleted: objects the catalog no longer needs are archived (a meter deactivated, a promotion
code deactivated, a coupon marked archived and its codes deactivated). A price that a plan
version with customers still bills stays active while the plan is offered, and so does its
product; the meter its usage is reported to stays active as long as customers are billed
through it, even once the plan is archived (a deactivated meter rejects usage events).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from autumn_sync.model.address import Address, Kind, instance, named
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
from autumn_sync.plan.fields import field_changes

OWN_PRICE_UNUSED = "a customer's own price that no subscription bills any more"
S = TypeVar("S", StripeProduct, StripePrice, StripeMeter, StripeCoupon, StripePromotionCode)


@dataclass(frozen=True)
class DiffInputs:
    """What the Stripe diff needs besides the two states: the product names last written to
    Stripe (a dashboard rename is cosmetic unless the file's name changed), the plan versions
    customers are on once the catalog changes are applied (the prices those versions bill
    stay active), and each offered plan's version after apply."""

    written_names: Mapping[str, str] = field(default_factory=dict)
    versions_in_use: Mapping[str, frozenset[int]] = field(default_factory=dict)
    versions_after: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Retained:
    """Existing objects kept active although the catalog no longer maps to them."""

    prices: Mapping[str, str]  # Stripe id → for whom it stays active
    products: frozenset[str]  # addresses
    meters: frozenset[str]  # addresses


def diff_stripe(existing: StripeState, desired: StripeState, ctx: DiffInputs) -> list[Change]:
    """The Stripe changes, unordered (the caller orders them with the catalog's)."""
    keep = retained(existing, desired, ctx)
    prices = list(_prices(existing, desired, keep))
    coupons = list(_coupons(existing, desired))
    replaced_coupons = {c.address for c in coupons if isinstance(c, Replace)}
    return [
        *_simple(_unless_kept(existing.meters, keep.meters, desired.meters), desired.meters),
        *_products(existing, desired, ctx, keep, prices),
        *prices,
        *coupons,
        *_promotion_codes(existing, desired, replaced_coupons),
        *_superseded(existing, keep),
        *_older_versions(existing, desired),
    ]


def retained(existing: StripeState, desired: StripeState, ctx: DiffInputs) -> Retained:
    """The prices customers' plan versions still pay (kept while their plan is offered), the
    products of those prices, and the meters of every billed price."""
    billed = _billed(existing, ctx)
    offered = [(p, whom) for p, whom in billed if _product_of_plan(p) in desired.products]
    meters = (p.recurring.meter for p, _ in billed if p.recurring is not None)
    return Retained(
        prices={p.stripe_id: whom for p, whom in offered if p.stripe_id},
        products=frozenset(p.product for p, _ in offered if p.active),
        meters=frozenset(m for m in meters if m),
    )


def _billed(existing: StripeState, ctx: DiffInputs) -> list[tuple[StripePrice, str]]:
    """Each price that a plan version with customers bills, with those customers named (a
    customer's own price, `stripe_price.pro.base[user_1]`, is wanted while that customer's
    subscription bills it, and not otherwise)."""
    siblings: dict[str, list[StripePrice]] = defaultdict(list)
    for price in (*existing.prices.values(), *existing.superseded):
        if not _own_price(price.address):
            siblings[price.address].append(price)
    billed = []
    for prices in siblings.values():
        for price in prices:
            versions = _billed_versions(price, prices, ctx)
            if versions:
                billed.append((price, _customers_on(versions)))
    return billed


def _billed_versions(price: StripePrice, siblings: list[StripePrice], ctx: DiffInputs) -> list[int]:
    """The versions with customers that `price` bills. A price made for version v bills v and
    the versions after it, up to the one before the next price at its address, or, for the
    newest, up to the one before the plan's version after apply (not known, or the plan is
    no longer offered: every later version)."""
    plan_id = _plan_id(price.address)
    later = [p.version for p in siblings if p.version > price.version]
    after = ctx.versions_after.get(plan_id)
    last = min(later) - 1 if later else (after - 1 if after is not None else None)
    in_use = ctx.versions_in_use.get(plan_id, frozenset())
    return sorted(v for v in in_use if v >= price.version and (last is None or v <= last))


def _customers_on(versions: list[int]) -> str:
    if len(versions) == 1:
        return f"the customers on version {versions[0]}"
    listed = ", ".join(str(v) for v in versions[:-1])
    return f"the customers on versions {listed} and {versions[-1]}"


def _plan_id(address: str) -> str:
    """`stripe_price.pro.messages` → `pro`."""
    return str(Address.parse(address).key)


def _own_price(address: str) -> bool:
    """Whether the price at `address` is one customer's (`stripe_price.pro.base[user_1]`)."""
    return Address.parse(address).index is not None


def _product_of_plan(price: StripePrice) -> str:
    return named(Kind.STRIPE_PRODUCT, _plan_id(price.address))


def _unless_kept(
    existing: Mapping[str, S], kept: frozenset[str], desired: Mapping[str, S]
) -> dict[str, S]:
    """`existing` without the objects kept active that the catalog no longer maps to."""
    return {a: r for a, r in existing.items() if a in desired or a not in kept}


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


def _products(
    existing: StripeState,
    desired: StripeState,
    ctx: DiffInputs,
    keep: Retained,
    prices: list[Change],
) -> Iterator[Change]:
    """Products; the default price is set by the price's own change when the price is new or
    replaced, and a name differing only because of a dashboard rename is left alone."""
    changing = {c.address for c in prices if not isinstance(c, Archive)}
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
    yield from _simple(_unless_kept(existing.products, keep.products, wanted), wanted)


def _prices(existing: StripeState, desired: StripeState, keep: Retained) -> Iterator[Change]:
    for old, new in _pairs(existing.prices, desired.prices):
        if old is None and new is not None:
            yield Create(new.address, None, new)
        elif new is None and old is not None:
            if old.active and old.stripe_id not in keep.prices:
                reason = OWN_PRICE_UNUSED if _own_price(old.address) else "not in the catalog"
                yield Archive(old.address, old, replace(old, active=False), reason=reason)
        elif old is not None and new is not None:
            yield from _price_change(old, new, keep)


def _price_change(old: StripePrice, new: StripePrice, keep: Retained) -> Iterator[Change]:
    new = replace(new, stripe_id=old.stripe_id)
    if old.terms() != new.terms():
        kept = keep.prices.get(old.stripe_id or "")
        reason = "price terms cannot change in Stripe; a new price takes over, the old one "
        reason += f"stays active for {kept}" if kept else "is archived"
        fields = field_changes(old, replace(new, active=True))
        yield Replace(new.address, old, replace(new, stripe_id=None), fields, reason, keep_old=kept)
        return
    comparable = replace(new, version=old.version)
    fields = _ownership(old) + field_changes(old, comparable)
    if fields:
        yield Update(new.address, old, comparable, fields)


def _older_versions(existing: StripeState, desired: StripeState) -> Iterator[Change]:
    """A price for each older version with customers that Stripe lacks: the price billing a
    version is the newest of its address made for it or before, and it must have the
    version's terms (Stripe was connected after the version was made, or a later version
    changed them while it was not)."""
    made: dict[str, list[StripePrice]] = defaultdict(list)
    for price in (*existing.prices.values(), *existing.superseded):
        made[price.address].append(price)
    for address, wanted in sorted(desired.versions.items()):
        earlier = [p for p in made[wanted.address] if p.version <= wanted.version]
        billing = max(earlier, key=lambda p: p.version, default=None)
        if billing is None or billing.terms() != wanted.terms():
            reason = f"the customers on version {wanted.version}"
            yield Create(address, None, wanted, reason=reason)


def _superseded(existing: StripeState, keep: Retained) -> Iterator[Change]:
    """Older prices of an address that are still active: archived unless a plan version with
    customers still bills them (and the plan is still offered)."""
    for price in existing.superseded:
        if price.active and price.stripe_id not in keep.prices:
            address = instance(price.address, str(price.stripe_id))
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
            same = replace(new, coupon_id=old.coupon_id, stripe_id=old.stripe_id)
            same = replace(same, applies_to=_applies_to(old, new, desired))
            if old.terms() != same.terms():
                made = replace(new, coupon_id=_next_coupon_id(existing, new))
                reason = "coupon terms cannot change in Stripe; a new coupon takes over, "
                reason += "the old one is archived"
                yield Replace(new.address, old, made, field_changes(old, made), reason)
            elif fields := _ownership(old) + field_changes(old, same):
                yield Update(new.address, old, same, fields)


def _applies_to(old: StripeCoupon, new: StripeCoupon, desired: StripeState) -> tuple[str, ...]:
    """The products a kept coupon applies to: the existing ones when they cover every wanted
    product and the others are no longer sold (a usage price removed from a plan archives its
    product: the coupon need not be replaced for it); the wanted ones otherwise."""
    extra = set(old.applies_to) - set(new.applies_to)
    sold = {a for a, p in desired.products.items() if p.active}
    if set(new.applies_to) <= set(old.applies_to) and not extra & sold:
        return old.applies_to
    return new.applies_to


def _next_coupon_id(existing: StripeState, coupon: StripeCoupon) -> str:
    """A replacement coupon's id: the reward's id and the generation (`launch20-v2`); the
    old coupon keeps its id (it is marked archived, never deleted)."""
    made = existing.generations.get(coupon.address, 1)
    return f"{coupon.coupon_id}-v{made + 1}"


RESTRICTIONS_FIXED = (
    "promotion code restrictions cannot change in Stripe; a new code of the same text takes"
    " over (its redemptions count from zero), the old one is deactivated"
)


def _promotion_codes(
    existing: StripeState, desired: StripeState, replaced_coupons: set[str]
) -> Iterator[Change]:
    """A code whose coupon is replaced, or whose coupon or restrictions change, is replaced
    (the old one deactivated first, then a new one of the same text made); the others are
    made, reactivated or deactivated."""
    for old, new in _pairs(existing.promotion_codes, desired.promotion_codes):
        if old is not None and new is not None and new.coupon in replaced_coupons:
            reason = "its coupon is replaced: the code moves to the new coupon"
            yield Replace(new.address, old, new, _restriction_changes(old, new), reason)
        elif old is not None and new is not None and old.coupon != new.coupon:
            reason = "a promotion code's coupon cannot change in Stripe; a new code takes over"
            yield Replace(new.address, old, new, field_changes(old, new), reason)
        elif old is not None and new is not None and old.restrictions() != new.restrictions():
            yield Replace(new.address, old, new, _restriction_changes(old, new), RESTRICTIONS_FIXED)
        else:
            yield from _simple({old.address: old} if old else {}, {new.address: new} if new else {})


def _restriction_changes(
    old: StripePromotionCode, new: StripePromotionCode
) -> tuple[FieldChange, ...]:
    """How the restrictions of a code made again differ (whether the old one was active or
    not: it is deactivated either way)."""
    return field_changes(replace(old, active=new.active), new)
