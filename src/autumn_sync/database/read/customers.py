"""Reads the customers the file manages (and the application's customers the file names)
from the billing database, with their plans, entities, rewards, declared balances and the plans
they had a free trial of: a fixed number of `select()`s whatever the number of customers."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, false, func, select

from autumn_sync.database import schema as t
from autumn_sync.model.address import customer_key
from autumn_sync.model.customers import (
    CHARGE_AUTOMATICALLY,
    Balance,
    Customer,
    CustomerPlan,
    Entity,
    Grant,
    Lookup,
)
from autumn_sync.model.records import FixedPrice, PlanItem

# Values per `IN (...)` list: far below every database's limit on bound parameters (SQLite
# 32,766, PostgreSQL 65,535), so a file naming tens of thousands of new customers still reads.
CHUNK = 5000


@dataclass(frozen=True)
class CustomerRows:
    customers: dict[str, Customer]  # by key
    balances: dict[str, Balance]  # by address
    app_customers: int  # the application's customers the file does not manage


def read_customers(connection: Connection, lookup: Lookup) -> CustomerRows:
    """Managed customers, and the application's customers whose id or email `lookup` names.

    The managed ones take a fixed number of queries whatever their number. The application's
    customers the file names (to be adopted) are looked up only when the file names an id or
    email no managed customer has, `CHUNK` at a time."""
    c = t.customers
    managed = list(connection.execute(select(c).where(c.c.managed)))
    customers, balances = _assemble(connection, managed, c.c.managed)
    named = _named(connection, lookup, managed)
    for start in range(0, len(named), CHUNK):
        chunk = named[start : start + CHUNK]
        scope = c.c.internal_id.in_([row.internal_id for row in chunk])
        more, more_balances = _assemble(connection, chunk, scope)
        fresh = {key: customer for key, customer in more.items() if key not in customers}
        customers.update(fresh)
        balances.update({a: b for a, b in more_balances.items() if b.customer in fresh})
    count = select(func.count()).select_from(c).where(c.c.managed == false())
    unmanaged = sum(not customer.managed for customer in customers.values())
    return CustomerRows(
        customers=customers,
        balances=balances,
        app_customers=int(connection.execute(count).scalar_one()) - unmanaged,
    )


def _assemble(
    connection: Connection, rows: list[Row[Any]], scope: ColumnElement[bool]
) -> tuple[dict[str, Customer], dict[str, Balance]]:
    """The customers of `rows` by key, and their declared balances (customers in `scope`)."""
    plans = _plans(connection, scope)
    entities = _entities(connection, scope)
    rewards = _rewards(connection, scope)
    trials = _trials(connection, scope)
    customers: dict[str, Customer] = {}
    keys: dict[int, str] = {}
    for row in rows:
        customer = _customer(row, plans, entities, rewards, trials)
        if customers.setdefault(customer.key, customer) is customer:
            keys[row.internal_id] = customer.key
    return customers, _balances(connection, scope, keys)


def _named(connection: Connection, lookup: Lookup, managed: list[Row[Any]]) -> list[Row[Any]]:
    """The application's customers with an id or email of the file that no managed customer
    has, by internal id (no query when there are none)."""
    ids = sorted(lookup.ids - {r.id for r in managed if r.id})
    emails = sorted(lookup.emails - {r.email for r in managed if r.email})
    c = t.customers
    found: dict[int, Row[Any]] = {}
    for start in range(0, max(len(ids), len(emails)), CHUNK):
        names = c.c.id.in_(ids[start : start + CHUNK]) | c.c.email.in_(
            emails[start : start + CHUNK]
        )
        for row in connection.execute(select(c).where(~c.c.managed & names)):
            found[row.internal_id] = row
    return [found[iid] for iid in sorted(found)]


def _customer(
    row: Row[Any],
    plans: dict[tuple[int, str], list[CustomerPlan]],
    entities: dict[int, list[tuple[str, str, str | None]]],
    rewards: dict[int, list[str]],
    trials: dict[int, list[tuple[str, str]]],
) -> Customer:
    iid = row.internal_id
    return Customer(
        key=row.file_key or customer_key(row.id, row.email),
        customer_id=row.id,
        email=row.email,
        name=row.name,
        fingerprint=row.fingerprint,
        metadata=_metadata(row.metadata_json),
        stripe_customer=row.stripe_link,
        stripe_create=bool(row.stripe_create),
        collection=row.collection or CHARGE_AUTOMATICALLY,
        days_until_due=row.days_until_due,
        plans=tuple(sorted(plans.get((iid, ""), ()), key=lambda p: p.plan)),
        entities=tuple(
            Entity(
                id=eid,
                feature=feature,
                name=name,
                plans=tuple(sorted(plans.get((iid, eid), ()), key=lambda p: p.plan)),
            )
            for eid, feature, name in sorted(entities.get(iid, ()))
        ),
        rewards=tuple(sorted(rewards.get(iid, ()))),
        internal_id=iid,
        managed=bool(row.managed),
        stripe_id=row.stripe_id,
        trialed=tuple(sorted(trials.get(iid, ()))),
    )


def _metadata(text: str | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(json.loads(text).items())) if text else ()


def _in_scope(table: Any, scope: ColumnElement[bool]) -> Any:
    c = t.customers
    return select(table).join(c, table.c.customer_internal_id == c.c.internal_id).where(scope)


def _plans(
    connection: Connection, scope: ColumnElement[bool]
) -> dict[tuple[int, str], list[CustomerPlan]]:
    """(customer, entity or '') → plans, with their custom items and prepaid units (two
    queries)."""
    cp, items = t.customer_plans, t.customer_plan_items
    custom: dict[int, list[PlanItem]] = defaultdict(list)
    units: dict[int, list[tuple[str, int]]] = defaultdict(list)
    query = (
        select(items)
        .join(cp, items.c.customer_plan_id == cp.c.internal_id)
        .join(t.customers, cp.c.customer_internal_id == t.customers.c.internal_id)
        .where(scope)
    )
    for row in connection.execute(query):
        if row.included is not None or row.reset_interval is not None:
            item = PlanItem(feature=row.feature_id, included=row.included, reset=row.reset_interval)
            custom[row.customer_plan_id].append(item)
        if row.quantity is not None:
            units[row.customer_plan_id].append((row.feature_id, row.quantity))
    plans: dict[tuple[int, str], list[CustomerPlan]] = defaultdict(list)
    for row in connection.execute(_in_scope(cp, scope)):
        plan = _customer_plan(row, custom, units)
        plans[(row.customer_internal_id, row.entity_id)].append(plan)
    return plans


def _customer_plan(
    row: Row[Any], custom: dict[int, list[PlanItem]], units: dict[int, list[tuple[str, int]]]
) -> CustomerPlan:
    price = None
    if row.price_amount is not None:
        price = FixedPrice(amount=row.price_amount, interval=row.price_interval)
    return CustomerPlan(
        plan=row.plan_id,
        quantity=row.quantity,
        quantities=tuple(sorted(units.get(row.internal_id, ()))),
        start=row.started_at,
        trial_days=row.trial_days,
        price=price,
        items=tuple(sorted(custom.get(row.internal_id, ()), key=lambda i: i.feature)),
        version=row.version,
        status=row.status,
        trial_ends_at=row.trial_ends_at,
        stripe_subscription_id=row.stripe_subscription_id,
        begins=row.begins_at,
        ends=row.ends_at,
        attached=row.attached_at.date() if row.attached_at is not None else None,
    )


def _entities(
    connection: Connection, scope: ColumnElement[bool]
) -> dict[int, list[tuple[str, str, str | None]]]:
    found: dict[int, list[tuple[str, str, str | None]]] = defaultdict(list)
    for row in connection.execute(_in_scope(t.entities, scope)):
        found[row.customer_internal_id].append((row.id, row.feature_id, row.name))
    return found


def _rewards(connection: Connection, scope: ColumnElement[bool]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for row in connection.execute(_in_scope(t.customer_rewards, scope)):
        found[row.customer_internal_id].append(row.reward_id)
    return found


def _trials(connection: Connection, scope: ColumnElement[bool]) -> dict[int, list[tuple[str, str]]]:
    """Customer → (entity or '', plan) of every free trial it had."""
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for row in connection.execute(_in_scope(t.customer_trials, scope)):
        found[row.customer_internal_id].append((row.entity_id, row.plan_id))
    return found


def _balances(
    connection: Connection, scope: ColumnElement[bool], keys: dict[int, str]
) -> dict[str, Balance]:
    """The declared part of each balance (allowance, reset date, grants; two queries)."""
    grants: dict[tuple[int, str], list[Grant]] = defaultdict(list)
    for row in connection.execute(_in_scope(t.balance_grants, scope)):
        grant = Grant(id=row.grant_id, amount=row.amount, expires=row.expires)
        grants[(row.customer_internal_id, row.feature_id)].append(grant)
    declared: dict[tuple[int, str], tuple[Any, Any]] = {}
    for row in connection.execute(_in_scope(t.balances, scope)):
        declared[(row.customer_internal_id, row.feature_id)] = (row.allowance, row.reset_at)
    balances = {}
    for iid, feature in sorted(set(grants) | set(declared)):
        if iid not in keys:
            continue  # a customer left out (the application's, sharing another one's email)
        allowance, reset_at = declared.get((iid, feature), (None, None))
        balance = Balance(
            customer=keys[iid],
            feature=feature,
            allowance=allowance,
            reset_at=reset_at,
            grants=tuple(sorted(grants.get((iid, feature), ()), key=lambda g: g.id)),
        )
        if balance.declared:
            balances[balance.address] = balance
    return balances
