"""The database side of `usage report`: which customers' features Stripe bills per use, their
usage per period, and the ledger of meter events (`usage_reports`): an event is written down
(`pending`) before it is sent and marked `sent` once Stripe took it. Continuous features
billed per use (seats in use: `seat_items`) are billed on a subscription item's quantity
instead, set to the usage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, Select, func, insert, select, update

from autumn_sync.database import schema as t
from autumn_sync.metering.plan import BilledItem, MeterEvent, SeatItem, Tier
from autumn_sync.model.address import Kind, named
from autumn_sync.model.money import to_minor_units
from autumn_sync.stripe.map.catalog import meter_event_name

PAY_PER_USE = "pay_per_use"
ZERO = Decimal(0)
BILLING = ("active", "trialing", "past_due", "canceled")  # statuses whose usage is billed
RUNNING = ("active", "trialing", "past_due")  # statuses whose subscription takes changes
METERED = "metered"
PENDING = "pending"
SENT = "sent"

UsageByPeriod = dict[tuple[int, str], dict[datetime, Decimal]]


def billed_items(conn: Connection, customer_ids: Sequence[str] = ()) -> list[BilledItem]:
    """The features of customers' own plans priced pay-per-use whose subscription is in
    Stripe (the customer's Stripe id and the plan's subscription recorded), one per
    customer and feature."""
    c, cp, pi, f = t.customers, t.customer_plans, t.plan_items, t.features
    columns = (c.c.internal_id, c.c.id, c.c.stripe_id, cp.c.plan_id, cp.c.version, pi)
    query = _priced_per_use(columns, customer_ids)
    query = query.where(~_continuous(f) & cp.c.status.in_(BILLING))
    rows = conn.execute(query).all()
    tiers = _tiers(conn, {(r.plan_id, r.version) for r in rows})
    currency = _currency(conn)
    found: dict[tuple[int, str], BilledItem] = {}
    for row in rows:
        key = (row.internal_id, row.feature_id)
        if key not in found:
            found[key] = _item(row, tiers.get((row.plan_id, row.version, row.feature_id)), currency)
    return list(found.values())


def _priced_per_use(columns: Sequence[Any], customer_ids: Sequence[str]) -> Select[Any]:
    """`columns` of the customers' own plans' items priced pay-per-use whose subscription is
    in Stripe (the customer's Stripe id and the plan's subscription recorded), by customer,
    feature and plan; only `customer_ids` when given."""
    c, cp, pi, f = t.customers, t.customer_plans, t.plan_items, t.features
    query = (
        select(*columns)
        .join(cp, cp.c.customer_internal_id == c.c.internal_id)
        .join(pi, (pi.c.plan_id == cp.c.plan_id) & (pi.c.version == cp.c.version))
        .join(f, f.c.id == pi.c.feature_id)
        .where(
            (cp.c.entity_id == "")
            & (pi.c.billing == PAY_PER_USE)
            & cp.c.stripe_subscription_id.is_not(None)
            & c.c.stripe_id.is_not(None)
        )
        .order_by(c.c.internal_id, pi.c.feature_id, cp.c.plan_id)
    )
    return query.where(c.c.id.in_(customer_ids)) if customer_ids else query


def _continuous(f: Any) -> Any:
    """A metered feature whose usage does not reset (`consumable: false`: seats in use)."""
    return (f.c.type == METERED) & (f.c.consumable == False)  # noqa: E712


def seat_items(conn: Connection, customer_ids: Sequence[str] = ()) -> list[SeatItem]:
    """The continuous features of customers' own plans priced pay-per-use whose subscription
    is in Stripe (and takes changes), with the usage `track` recorded (over every source of
    the balance) and the customer's entities of the feature: one per customer and
    feature."""
    c, cp, pi, f = t.customers, t.customer_plans, t.plan_items, t.features
    columns = (c.c.internal_id, c.c.id, cp.c.plan_id, pi.c.feature_id, cp.c.stripe_subscription_id)
    query = _priced_per_use(columns, customer_ids).where(_continuous(f) & cp.c.status.in_(RUNNING))
    rows = conn.execute(query).all()
    used = _used(conn, sorted({row.internal_id for row in rows}))
    found: dict[tuple[int, str], SeatItem] = {}
    for row in rows:
        key = (row.internal_id, row.feature_id)
        if key not in found:
            found[key] = SeatItem(
                customer_id=row.id or f"#{row.internal_id}",
                plan=row.plan_id,
                feature=row.feature_id,
                subscription=row.stripe_subscription_id,
                usage=used.get(key, ZERO),
            )
    return list(found.values())


def _used(conn: Connection, customers: Sequence[int]) -> dict[tuple[int, str], Decimal]:
    """Per customer and feature: the units used over the sources of its own balance, and one
    per entity of the feature (two queries)."""
    u, e = t.balance_usage, t.entities
    found: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    if not customers:
        return found
    mine = u.c.customer_internal_id.in_(customers) & (u.c.entity_id == "")
    key = (u.c.customer_internal_id, u.c.feature_id)
    for iid, fid, total in conn.execute(
        select(*key, func.sum(u.c.used)).where(mine).group_by(*key)
    ):
        found[(iid, fid)] += Decimal(total or 0)
    per_entity = (e.c.customer_internal_id, e.c.feature_id)
    counted = select(*per_entity, func.count()).where(e.c.customer_internal_id.in_(customers))
    for iid, fid, count in conn.execute(counted.group_by(*per_entity)):
        found[(iid, fid)] += Decimal(count)
    return found


def _item(row: Row[Any], tiers: list[Row[Any]] | None, currency: str) -> BilledItem:
    per = Decimal(row.price_per or 1)

    def unit(amount: Decimal) -> Decimal:
        return to_minor_units(Decimal(amount), currency) / per

    if tiers:
        priced = tuple(Tier(r.up_to, unit(r.amount)) for r in tiers)
    else:
        priced = (Tier(None, unit(Decimal(row.price_amount or 0))),)
    meter = named(Kind.STRIPE_METER, row.plan_id, row.feature_id)
    return BilledItem(
        customer_internal_id=row.internal_id,
        customer_id=row.id or f"#{row.internal_id}",
        stripe_customer_id=row.stripe_id,
        feature=row.feature_id,
        plan=row.plan_id,
        event_name=meter_event_name(meter),
        meter=meter,
        included=Decimal(row.included or 0),
        tiers=priced,
        volume=row.tier_mode == "volume",
        currency=currency,
        per=int(per),
    )


def _tiers(
    conn: Connection, versions: set[tuple[str, int]]
) -> dict[tuple[str, int, str], list[Row[Any]]]:
    if not versions:
        return {}
    pt = t.plan_item_tiers
    plans = {plan for plan, _ in versions}
    found: dict[tuple[str, int, str], list[Row[Any]]] = defaultdict(list)
    query = select(pt).where(pt.c.plan_id.in_(plans)).order_by(pt.c.position)
    for row in conn.execute(query):
        if (row.plan_id, row.version) in versions:
            found[(row.plan_id, row.version, row.feature_id)].append(row)
    return found


def _currency(conn: Connection) -> str:
    s = t.settings
    found = conn.execute(select(s.c.value).where(s.c.key == "currency")).scalar()
    return str(found or "usd")


def usage_by_period(conn: Connection, items: Iterable[BilledItem], now: datetime) -> UsageByPeriod:
    """Per customer and feature, the billable usage of each period of the billed item's
    source (`plan:<plan>`): its current period's (which ends at its next reset) and those
    closed since (`usage_periods`), less what the customer's declared allowance gives free
    beyond the price's included units (`free_beyond`). Grants and rollovers take usage
    before the overage does: what the item's source holds is all Stripe bills."""
    listed = list(items)
    sources = {(i.customer_internal_id, i.feature): f"plan:{i.plan}" for i in listed}
    customers = sorted({iid for iid, _ in sources})
    found: UsageByPeriod = defaultdict(dict)
    if not customers:
        return found
    u, up = t.balance_usage, t.usage_periods
    mine = u.c.customer_internal_id.in_(customers) & (u.c.entity_id == "")
    for row in conn.execute(select(u).where(mine)):
        key = (row.customer_internal_id, row.feature_id)
        if sources.get(key) == row.source and row.next_reset is not None:
            found[key][row.next_reset] = row.used
    legacy: dict[tuple[int, str], dict[datetime, Decimal]] = defaultdict(dict)
    for row in conn.execute(select(up).where(up.c.customer_internal_id.in_(customers))):
        key = (row.customer_internal_id, row.feature_id)
        if sources.get(key) == row.source:
            found[key][row.period_end] = row.usage
        elif key in sources and row.source == "":
            legacy[key][row.period_end] = row.usage
    free, granted = free_beyond(conn, listed, now)
    for key, periods in found.items():
        for end, used in periods.items():
            periods[end] = max(used - free.get(key, ZERO), ZERO)
    for key, periods in legacy.items():  # a feature's whole usage, closed before sources
        for end, used in periods.items():
            before = used - free.get(key, ZERO) - granted.get(key, ZERO)
            found[key].setdefault(end, max(before, ZERO))
    return found


