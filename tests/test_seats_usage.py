"""Continuous features billed per use (seats in use): Stripe bills a licensed price at the
subscription item's quantity, which `usage report` sets to the usage `track` recorded,
prorated; planning keeps the quantity Stripe has.

Jane is on Crew ($30 a month; seats at $10 each beyond the 2 included, pay-per-use),
subscribed on 2026-12-01 (the emulator's clock, which autumn-sync runs on too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.emulator.store import Clock
from autumn_sync.metering import report_usage
from autumn_sync.render import render_text
from autumn_sync.runtime.api import Billing
from tests.conftest import run_cli
from tests.test_money import HALF_DECEMBER, START, billing, charged, subscribed
from tests.test_money import next_invoice as renewal
from tests.test_stripe_sync import Doc, Sync

CREW = {
    "name": "Crew",
    "price": {"amount": 30, "interval": "month"},
    "items": [
        {"feature": "seats", "included": 2, "price": {"amount": 10, "billing": "pay_per_use"}}
    ],
}


@pytest.fixture
def sync(sqlite_url: str, tmp_path: Path) -> Iterator[Sync]:
    engine = connect(sqlite_url)
    with Emulator(seed=11, clock=Clock(lambda: float(START))) as emu:
        yield Sync(engine, emu, tmp_path)
    engine.dispose()


def crew(consumable: bool | None = None) -> Doc:
    """Jane on Crew; with `consumable` said, every seats price bills monthly, as a consumable
    feature's prices must say (the catalog's seats otherwise as they are)."""
    doc = billing("crew")
    doc["plans"]["crew"] = CREW
    if consumable is not None:
        doc["features"]["seats"]["consumable"] = consumable
        for plan in doc["plans"].values():
            for item in plan.get("items", ()):
                if item["feature"] == "seats":
                    item["price"] = {**item["price"], "interval": "month"}
    return doc


def report(sync: Sync, **options: Any) -> Any:
    return report_usage(sync.engine, sync.gateway, sync.clock(), **options)


def seat_quantity(sync: Sync, customer: str) -> int:
    """The quantity of the seats item of the customer's subscription in the emulator."""
    subs = sync.emu.state.tables["subscription"].rows.values()
    (sub,) = [s for s in subs if s["customer"] == customer and s["status"] != "canceled"]
    for item_id in sub["items"]:
        item = sync.emu.state.find("subscription_item", str(item_id))
        assert item is not None
        price = sync.emu.state.find("price", str(item["price"]))
        assert price is not None
        if price["metadata"].get("autumn_sync_address") == "stripe_price.crew.seats":
            return int(item["quantity"])
    raise AssertionError("no seats item")


def test_seats_in_use_are_the_items_quantity_prorated(sync: Sync) -> None:
    """5 seats (2 included): 3 × 1000 a month. Reported at the period's start, December's
    3 seats are prorated whole (+3000, on the next invoice) and January bills 3000 with
    the base (3000). Halfway through December 7 seats: +2 × 1000 for half the month
    (+1000), and January's seats bill 5 × 1000."""
    customer = subscribed(sync, crew())
    assert charged(sync, customer) == [3000]  # the base; no seat beyond the included yet
    assert seat_quantity(sync, customer) == 0
    app = Billing(engine=sync.engine, clock=sync.clock)
    app.track("user_1", "seats", 5)

    first = report(sync)

    assert [
        (c.item.customer_id, c.item.feature, c.before, c.after) for c in first.quantities_set
    ] == [("user_1", "seats", 0, 5)]
    assert first.events == [] and first.ok
    assert seat_quantity(sync, customer) == 5
    assert renewal(sync, customer) == 3000 + 3000 + 3000
    assert sync.plan(crew()).empty  # planning keeps Stripe's quantity

    sync.emu.clock.advance(HALF_DECEMBER)
    app.track("user_1", "seats", 2)
    second = report(sync)

    assert [(c.before, c.after) for c in second.quantities_set] == [(5, 7)]
    assert seat_quantity(sync, customer) == 7
    assert renewal(sync, customer) == 3000 + 3000 + 1000 + 5000
    again = report(sync)
    assert again.quantities == [] and again.quantities_set == [] and again.ok
    assert sync.plan(crew()).empty


def test_a_dry_run_shows_the_quantity_and_sets_nothing(sync: Sync) -> None:
    customer = subscribed(sync, crew())
    Billing(engine=sync.engine, clock=sync.clock).track("user_1", "seats", 4)

    found = report(sync, dry_run=True)

    assert [(c.before, c.after) for c in found.quantities] == [(0, 4)]
    assert found.quantities_set == []
    assert seat_quantity(sync, customer) == 0
    assert len(report(sync).quantities_set) == 1


def test_a_metered_seat_price_becomes_licensed_and_its_meter_archived(sync: Sync) -> None:
    """A catalog applied while seats were billed on a meter plans a replacement of the price
    (metered → licensed), the meter archived; the subscription swaps its item (0 seats
    until the report), and converges."""
    customer = subscribed(sync, crew(consumable=True))

    plan = sync.plan(crew(consumable=False))
    text = render_text(plan)

    assert "-/+ stripe_price.crew.seats" in text, text
    assert "stripe_meter.crew.seats" in text, text
    sync.apply(crew(consumable=False))
    assert seat_quantity(sync, customer) == 0
    Billing(engine=sync.engine, clock=sync.clock).track("user_1", "seats", 3)
    assert [(c.before, c.after) for c in report(sync).quantities_set] == [(0, 3)]
    assert sync.plan(crew(consumable=False)).empty


def test_the_dry_run_command_names_customer_feature_and_units(sync: Sync) -> None:
    subscribed(sync, crew())
    Billing(engine=sync.engine, clock=sync.clock).track("user_1", "seats", 4)
    args = ("--stripe-api-key", DEFAULT_API_KEY, "--stripe-api-base", sync.emu.url)

    result = run_cli(*args, "usage", "report", "--dry-run", db=str(sync.engine.url))

    assert result.exit_code == 0, result.stderr
    assert "Quantity: user_1 seats: 0 → 4 units (would set)" in result.stdout
