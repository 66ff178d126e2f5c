"""The runtime's reads: one customer's entitlements (a fixed number of `select()`s), and the
plans of any number of customers in one query."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, func, select

from autumn_sync.database import schema as t
from autumn_sync.runtime.breakdown import Rollover, Stored
from autumn_sync.runtime.entitlements import (
    Declared,
    Entitlements,
    FeatureDef,
    GrantRow,
    Item,
)
from autumn_sync.runtime.errors import UnknownCustomer
from autumn_sync.runtime.intervals import midnight, next_boundary, recurs
from autumn_sync.runtime.results import CustomerInfo, PlanInfo

ENTITLED = ("active", "trialing", "past_due")  # plan statuses that give access
PAST_DUE = "past_due"  # a payment failed: access unless `settings.billing.past_due: deny`
PAST_DUE_SETTING = "billing.past_due"  # settings key (`database.read.catalog.PAST_DUE`)
TRIALING = "trialing"
ACTIVE = "active"
SCHEDULED = "scheduled"
ENDED = "ended"
CANCELED = "canceled"  # cancelled in Stripe: gives access until its `ends_at`
CLOSE_CANDIDATES = 10_000  # customer ids an unknown id is compared with (did you mean)


def customer_by_id(conn: Connection, customer_id: str) -> Row[Any] | None:
    c = t.customers
    return conn.execute(select(c).where(c.c.id == customer_id)).first()


def known_customer(conn: Connection, customer_id: str) -> Row[Any]:
    """The customer with `customer_id`, else `UnknownCustomer` naming a close id if there is
    one among the CLOSE_CANDIDATES customers made last (a bounded read, on the error path)."""
    row = customer_by_id(conn, customer_id)
    if row is None:
        c = t.customers
        recent = (
            select(c.c.id)
            .where(c.c.id.is_not(None))
            .order_by(c.c.internal_id.desc())
            .limit(CLOSE_CANDIDATES)
        )
        raise UnknownCustomer(customer_id, conn.execute(recent).scalars())
    return row


def features(conn: Connection) -> dict[str, FeatureDef]:
    """Every feature of the catalog with its credit costs (two queries)."""
    costs: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in conn.execute(select(t.credit_costs)):
        costs[row.credit_feature_id][row.feature_id] = row.cost
    return {
        row.id: FeatureDef(
            id=row.id,
            name=row.name,
            type=row.type,
            consumable=bool(row.consumable),
            credit_costs=costs.get(row.id, {}),
        )
        for row in conn.execute(select(t.features))
    }


def entitlements(
    conn: Connection, customer: Row[Any], now: datetime, entity: str = ""
) -> Entitlements:
    """What `customer` (a `customers` row), or its entity `entity`, is entitled to at `now`:
    eight queries."""
    iid = customer.internal_id
    b, g, u = t.balances, t.balance_grants, t.balance_usage
    declared = {
        row.feature_id: Declared(row.allowance, row.reset_at)
        for row in conn.execute(select(b).where(b.c.customer_internal_id == iid))
    }
    grants = tuple(
        GrantRow(row.feature_id, row.amount, row.expires, row.grant_id)
        for row in conn.execute(select(g).where(g.c.customer_internal_id == iid))
    )
    scopes = ("", entity) if entity else ("",)
    mine = (u.c.customer_internal_id == iid) & u.c.entity_id.in_(scopes)
    stored = {
        (row.entity_id, row.feature_id, row.source): stored_row(row)
        for row in conn.execute(select(u).where(mine))
    }
    return Entitlements(
        customer_id=customer.id,
        created_at=customer.created_at,
        features=features(conn),
        items=_items(conn, iid, now.date(), entitled_statuses(conn), entity),
        declared=declared,
        grants=grants,
        stored=stored,
        entity=entity,
        entity_counts=_entity_counts(conn, iid),
    )


def stored_row(row: Row[Any]) -> Stored:
    return Stored(
        entity=row.entity_id,
        feature=row.feature_id,
        key=row.source,
        used=row.used,
        next_reset=row.next_reset,
        amount=row.amount,
        expires=row.expires,
    )


def _entity_counts(conn: Connection, iid: int) -> dict[str, int]:
    """Feature → how many entities of it the customer has (each is a unit of its usage)."""
    e = t.entities
    query = select(e.c.feature_id, func.count()).where(e.c.customer_internal_id == iid)
    return {fid: int(n) for fid, n in conn.execute(query.group_by(e.c.feature_id))}


def entity_ids(conn: Connection, iid: int) -> list[str]:
    e = t.entities
    query = select(e.c.id).where(e.c.customer_internal_id == iid).order_by(e.c.id)
    return list(conn.execute(query).scalars())


def entitled_statuses(conn: Connection) -> tuple[str, ...]:
    """The plan statuses that give access: `past_due` too unless the settings deny it."""
    s = t.settings
    denied = conn.execute(select(s.c.value).where(s.c.key == PAST_DUE_SETTING)).scalar()
    return tuple(status for status in ENTITLED if status != PAST_DUE or denied != "deny")


def _entitled_plans(
    iid: int, today: date, statuses: tuple[str, ...] = ENTITLED, entity: str = ""
) -> ColumnElement[bool]:
    """The customer's own plans (and those of its entity `entity`) that give access today:
    of an entitled status (`statuses`; or cancelled in Stripe, until the end of what was
    paid), begun (a future start, a downgrade's plan waiting for the period's end), not
    ended."""
    cp = t.customer_plans
    scopes = ("", entity) if entity else ("",)
    mine = (cp.c.customer_internal_id == iid) & cp.c.entity_id.in_(scopes)
    begun = cp.c.begins_at.is_(None) | (cp.c.begins_at <= today)
    running = cp.c.ends_at.is_(None) | (cp.c.ends_at > today)
    # cancelled in Stripe: paid until its end (a cancellation with no end gives nothing)
    ending = (cp.c.status == CANCELED) & cp.c.ends_at.is_not(None)
    return mine & (cp.c.status.in_(statuses) | ending) & begun & running


def _items(
    conn: Connection,
    iid: int,
    today: date,
    statuses: tuple[str, ...] = ENTITLED,
    entity: str = "",
) -> tuple[Item, ...]:
    """The items of the customer's own plans (and its entity's) at their versions, custom
    items applied."""
    cp, pi, ci, pv = t.customer_plans, t.plan_items, t.customer_plan_items, t.plan_versions
    found: dict[tuple[int, str], Item] = {}
    versions = (pi.c.plan_id == cp.c.plan_id) & (pi.c.version == cp.c.version)
    query = select(cp, pi.c.feature_id, pi.c.included, pi.c.reset_interval, pi.c.billing)
    query = query.add_columns(
        pi.c.unlimited, pi.c.price_per, pi.c.price_interval.label("item_interval")
    )
    query = query.add_columns(
        pi.c.reset_count,
        pi.c.rollover,
        pi.c.rollover_max,
        pi.c.rollover_max_percentage,
        pi.c.rollover_months,
        pi.c.max_purchase,
        pv.c.price_amount.label("version_amount"),
        pv.c.price_interval.label("version_interval"),
    )
    query = query.join(pv, (pv.c.plan_id == cp.c.plan_id) & (pv.c.version == cp.c.version))
    entitled = _entitled_plans(iid, today, statuses, entity)
    for row in conn.execute(query.join(pi, versions).where(entitled)):
        found[(row.internal_id, row.feature_id)] = _item(row)
    custom = select(cp, ci.c.feature_id, ci.c.included, ci.c.reset_interval.label("custom_reset"))
    custom = custom.add_columns(ci.c.quantity.label("units"))
    custom = custom.add_columns(
        pv.c.price_amount.label("version_amount"), pv.c.price_interval.label("version_interval")
    )
    custom = custom.join(pv, (pv.c.plan_id == cp.c.plan_id) & (pv.c.version == cp.c.version))
    custom = custom.join(ci, ci.c.customer_plan_id == cp.c.internal_id)
    for row in conn.execute(custom.where(entitled)):
        key = (row.internal_id, row.feature_id)
        found[key] = _custom_item(row, found.get(key))
    return tuple(found[key] for key in sorted(found))


def _item(row: Row[Any]) -> Item:
    rolls = bool(row.rollover)
    return Item(
        plan_id=row.plan_id,
        feature=row.feature_id,
        included=row.included,
        reset=row.reset_interval,
        billing=row.billing,
        per=row.price_per,
        price_interval=row.item_interval,
        quantity=row.quantity,
        anchor=_cycle_anchor(row),
        unlimited=bool(row.unlimited),
        every=row.reset_count or 1,
        rollover=Rollover(row.rollover_max, row.rollover_max_percentage, row.rollover_months)
        if rolls
        else None,
        max_purchase=row.max_purchase,
        entity=row.entity_id,
    )


def _custom_item(row: Row[Any], base: Item | None) -> Item:
    """A custom item replaces the included usage and the reset of the plan's item (each when
    it sets them) and keeps its price; it carries the prepaid units bought, if any."""
    if base is None:
        return Item(
            plan_id=row.plan_id,
            feature=row.feature_id,
            included=row.included,
            reset=row.custom_reset,
            quantity=row.quantity,
            units=row.units,
            anchor=_cycle_anchor(row),
            entity=row.entity_id,
        )
    reset = row.custom_reset or base.reset
    every = base.every if reset == base.reset else 1
    if row.included is None:
        return replace(base, reset=reset, units=row.units, every=every)
    return replace(
        base, included=row.included, unlimited=False, reset=reset, units=row.units, every=every
    )


def _cycle_anchor(row: Row[Any]) -> datetime | None:
    """Where a plan's periods are counted from: its billing cycle when it has a price (the
    end of its trial, else its start), else its start (declared, else when attached)."""
    custom_price = row.price_amount is not None
    amount = row.price_amount if custom_price else row.version_amount
    if amount is not None and row.trial_ends_at is not None:
        return midnight(row.trial_ends_at)
    return _plan_start(row)


def _plan_start(row: Row[Any]) -> datetime | None:
    if row.started_at is not None:
        return midnight(row.started_at)
    return row.attached_at  # type: ignore[no-any-return]


# --- plans of customers --------------------------------------------------------------------


def plans_query(customers: Select[Any] | None = None) -> Select[Any]:
    """The plans of the customers whose internal ids `customers` selects (all without it),
    with the version's price and whether the customer has custom items."""
    cp, pv, ci = t.customer_plans, t.plan_versions, t.customer_plan_items
    custom_items = (
        select(func.count()).where(ci.c.customer_plan_id == cp.c.internal_id).scalar_subquery()
    )
    query = select(
        cp,
        pv.c.price_amount.label("version_amount"),
        pv.c.price_interval.label("version_interval"),
        custom_items.label("custom_items"),
    ).join(pv, (pv.c.plan_id == cp.c.plan_id) & (pv.c.version == cp.c.version))
    if customers is not None:
        query = query.where(cp.c.customer_internal_id.in_(customers))
    return query.order_by(cp.c.customer_internal_id, cp.c.entity_id, cp.c.plan_id)


