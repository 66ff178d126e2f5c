"""`usage report`: the usage `track` recorded reaches Stripe's meters exactly once, and
Stripe's invoices charge the units beyond the included ones at the price, in cents.

Jane is on Pro ($20 a month, 1,000 messages included, then $5 per 100: 5 cents a message),
subscribed on 2026-12-01 (the emulator's clock, which autumn-sync runs on too)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.emulator.store import Clock
from autumn_sync.metering import report_usage
from autumn_sync.runtime.api import Billing
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from tests.conftest import run_cli
from tests.helpers import die_after
from tests.test_money import (
    DAY,
    HALF_DECEMBER,
    JANUARY,
    START,
    billing,
    charged,
    client,
    live_subscriptions,
    subscribed,
)
from tests.test_money import next_invoice as renewal
from tests.test_stripe_customers import the
from tests.test_stripe_sync import Sync


@pytest.fixture
def sync(sqlite_url: str, tmp_path: Path) -> Iterator[Sync]:
    engine = connect(sqlite_url)
    with Emulator(seed=7, clock=Clock(lambda: float(START))) as emu:
        yield Sync(engine, emu, tmp_path)
    engine.dispose()


@pytest.fixture
def live(sqlite_url: str, tmp_path: Path) -> Iterator[Sync]:
    """The emulator on the wall clock, as the command line runs on it."""
    engine = connect(sqlite_url)
    with Emulator(seed=7) as emu:
        yield Sync(engine, emu, tmp_path)
    engine.dispose()


def on_pro(sync: Sync) -> tuple[str, Billing]:
    customer = subscribed(sync, billing("pro"))
    return customer, Billing(engine=sync.engine, clock=sync.clock)


def report(sync: Sync, **options: Any) -> Any:
    return report_usage(sync.engine, sync.gateway, sync.clock(), **options)


def meter_events(sync: Sync) -> list[dict[str, Any]]:
    """The meter events the emulator holds (customer, value, timestamp), oldest first."""
    held = sync.emu.state.meter_events.values()
    return sorted((e for events in held for e in events), key=lambda e: e["created"])


def test_usage_beyond_the_included_messages_is_billed_once(sync: Sync) -> None:
    """1,300 messages, 1,000 included: 300 × 5 cents = 1500 on January's invoice, with the
    month of Pro (2000); a second report sends nothing."""
    customer, app = on_pro(sync)
    app.track("user_1", "messages", 1300)

    first = report(sync)

    assert [(e.value, e.amount) for e in first.events] == [(1300, 1500)]
    assert renewal(sync, customer) == 2000 + 1500
    assert report(sync).events == []
    assert len(meter_events(sync)) == 1
    sync.emu.clock.advance(JANUARY + DAY)
    assert charged(sync, customer) == [2000, 2000 + 1500]


def test_usage_reported_as_it_grows_is_billed_once_in_all(sync: Sync) -> None:
    """700, then 500 more, then 100 more, reported after each: 1,300 in all, billed 1500."""
    customer, app = on_pro(sync)
    for used in (700, 500, 100):
        app.track("user_1", "messages", used)
        report(sync)

    assert [int(e["value"]) for e in meter_events(sync)] == [700, 500, 100]
    assert renewal(sync, customer) == 2000 + 1500


def test_the_usage_of_a_period_that_ended_is_reported_in_it(sync: Sync) -> None:
    """December's 1,300 messages, reported only after January's first message (the balance
    reset): billed on the invoice of December's end, not January's."""
    _, app = on_pro(sync)
    app.track("user_1", "messages", 1300)
    sync.emu.clock.advance(JANUARY + 3600)  # an hour into January: Stripe waits for usage
    app.track("user_1", "messages", 1)

    done = report(sync)

    assert sorted((e.period_end, e.value) for e in done.events) == [
        (datetime(2027, 1, 1), 1300),
        (datetime(2027, 2, 1), 1),
    ]


def test_a_dry_run_shows_the_events_and_sends_nothing(live: Sync) -> None:
    sync = live
    _, app = on_pro(sync)
    app.track("user_1", "messages", 1300)

    result = run_cli(
        "--stripe-api-key",
        DEFAULT_API_KEY,
        "--stripe-api-base",
        sync.emu.url,
        "usage",
        "report",
        "--dry-run",
        db=str(sync.engine.url),
    )

    assert result.exit_code == 0, result.stderr
    (header, row) = result.stdout.splitlines()[:2]
    assert header.split() == ["CUSTOMER", "FEATURE", "PERIOD", "ENDS", "UNITS", "AMOUNT"]
    assert row.split()[:2] == ["user_1", "messages"]
    assert row.split()[-3:] == ["1300", "15.00", "usd"]
    assert "Would send 1 meter events (1300 units)." in result.stdout
    assert meter_events(sync) == []


def test_the_command_reports_and_says_how_much(live: Sync) -> None:
    sync = live
    _, app = on_pro(sync)
    app.track("user_1", "messages", 1300)
    args = ("--stripe-api-key", DEFAULT_API_KEY, "--stripe-api-base", sync.emu.url)

    sent = run_cli(*args, "usage", "report", db=str(sync.engine.url))
    again = run_cli(*args, "usage", "report", db=str(sync.engine.url))

    assert (sent.exit_code, sent.stdout) == (0, "Sent 1 meter events (1300 units).\n")
    assert again.stdout == "Sent 0 meter events (0 units).\n"


def test_without_stripe_the_command_says_so(sync: Sync) -> None:
    result = run_cli("usage", "report", db=str(sync.engine.url))
    assert result.exit_code == 1
    assert "usage report needs Stripe" in result.stderr


# --- killed at any point ------------------------------------------------------------------------


def _report_and_die(db: str, url: str, now: float, statement: str, limit: int) -> None:
    """In a forked process: report, and die right after the `limit`-th statement starting
    with `statement`, before its transaction commits."""
    engine = connect(db)
    die_after(engine, statement, limit)
    at = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    report_usage(engine, Gateway(StripeConfig(DEFAULT_API_KEY, url)), at)
    os._exit(0)


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    used=st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=3),
    kill=st.sampled_from(["INSERT INTO USAGE_REPORTS", "UPDATE USAGE_REPORTS"]),
    limit=st.integers(min_value=1, max_value=3),
)
def test_a_report_killed_anywhere_then_run_again_bills_the_usage_once(
    tmp_path_factory: pytest.TempPathFactory, used: list[int], kill: str, limit: int
) -> None:
    """Usage tracked in steps, each reported by a run killed after its `limit`-th write of
    the ledger (before it commits), then run again: Stripe holds every message once, and the
    renewal bills exactly the messages beyond 1,000 in whole packs of 100 at 500 cents."""
    folder = tmp_path_factory.mktemp("killed")
    db = f"sqlite:///{folder / 'billing.db'}"
    engine = connect(db)
    forking = multiprocessing.get_context("fork")
    with Emulator(seed=3, clock=Clock(lambda: float(START))) as emu:
        sync = Sync(engine, emu, folder)
        customer, app = on_pro(sync)
        for units in used:
            app.track("user_1", "messages", units)
            args = (db, emu.url, float(emu.clock.now()), kill, limit)
            process = forking.Process(target=_report_and_die, args=args)
            process.start()
            process.join(timeout=60)
            assert process.exitcode in (0, -signal.SIGKILL)
            report(sync)
        total = sum(used)
        packs = -(-max(total - 1000, 0) // 100)  # rounded up
        held = total if total <= 1000 else 1000 + 100 * packs
        assert sum(int(e["value"]) for e in meter_events(sync)) == held
        assert renewal(sync, customer) == 2000 + 500 * packs
        with engine.connect() as conn:
            states = conn.execute(select(t.usage_reports.c.status)).scalars().all()
        assert set(states) <= {"sent"}
    engine.dispose()


def test_half_december_usage_is_reported_at_the_time_it_is_sent(sync: Sync) -> None:
    """An event sent mid-period carries the time it is sent (inside the period)."""
    _, app = on_pro(sync)
    sync.emu.clock.advance(HALF_DECEMBER)
    app.track("user_1", "messages", 10)

    (sent,) = report(sync).events

    assert sent.timestamp == START + HALF_DECEMBER


def test_usage_counted_in_credits_is_reported_in_credits(sync: Sync) -> None:
    """A credit system priced per use: 100 credits included, then $10 per 100 credits; Jane
    sends 300 images at 0.5 credits each (150 credits): 50 credits beyond begin a pack of
    100, reported as 200 credits: 1000 cents."""
    doc = billing("credits")
    doc["features"]["images"] = {"name": "Images", "type": "metered", "consumable": True}
    doc["features"]["credits"] = {
        "name": "Credits",
        "type": "credit_system",
        "credit_costs": {"images": 0.5},
    }
    doc["plans"]["credits"] = {
        "name": "Credits",
        "price": {"amount": 20, "interval": "month"},
        "items": [
            {
                "feature": "credits",
                "included": 100,
                "reset": "month",
                "price": {"amount": 10, "per": 100, "billing": "pay_per_use"},
            }
        ],
    }
    customer = subscribed(sync, doc)
    app = Billing(engine=sync.engine, clock=sync.clock)
    app.track("user_1", "images", 300)

    (sent,) = report(sync).events

    assert (sent.item.feature, sent.value, sent.amount) == ("credits", 200, 1000)
    assert renewal(sync, customer) == 2000 + 1000


@pytest.mark.parametrize(
    ("balance", "billed"),
    [
        # A grant of 200 messages: 1,300 used, 1,200 free, 100 beyond: 500 cents.
        ({"grants": [{"id": "welcome", "amount": 200}]}, 500),
        # A declared allowance of 2,000: nothing is beyond it.
        ({"allowance": 2000}, 0),
    ],
)
def test_what_check_grants_free_is_not_billed(
    sync: Sync, balance: dict[str, Any], billed: int
) -> None:
    doc = billing("pro")
    doc["customers"][0]["balances"] = {"messages": balance}
    customer = subscribed(sync, doc)
    app = Billing(engine=sync.engine, clock=sync.clock)
    app.track("user_1", "messages", 1300)

    report(sync)

    assert renewal(sync, customer) == 2000 + billed
    limits = app.check("user_1", "messages", 1).balance
    beyond = 1300 - (limits.included + limits.granted)  # what check counts as overage
    assert billed == 5 * max(beyond, 0)


# --- usage priced per N units: whole packs of N, rounded up ------------------------------------


def on_packs(sync: Sync, included: int) -> tuple[str, Billing]:
    """Jane on Packs: $20 a month, `included` messages, then $1 per 100 messages."""
    doc = billing("packs")
    doc["plans"]["packs"] = {
        "name": "Packs",
        "group": "main",
        "price": {"amount": 20, "interval": "month"},
        "items": [
            {
                "feature": "messages",
                "included": included,
                "reset": "month",
                "price": {"amount": 1, "per": 100, "billing": "pay_per_use"},
            }
        ],
    }
    return subscribed(sync, doc), Billing(engine=sync.engine, clock=sync.clock)


def usage_line(sync: Sync, customer: str) -> int:
    """The amount of the messages line of the customer's next invoice (Stripe's preview)."""
    price = the(sync.emu, "price", "stripe_price.packs.messages")["id"]
    (sub,) = live_subscriptions(sync, customer)
    params = {"customer": customer, "subscription": sub["id"]}
    preview = client(sync).v1.invoices.create_preview(params=params)  # type: ignore[arg-type]
    (line,) = [x for x in preview.lines.data if x.pricing.price_details.price == price]
    return int(line.amount)


@pytest.mark.parametrize("included", [0, 500])
def test_usage_priced_per_100_is_billed_in_whole_hundreds_rounded_up(
    sync: Sync, included: int
) -> None:
    """101 messages beyond the included ones are 2 packs of 100: 200 cents, not 101; 99 more
    (200 beyond) are still 2 packs, and nothing is sent; one more begins a third: 300."""
    customer, app = on_packs(sync, included)
    app.track("user_1", "messages", included + 101)

    (first,) = report(sync).events

    assert (first.value, first.amount) == (included + 200, 200)
    assert usage_line(sync, customer) == 200

    app.track("user_1", "messages", 99)
    assert report(sync).events == []
    assert usage_line(sync, customer) == 200

    app.track("user_1", "messages", 1)
    (third,) = report(sync).events
    assert (third.value, third.amount) == (100, 100)
    assert usage_line(sync, customer) == 300
    assert renewal(sync, customer) == 2000 + 300


def test_a_grant_used_up_in_december_is_not_free_again_in_january(sync: Sync) -> None:
    """A one-time grant of 200 messages. December: 1,300 used, 1,000 included and the 200
    granted free, 100 beyond: one pack of 100 at 500 cents. January: 1,300 again, the grant
    is used up: 300 beyond, 1500 cents (a grant that came back would bill 500 again)."""
    doc = billing("pro")
    doc["customers"][0]["balances"] = {"messages": {"grants": [{"id": "welcome", "amount": 200}]}}
    customer = subscribed(sync, doc)
    app = Billing(engine=sync.engine, clock=sync.clock)
    app.track("user_1", "messages", 1300)
    report(sync)
    assert renewal(sync, customer) == 2000 + 500
    sync.emu.clock.advance(JANUARY + DAY)
    assert charged(sync, customer) == [2000, 2000 + 500]

    january = app.track("user_1", "messages", 1300)
    report(sync)

    used = {e.source.key: e.used for e in january.balance.breakdown}
    assert used == {"plan:pro": 1300, "grant:welcome": 200}
    assert renewal(sync, customer) == 2000 + 1500
