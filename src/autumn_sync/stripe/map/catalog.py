"""How the catalog maps to Stripe (as Autumn maps it). Pure: no I/O.

- a plan → a product `stripe_product.<plan>`; its fixed price → `stripe_price.<plan>.base`,
  the product's default price;
- each usage-priced feature of a plan → its own product "Plan – Feature"
  (`stripe_product.<plan>.<feature>`) with its price `stripe_price.<plan>.<feature>`;
  pay-per-use → a billing meter `stripe_meter.<plan>.<feature>` and a metered price, with
  the included usage as a free first tier (graduated or volume alike: a volume price bills
  nothing up to the included amount, then every unit at the rate of the tier the total falls
  in, as Stripe's volume tiers do); pay-per-use of a continuous feature (its usage does not
  reset: seats in use) → a licensed price without a meter, the included units a free first
  tier likewise (`usage report` sets the subscription item's quantity to the usage,
  prorated); prepaid → a licensed price, its included units a free first tier likewise (a
  subscription bills the units the customer holds: only those beyond the included ones
  cost);
- a reward → a coupon `stripe_coupon.<reward>` and its promotion codes
  `stripe_promotion_code.<reward>.<CODE>` with their restrictions (`max_redemptions`,
  `expires_at`, `first_time_transaction`); a reward for some plans applies to every product
  of those plans (base, usage and seat products alike).

Usage prices "amount per N units" become `unit_amount_decimal = amount / N` in minor units.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from autumn_sync.model.address import Address, Kind, named, versioned
from autumn_sync.model.money import canonical, to_minor_units
from autumn_sync.model.records import (
    FeatureType,
    Plan,
    PlanContent,
    PlanItem,
    Reward,
    RewardType,
    TierMode,
    UsageModel,
)
from autumn_sync.model.state import State
from autumn_sync.model.stripe import (
    Recurring,
    StripeCoupon,
    StripeMeter,
    StripePrice,
    StripeProduct,
    StripePromotionCode,
    StripeState,
    StripeTier,
)

STRIPE_PLACES = Decimal("1e-12")  # the precision of `unit_amount_decimal`
BASE = "base"  # the part of a plan's fixed price: `stripe_price.pro.base`
METER_PREFIX = "autumn_sync."  # a meter's event name: the prefix and its address's name

INTERVALS: dict[str, tuple[str, int]] = {
    "day": ("day", 1),
    "week": ("week", 1),
    "month": ("month", 1),
    "quarter": ("month", 3),
    "semi_annual": ("month", 6),
    "year": ("year", 1),
}


def continuous_features(catalog: State) -> frozenset[str]:
    """The metered features whose usage does not reset (`consumable: false`: seats in use):
    billed pay-per-use, Stripe bills them as a subscription item's quantity, not a meter."""
    return frozenset(
        fid
        for fid, feature in catalog.features.items()
        if feature.type is FeatureType.METERED and not feature.consumable
    )


def follows_usage(item: PlanItem, continuous: Set[str]) -> bool:
    """A pay-per-use item of a continuous feature: its Stripe price is licensed, and the
    subscription item's quantity is the usage (`usage report` keeps it so)."""
    return (
        item.price is not None
        and item.price.billing is UsageModel.PAY_PER_USE
        and item.feature in continuous
    )


def desired_stripe(catalog: State, versions: dict[str, int]) -> StripeState:
    """The Stripe objects `catalog` needs; `versions` gives each plan's version after apply."""
    currency = catalog.settings.currency if catalog.settings else "usd"
    state = StripeState()
    feature_names = {fid: feature.name for fid, feature in catalog.features.items()}
    continuous = continuous_features(catalog)
    for plan in sorted(catalog.plans.values(), key=lambda p: p.id):
        if not plan.archived:
            version = versions.get(plan.id, 1)
            _add_plan(state, plan, currency, version, feature_names, continuous)
    for reward in sorted(catalog.rewards.values(), key=lambda r: r.id):
        _add_reward(state, reward, currency, catalog)
    return state


