"""Database appliers for customers and their declared balances.

A customer's plans are attached at the plan's current version as it stands when the change
runs (a plan changed earlier in the same apply gives its new version); plans that stay keep
their version. Usage is never written here: a balance change touches only the declared
allowance, reset date and grants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from autumn_sync.database import schema as t
from autumn_sync.database.apply.transaction import APPLIERS, Transaction
from autumn_sync.model.customers import Balance, Customer, CustomerPlan
from autumn_sync.plan.changes import Create, Delete, Update

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


@APPLIERS.made(Create, Customer)
def _create_customer(tx: Transaction, _change: Create, customer: Customer) -> None:
    conn, now = tx.connection, tx.now
    # Parameters apart from the statement: one cached statement for thousands of customers.
    result = conn.execute(insert(t.customers), {"created_at": now, **_row(customer)})
    iid = int(result.inserted_primary_key[0])  # type: ignore[index]
    tx.created_customers[customer.key] = iid
    _sync_children(tx, iid, None, customer)


@APPLIERS.changed(Update, Customer)
def _update_customer(tx: Transaction, _change: Update, old: Customer, new: Customer) -> None:
    conn = tx.connection
    assert old.internal_id is not None, "a customer in the database has a row"
    c = t.customers
    conn.execute(update(c).where(c.c.internal_id == old.internal_id).values(**_row(new)))
    _sync_children(tx, old.internal_id, old, new)


@APPLIERS.gone(Delete, Customer)
def _delete_customer(tx: Transaction, _change: Delete, old: Customer) -> None:
    conn = tx.connection
    assert old.internal_id is not None, "a customer in the database has a row"
    iid = old.internal_id
    cp = t.customer_plans
    plan_ids = select(cp.c.internal_id).where(cp.c.customer_internal_id == iid)
    items = t.customer_plan_items
    conn.execute(delete(items).where(items.c.customer_plan_id.in_(plan_ids)))
    per_customer = (cp, t.entities, t.customer_rewards, t.customer_trials, t.balance_grants)
    usage = (t.balances, t.balance_usage, t.usage_periods, t.usage_reports, t.usage_events)
    for table in (*per_customer, *usage):
        conn.execute(delete(table).where(table.c.customer_internal_id == iid))
    conn.execute(delete(t.customers).where(t.customers.c.internal_id == iid))


def _sync_children(tx: Transaction, iid: int, old: Customer | None, new: Customer) -> None:
    """Plans (with their custom items), entities and rewards of a customer made (`old` is
    None: it has no rows yet) or updated (only what differs is rewritten)."""
    conn = tx.connection
    _sync_plans(tx, iid, new, dict(old_plans(old)) if old else {})
    entities = [(e.id, e.feature, e.name) for e in new.entities]
    if old is None or entities != [(e.id, e.feature, e.name) for e in old.entities]:
        rows = [{"id": eid, "feature_id": feature, "name": name} for eid, feature, name in entities]
        _replace_rows(conn, t.entities, iid, rows, old is not None)
    if old is None or old.rewards != new.rewards:
        rewards = [{"reward_id": r} for r in new.rewards]
        _replace_rows(conn, t.customer_rewards, iid, rewards, old is not None)


def old_plans(customer: Customer) -> list[tuple[tuple[str, str], CustomerPlan]]:
    return [((entity or "", plan.plan), plan) for entity, plan in customer.all_plans()]


def _replace_rows(
    conn: Connection, table: Any, iid: int, rows: list[dict[str, Any]], existing: bool
) -> None:
    if existing:
        conn.execute(delete(table).where(table.c.customer_internal_id == iid))
    if rows:
        conn.execute(insert(table), [{"customer_internal_id": iid, **row} for row in rows])


def _sync_plans(
    tx: Transaction, iid: int, new: Customer, before: dict[tuple[str, str], CustomerPlan]
) -> None:
    """Attach new plans, detach removed ones (another plan of a group replaces one), and
    update the terms of the others in place."""
    conn = tx.connection
    wanted = dict(old_plans(new))
    cp = t.customer_plans
    for key in sorted(set(before) - set(wanted)):
        _detach(conn, iid, key)
    for key, plan in sorted(wanted.items()):
        if key not in before:
            _attach(tx, iid, key[0], plan, new.fingerprint)
        elif _terms(before[key]) != _terms(plan):
            row_id = _plan_row_id(conn, iid, key)
            values = _plan_values(plan)
            if plan.status is not None and plan.status != before[key].status:
                values["status"] = plan.status  # cancelled in Stripe, or active again
            conn.execute(update(cp).where(cp.c.internal_id == row_id).values(**values))
            _replace_items(conn, row_id, plan)


def _terms(plan: CustomerPlan) -> tuple[object, ...]:
    return (
        plan.quantity,
        plan.start,
        plan.trial_days,
        plan.price,
        plan.items,
        plan.quantities,
        plan.begins,
        plan.ends,
    )


def _plan_values(plan: CustomerPlan) -> dict[str, Any]:
    return {
        "quantity": plan.quantity,
        "started_at": plan.start,
        "begins_at": plan.begins,
        "ends_at": plan.ends,
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


def _attach(tx: Transaction, iid: int, entity: str, plan: CustomerPlan, fp: str | None) -> None:
    """Put the customer (or `entity`) on `plan` at the plan's current version, with the
    plan's free trial unless the customer's terms say otherwise, or the customer (entity) or
    its fingerprint (when the plan gives one per fingerprint) had one of the plan."""
    conn, now = tx.connection, tx.now
    version, plan_trial, unique = _current_terms(tx)[plan.plan]
    start = plan.begins or plan.start or now.date()
    days = plan.trial_days if plan.trial_days is not None else plan_trial
    trial_end = start + timedelta(days=days) if days else None
    if trial_end is not None:
        trial = Trial(iid, entity, plan.plan, trial_end, fp if unique else None)
        trial_end = trial_end if take_trial(conn, trial, now) else None
    row = {
        "customer_internal_id": iid,
        "entity_id": entity,
        "plan_id": plan.plan,
        "version": version,
        "status": TRIALING if trial_end and trial_end > now.date() else ACTIVE,
        "attached_at": now,
        "trial_ends_at": trial_end,
        **_plan_values(plan),
    }
    result = conn.execute(insert(t.customer_plans), row)
    _insert_items(conn, int(result.inserted_primary_key[0]), plan)  # type: ignore[index]


def _current_terms(tx: Transaction) -> dict[str, tuple[int, int | None, bool | None]]:
    """Plan id → (current version, trial days, one trial per fingerprint), read once per
    apply at the first plan attached to a customer. The plan's changes all come before the
    customers' (`plan.order`: customers reference their plans, and plan changes never wait
    for a customer), so the versions are those the apply leaves."""
    if not tx.plan_terms:
        p, v = t.plans, t.plan_versions
        query = select(p.c.id, p.c.current_version, v.c.trial_days, v.c.trial_unique_fingerprint)
        query = query.join(v, (v.c.plan_id == p.c.id) & (v.c.version == p.c.current_version))
        for pid, version, days, unique in tx.connection.execute(query):
            tx.plan_terms[pid] = (int(version), days, unique)
    return tx.plan_terms


@dataclass(frozen=True)
class Trial:
    """The free trial attaching `plan` would give the customer row `customer` (or its
    entity, '' for the customer itself), ending `ends`; `fingerprint` is the customer's
    when the plan gives one trial per fingerprint."""

    customer: int
    entity: str
    plan: str
    ends: date
    fingerprint: str | None = None


def take_trial(conn: Connection, trial: Trial, now: datetime) -> bool:
    """Whether the trial is given: once per customer (entity) and plan, and once per
    fingerprint and plan when it has one. Recorded for good: leaving the plan does not give
    the trial back."""
    ct = t.customer_trials
    mine = (
        (ct.c.customer_internal_id == trial.customer)
        & (ct.c.entity_id == trial.entity)
        & (ct.c.plan_id == trial.plan)
    )
    if conn.execute(select(ct.c.plan_id).where(mine)).first() is not None:
        return False
    if trial.fingerprint:
        values = {"fingerprint": trial.fingerprint, "plan_id": trial.plan, "trial_at": now}
        if not _insert_once(conn, t.fingerprint_plan_trials, values):
            return False
    values = {
        "customer_internal_id": trial.customer,
        "entity_id": trial.entity,
        "plan_id": trial.plan,
        "trial_ends_at": trial.ends,
    }
    return _insert_once(conn, ct, values)


def _insert_once(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert the row unless one with its key is there (another run may have recorded it
    since it was looked for): whether this insert made it."""
    if conn.dialect.name == "postgresql":
        key = next(iter(table.primary_key.columns))
        made = pg_insert(table).values(**values).on_conflict_do_nothing().returning(key)
        return conn.execute(made).first() is not None
    ignore = "OR IGNORE" if conn.dialect.name == "sqlite" else "IGNORE"
    return bool(conn.execute(insert(table).values(**values).prefix_with(ignore)).rowcount == 1)


