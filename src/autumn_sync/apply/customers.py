"""Database appliers for customers and their declared balances.

A customer's plans are attached at the plan's current version as it stands when the change
runs (a plan changed earlier in the same apply gives its new version); plans that stay keep
their version. Usage is never written here: a balance change touches only the declared
allowance, reset date and grants.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from autumn_sync.apply.context import Context
from autumn_sync.db import schema as t
from autumn_sync.model.customers import Balance, Customer, CustomerPlan
from autumn_sync.plan.changes import Change, Create, Delete, Update

ACTIVE = "active"
TRIALING = "trialing"


def _row(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.customer_id,
        "email": customer.email,
        "name": customer.name,
        "fingerprint": customer.fingerprint,
        "metadata_json": json.dumps(dict(customer.metadata), sort_keys=True)
        if customer.metadata
        else None,
        "managed": True,
        "file_key": customer.key,
        "stripe_link": customer.stripe_customer,
        "stripe_create": customer.stripe_create,
        "collection": customer.collection,
        "days_until_due": customer.days_until_due,
    }


def create_customer(ctx: Context, change: Create) -> None:
    conn, now = ctx.connection, ctx.now
    customer = change.after
    assert isinstance(customer, Customer)
    result = conn.execute(insert(t.customers).values(created_at=now, **_row(customer)))
    iid = int(result.inserted_primary_key[0])  # type: ignore[index]
    _sync_children(conn, now, iid, None, customer)


def update_customer(ctx: Context, change: Update) -> None:
    conn, now = ctx.connection, ctx.now
    old, new = change.before, change.after
    assert isinstance(old, Customer) and isinstance(new, Customer)
    assert old.internal_id is not None
    c = t.customers
    conn.execute(update(c).where(c.c.internal_id == old.internal_id).values(**_row(new)))
    _sync_children(conn, now, old.internal_id, old, new)


def delete_customer(ctx: Context, change: Delete) -> None:
    conn = ctx.connection
    old = change.before
    assert isinstance(old, Customer) and old.internal_id is not None
    iid = old.internal_id
    cp = t.customer_plans
    plan_ids = select(cp.c.internal_id).where(cp.c.customer_internal_id == iid)
    items = t.customer_plan_items
    conn.execute(delete(items).where(items.c.customer_plan_id.in_(plan_ids)))
    for table in (cp, t.entities, t.customer_rewards, t.balance_grants, t.balances):
        conn.execute(delete(table).where(table.c.customer_internal_id == iid))
    conn.execute(delete(t.customers).where(t.customers.c.internal_id == iid))


def _sync_children(
    conn: Connection, now: datetime, iid: int, old: Customer | None, new: Customer
) -> None:
    _sync_plans(conn, now, iid, new, dict(old_plans(old)) if old else {})
    entities = [{"id": e.id, "feature_id": e.feature, "name": e.name} for e in new.entities]
    _replace_rows(conn, t.entities, iid, entities)
    _replace_rows(conn, t.customer_rewards, iid, [{"reward_id": r} for r in new.rewards])


def old_plans(customer: Customer) -> list[tuple[tuple[str, str], CustomerPlan]]:
    return [((entity or "", plan.plan), plan) for entity, plan in customer.all_plans()]


def _replace_rows(conn: Connection, table: Any, iid: int, rows: list[dict[str, Any]]) -> None:
    conn.execute(delete(table).where(table.c.customer_internal_id == iid))
    if rows:
        conn.execute(insert(table), [{"customer_internal_id": iid, **row} for row in rows])


def _sync_plans(
    conn: Connection,
    now: datetime,
    iid: int,
    new: Customer,
    before: dict[tuple[str, str], CustomerPlan],
) -> None:
    """Attach new plans, detach removed ones (another plan of a group replaces one), and
    update the terms of the others in place."""
    wanted = dict(old_plans(new))
    cp = t.customer_plans
    for key in sorted(set(before) - set(wanted)):
        _detach(conn, iid, key)
    for key, plan in sorted(wanted.items()):
        if key not in before:
            _attach(conn, now, iid, key[0], plan, new.fingerprint)
        elif _terms(before[key]) != _terms(plan):
            row_id = _plan_row_id(conn, iid, key)
            conn.execute(update(cp).where(cp.c.internal_id == row_id).values(**_plan_values(plan)))
            _replace_items(conn, row_id, plan)


def _terms(plan: CustomerPlan) -> tuple[object, ...]:
    return (plan.quantity, plan.start, plan.trial_days, plan.price, plan.items)


def _plan_values(plan: CustomerPlan) -> dict[str, Any]:
    return {
        "quantity": plan.quantity,
        "started_at": plan.start,
        "trial_days": plan.trial_days,
        "price_amount": plan.price.amount if plan.price else None,
        "price_interval": plan.price.interval if plan.price else None,
    }


def _plan_row_id(conn: Connection, iid: int, key: tuple[str, str]) -> int:
    cp = t.customer_plans
    query = select(cp.c.internal_id).where(
        (cp.c.customer_internal_id == iid) & (cp.c.entity_id == key[0]) & (cp.c.plan_id == key[1])
    )
    return int(conn.execute(query).scalar_one())


def _detach(conn: Connection, iid: int, key: tuple[str, str]) -> None:
    row_id = _plan_row_id(conn, iid, key)
    items = t.customer_plan_items
    conn.execute(delete(items).where(items.c.customer_plan_id == row_id))
    conn.execute(delete(t.customer_plans).where(t.customer_plans.c.internal_id == row_id))


def _attach(
    conn: Connection,
    now: datetime,
    iid: int,
    entity: str,
    plan: CustomerPlan,
    fingerprint: str | None,
) -> None:
    p, v = t.plans, t.plan_versions
    query = select(p.c.current_version, v.c.trial_days, v.c.trial_unique_fingerprint).join(
        v, (v.c.plan_id == p.c.id) & (v.c.version == p.c.current_version)
    )
    version, plan_trial, unique = conn.execute(query.where(p.c.id == plan.plan)).one()
    start = plan.start or now.date()
    days = plan.trial_days if plan.trial_days is not None else plan_trial
    if days and unique and fingerprint and trial_used(conn, fingerprint):
        days = None  # one free trial per fingerprint
    trial_end = start + timedelta(days=days) if days else None
    result = conn.execute(
        insert(t.customer_plans).values(
            customer_internal_id=iid,
            entity_id=entity,
            plan_id=plan.plan,
            version=version,
            status=TRIALING if trial_end and trial_end > now.date() else ACTIVE,
            attached_at=now,
            trial_ends_at=trial_end,
            **_plan_values(plan),
        )
    )
    _replace_items(conn, int(result.inserted_primary_key[0]), plan)  # type: ignore[index]


def trial_used(conn: Connection, fingerprint: str) -> bool:
    """Whether a customer with `fingerprint` has had a free trial."""
    c, cp = t.customers, t.customer_plans
    query = (
        select(cp.c.internal_id)
        .join(c, c.c.internal_id == cp.c.customer_internal_id)
        .where((c.c.fingerprint == fingerprint) & cp.c.trial_ends_at.is_not(None))
        .limit(1)
    )
    return conn.execute(query).first() is not None


def _replace_items(conn: Connection, row_id: int, plan: CustomerPlan) -> None:
    items = t.customer_plan_items
    conn.execute(delete(items).where(items.c.customer_plan_id == row_id))
    rows = [
        {
            "customer_plan_id": row_id,
            "feature_id": item.feature,
            "included": item.included,
            "reset_interval": item.reset,
        }
        for item in plan.items
    ]
    if rows:
        conn.execute(insert(items), rows)


# --- balances ------------------------------------------------------------------------------


def customer_internal_id(conn: Connection, key: str) -> int:
    """The row of the managed customer the file names `key` (set by its customer change;
    a customer matched by id or email without changes keeps an older key)."""
    c = t.customers
    found = conn.execute(select(c.c.internal_id).where(c.c.file_key == key)).scalar()
    if found is None:
        column = c.c.id if key.startswith(".") else c.c.email
        value = key[1:] if key.startswith(".") else key[1:-1]
        query = select(c.c.internal_id).where((column == value) & c.c.managed)
        found = conn.execute(query.order_by(c.c.internal_id)).scalars().first()
    assert found is not None, f"no customer for {key}"
    return int(found)


def set_balance(ctx: Context, change: Create | Update) -> None:
    conn, now = ctx.connection, ctx.now
    new = change.after
    assert isinstance(new, Balance)
    iid = customer_internal_id(conn, new.customer)
    b = t.balances
    where = (b.c.customer_internal_id == iid) & (b.c.feature_id == new.feature)
    values = {"allowance": new.allowance, "reset_at": new.reset_at}
    if conn.execute(select(b.c.feature_id).where(where)).first() is None:
        conn.execute(
            insert(b).values(customer_internal_id=iid, feature_id=new.feature, usage=0, **values)
        )
    else:
        conn.execute(update(b).where(where).values(**values))
    _sync_grants(conn, now, iid, change.before, new)


def _sync_grants(conn: Connection, now: datetime, iid: int, old: object, new: Balance) -> None:
    """Grants keyed by id: a new id is given (once), a changed one updated, a removed one
    taken back."""
    before = {g.id: g for g in old.grants} if isinstance(old, Balance) else {}
    wanted = {g.id: g for g in new.grants}
    g = t.balance_grants
    mine = (g.c.customer_internal_id == iid) & (g.c.feature_id == new.feature)
    gone = sorted(set(before) - set(wanted))
    if gone:
        conn.execute(delete(g).where(mine & g.c.grant_id.in_(gone)))
    for gid, grant in sorted(wanted.items()):
        if gid not in before:
            conn.execute(
                insert(g).values(
                    customer_internal_id=iid,
                    feature_id=new.feature,
                    grant_id=gid,
                    amount=grant.amount,
                    expires=grant.expires,
                    granted_at=now,
                )
            )
        elif before[gid] != grant:
            conn.execute(
                update(g)
                .where(mine & (g.c.grant_id == gid))
                .values(amount=grant.amount, expires=grant.expires)
            )


CUSTOMER_APPLIERS: dict[tuple[str, type[Change]], Callable[[Context, Any], None]] = {
    ("customer", Create): create_customer,
    ("customer", Update): update_customer,
    ("customer", Delete): delete_customer,
    ("balance", Create): set_balance,
    ("balance", Update): set_balance,
}
