"""Conversion of a validated file into the domain `State` (the desired state)."""

from __future__ import annotations

from autumn_sync.config.format import (
    BillingFile,
    CustomerBillingSpec,
    CustomerPlanSpec,
    CustomerSpec,
    EntitySpec,
    FeatureSpec,
    ItemSpec,
    PlanRef,
    PlanSpec,
    PromoCodeRef,
    RewardSpec,
    RolloverSpec,
    TierSpec,
    UsagePriceSpec,
)
from autumn_sync.model.address import customer_key
from autumn_sync.model.customers import (
    Balance,
    Customer,
    CustomerPlan,
    Entity,
    Grant,
)
from autumn_sync.model.money import canonical
from autumn_sync.model.records import (
    ALWAYS,
    PAST_DUE_ALLOW,
    PAST_DUE_DENY,
    PRORATE_NOW,
    UNRESTRICTED,
    CodeRestrictions,
    Duration,
    Feature,
    FeatureType,
    FixedPrice,
    FreeTrial,
    Plan,
    PlanContent,
    PlanItem,
    Reward,
    RewardType,
    Rollover,
    Settings,
    Tier,
    TierMode,
    UsageModel,
    UsagePrice,
)
from autumn_sync.model.state import State


def _upgrades(value: str) -> str | None:
    """The proration of plan changes; the default (`prorate_now`) is stored as none."""
    return None if value == PRORATE_NOW else value


def to_state(spec: BillingFile) -> State:
    """The desired state a valid file describes."""
    customers = [_customer(c) for c in spec.customers]
    return State(
        settings=Settings(
            currency=spec.settings.currency,
            create_customers=ALWAYS if spec.settings.stripe.create_customers == ALWAYS else None,
            upgrades=_upgrades(spec.settings.billing.upgrades),
            past_due=None if spec.settings.billing.past_due == PAST_DUE_ALLOW else PAST_DUE_DENY,
        ),
        features={fid: _feature(fid, f) for fid, f in spec.features.items()},
        plans={pid: _plan(pid, p) for pid, p in spec.plans.items()},
        rewards={rid: _reward(rid, r) for rid, r in spec.rewards.items()},
        customers={c.key: c for c in customers},
        balances={b.address: b for c in spec.customers for b in _balances(c)},
    )


def _feature(fid: str, spec: FeatureSpec) -> Feature:
    kind = FeatureType(spec.type)
    return Feature(
        id=fid,
        name=spec.name,
        type=kind,
        consumable=kind is FeatureType.CREDIT_SYSTEM or bool(spec.consumable),
        credit_costs=tuple(sorted((k, canonical(v)) for k, v in (spec.credit_costs or {}).items())),
    )


def _plan(pid: str, spec: PlanSpec) -> Plan:
    content = PlanContent(
        price=FixedPrice(canonical(spec.price.amount), spec.price.interval) if spec.price else None,
        free_trial=FreeTrial(**spec.free_trial.model_dump()) if spec.free_trial else None,
        items=tuple(sorted((_item(i) for i in spec.items), key=lambda item: item.feature)),
    )
    return Plan(
        id=pid,
        name=spec.name,
        content=content,
        description=spec.description,
        group=spec.group,
        add_on=spec.add_on,
        default=spec.default,
        migrate_customers=spec.migrate_customers,
    )


def _item(spec: ItemSpec) -> PlanItem:
    return PlanItem(
        feature=spec.feature,
        included=canonical(spec.included) if spec.included is not None else None,
        unlimited=spec.unlimited,
        reset=spec.reset,
        price=_usage_price(spec.price) if spec.price else None,
        interval_count=spec.interval_count,
        rollover=_rollover(spec.rollover) if spec.rollover else None,
        max_purchase=canonical(spec.max_purchase) if spec.max_purchase is not None else None,
    )


def _rollover(spec: RolloverSpec) -> Rollover:
    expiry = spec.expires_after
    return Rollover(
        max=canonical(spec.max) if spec.max is not None else None,
        max_percentage=canonical(spec.max_percentage) if spec.max_percentage is not None else None,
        expires_months=None if isinstance(expiry, str) else expiry.months,
    )