def _replace_items(conn: Connection, row_id: int, plan: CustomerPlan) -> None:
    items = t.customer_plan_items
    conn.execute(delete(items).where(items.c.customer_plan_id == row_id))
    _insert_items(conn, row_id, plan)


def _insert_items(conn: Connection, row_id: int, plan: CustomerPlan) -> None:
    """One row per feature the customer's terms name: its custom included usage and reset,
    its prepaid units (each null when not set)."""
    custom = {item.feature: item for item in plan.items}
    units = dict(plan.quantities)
    rows = [
        {
            "customer_plan_id": row_id,
            "feature_id": feature,
            "included": custom[feature].included if feature in custom else None,
            "reset_interval": custom[feature].reset if feature in custom else None,
            "quantity": units.get(feature),
        }
        for feature in sorted(set(custom) | set(units))
    ]
    if rows:
        conn.execute(insert(t.customer_plan_items), rows)


# --- balances ------------------------------------------------------------------------------


def customer_internal_id(conn: Connection, key: str) -> int:
    """The row of the managed customer the file names `key` (its customer change, which
    comes first, writes the key whenever it differs)."""
    c = t.customers
    return int(conn.execute(select(c.c.internal_id).where(c.c.file_key == key)).scalar_one())


@APPLIERS.made(Create, Balance)
def _create_balance(tx: Transaction, _change: Create, new: Balance) -> None:
    _set_balance(tx, None, new)