def plans_by_customer(
    conn: Connection, customers: Select[Any] | None, now: datetime
) -> dict[int, list[PlanInfo]]:
    """Internal id → plans, for every customer `customers` selects (one query)."""
    found: dict[int, list[PlanInfo]] = defaultdict(list)
    for row in conn.execute(plans_query(customers)):
        found[row.customer_internal_id].append(plan_info(row, now))
    return found


def plan_info(row: Row[Any], now: datetime) -> PlanInfo:
    custom_price = row.price_amount is not None
    amount = row.price_amount if custom_price else row.version_amount
    interval = row.price_interval if custom_price else row.version_interval
    return PlanInfo(
        plan_id=row.plan_id,
        version=row.version,
        status=_status(row, now),
        custom=custom_price or bool(row.custom_items),
        entity_id=row.entity_id or None,
        quantity=row.quantity,
        started_at=row.started_at,
        attached_at=row.attached_at,
        trial_ends_at=row.trial_ends_at,
        begins_at=row.begins_at,
        ends_at=row.ends_at,
        price_amount=amount,
        price_interval=interval,
        next_renewal=_renewal(row, amount, interval, now),
        stripe_subscription_id=row.stripe_subscription_id,
    )


def _status(row: Row[Any], now: datetime) -> str:
    """The plan's status at `now`: `scheduled` before it begins, `ended` from its end, a
    trial over `active`."""
    if row.begins_at is not None and midnight(row.begins_at) > now:
        return SCHEDULED
    if row.ends_at is not None and midnight(row.ends_at) <= now:
        return ENDED
    if row.status == TRIALING and (row.trial_ends_at is None or midnight(row.trial_ends_at) <= now):
        return ACTIVE
    return str(row.status)