def free_beyond(
    conn: Connection, items: Sequence[BilledItem], now: datetime
) -> tuple[dict[tuple[int, str], Decimal], dict[tuple[int, str], Decimal]]:
    """Per customer and feature: the units a declared allowance gives beyond the price's
    included units (while it applies; negative when it gives fewer), and the grants not
    expired (which only periods closed before balances had sources need)."""
    included = {(i.customer_internal_id, i.feature): i.included for i in items}
    customers = sorted({iid for iid, _ in included})
    b, g = t.balances, t.balance_grants
    found: dict[tuple[int, str], Decimal] = {}
    for row in conn.execute(select(b).where(b.c.customer_internal_id.in_(customers))):
        key = (row.customer_internal_id, row.feature_id)
        if key in included and row.allowance is not None and _applies(row.reset_at, now):
            found[key] = Decimal(row.allowance) - included[key]
    granted: dict[tuple[int, str], Decimal] = {}
    grants = select(g.c.customer_internal_id, g.c.feature_id, g.c.amount, g.c.expires)
    for grant in conn.execute(grants.where(g.c.customer_internal_id.in_(customers))):
        key = (grant.customer_internal_id, grant.feature_id)
        if key in included and _applies(grant.expires, now):
            granted[key] = granted.get(key, ZERO) + Decimal(grant.amount)
    return found, granted


