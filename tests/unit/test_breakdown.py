"""The breakdown of a balance (`runtime.breakdown`): order, one-time grants, overage and its
cap, refunds, resets and rollovers — pure, and as properties over random histories."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from autumn_sync.runtime.breakdown import (
    ALLOW,
    GRANT,
    PLAN,
    ROLLOVER,
    Entry,
    Rollover,
    Source,
    advance,
    covers,
    deduct,
    ordered,
)

D = Decimal
START = datetime(2027, 1, 1)


def plan(
    granted: int = 100,
    interval: str | None = "month",
    *,
    key: str = "pro",
    priced: bool = False,
    cap: int | None = None,
    rollover: Rollover | None = None,
    entity: str = "",
    every: int = 1,
) -> Source:
    return Source(
        key=f"{PLAN}:{key}",
        kind=PLAN,
        entity=entity,
        plan_id=key,
        granted=D(granted),
        interval=interval,
        every=every,
        anchor=START if interval else None,
        priced=priced,
        max_purchase=None if cap is None else D(cap),
        rollover=rollover,
    )


def grant(amount: int, name: str = "welcome", expires: datetime | None = None) -> Source:
    return Source(key=f"{GRANT}:{name}", kind=GRANT, granted=D(amount), expires=expires)


def used(entries: list[Entry]) -> dict[str, Decimal]:
    return {e.source.key: e.used for e in entries}


def test_order_shortest_reset_first_then_soonest_expiry_then_grants_without_expiry() -> None:
    daily = plan(10, "day", key="daily")
    monthly = plan(100, "month", key="monthly")
    lasting = grant(50, "lasting")
    soon = grant(20, "soon", expires=datetime(2027, 2, 1))
    later = grant(20, "later", expires=datetime(2027, 6, 1))
    once = plan(5, None, key="once")
    mine = plan(7, "month", key="seat", entity="team-eu")
    entries = [Entry(s) for s in (lasting, later, once, monthly, soon, daily, mine)]
    keys = [e.source.key for e in ordered(entries)]
    assert keys == [
        "plan:seat",  # the entity's own first
        "plan:daily",
        "plan:monthly",
        "grant:soon",
        "grant:later",
        "plan:once",
        "grant:lasting",
    ]


def test_usage_is_taken_in_order_and_a_one_time_grant_is_used_up_for_good() -> None:
    entries, _ = advance([Entry(plan(100)), Entry(grant(50))], START)
    taken = deduct(entries, D(120))
    assert used(taken.entries) == {"plan:pro": 100, "grant:welcome": 20}
    assert (taken.recorded, taken.dropped) == (120, 0)
    # two months later: the plan's allowance is back, the 20 of the grant stay used
    later, closed = advance(taken.entries, datetime(2027, 3, 15))
    assert used(later) == {"plan:pro": 0, "grant:welcome": 20}
    assert [(c.key, c.end, c.used) for c in closed] == [("plan:pro", datetime(2027, 2, 1), 100)]
    assert sum(e.remaining for e in later) == 130


def test_without_overage_usage_stops_at_zero() -> None:
    taken = deduct([Entry(plan(100))], D(130))
    assert (taken.recorded, taken.dropped) == (100, 30)
    assert taken.entries[0].remaining == 0
    assert not covers(taken.entries, D(1))
    assert covers(taken.entries, D(0))


def test_overage_goes_on_the_priced_item_up_to_its_cap_unless_allowed() -> None:
    entries = [Entry(plan(100, priced=True, cap=50)), Entry(grant(10))]
    taken = deduct(entries, D(200))
    assert used(taken.entries) == {"plan:pro": 150, "grant:welcome": 10}
    assert (taken.recorded, taken.dropped) == (160, 40)
    assert not covers(taken.entries, D(1))
    allowed = deduct(entries, D(200), overage=ALLOW)
    assert used(allowed.entries)["plan:pro"] == 190 and allowed.dropped == 0
    assert covers(entries, D(160)) and not covers(entries, D(161))
    uncapped = [Entry(plan(100, priced=True))]
    assert covers(uncapped, D(10**9))


def test_a_refund_gives_back_overage_first_then_the_last_sources() -> None:
    entries = [Entry(plan(100, priced=True)), Entry(grant(50))]
    taken = deduct(entries, D(170)).entries  # plan 100 + grant 50 + 20 overage
    back = deduct(taken, D(-30))
    assert used(back.entries) == {"plan:pro": 100, "grant:welcome": 40}
    assert back.recorded == -30
    everything = deduct(back.entries, D(-1000))
    assert used(everything.entries) == {"plan:pro": 0, "grant:welcome": 0}
    assert everything.recorded == -140


def test_an_unlimited_source_takes_everything() -> None:
    unlimited = Source("plan:max", PLAN, plan_id="max", unlimited=True)
    taken = deduct([Entry(grant(50)), Entry(unlimited)], D(10**6))
    assert used(taken.entries) == {"grant:welcome": 0, "plan:max": 10**6}
    assert covers(taken.entries, D(10**9))


def test_an_entity_uses_its_own_sources_before_its_customers() -> None:
    entries = [Entry(plan(100)), Entry(plan(5, entity="team-eu", key="seat"))]
    taken = deduct(entries, D(8))
    assert used(taken.entries) == {"plan:pro": 3, "plan:seat": 5}


def test_resets_every_interval_count_and_hour() -> None:
    quarterly = [Entry(plan(10, "month", every=3))]
    entries, _ = advance(quarterly, datetime(2027, 2, 10))
    assert entries[0].next_reset == datetime(2027, 4, 1)
    hourly = [Entry(plan(10, "hour"))]
    entries, _ = advance(hourly, datetime(2027, 1, 1, 5, 30))
    assert entries[0].next_reset == datetime(2027, 1, 1, 6)


def test_a_rollover_carries_unused_allowance_within_its_cap_until_it_expires() -> None:
    rule = Rollover(max=D(150), months=2)
    entries, _ = advance([Entry(plan(100, rollover=rule))], START)
    entries = deduct(entries, D(40)).entries
    # February: January's 60 unused roll over (they expire at the start of April)
    feb, _ = advance(entries, datetime(2027, 2, 1))
    carried = [e for e in feb if e.source.kind == ROLLOVER]
    assert [(e.source.granted, e.source.expires) for e in carried] == [(60, datetime(2027, 4, 1))]
    # the rollover is used before the item's allowance
    assert used(deduct(feb, D(70)).entries) == {"plan:pro": 10, "rollover:pro:202702010000": 60}
    # March, nothing used in February: 100 more unused, 90 carried (the cap is 150 held)
    march, _ = advance(feb, datetime(2027, 3, 1))
    assert sorted(e.source.granted for e in march if e.source.kind == ROLLOVER) == [60, 90]
    # April: January's expires; February's 90 stay; March's 100 unused fill the cap again
    april, _ = advance(march, datetime(2027, 4, 1))
    rolled = {e.source.key: e.source.granted for e in april if e.source.kind == ROLLOVER}
    assert rolled == {"rollover:pro:202703010000": 90, "rollover:pro:202704010000": 60}


def test_a_percentage_cap() -> None:
    rule = Rollover(max_percentage=D(25))
    entries, _ = advance([Entry(plan(200, rollover=rule))], START)
    feb, _ = advance(entries, datetime(2027, 2, 1))
    assert [e.source.granted for e in feb if e.source.kind == ROLLOVER] == [50]


# --- properties ----------------------------------------------------------------------------

Operation = tuple[str, int]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("track"), st.integers(-80, 300)),
        st.tuples(st.just("wait"), st.integers(0, 70)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    operations,
    st.booleans(),
    st.sampled_from([None, 0, 25]),
    st.booleans(),
    st.sampled_from(["day", "week", "month"]),
)
def test_the_breakdown_never_goes_negative_and_a_grant_is_never_restored(
    ops: list[Operation], priced: bool, cap: int | None, rolls: bool, interval: str
) -> None:
    rule = Rollover(max=D(120), months=1) if rolls else None
    sources = [
        plan(100, interval, priced=priced, cap=cap, rollover=rule),
        grant(50, "lasting"),
        grant(30, "soon", expires=START + timedelta(days=40)),
    ]
    entries, _ = advance([Entry(s) for s in sources], START)
    now = START
    for op, number in ops:
        if op == "wait":
            now += timedelta(days=number)
            grants_before = {e.source.key: e.used for e in entries if e.source.kind == GRANT}
            entries, closed = advance(entries, now)
            grants_after = {e.source.key: e.used for e in entries if e.source.kind == GRANT}
            # a reset gives back no grant (an expired one is gone, not refilled)
            assert all(grants_after[k] == grants_before[k] for k in grants_after)
            assert all(c.used > 0 for c in closed)
        else:
            value = D(number)
            total_before = sum(e.used for e in entries)
            taken = deduct(entries, value)
            assert sum(e.used for e in taken.entries) - total_before == taken.recorded
            if value >= 0:
                assert taken.recorded + taken.dropped == value
                before = {e.source.key: e.used for e in entries}
                # usage only grows on a track: a grant's used never goes down
                assert all(e.used >= before[e.source.key] for e in taken.entries)
            entries = taken.entries
        for entry in entries:
            assert entry.used >= 0 and entry.remaining >= 0
            if not entry.source.priced:
                assert entry.used <= entry.source.granted  # only a priced item goes over
            elif cap is not None:
                assert entry.overage <= cap
