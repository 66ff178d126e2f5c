"""What `usage report` sends for a period (`metering.plan`): the units Stripe's meter should
hold, usage beyond the free tier rounded up to whole packs of the price's `per` units, and
what Stripe bills for them, in cents worked out by hand. Pure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from autumn_sync.metering.plan import BilledItem, MeterEvent, Period, Tier, events

END = datetime(2027, 1, 1)
NOW = datetime(2026, 12, 15)


def item(unit: str, per: int = 1, included: int = 0, tiers: tuple[Tier, ...] = ()) -> BilledItem:
    """Jane's messages at `unit` cents a unit (the price's amount / `per`)."""
    return BilledItem(
        customer_internal_id=1,
        customer_id="user_1",
        stripe_customer_id="cus_1",
        feature="messages",
        plan="pro",
        event_name="autumn_sync.pro.messages",
        meter="stripe_meter.pro.messages",
        included=Decimal(included),
        tiers=tiers or (Tier(None, Decimal(unit)),),
        per=per,
    )


# $1 per 100 (1 cent a unit); $5 per 100 with 1,000 included (Pro's messages); $1 per 100 up
# to 5,000 units, then $0.50 per 100, with 1,000 included.
PER_100 = item("1", per=100)
PRO = item("5", per=100, included=1000)
TIERED = item(
    "0",
    per=100,
    included=1000,
    tiers=(Tier(Decimal(5000), Decimal(1)), Tier(None, Decimal("0.5"))),
)


@pytest.mark.parametrize(
    ("billed", "usage", "units", "cents"),
    [
        # per 1: every unit, a fraction of one counted whole: 101 × 5 = 505, 102 × 5 = 510
        (item("5"), "101", 101, 505),
        (item("5"), "101.2", 102, 510),
        (item("5", included=100), "101", 101, 5),
        # per 100: 101 units are 2 packs of 100 ($2); 100 are one; 201 are 3
        (PER_100, "0", 0, 0),
        (PER_100, "1", 100, 100),
        (PER_100, "100", 100, 100),
        (PER_100, "101", 200, 200),
        (PER_100, "100.5", 200, 200),
        (PER_100, "201", 300, 300),
        # per 100 with 1,000 included: nothing up to 1,000 (reported as used); 1,101 is
        # 1,000 free and 2 packs at $5; 1,300 is 3 packs
        (PRO, "700", 700, 0),
        (PRO, "1000", 1000, 0),
        (PRO, "1001", 1100, 500),
        (PRO, "1101", 1200, 1000),
        (PRO, "1300", 1300, 1500),
        # tiers: 5,050 is 1,000 free and 41 packs: 40 at $1 (up to 5,000), 1 at $0.50
        (TIERED, "5050", 5100, 4000 + 50),
        (TIERED, "4999", 5000, 4000),
        (TIERED, "1050", 1100, 100),
    ],
)
def test_the_units_reported_are_whole_packs_beyond_the_free_tier(
    billed: BilledItem, usage: str, units: int, cents: int
) -> None:
    reported = billed.billed(Decimal(usage))
    assert reported == units
    assert billed.cost(reported) == cents


def test_a_cost_is_rounded_to_a_cent_as_stripe_rounds_a_line() -> None:
    """Half a cent a unit ($1 per 200): 3 units cost 1.5 cents at per 1, billed 2; at per
    200, 1 unit is a pack of 200: 100 cents."""
    half = item("0.5")
    assert half.cost(Decimal(3)) == 2
    pack = item("0.5", per=200)
    assert pack.cost(pack.billed(Decimal(1))) == 100


def period(billed: BilledItem, usage: int, reported: int) -> Period:
    return Period(billed, END, Decimal(usage), Decimal(reported))


def sent(found: list[object]) -> list[tuple[Decimal, Decimal, str]]:
    return [(e.value, e.amount, e.identifier) for e in found if isinstance(e, MeterEvent)]


def test_usage_reported_as_it_grows_tops_the_packs_up() -> None:
    """$1 per 100: 101 used sends 200 (200 cents); 200 used then sends nothing (2 packs
    still); 201 sends 100 more (300 cents in all), named by the 200 reported before it."""
    stamp = "autumn_sync:user_1:messages:20270101T000000"
    assert sent(list(events([period(PER_100, 101, 0)], NOW))) == [(200, 200, f"{stamp}:0")]
    assert sent(list(events([period(PER_100, 200, 200)], NOW))) == []
    assert sent(list(events([period(PER_100, 201, 200)], NOW))) == [(100, 100, f"{stamp}:200")]


def test_units_reported_one_by_one_before_are_topped_up_to_a_pack() -> None:
    """101 units reported one by one (as before packs): 101 used now sends 99 more, which
    bill 99 cents: Stripe's 101 cents become 200."""
    assert [(v, a) for v, a, _ in sent(list(events([period(PER_100, 101, 101)], NOW)))] == [
        (99, 99)
    ]