def older_versions(
    catalog: State, contents: Mapping[tuple[str, int], PlanContent], versions: dict[str, int]
) -> StripeState:
    """The Stripe objects of the older versions customers stay on (each offered plan's
    versions with customers before its version after apply): their prices by versioned
    address (`stripe_price.pro.base.v1`, without a lookup key: the newest version's prices
    hold those), and the products and meters they bill on."""
    currency = catalog.settings.currency if catalog.settings else "usd"
    names = {fid: feature.name for fid, feature in catalog.features.items()}
    continuous = continuous_features(catalog)
    state = StripeState()
    for plan in sorted(catalog.plans.values(), key=lambda p: p.id):
        after = versions.get(plan.id, 1)
        for version, count in plan.versions_in_use:
            content = contents.get((plan.id, version))
            if plan.archived or not count or version >= after or content is None:
                continue
            older = StripeState()
            _add_plan(older, replace(plan, content=content), currency, version, names, continuous)
            for address, price in older.prices.items():
                state.versions[versioned(address, version)] = replace(price, lookup_key=None)
            state.products.update(older.products)
            state.meters.update(older.meters)
    return state


def with_older_versions(desired: StripeState, older: StripeState, catalog: State) -> StripeState:
    """`desired` with the objects of the older versions customers stay on: their prices,
    the products and meters only they bill on, and those products in the coupons of the
    rewards for their plans (customers on an older version get the plan's discount too)."""
    products = {**older.products, **desired.products}
    coupons = {}
    for address, coupon in desired.coupons.items():
        reward = catalog.rewards.get(str(Address.parse(address).key))
        plans = set(reward.plans) if reward is not None else set()
        extra = [p for p in older.products if _plan_of(p) in plans and p not in coupon.applies_to]
        coupons[address] = replace(coupon, applies_to=tuple(sorted((*coupon.applies_to, *extra))))
    return replace(
        desired,
        products=products,
        meters={**older.meters, **desired.meters},
        coupons=coupons,
        versions=older.versions,
    )


def _plan_of(product: str) -> str:
    return str(Address.parse(product).key)


def plan_prices(
    plan: Plan, currency: str, version: int, continuous: Set[str] = frozenset()
) -> dict[str, StripePrice]:
    """The prices `plan` (with its content as it stands) maps to at `version`, by address;
    `continuous`: the continuous features (see `continuous_features`)."""
    state = StripeState()
    _add_plan(state, plan, currency, version, {}, continuous)
    return state.prices


def plan_products(plan: Plan) -> tuple[str, ...]:
    """Every Stripe product a plan bills on: its own and one per usage-priced feature (a
    reward for the plan discounts them all)."""
    usage = (product_address(plan.id, i.feature) for i in plan.content.items if i.price)
    return (product_address(plan.id), *usage)


def product_address(plan_id: str, feature: str | None = None) -> str:
    return named(Kind.STRIPE_PRODUCT, plan_id, feature)


def meter_address(event_name: str) -> str:
    """The meter whose usage events are `event_name` (`autumn_sync.pro.messages`)."""
    return str(Address.parse(f"{Kind.STRIPE_METER.value}.{event_name.removeprefix(METER_PREFIX)}"))


def meter_event_name(address: str) -> str:
    return f"{METER_PREFIX}{Address.parse(address).name}"


def _add_plan(
    state: StripeState,
    plan: Plan,
    currency: str,
    version: int,
    names: dict[str, str],
    continuous: Set[str],
) -> None:
    product = product_address(plan.id)
    price = plan.content.price
    base = None
    if price is not None:
        base = StripePrice(
            address=named(Kind.STRIPE_PRICE, plan.id, BASE),
            product=product,
            currency=currency,
            lookup_key=f"autumn_sync.{plan.id}.{BASE}",
            version=version,
            unit_amount_decimal=to_minor_units(price.amount, currency),
            recurring=_recurring(price.interval),
        )
        state.prices[base.address] = base
    state.products[product] = StripeProduct(
        address=product,
        name=plan.name,
        description=plan.description,
        default_price=base.address if base else None,
    )
    for item in plan.content.items:
        if item.price is not None:
            name = names.get(item.feature, item.feature)
            metered = not follows_usage(item, continuous)
            _add_usage(state, plan, item, currency, version, name, metered)


def _add_usage(
    state: StripeState,
    plan: Plan,
    item: PlanItem,
    currency: str,
    version: int,
    name: str,
    metered: bool,
) -> None:
    """`metered`: pay-per-use billed on a meter (else on the item's quantity)."""
    assert item.price is not None
    feature = item.feature
    product = product_address(plan.id, feature)
    state.products[product] = StripeProduct(address=product, name=f"{plan.name} – {name}")
    interval = _usage_interval(plan, item)
    meter = None
    if item.price.billing is UsageModel.PAY_PER_USE and metered:
        meter = named(Kind.STRIPE_METER, plan.id, feature)
        state.meters[meter] = StripeMeter(
            address=meter,
            display_name=f"{plan.name} – {name}",
            event_name=meter_event_name(meter),
        )
    recurring = None
    if interval is not None:
        usage_type = "metered" if meter else "licensed"
        recurring = Recurring(*INTERVALS[interval], usage_type=usage_type, meter=meter)
    price = StripePrice(
        address=named(Kind.STRIPE_PRICE, plan.id, feature),
        product=product,
        currency=currency,
        lookup_key=f"autumn_sync.{plan.id}.{feature}",
        version=version,
        recurring=recurring,
        **_amounts(item, currency),  # type: ignore[arg-type]
    )
    state.prices[price.address] = price


