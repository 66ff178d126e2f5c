"""The number of SQL statements does not grow with the catalog nor with the customers: reading
the current state is a fixed number of `select()`s (no per-plan, per-feature or per-customer
query), a no-change apply only reads, and opening an already-migrated database does not
migrate again.

Catalogs come from `benchmarks/catalog.py`, the generator the benchmark uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache

import pytest
from sqlalchemy import Engine, event, func, insert, select

from autumn_sync.config import load_text
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect, head_revision
from autumn_sync.model.state import State
from autumn_sync.pipeline import apply_plan, make_plan, read_current
from benchmarks.catalog import make_catalog
from tests.conftest import StatementCounter, count_statements, reset_database
from tests.helpers import clone_customers

# settings; features, credit costs; plans, their current versions, items, tiers, versions in
# use; rewards, reward plans, promotion codes; plan versions in use per feature; managed
# customers, custom plan items, customer plans, entities, customer rewards, customer trials,
# grants, balances, the count of the application's customers. (The application's customers
# the file names are looked up only when the file names an id or email no managed customer
# has: never when nothing changes.)
READ_STATEMENTS = 21
# `connect` on a migrated database: does the version table exist, and which revision is it.
RECONNECT_STATEMENTS = 2


def _selects_only(counter: StatementCounter) -> bool:
    return all(s.lstrip().upper().startswith("SELECT") for s in counter.statements)


def _writes(counter: StatementCounter) -> list[str]:
    words = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")
    return [s for s in counter.statements if s.lstrip().upper().startswith(words)]


@cache
def _desired(features: int, plans: int, revision: int = 0, customers: int = 0) -> State:
    """A generated catalog, loaded once per test session (states are immutable)."""
    return load_text(make_catalog(features, plans, revision=revision, customers=customers))


def _add_customers(engine: Engine, targets: list[tuple[str, int]]) -> None:
    """One new customer on each (plan id, version) of `targets`, in two statements."""
    with engine.begin() as conn:
        first = (conn.execute(select(func.max(t.customers.c.internal_id))).scalar() or 0) + 1
        ids = range(first, first + len(targets))
        conn.execute(
            insert(t.customers),
            [{"internal_id": i, "id": f"cus_{i}", "created_at": datetime(2026, 1, 1)} for i in ids],
        )
        conn.execute(
            insert(t.customer_plans),
            [
                {"customer_internal_id": i, "plan_id": plan, "version": version, "status": "active"}
                for i, (plan, version) in zip(ids, targets, strict=True)
            ],
        )


def _current_versions(engine: Engine) -> list[tuple[str, int]]:
    state = read_current(engine)
    return [(pid, plan.version or 1) for pid, plan in sorted(state.plans.items())]


def _populate(engine: Engine, features: int, plans: int) -> State:
    """Apply a generated catalog, put a customer on every plan, apply a revision of it (price
    changes: new versions for the plans with customers), then add customers to every other
    plan's current version. Returns the desired state the database now matches."""
    apply_plan(engine, make_plan(engine, _desired(features, plans)))
    _add_customers(engine, _current_versions(engine))
    desired = _desired(features, plans, revision=1)
    apply_plan(engine, make_plan(engine, desired))
    _add_customers(engine, _current_versions(engine)[::2])
    return desired


def _check_populated(state: State, plans: int) -> None:
    """The catalog has what the reads must cover: items with tiers, credit costs, rewards
    with plans and codes, plans with customers on more than one version."""
    assert len(state.plans) == plans
    assert any(f.credit_costs for f in state.features.values())
    items = [item for plan in state.plans.values() for item in plan.content.items]
    assert any(item.price is not None and item.price.tiers for item in items)
    assert any(r.plans for r in state.rewards.values())
    assert any(r.promo_codes for r in state.rewards.values())
    assert any(len(plan.versions_in_use) >= 2 for plan in state.plans.values())
    assert state.feature_users


def _count_no_change_plan(url: str, features: int, plans: int) -> StatementCounter:
    engine = connect(url)
    try:
        desired = _populate(engine, features, plans)
        _check_populated(read_current(engine), plans)
        with count_statements(engine) as counter:
            plan = make_plan(engine, desired)
        assert plan.empty
        return counter
    finally:
        engine.dispose()