def _applies(until: date | None, now: datetime) -> bool:
    return until is None or now.date() < until


def reported(
    conn: Connection, customers: Iterable[int]
) -> dict[tuple[int, str, datetime], Decimal]:
    """The units written down to send (sent or pending), per customer, feature and period."""
    ur = t.usage_reports
    ids = sorted(set(customers))
    if not ids:
        return {}
    query = (
        select(ur.c.customer_internal_id, ur.c.feature_id, ur.c.period_end, func.sum(ur.c.value))
        .where(ur.c.customer_internal_id.in_(ids))
        .group_by(ur.c.customer_internal_id, ur.c.feature_id, ur.c.period_end)
    )
    return {(r[0], r[1], r[2]): Decimal(r[3]) for r in conn.execute(query)}


def write_down(conn: Connection, events: Sequence[MeterEvent], now: datetime) -> None:
    """The events about to be sent, `pending` (one statement)."""
    if not events:
        return
    rows = [
        {
            "identifier": e.identifier,
            "customer_internal_id": e.item.customer_internal_id,
            "feature_id": e.item.feature,
            "period_end": e.period_end,
            "value": e.value,
            "event_name": e.item.event_name,
            "stripe_customer_id": e.item.stripe_customer_id,
            "timestamp": e.timestamp,
            "status": PENDING,
            "created_at": now,
        }
        for e in events
    ]
    conn.execute(insert(t.usage_reports), rows)


def mark_sent(conn: Connection, identifiers: Sequence[str], now: datetime) -> None:
    ur = t.usage_reports
    done = update(ur).where(ur.c.identifier.in_(identifiers)).values(status=SENT, sent_at=now)
    conn.execute(done)


def pending(conn: Connection) -> list[Row[Any]]:
    """Events written down that a run did not see through (it died, or Stripe failed)."""
    ur = t.usage_reports
    return list(conn.execute(select(ur).where(ur.c.status == PENDING).order_by(ur.c.created_at)))
