"""The item rules (`reset: hour | one_off`, `interval_count`, `rollover`, `max_purchase`) in the
catalog: stored in `plan_items`, read back equal (the next plan is empty), exported, a new
version when customers are on the plan, reported as drift when the database differs, and never
sent to Stripe."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from autumn_sync.config.export import dump_state
from autumn_sync.config.load import load_text
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.model.records import PlanItem, Rollover
from autumn_sync.pipeline import apply_plan, make_plan, read_current
from autumn_sync.plan.changes import Update
from tests.conftest import run_cli
from tests.helpers import add_customers, customer_versions
from tests.test_stripe_sync import Doc, Sync, catalog

HEAD = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  api_calls: {name: API calls, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
  credits: {name: Credits, type: credit_system, credit_costs: {messages: 1}}
plans:
  pro:
    name: Pro
    price: {amount: 20, interval: month}
    items:
"""
ITEMS = """\
      - {feature: messages, included: 1000, reset: month,
         rollover: {max: 500, expires_after: {months: 2}}}
      - {feature: api_calls, included: 100, reset: hour, interval_count: 6}
      - {feature: credits, included: 300, reset: month, interval_count: 3,
         rollover: {max_percentage: 12.5}}
      - {feature: seats, included: 3, max_purchase: 20,
         price: {billing: pay_per_use, amount: 10, interval: month}}
"""
EXPECTED = (
    PlanItem("api_calls", Decimal(100), reset="hour", interval_count=6),
    PlanItem(
        "credits",
        Decimal(300),
        reset="month",
        interval_count=3,
        rollover=Rollover(max_percentage=Decimal("12.5")),
    ),
    PlanItem(
        "messages",
        Decimal(1000),
        reset="month",
        rollover=Rollover(max=Decimal(500), expires_months=2),
    ),
)


def applied(engine: Engine, items: str = ITEMS) -> None:
    """Plan and apply the catalog with `items`; the next plan is empty."""
    desired = load_text(HEAD + items)
    apply_plan(engine, make_plan(engine, desired))
    assert make_plan(engine, desired).empty


def test_the_rules_are_stored_and_read_back_equal(engine: Engine) -> None:
    """Every field is stored and read back as the file says it (SQLite, PostgreSQL and
    MariaDB), so the next plan is empty; `import` writes a file that plans no change."""
    applied(engine)
    items = read_current(engine).plans["pro"].content.items
    assert items[:3] == EXPECTED
    assert items[3].max_purchase == Decimal(20) and items[3].interval_count == 1
    exported = load_text(dump_state(read_current(engine)))
    assert make_plan(engine, exported).empty


def test_a_rule_removed_is_stored_as_none(engine: Engine) -> None:
    """Removing every rule leaves the columns as an item without them: a count of 1 is
    stored as none, no rollover as false."""
    applied(engine)
    plain = ITEMS.replace(", interval_count: 6", "").replace(", interval_count: 3", "")
    plain = plain.replace("rollover: {max: 500, expires_after: {months: 2}}", "rollover: {}")
    plain = plain.replace(",\n         rollover: {max_percentage: 12.5}", "")
    applied(engine, plain.replace(", max_purchase: 20", ""))
    items = {i.feature: i for i in read_current(engine).plans["pro"].content.items}
    assert items["messages"].rollover == Rollover()
    assert items["credits"].rollover is None and items["credits"].interval_count == 1
    assert items["seats"].max_purchase is None


def test_a_customers_own_reset_may_be_hourly_or_one_off(engine: Engine) -> None:
    """A custom version's reset takes the new values where the plan's item allows them
    (not on a pay-per-use item, and one that recurs where the item counts resets or rolls
    over): stored and read back, the next plan is empty."""
    items = (
        "      - {feature: messages, included: 1000, reset: month}\n"
        "      - {feature: api_calls, included: 100, reset: day, rollover: {}}\n"
        "customers:\n  - id: acme\n    plans:\n      - plan: pro\n        items:\n"
        "          - {feature: messages, reset: one_off}\n"
        "          - {feature: api_calls, included: 50, reset: hour}\n"
    )
    applied(engine, items)
    (own,) = read_current(engine).customers[".acme"].plans
    assert [(i.feature, i.reset) for i in own.items] == [
        ("api_calls", "hour"),
        ("messages", "one_off"),
    ]


@pytest.mark.parametrize(
    ("before", "after", "field"),
    [
        ("max: 500,", "max: 600,", "items[messages].rollover.max"),
        ("interval_count: 3", "interval_count: 4", "items[credits].interval_count"),
        ("reset: hour", "reset: day", "items[api_calls].reset"),
        ("max_purchase: 20", "max_purchase: 30", "items[seats].max_purchase"),
    ],
)
def test_a_change_with_customers_on_the_plan_makes_a_new_version(
    engine: Engine, before: str, after: str, field: str
) -> None:
    applied(engine)
    add_customers(engine, "pro", 2)
    plan = make_plan(engine, load_text(HEAD + ITEMS.replace(before, after)))
    (change,) = plan.changes
    assert isinstance(change, Update) and change.new_version == 2
    assert [f.path for f in change.fields] == [field]
    assert change.reason == "new version 2 (2 customers stay on version 1)"
    apply_plan(engine, plan)
    assert customer_versions(engine, "pro") == {1: 2}


def test_drift_reports_a_rule_changed_in_the_database(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "billing.yaml"
    path.write_text(HEAD + ITEMS, encoding="utf-8")
    assert run_cli("apply", "-f", str(path), "--auto-approve", db=sqlite_url).exit_code == 0
    engine = connect(sqlite_url)
    with engine.begin() as conn:
        items = t.plan_items
        conn.execute(
            update(items).where(items.c.feature_id == "messages").values(rollover_months=None)
        )
    engine.dispose()
    result = run_cli("drift", "-f", str(path), db=sqlite_url)
    assert result.exit_code == 2
    assert "  ~ plan.pro (update in place)\n" in result.stdout
    planned = run_cli("plan", "-f", str(path), db=sqlite_url).stdout
    assert "items[messages].rollover.expires_months: (none) → 2\n" in planned


@pytest.fixture
def sync(sqlite_url: str, tmp_path: Path) -> Iterator[Sync]:
    engine = connect(sqlite_url)
    with Emulator(seed=7) as emu:
        yield Sync(engine, emu, tmp_path)
    engine.dispose()


def rules(doc: Doc) -> None:
    """Pro's messages (pay-per-use) capped, their included usage carried over; Free's
    messages reset every 3 hours."""
    pro = {item["feature"]: item for item in doc["plans"]["pro"]["items"]}
    pro["messages"].update(max_purchase=5000, rollover={"max_percentage": 50})
    free = {item["feature"]: item for item in doc["plans"]["free"]["items"]}
    free["messages"].update(reset="hour", interval_count=3)


def test_stripe_shows_no_change_when_only_the_rules_change(sync: Sync) -> None:
    """The rules are the billing database's: plans whose only changes are rules update the
    database (in place: nobody is on them) and leave Stripe as it is."""
    sync.apply(catalog())
    plan = sync.apply(catalog(rules))
    assert plan.stripe is not None  # Stripe was planned: nothing in it changes
    assert [c.address for c in plan.changes] == ["plan.free", "plan.pro"]