@APPLIERS.changed(Update, Balance)
def _update_balance(tx: Transaction, _change: Update, old: Balance, new: Balance) -> None:
    _set_balance(tx, old, new)


def _set_balance(tx: Transaction, old: Balance | None, new: Balance) -> None:
    """The declared allowance, reset date and grants of a balance; its usage (`balance_usage`,
    the application's) is left alone: a grant given again under the same id is not new."""
    conn, now = tx.connection, tx.now
    iid = tx.created_customers.get(new.customer)
    fresh = iid is not None  # a customer made by this apply has no balance rows yet
    if iid is None:
        iid = customer_internal_id(conn, new.customer)
    b = t.balances
    where = (b.c.customer_internal_id == iid) & (b.c.feature_id == new.feature)
    values = {"allowance": new.allowance, "reset_at": new.reset_at}
    if fresh or conn.execute(select(b.c.feature_id).where(where)).first() is None:
        row = {"customer_internal_id": iid, "feature_id": new.feature, **values}
        conn.execute(insert(b), row)
    else:
        conn.execute(update(b).where(where).values(**values))
    _sync_grants(conn, now, iid, old, new)


def _sync_grants(
    conn: Connection, now: datetime, iid: int, old: Balance | None, new: Balance
) -> None:
    """Grants keyed by id: a new id is given (once), a changed one updated, a removed one
    taken back."""
    before = {g.id: g for g in old.grants} if old is not None else {}
    wanted = {g.id: g for g in new.grants}
    g = t.balance_grants
    mine = (g.c.customer_internal_id == iid) & (g.c.feature_id == new.feature)
    gone = sorted(set(before) - set(wanted))
    if gone:
        conn.execute(delete(g).where(mine & g.c.grant_id.in_(gone)))
    given = [
        {
            "customer_internal_id": iid,
            "feature_id": new.feature,
            "grant_id": gid,
            "amount": grant.amount,
            "expires": grant.expires,
            "granted_at": now,
        }
        for gid, grant in sorted(wanted.items())
        if gid not in before
    ]
    if given:
        conn.execute(insert(g), given)
    for gid, grant in sorted(wanted.items()):
        if gid in before and before[gid] != grant:
            values = {"amount": grant.amount, "expires": grant.expires}
            conn.execute(update(g).where(mine & (g.c.grant_id == gid)).values(**values))


@APPLIERS.gone(Delete, Balance)
def _delete_balance(tx: Transaction, _change: Delete, old: Balance) -> None:
    """A balance that goes with its customer (whose delete removes the rest)."""
    iid = customer_internal_id(tx.connection, old.customer)
    for table in (t.balance_grants, t.balances):
        mine = (table.c.customer_internal_id == iid) & (table.c.feature_id == old.feature)
        tx.connection.execute(delete(table).where(mine))
