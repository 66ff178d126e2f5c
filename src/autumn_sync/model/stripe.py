"""Records of the Stripe objects autumn-sync owns, desired and current alike.

Amounts are `Decimal` minor units (cents for USD). Each record has a stable `address`
(`stripe_product.pro`, `stripe_price.pro.base`, …); references between Stripe objects are
by address, and the reader resolves Stripe ids into addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

from autumn_sync.model.address import Kind, versioned
from autumn_sync.model.state import Record

OWNER_KEY = "autumn_sync_address"
VERSION_KEY = "autumn_sync_version"
ARCHIVED_KEY = "autumn_sync_archived"  # a coupon or customer no longer wanted (kept)
PLAN_KEY = "autumn_sync_plan"  # a subscription's plan and entity
ENTITY_KEY = "autumn_sync_entity"
REWARDS_KEY = "autumn_sync_rewards"  # the rewards whose coupons were applied, comma-separated
# How autumn-sync signs the subscriptions it cancels (`cancellation_details.comment`): any
# other cancellation was the customer's or someone's in the dashboard.
CANCELLED_BY = "autumn-sync: "


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

    kind: ClassVar[Kind] = Kind.STRIPE_PRODUCT

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
    lookup_key: str | None  # None: a customer's own price (Stripe takes no empty key)
    version: int
    unit_amount_decimal: Decimal | None = None
    recurring: Recurring | None = None
    tiers: tuple[StripeTier, ...] = ()
    tiers_mode: str | None = None
    active: bool = True
    stripe_id: str | None = None
    owned: bool = True  # False: its ownership metadata was removed outside the tool

    kind: ClassVar[Kind] = Kind.STRIPE_PRICE

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

    kind: ClassVar[Kind] = Kind.STRIPE_METER

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

    kind: ClassVar[Kind] = Kind.STRIPE_COUPON

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
    """Only `active` (and metadata) can change on a promotion code; its coupon and its
    restrictions (`max_redemptions`, `expires_at`, `restrictions.first_time_transaction`) are
    set when it is made: another one replaces it (a new code of the same text)."""

    address: str
    code: str
    coupon: str  # address
    active: bool = True
    stripe_id: str | None = None
    owned: bool = True  # False: its ownership metadata was removed outside the tool
    max_redemptions: int | None = None
    expires_at: datetime | None = None  # UTC, whole seconds (Stripe's Unix timestamp)
    first_time_transaction: bool = False

    kind: ClassVar[Kind] = Kind.STRIPE_PROMOTION_CODE

    def restrictions(self) -> tuple[object, ...]:
        """What limits its redemptions: fixed when Stripe makes the code."""
        return (self.max_redemptions, self.expires_at, self.first_time_transaction)

    def claims(self) -> tuple[str, ...]:
        """Stripe allows one active code of a text (any case) at a time."""
        return (f"promotion_code:{self.code.lower()}",)

    def references(self) -> tuple[str, ...]:
        return (self.coupon,)


@dataclass(frozen=True, slots=True)
class StripeCustomer:
    """A customer the file manages, as a Stripe customer (`stripe_customer.user_123`).

    `owner` is the address its ownership metadata names (another one when the file renamed
    the customer, none on a linked customer not written yet); `recorded` is the Stripe id the
    database holds for the customer (in the desired record: the one it should hold)."""

    address: str
    email: str | None = None
    name: str | None = None
    active: bool = True  # False: the customer left the file (marked, never deleted)
    owner: str | None = None
    recorded: str | None = None
    has_payment_method: bool = False
    stripe_id: str | None = None

    kind: ClassVar[Kind] = Kind.STRIPE_CUSTOMER

    @property
    def owned(self) -> bool:
        return self.owner == self.address

    def references(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class SubscriptionItem:
    """What a subscription bills at one price address: the plan version the price was made
    for and the quantity (None for a metered price, billed on usage)."""

    version: int
    quantity: int | None = None


@dataclass(frozen=True, slots=True)
class Phase:
    """What a subscription bills from `start` on, through a Stripe subscription schedule: the
    lower plan of a downgrade from the end of the paid period, a plan whose start is ahead."""

    start: date
    plans: tuple[str, ...] = ()
    items: tuple[tuple[str, SubscriptionItem], ...] = ()
    trial_end: date | None = None  # a free trial of its plans, as the database has it


@dataclass(frozen=True, slots=True)
class StripeSubscription:
    """The paid plans of a customer (or of one of its entities) billed at one interval, as
    one Stripe subscription (`stripe_subscription.user_123.month`,
    `stripe_subscription.user_123.year[team-a]`): a base plan and its add-ons.

    `items` are keyed by price address (a customer's own price of a custom version is
    `stripe_price.pro.base[user_123]`); `coupons` are the rewards' coupons applied to it (by
    address, as recorded in its metadata: a coupon that ran out stays applied). `trial_end`
    is set when it is made and not compared afterwards. `active` is False once it cancels at
    period end. `proration` is how a change of its items is billed (Stripe's
    `proration_behavior`, from `settings.billing.upgrades`): not compared."""

    address: str
    customer: str  # address of the Stripe customer
    plans: tuple[str, ...] = ()
    entity: str | None = None
    items: tuple[tuple[str, SubscriptionItem], ...] = ()
    collection_method: str = "charge_automatically"
    days_until_due: int | None = None
    coupons: tuple[str, ...] = ()
    trial_end: date | None = None
    active: bool = True
    owner: str | None = None
    recorded: str | None = None
    status: str | None = None  # current only: Stripe's status (`canceled` when it ended)
    stripe_id: str | None = None
    proration: str = "always_invoice"
    scope: tuple[str, ...] = ()  # plans and groups (`group:main`) it bills: not compared
    records: tuple[str, ...] = ()  # the plans whose row records its id: not compared
    # current only: ended, or set to end, by someone else than autumn-sync (the customer in
    # the portal, the dashboard, dunning): subscribing again charges a customer who left
    cancelled_outside: bool = False
    # current only: the day it ended or ends, when it is cancelled (Stripe's `ended_at`, else
    # `cancel_at`, else the end of the current period): not compared
    ends_on: date | None = None
    # its trial needs no payment method (`free_trial.card_required: false`), and then ends
    # with none as `on_end` says (cancel | bill): not compared
    card_required: bool = True
    on_end: str = "cancel"
    # what it bills from a date ahead (a subscription schedule's next phase); with no items
    # it has not begun: a schedule that makes the subscription on that date
    then: Phase | None = None

    kind: ClassVar[Kind] = Kind.STRIPE_SUBSCRIPTION

    @property
    def owned(self) -> bool:
        return self.owner == self.address

    def claims(self) -> tuple[str, ...]:
        """A customer's plan (or group) is billed by one subscription at a time: one taking
        over another's (a plan change to another interval) is made once that one ended,
        so the unused time credited pays toward it."""
        return tuple(f"billing:{self.customer}:{self.entity or ''}:{s}" for s in self.scope)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def references(self) -> tuple[str, ...]:
        # an item of an older version waits for its price when this plan makes it
        items = (*self.items, *(self.then.items if self.then is not None else ()))
        older = (versioned(price, item.version) for price, item in items)
        prices = dict.fromkeys(price for price, _ in items)
        return (self.customer, *prices, *older, *self.coupons)


ENDED = frozenset({"canceled", "incomplete_expired"})
NOT_STARTED = "not_started"  # a schedule that makes its subscription on a date ahead


def subscription_scope(plans: Iterable[str], groups: Mapping[str, str]) -> tuple[str, ...]:
    """The plans (`plan:pro`) and groups (`group:main`) a subscription bills, sorted (see
    `StripeSubscription.claims`); `groups` gives each grouped plan's group."""
    found = {f"plan:{p}" for p in plans}
    found |= {f"group:{groups[p]}" for p in plans if p in groups}
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class SubscriptionParts:
    """What applying a change to an existing subscription needs beyond its record: its
    customer, its items' ids and prices, and its discounts with their coupons."""

    customer_id: str
    items: tuple[tuple[str, str, str], ...] = ()  # (price address, item id, price id)
    discounts: tuple[tuple[str, str], ...] = ()  # (discount id, coupon address)
    schedule: str | None = None  # the subscription schedule it is under (`sub_sched_…`)
    phase_start: int | None = None  # when the schedule's phase in force began (a timestamp)
    period_end: int | None = None  # when the current billing period ends (a timestamp)


