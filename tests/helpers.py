"""Test helpers that stand in for the application: customers signing up onto plans."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select

from autumn_sync.db import schema as t


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
