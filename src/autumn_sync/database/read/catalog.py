"""Reads the current catalog from the billing database: one `select()` per table, whatever the
number of rows (no per-plan or per-feature query)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Subquery, Table, func, select

from autumn_sync.database import schema as t
from autumn_sync.database.read.customers import read_customers
from autumn_sync.model.customers import Lookup
from autumn_sync.model.records import (
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

VersionKey = tuple[str, int]
CREATE_CUSTOMERS = "stripe.create_customers"  # settings key; absent: when billing needs them
UPGRADES = "billing.upgrades"  # settings key; absent: prorated now
PAST_DUE = "billing.past_due"  # settings key; absent: past_due plans are granted


def read_state(connection: Connection, lookup: Lookup | None = None) -> State:
    """The catalog as the database holds it now (archived plans included), the customers the
    file manages, and the application's customers `lookup` names."""
    settings = dict(connection.execute(select(t.settings.c.key, t.settings.c.value)).all())
    customers = read_customers(connection, lookup or Lookup())
    return State(
        settings=_settings(settings),
        features=_features(connection),
        plans=_plans(connection),
        rewards=_rewards(connection),
        feature_users=_feature_users(connection),
        customers=customers.customers,
        balances=customers.balances,
        app_customers=customers.app_customers,
    )


def _settings(values: dict[str, str]) -> Settings | None:
    if "currency" not in values:
        return None
    return Settings(
        currency=values["currency"],
        create_customers=values.get(CREATE_CUSTOMERS),
        upgrades=values.get(UPGRADES),
        past_due=values.get(PAST_DUE),
    )


def _feature_users(connection: Connection) -> dict[str, tuple[tuple[str, int, int], ...]]:
    """Which plan versions with customers use which feature (one query)."""
    cp, items = t.customer_plans, t.plan_items
    in_use = (
        select(cp.c.plan_id, cp.c.version, func.count().label("customers"))
        .group_by(cp.c.plan_id, cp.c.version)
        .subquery()
    )
    query = select(items.c.feature_id, in_use.c.plan_id, in_use.c.version, in_use.c.customers).join(
        in_use, (items.c.plan_id == in_use.c.plan_id) & (items.c.version == in_use.c.version)
    )
    users: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for feature_id, plan_id, version, customers in connection.execute(query):
        users[feature_id].append((plan_id, version, customers))
    return {feature: tuple(sorted(rows)) for feature, rows in users.items()}


def _features(connection: Connection) -> dict[str, Feature]:
    costs: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for row in connection.execute(select(t.credit_costs)):
        costs[row.credit_feature_id].append((row.feature_id, row.cost))
    return {
        row.id: Feature(
            id=row.id,
            name=row.name,
            type=FeatureType(row.type),
            consumable=bool(row.consumable),
            credit_costs=tuple(sorted(costs.get(row.id, ()))),
        )
        for row in connection.execute(select(t.features))
    }


def _plans(connection: Connection) -> dict[str, Plan]:
    contents = _contents(connection)
    in_use = _versions_in_use(connection)
    plans = {}
    for row in connection.execute(select(t.plans)):
        versions = in_use.get(row.id, {})
        plans[row.id] = Plan(
            id=row.id,
            name=row.name,
            content=contents.get((row.id, row.current_version), PlanContent()),
            description=row.description,
            group=row.group_id,
            add_on=bool(row.add_on),
            default=bool(row.is_default),
            migrate_customers=bool(row.migrate_customers),
            archived=bool(row.archived),
            version=row.current_version,
            customers=versions.get(row.current_version, 0),
            versions_in_use=tuple(sorted(versions.items())),
        )
    return plans


def _versions_in_use(connection: Connection) -> dict[str, dict[int, int]]:
    cp = t.customer_plans
    query = select(cp.c.plan_id, cp.c.version, func.count()).group_by(cp.c.plan_id, cp.c.version)
    result: dict[str, dict[int, int]] = defaultdict(dict)
    for plan_id, version, count in connection.execute(query):
        result[plan_id][version] = count
    return result


def _current_versions() -> Subquery:
    return select(
        t.plans.c.id.label("plan_id"), t.plans.c.current_version.label("version")
    ).subquery()


def versions_with_customers(connection: Connection) -> dict[VersionKey, PlanContent]:
    """The content of every plan version that customers are on (three queries): Stripe holds
    the prices of each (the file's customers' subscriptions bill them, and the application
    subscribes its customers to them)."""
    cp = t.customer_plans
    versions = select(cp.c.plan_id, cp.c.version).distinct().subquery()
    return _contents(connection, versions)