StripeRecord = (
    StripeProduct
    | StripePrice
    | StripeMeter
    | StripeCoupon
    | StripePromotionCode
    | StripeCustomer
    | StripeSubscription
)


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
    customers: dict[str, StripeCustomer] = field(default_factory=dict)
    subscriptions: dict[str, StripeSubscription] = field(default_factory=dict)
    # Read from Stripe before planning gives them addresses (see `stripe.assign`): every
    # customer and subscription listed, owned or not.
    found_customers: tuple[StripeCustomer, ...] = ()
    found_subscriptions: tuple[StripeSubscription, ...] = ()
    parts: dict[str, SubscriptionParts] = field(default_factory=dict)  # by subscription id
    # Desired only: the prices of the older plan versions customers stay on, by their
    # versioned address (`stripe_price.pro.base.v1`); made when Stripe lacks them.
    versions: dict[str, StripePrice] = field(default_factory=dict)
    unmanaged_customers: int = 0  # customers and subscriptions the file does not manage
    unmanaged_subscriptions: int = 0

    def kinds(self) -> tuple[dict[str, StripeRecord], ...]:
        return (
            self.meters,
            self.products,
            self.prices,
            self.coupons,  # type: ignore[return-value]
            self.promotion_codes,
            self.customers,
            self.subscriptions,
        )


@dataclass(frozen=True)
class StripeSnapshot:
    """The two Stripe states a plan was made from; apply needs both (ids, defaults)."""

    existing: StripeState
    desired: StripeState
    fingerprint: str  # of `existing`: a saved plan made against other Stripe objects is stale


AnyRecord = Record | StripeRecord  # what a change can be about
