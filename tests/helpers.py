"""Test helpers that stand in for the application: customers signing up onto plans; and
many file customers made at once."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, func, insert, select

from autumn_sync.database import schema as t
from autumn_sync.model.address import customer_key
from autumn_sync.model.customers import Customer, CustomerPlan
from autumn_sync.model.state import State


def add_customers(engine: Engine, plan_id: str, count: int, version: int | None = None) -> None:
    """Put `count` new app-created customers on `plan_id` (its current version by default)."""
    with engine.begin() as conn:
        if version is None:
            version = conn.execute(
                select(t.plans.c.current_version).where(t.plans.c.id == plan_id)
            ).scalar_one()
        for _ in range(count):
            internal_id = conn.execute(
                insert(t.customers).values(created_at=datetime(2026, 1, 1))
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                insert(t.customer_plans).values(
                    customer_internal_id=internal_id,
                    plan_id=plan_id,
                    version=version,
                    status="active",
                )
            )


def customer_versions(engine: Engine, plan_id: str) -> dict[int, int]:
    """How many customers are on each version of `plan_id`."""
    cp = t.customer_plans
    with engine.connect() as conn:
        rows = conn.execute(select(cp.c.version).where(cp.c.plan_id == plan_id)).all()
    counts: dict[int, int] = {}
    for (version,) in rows:
        counts[version] = counts.get(version, 0) + 1
    return counts


def _renamed(copy: int, customer_id: str | None, email: str | None) -> tuple[Any, Any]:
    new_id = f"{customer_id}-copy{copy}" if customer_id else None
    return new_id, f"copy{copy}.{email}" if email else None


def clone_customers(engine: Engine, desired: State, copies: int) -> State:
    """`desired` with `copies` more of each of its customers (under new ids and emails) and
    of their balances; the database, which must match `desired`, gets the same copies of
    their rows by bulk inserts (so a test can hold thousands of customers in seconds). The
    rows get explicit internal ids (PostgreSQL's sequences are moved past them)."""
    customers = dict(desired.customers)
    balances = dict(desired.balances)
    for copy in range(1, copies + 1):
        for key, customer in desired.customers.items():
            cid, email = _renamed(copy, customer.customer_id, customer.email)
            clone = replace(customer, key=customer_key(cid, email), customer_id=cid, email=email)
            customers[clone.key] = clone
            for balance in desired.balances.values():
                if balance.customer == key:
                    moved = replace(balance, customer=clone.key)
                    balances[moved.address] = moved
    with engine.begin() as conn:
        rows = _customer_rows(conn)
        for copy in range(1, copies + 1):
            _insert_copy(conn, rows, copy)
        if conn.dialect.name == "postgresql":
            for table in ("customers", "customer_plans"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'internal_id'), "
                    f"(SELECT max(internal_id) FROM {table}))"
                )
    return replace(desired, customers=customers, balances=balances)


CHILDREN = (t.entities, t.customer_rewards, t.balances, t.balance_grants)


def _customer_rows(conn: Connection) -> dict[str, list[Any]]:
    """The rows of the managed customers, by table name."""
    c, cp, items = t.customers, t.customer_plans, t.customer_plan_items
    managed = select(c.c.internal_id).where(c.c.managed)
    rows = {
        "customers": list(conn.execute(select(c).where(c.c.managed))),
        "customer_plans": list(
            conn.execute(select(cp).where(cp.c.customer_internal_id.in_(managed)))
        ),
    }
    plan_ids = [row.internal_id for row in rows["customer_plans"]]
    rows["customer_plan_items"] = list(
        conn.execute(select(items).where(items.c.customer_plan_id.in_(plan_ids)))
    )
    for table in CHILDREN:
        owned = select(table).where(table.c.customer_internal_id.in_(managed))
        rows[table.name] = list(conn.execute(owned))
    return rows


def _insert_copy(conn: Connection, rows: dict[str, list[Any]], copy: int) -> None:
    """One copy of `rows`, under new internal ids, ids, emails and keys."""
    c, cp = t.customers, t.customer_plans
    base = int(conn.execute(select(func.max(c.c.internal_id))).scalar_one())
    ids = {row.internal_id: base + n for n, row in enumerate(rows["customers"], 1)}
    customers = []
    for row in rows["customers"]:
        cid, email = _renamed(copy, row.id, row.email)
        values = {**row._mapping, "internal_id": ids[row.internal_id], "id": cid, "email": email}
        customers.append({**values, "file_key": customer_key(cid, email)})
    conn.execute(insert(c), customers)
    plan_base = int(conn.execute(select(func.max(cp.c.internal_id))).scalar_one())
    plans = {row.internal_id: plan_base + n for n, row in enumerate(rows["customer_plans"], 1)}
    _insert_copies(conn, cp, rows["customer_plans"], customer_internal_id=ids, internal_id=plans)
    items = rows["customer_plan_items"]
    _insert_copies(conn, t.customer_plan_items, items, customer_plan_id=plans)
    for table in CHILDREN:
        _insert_copies(conn, table, rows[table.name], customer_internal_id=ids)


def _insert_copies(
    conn: Connection, table: Any, rows: list[Any], **renumber: dict[int, int]
) -> None:
    copies = []
    for row in rows:
        values = dict(row._mapping)
        for column, numbers in renumber.items():
            values[column] = numbers[values[column]]
        copies.append(values)
    if copies:
        conn.execute(insert(table), copies)


def as_declared(customer: Customer) -> Customer:
    """The customer with the plans a file gives it: without one a downgrade leaves at the end
    of the period, and without the dates the database gives its plans (`begins`, `ends`)."""

    def plans(held: tuple[CustomerPlan, ...]) -> tuple[CustomerPlan, ...]:
        return tuple(replace(p, begins=None, ends=None) for p in held if p.ends is None)

    entities = tuple(replace(e, plans=plans(e.plans)) for e in customer.entities)
    return replace(customer, plans=plans(customer.plans), entities=entities)


def die_after(engine: Engine, statement: str, limit: int) -> None:
    """Kill this process (SIGKILL) right after `engine` has run its `limit`-th SQL statement
    starting with `statement`, before its transaction commits (for a forked test process)."""
    seen = 0

    @event.listens_for(engine, "after_cursor_execute")
    def die(*args: Any) -> None:
        nonlocal seen
        if str(args[2]).lstrip().upper().startswith(statement):
            seen += 1
            if seen == limit:
                os.kill(os.getpid(), signal.SIGKILL)