def _usage_price(spec: UsagePriceSpec) -> UsagePrice:
    tiers = tuple(_tier(t) for t in spec.tiers or ())
    mode = spec.tier_mode or ("graduated" if tiers else None)
    return UsagePrice(
        billing=UsageModel(spec.billing),
        per=spec.per,
        amount=canonical(spec.amount) if spec.amount is not None else None,
        tiers=tiers,
        tier_mode=TierMode(mode) if mode else None,
        interval=spec.interval,
    )


def _tier(spec: TierSpec) -> Tier:
    up_to = None if spec.up_to == "inf" else canonical(spec.up_to)
    return Tier(up_to=up_to, amount=canonical(spec.amount))


def _reward(rid: str, spec: RewardSpec) -> Reward:
    if isinstance(spec.duration, str):
        duration = Duration(kind=spec.duration)
    else:
        duration = Duration(kind="repeating", months=spec.duration.months)
    codes = [_code(entry) for entry in spec.promo_codes]
    return Reward(
        id=rid,
        type=RewardType(spec.type),
        duration=duration,
        name=spec.name,
        percent_off=canonical(spec.percent_off) if spec.percent_off is not None else None,
        amount_off=canonical(spec.amount_off) if spec.amount_off is not None else None,
        plans=tuple(sorted(set(spec.plans))),
        promo_codes=tuple(sorted({code for code, _ in codes})),
        code_restrictions=tuple(
            sorted(((c, r) for c, r in codes if r != UNRESTRICTED), key=lambda pair: pair[0])
        ),
    )


def _code(entry: PromoCodeRef) -> tuple[str, CodeRestrictions]:
    """A promotion code's text and restrictions (a plain string has none)."""
    if isinstance(entry, str):
        return entry, UNRESTRICTED
    restrictions = CodeRestrictions(
        max_redemptions=entry.max_redemptions,
        expires_at=entry.expires_at,
        first_time_transaction=entry.first_time_transaction,
    )
    return entry.code, restrictions


def _customer(spec: CustomerSpec) -> Customer:
    billing = spec.billing or CustomerBillingSpec()
    link = spec.stripe
    return Customer(
        key=customer_key(spec.id, spec.email),
        customer_id=spec.id,
        email=spec.email,
        name=spec.name,
        fingerprint=spec.fingerprint,
        metadata=tuple(sorted(spec.metadata.items())),
        stripe_customer=link.customer if link else None,
        stripe_create=bool(link and link.create),
        collection=billing.collection,
        days_until_due=billing.days_until_due,
        plans=_customer_plans(spec.plans),
        entities=tuple(sorted((_entity(e) for e in spec.entities), key=lambda e: e.id)),
        rewards=tuple(sorted(set(spec.rewards))),
    )


def _customer_plans(refs: list[PlanRef]) -> tuple[CustomerPlan, ...]:
    plans = [CustomerPlan(plan=ref) if isinstance(ref, str) else _custom(ref) for ref in refs]
    return tuple(sorted(plans, key=lambda p: p.plan))


def _custom(spec: CustomerPlanSpec) -> CustomerPlan:
    price = spec.price
    items = (  # an item that sets neither its included usage nor its reset changes nothing
        PlanItem(
            feature=i.feature,
            included=canonical(i.included) if i.included is not None else None,
            reset=i.reset,
        )
        for i in spec.items
        if i.included is not None or i.reset is not None
    )
    return CustomerPlan(
        plan=spec.plan,
        quantity=spec.quantity,
        quantities=tuple(sorted(spec.quantities.items())),
        start=spec.start,
        trial_days=spec.trial_days,
        price=FixedPrice(canonical(price.amount), price.interval) if price else None,
        items=tuple(sorted(items, key=lambda item: item.feature)),
    )


def _entity(spec: EntitySpec) -> Entity:
    return Entity(
        id=spec.id, feature=spec.feature, name=spec.name, plans=_customer_plans(spec.plans)
    )


def _balances(spec: CustomerSpec) -> list[Balance]:
    key = customer_key(spec.id, spec.email)
    return [
        Balance(
            customer=key,
            feature=fid,
            allowance=canonical(b.allowance) if b.allowance is not None else None,
            reset_at=b.reset_at,
            grants=tuple(
                sorted(
                    (Grant(g.id, canonical(g.amount), g.expires) for g in b.grants),
                    key=lambda g: g.id,
                )
            ),
        )
        for fid, b in sorted(spec.balances.items())
    ]