@pytest.mark.slow
def test_plan_reads_the_same_statements_for_5_and_500_plans(db_url: str) -> None:
    small = _count_no_change_plan(db_url, features=8, plans=5)
    reset_database(db_url)
    large = _count_no_change_plan(db_url, features=60, plans=500)
    assert small.count == large.count
    assert small.count == READ_STATEMENTS
    assert small.statements == large.statements
    assert _selects_only(large)


def test_a_no_change_apply_only_reads(db_url: str) -> None:
    engine = connect(db_url)
    try:
        desired = _populate(engine, features=20, plans=50)
        with count_statements(engine) as reads:
            plan = make_plan(engine, desired)
        assert plan.empty
        with count_statements(engine) as applying:
            result = apply_plan(engine, plan)
        assert result.applied == ()
        assert applying.statements == reads.statements
        assert applying.count == READ_STATEMENTS
        assert _selects_only(applying)
    finally:
        engine.dispose()


@contextmanager
def count_all_statements() -> Iterator[StatementCounter]:
    """Count the statements of every engine, including those created inside the block."""
    counter = StatementCounter()

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        counter.statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield counter
    finally:
        event.remove(Engine, "before_cursor_execute", record)


CUSTOMER_FILE = 100  # customers of the generated file; larger counts are copies of them


def _apply_customers(engine: Engine, customers: int) -> State:
    """A catalog with `CUSTOMER_FILE` customers of the file (balances with allowances and
    grants, custom versions, entities, rewards), applied, then copied (rows and file alike)
    up to `customers`; and as many of the application's own customers on its plans. Returns
    the desired state the database now matches."""
    desired = _desired(12, 12, customers=CUSTOMER_FILE)
    apply_plan(engine, make_plan(engine, desired))
    desired = clone_customers(engine, desired, customers // CUSTOMER_FILE - 1)
    versions = _current_versions(engine)
    _add_customers(engine, [versions[n % len(versions)] for n in range(customers)])
    state = read_current(engine)
    assert len(state.customers) == customers and state.app_customers == customers
    assert len(state.balances) >= customers
    assert sum(len(b.grants) for b in state.balances.values()) >= customers
    assert any(p.custom for c in state.customers.values() for p in c.plans)
    assert any(c.entities for c in state.customers.values())
    assert any(c.customer_id is None for c in state.customers.values())  # pre-provisioned
    return desired


def _count_no_change_customers_plan(url: str, customers: int) -> StatementCounter:
    engine = connect(url)
    try:
        desired = _apply_customers(engine, customers)
        with count_statements(engine) as counter:
            plan = make_plan(engine, desired)
        assert plan.empty
        return counter
    finally:
        engine.dispose()


@pytest.mark.slow
def test_plan_reads_the_same_statements_for_100_and_5000_customers(db_url: str) -> None:
    small = _count_no_change_customers_plan(db_url, 100)
    reset_database(db_url)
    large = _count_no_change_customers_plan(db_url, 5000)
    assert small.count == large.count == READ_STATEMENTS
    assert small.statements == large.statements
    assert _selects_only(large)


def test_a_no_change_apply_with_customers_only_reads(db_url: str) -> None:
    engine = connect(db_url)
    try:
        desired = _apply_customers(engine, 300)
        with count_statements(engine) as reads:
            plan = make_plan(engine, desired)
        assert plan.empty
        with count_statements(engine) as applying:
            result = apply_plan(engine, plan)
        assert result.applied == ()
        assert applying.statements == reads.statements
        assert applying.count == READ_STATEMENTS
        assert _selects_only(applying)
    finally:
        engine.dispose()


def test_connect_does_not_migrate_a_migrated_database(db_url: str) -> None:
    with count_all_statements() as first:
        connect(db_url).dispose()
    assert first.count > RECONNECT_STATEMENTS  # the migration ran
    for _ in range(2):
        with count_all_statements() as again:
            engine = connect(db_url)
        try:
            assert again.count == RECONNECT_STATEMENTS, again.statements
            assert _writes(again) == []
            with engine.connect() as conn:
                version = conn.exec_driver_sql("SELECT version_num FROM autumn_sync_schema_version")
                assert version.scalar_one() == head_revision()
        finally:
            engine.dispose()