def _renewal(row: Row[Any], amount: Any, interval: str | None, now: datetime) -> datetime | None:
    """The next billing date: the end of a running trial, else the next period boundary from
    the trial's end, the declared start, or the attach time."""
    if amount is None or not recurs(interval):
        return None
    assert interval is not None
    if row.trial_ends_at is not None:
        anchor = midnight(row.trial_ends_at)
    elif row.started_at is not None:
        anchor = midnight(row.started_at)
    else:
        anchor = row.attached_at
    return None if anchor is None else next_boundary(anchor, interval, now)


def customer_info(
    conn: Connection, row: Row[Any], now: datetime, outcome: str | None = None
) -> CustomerInfo:
    """`row` (a `customers` row) with its plans (one more query)."""
    mine = select(t.customers.c.internal_id).where(t.customers.c.internal_id == row.internal_id)
    plans = plans_by_customer(conn, mine, now).get(row.internal_id, [])
    return info_of(row, plans, outcome)


def info_of(row: Row[Any], plans: list[PlanInfo], outcome: str | None = None) -> CustomerInfo:
    return CustomerInfo(
        id=row.id,
        email=row.email,
        name=row.name,
        fingerprint=row.fingerprint,
        managed=bool(row.managed),
        created_at=row.created_at,
        plans=tuple(plans),
        stripe_id=row.stripe_id,
        file_key=row.file_key,
        outcome=outcome,
    )