def _usage_interval(plan: Plan, item: PlanItem) -> str | None:
    """A usage price bills on its own interval, else the plan's, else the reset's (one
    Stripe has: not `hour` nor `one_off`), else monthly; a one-off prepaid price is a
    one-time price. The reset's `interval_count` is not Stripe's: it is left out."""
    assert item.price is not None
    own = item.price.interval
    if own == "one_off":
        return None if item.price.billing is UsageModel.PREPAID else "month"
    plan_interval = plan.content.price.interval if plan.content.price else None
    for candidate in (own, plan_interval, item.reset):
        if candidate in INTERVALS:
            return candidate
    return "month"


def _amounts(item: PlanItem, currency: str) -> dict[str, object]:
    price = item.price
    assert price is not None

    def per_unit(amount: Decimal) -> Decimal:
        # Stripe takes at most 12 decimal places (10 per 3 units: 333.333333333333 cents).
        exact = to_minor_units(amount, currency) / price.per
        return canonical(exact.quantize(STRIPE_PLACES, rounding=ROUND_HALF_UP))

    free = item.included or None  # included units: a free first tier (pay-per-use or prepaid)
    if price.amount is not None and not free:
        return {"unit_amount_decimal": per_unit(price.amount)}
    if price.amount is not None:
        two = (StripeTier(_whole(free), Decimal(0)), StripeTier(None, per_unit(price.amount)))
        return {"tiers": two, "tiers_mode": "graduated"}
    tiers: tuple[StripeTier, ...] = tuple(
        StripeTier(_whole(t.up_to) if t.up_to is not None else None, per_unit(t.amount))
        for t in price.tiers
    )
    mode = price.tier_mode or TierMode.GRADUATED
    if free:  # volume too: usage within the included amount is never charged
        # The file's first tier goes above its included amount (validated); a customer's
        # custom included amount may reach past tiers, which its free tier then replaces.
        kept = tuple(t for t in tiers if t.up_to is None or t.up_to > free)
        tiers = (StripeTier(_whole(free), Decimal(0)), *kept)
    return {"tiers": tiers, "tiers_mode": mode.value}


def _whole(value: Decimal | None) -> int:
    assert value is not None
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def _recurring(interval: str) -> Recurring | None:
    if interval == "one_off":
        return None
    return Recurring(*INTERVALS[interval])


def _add_reward(state: StripeState, reward: Reward, currency: str, catalog: State) -> None:
    address = named(Kind.STRIPE_COUPON, reward.id)
    fixed = reward.type is RewardType.FIXED and reward.amount_off is not None
    applies = tuple(
        product
        for p in reward.plans
        if p in catalog.plans
        for product in plan_products(catalog.plans[p])
    )
    state.coupons[address] = StripeCoupon(
        address=address,
        coupon_id=reward.id,
        duration=reward.duration.kind,
        name=(reward.name or reward.id)[:40],
        percent_off=reward.percent_off if not fixed else None,
        amount_off=int(to_minor_units(reward.amount_off, currency)) if fixed else None,  # type: ignore[arg-type]
        currency=currency if fixed else None,
        duration_in_months=reward.duration.months,
        applies_to=applies,
    )
    for code in reward.promo_codes:
        promo = named(Kind.STRIPE_PROMOTION_CODE, reward.id, code)
        state.promotion_codes[promo] = _promotion_code(promo, code, address, reward)


def _promotion_code(address: str, code: str, coupon: str, reward: Reward) -> StripePromotionCode:
    """A reward's code for its coupon, with the code's restrictions."""
    restrictions = reward.restrictions(code)
    return StripePromotionCode(
        address=address,
        code=code,
        coupon=coupon,
        max_redemptions=restrictions.max_redemptions,
        expires_at=restrictions.expires_at,
        first_time_transaction=restrictions.first_time_transaction,
    )