def _contents(
    connection: Connection, versions: Subquery | None = None
) -> dict[VersionKey, PlanContent]:
    """The content of the plan versions `versions` (plan_id, version) names, by default every
    current one, in three queries."""
    scope = versions if versions is not None else _current_versions()
    pv = t.plan_versions
    rows = connection.execute(select(pv).join(scope, _same_version(pv, scope)))
    items = _items(connection, scope)
    return {
        (row.plan_id, row.version): PlanContent(
            price=_fixed_price(row),
            free_trial=_trial(row),
            items=tuple(sorted(items.get((row.plan_id, row.version), ()), key=_feature_id)),
        )
        for row in rows
    }


def _same_version(table: Table, scope: Subquery) -> ColumnElement[bool]:
    return (table.c.plan_id == scope.c.plan_id) & (table.c.version == scope.c.version)


def _feature_id(item: PlanItem) -> str:
    return item.feature


def _fixed_price(row: Row[Any]) -> FixedPrice | None:
    if row.price_amount is None:
        return None
    return FixedPrice(amount=row.price_amount, interval=row.price_interval)


def _trial(row: Row[Any]) -> FreeTrial | None:
    if row.trial_days is None:
        return None
    return FreeTrial(
        days=row.trial_days,
        card_required=bool(row.trial_card_required),
        unique_fingerprint=bool(row.trial_unique_fingerprint),
        on_end=row.trial_on_end or "cancel",
    )


def _items(connection: Connection, scope: Subquery) -> dict[VersionKey, list[PlanItem]]:
    tiers = _tiers(connection, scope)
    query = select(t.plan_items).join(scope, _same_version(t.plan_items, scope))
    result: dict[VersionKey, list[PlanItem]] = defaultdict(list)
    for row in connection.execute(query):
        key = (row.plan_id, row.version)
        item_tiers = tiers.get((row.plan_id, row.version, row.feature_id), ())
        result[key].append(
            PlanItem(
                feature=row.feature_id,
                included=row.included,
                unlimited=row.unlimited,
                reset=row.reset_interval,
                price=_usage_price(row, item_tiers),
                interval_count=row.reset_count or 1,
                rollover=_rollover(row),
                max_purchase=row.max_purchase,
            )
        )
    return result


def _rollover(row: Row[Any]) -> Rollover | None:
    if not row.rollover:
        return None
    return Rollover(
        max=row.rollover_max,
        max_percentage=row.rollover_max_percentage,
        expires_months=row.rollover_months,
    )


def _usage_price(row: Row[Any], tiers: Iterable[Tier]) -> UsagePrice | None:
    if row.billing is None:
        return None
    return UsagePrice(
        billing=UsageModel(row.billing),
        per=row.price_per,
        amount=row.price_amount,
        tiers=tuple(tiers),
        tier_mode=TierMode(row.tier_mode) if row.tier_mode else None,
        interval=row.price_interval,
    )


def _tiers(connection: Connection, scope: Subquery) -> dict[tuple[str, int, str], list[Tier]]:
    tiers = t.plan_item_tiers
    query = select(tiers).join(scope, _same_version(tiers, scope)).order_by(tiers.c.position)
    result: dict[tuple[str, int, str], list[Tier]] = defaultdict(list)
    for row in connection.execute(query):
        result[(row.plan_id, row.version, row.feature_id)].append(Tier(row.up_to, row.amount))
    return result


def _rewards(connection: Connection) -> dict[str, Reward]:
    plans: dict[str, list[str]] = defaultdict(list)
    for reward_id, plan_id in connection.execute(
        select(t.reward_plans.c.reward_id, t.reward_plans.c.plan_id)
    ):
        plans[reward_id].append(plan_id)
    codes: dict[str, list[str]] = defaultdict(list)
    restricted: dict[str, list[tuple[str, CodeRestrictions]]] = defaultdict(list)
    for row in connection.execute(select(t.promo_codes)):
        codes[row.reward_id].append(row.code)
        restrictions = _code_restrictions(row)
        if restrictions != UNRESTRICTED:
            restricted[row.reward_id].append((row.code, restrictions))
    return {
        row.id: Reward(
            id=row.id,
            type=RewardType(row.type),
            duration=Duration(kind=row.duration, months=row.duration_months),
            name=row.name,
            percent_off=row.percent_off,
            amount_off=row.amount_off,
            plans=tuple(sorted(plans.get(row.id, ()))),
            promo_codes=tuple(sorted(codes.get(row.id, ()))),
            code_restrictions=tuple(sorted(restricted.get(row.id, ()), key=lambda c: c[0])),
        )
        for row in connection.execute(select(t.rewards))
    }


def _code_restrictions(row: Row[Any]) -> CodeRestrictions:
    """A promotion code's restrictions as its row holds them (NULL: none)."""
    return CodeRestrictions(
        max_redemptions=row.max_redemptions,
        expires_at=row.expires_at,
        first_time_transaction=bool(row.first_time_transaction),
    )
