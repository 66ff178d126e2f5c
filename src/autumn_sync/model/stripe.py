"""Records of the Stripe objects autumn-sync owns, desired and current alike.

Amounts are `Decimal` minor units (cents for USD). Each record has a stable `address`
(`stripe_product.pro`, `stripe_price.pro.base`, …); references between Stripe objects are
by address, and the reader resolves Stripe ids into addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from autumn_sync.model.state import Record

OWNER_KEY = "autumn_sync_address"
VERSION_KEY = "autumn_sync_version"


@dataclass(frozen=True, slots=True)
class StripeTier:
    up_to: int | None  # None is "inf"
    unit_amount_decimal: Decimal


@dataclass(frozen=True, slots=True)
class Recurring:
    interval: str  # day | week | month | year
    interval_count: int = 1
    usage_type: str = "licensed"  # licensed | metered
    meter: str | None = None  # address of the billing meter (metered only)


@dataclass(frozen=True, slots=True)
class StripeProduct:
    address: str
    name: str
    description: str | None = None
    active: bool = True
    default_price: str | None = None  # address of the default price
    default_price_id: str | None = None  # current only: which price object exactly
    stripe_id: str | None = None
    owned: bool = True  # False: its ownership metadata was removed outside the tool

    def references(self) -> tuple[str, ...]:
        # The default price is set by the price's own change (the price needs the product
        # first), so it is not an ordering dependency.
        return ()


@dataclass(frozen=True, slots=True)
class StripePrice:
    """A price's terms (currency, amounts, recurring, tiers) are immutable in Stripe: a
    change of terms is a replace. `version` is the plan version the price belongs to."""

    address: str
    product: str  # address
    currency: str
    lookup_key: str
    version: int
    unit_amount_decimal: Decimal | None = None
    recurring: Recurring | None = None
    tiers: tuple[StripeTier, ...] = ()
    tiers_mode: str | None = None
    active: bool = True
    stripe_id: str | None = None
    owned: bool = True  # False: its ownership metadata was removed outside the tool

    def references(self) -> tuple[str, ...]:
        meter = self.recurring.meter if self.recurring else None
        return (self.product, meter) if meter else (self.product,)

    def terms(self) -> tuple[object, ...]:
        """What Stripe never lets change on a price."""
        return (
            self.currency,
            self.unit_amount_decimal,
            self.recurring,
            self.tiers,
            self.tiers_mode,
            self.product,
        )


@dataclass(frozen=True, slots=True)
class StripeMeter:
    address: str
    display_name: str
    event_name: str
    active: bool = True
    stripe_id: str | None = None

    def references(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class StripeCoupon:
    """Only `name` can change on a coupon; other changes replace it (a new coupon id)."""

    address: str
    coupon_id: str
    duration: str
    name: str | None = None
    percent_off: Decimal | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration_in_months: int | None = None
    applies_to: tuple[str, ...] = ()  # product addresses
    active: bool = True  # False once archived (coupons cannot be archived in Stripe itself)
    stripe_id: str | None = None
    owned: bool = True  # False: its ownership metadata was removed outside the tool

    def references(self) -> tuple[str, ...]:
        return self.applies_to

    def terms(self) -> tuple[object, ...]:
        return (
            self.percent_off,
            self.amount_off,
            self.currency,
            self.duration,
            self.duration_in_months,
            self.applies_to,
        )


@dataclass(frozen=True, slots=True)
class StripePromotionCode:
    address: str
    code: str
    coupon: str  # address
    active: bool = True
    stripe_id: str | None = None
    owned: bool = True  # False: its ownership metadata was removed outside the tool

    def claims(self) -> tuple[str, ...]:
        """Stripe allows one active code of a text (any case) at a time."""
        return (f"promotion_code:{self.code.lower()}",)

    def references(self) -> tuple[str, ...]:
        return (self.coupon,)


StripeRecord = StripeProduct | StripePrice | StripeMeter | StripeCoupon | StripePromotionCode


@dataclass(frozen=True, slots=True)
class UnmanagedObject:
    """A Stripe object without autumn-sync's ownership metadata: listed, never touched."""

    kind: str  # products, prices, meters, coupons, promotion_codes
    stripe_id: str
    label: str  # its name, nickname, code or event name


@dataclass(frozen=True)
class StripeState:
    """Owned Stripe objects by address. In the current state, `superseded` holds older
    prices of an address (earlier versions or generations) and `unmanaged` counts the
    objects without autumn-sync's ownership metadata, by kind."""

    products: dict[str, StripeProduct] = field(default_factory=dict)
    prices: dict[str, StripePrice] = field(default_factory=dict)
    meters: dict[str, StripeMeter] = field(default_factory=dict)
    coupons: dict[str, StripeCoupon] = field(default_factory=dict)
    promotion_codes: dict[str, StripePromotionCode] = field(default_factory=dict)
    superseded: tuple[StripePrice, ...] = ()
    unmanaged: tuple[UnmanagedObject, ...] = ()
    generations: dict[str, int] = field(default_factory=dict)  # objects ever made per address
    recorded: dict[str, str] = field(default_factory=dict)  # address → id the database holds

    def kinds(self) -> tuple[dict[str, StripeRecord], ...]:
        return (
            self.meters,
            self.products,
            self.prices,
            self.coupons,  # type: ignore[return-value]
            self.promotion_codes,
        )


@dataclass(frozen=True)
class StripeSnapshot:
    """The two Stripe states a plan was made from; apply needs both (ids, defaults)."""

    existing: StripeState
    desired: StripeState
    fingerprint: str  # of `existing`: a saved plan made against other Stripe objects is stale


AnyRecord = Record | StripeRecord  # what a change can be about
