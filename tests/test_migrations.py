"""Migrations that change what stored data means keep its meaning."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Engine, column, insert, inspect, select, table, update

from autumn_sync.config import load_text
from autumn_sync.database import engine as db
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect, head_revision
from autumn_sync.pipeline import apply_plan, make_plan

CATALOG = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
  credits: {name: Credits, type: credit_system, credit_costs: {messages: 1}}
  sso: {name: SSO, type: boolean}
plans:
  free:
    name: Free
    items:
      - {feature: messages, unlimited: true, reset: month}
      - {feature: seats, included: 0}
      - {feature: credits, price: {billing: prepaid, amount: 10, per: 1000, interval: month}}
      - {feature: sso}
"""


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    with engine.begin() as connection:
        config = db._config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _unlimited(engine: Engine) -> dict[str, bool]:
    query = select(t.plan_items.c.feature_id, t.plan_items.c.unlimited)
    with engine.connect() as connection:
        return {row.feature_id: row.unlimited for row in connection.execute(query)}


def test_0012_marks_the_items_that_were_implicitly_unlimited(tmp_path: Path) -> None:
    """Before 0012 an item of a metered feature with neither included usage nor a price was
    unlimited: after it such items say so, and the file that now says `unlimited: true`
    plans no change. Items with included usage or a price, and boolean ones, are not."""
    engine = connect(f"sqlite:///{tmp_path / 'billing.db'}")
    desired = load_text(CATALOG)
    apply_plan(engine, make_plan(engine, desired))
    _migrate(engine, "0011", down=True)  # the rows as 0011 held them
    _migrate(engine, head_revision())
    assert _unlimited(engine) == {"messages": True, "seats": False, "credits": False, "sso": False}
    assert make_plan(engine, desired).empty
    engine.dispose()


USAGE_BEFORE_SOURCES = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  free:
    name: Free
    items:
      - {feature: messages, included: 100, reset: month}
customers:
  - {id: on_plan, plans: [free]}
  - id: declared
    balances: {messages: {allowance: 500}}
  - id: granted
    balances:
      messages:
        grants: [{id: later, amount: 10}, {id: sooner, amount: 20, expires: 2027-06-01}]
"""


def test_0015_moves_each_usage_to_the_source_that_gives_first(db_url: str) -> None:
    """Before 0015 a balance had one usage per feature: after it, that usage is on the
    customer's plan item (its period's end kept), else on the declared allowance, else on
    the grant that expires first; closed periods say they were a feature's whole usage."""
    engine = connect(db_url)
    apply_plan(engine, make_plan(engine, load_text(USAGE_BEFORE_SOURCES)))
    _migrate(engine, "0014", down=True)
    ids = _internal_ids(engine)
    b = sa_table("balances", "customer_internal_id", "feature_id", "usage", "next_reset")
    periods = sa_table("usage_periods", "customer_internal_id", "feature_id", "period_end", "usage")
    with engine.begin() as connection:
        rows = [
            (ids["on_plan"], 30, datetime(2027, 2, 1)),
            (ids["declared"], 40, None),
            (ids["granted"], 5, None),
        ]
        for iid, used, next_reset in rows:
            values = {"usage": used, "next_reset": next_reset}
            mine = (b.c.customer_internal_id == iid) & (b.c.feature_id == "messages")
            if connection.execute(select(b.c.feature_id).where(mine)).first() is None:
                connection.execute(
                    insert(b).values(customer_internal_id=iid, feature_id="messages", **values)
                )
            else:
                connection.execute(update(b).where(mine).values(**values))
        closed = {"feature_id": "messages", "period_end": datetime(2027, 1, 1), "usage": 12}
        connection.execute(insert(periods).values(customer_internal_id=ids["on_plan"], **closed))
    _migrate(engine, head_revision())
    u, up = t.balance_usage, t.usage_periods
    with engine.connect() as connection:
        moved = {
            (row.customer_internal_id, row.source): (row.used, row.next_reset)
            for row in connection.execute(select(u))
        }
        kept = connection.execute(select(up.c.source, up.c.usage)).all()
    assert moved == {
        (ids["on_plan"], "plan:free"): (30, datetime(2027, 2, 1)),
        (ids["declared"], "allowance"): (40, None),
        (ids["granted"], "grant:sooner"): (5, None),
    }
    assert [(source, int(used)) for source, used in kept] == [("", 12)]
    engine.dispose()


def sa_table(name: str, *columns: str) -> Any:
    return table(name, *(column(c) for c in columns))


def _internal_ids(engine: Engine) -> dict[str, int]:
    c = t.customers
    with engine.connect() as connection:
        return {
            row.id: row.internal_id for row in connection.execute(select(c.c.id, c.c.internal_id))
        }


RULES = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
plans:
  pro:
    name: Pro
    items:
      - {feature: messages, included: 1000, reset: month, interval_count: 3,
         rollover: {max: 500, expires_after: {months: 2}}}
      - {feature: seats, included: 3, max_purchase: 20,
         price: {billing: pay_per_use, amount: 10, interval: month}}
"""
RULE_COLUMNS = {
    "reset_count",
    "rollover",
    "rollover_max",
    "rollover_max_percentage",
    "rollover_months",
    "max_purchase",
}


def test_0014_items_before_it_have_no_rules_and_it_downgrades(db_url: str) -> None:
    """0014 on a database with items (SQLite's batch mode, PostgreSQL, MariaDB): they read
    as items without rules, so the file that has them updates the plan in place and then
    plans nothing; 0014 downgrades, dropping its columns, and upgrades again."""
    engine = connect(db_url)
    desired = load_text(RULES)
    apply_plan(engine, make_plan(engine, desired))
    _migrate(engine, "0013", down=True)
    assert not RULE_COLUMNS & {c["name"] for c in inspect(engine).get_columns("plan_items")}
    _migrate(engine, head_revision())
    plan = make_plan(engine, desired)
    (change,) = plan.changes
    assert change.address == "plan.pro" and change.reason is None
    assert [f.path for f in change.fields] == [
        "items[messages].interval_count",
        "items[messages].rollover.max",
        "items[messages].rollover.expires_months",
        "items[seats].max_purchase",
    ]
    apply_plan(engine, plan)
    assert make_plan(engine, desired).empty
    engine.dispose()
