"""Balances as a breakdown through the runtime API, on real databases: one-time grants are
used up for good, usage is taken in order, `check` answers with the breakdown, entities are
enforced and count as their customer's usage, and usage from before the breakdown moves to
the right source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autumn_sync import Billing
from autumn_sync.database.engine import connect
from autumn_sync.runtime.errors import InvalidRequest, UnknownEntity
from tests.test_runtime import Clock, apply_file, write

T0 = datetime(2027, 1, 1)

FILE = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
  sso: {name: SSO, type: boolean}
plans:
  free:
    name: Free
    default: true
    items:
      - {feature: messages, included: 100, reset: month}
  team:
    name: Team
    items:
      - {feature: seats, included: 3}
  seat:
    name: Seat
    items:
      - {feature: messages, included: 20, reset: month}
      - {feature: sso}
customers:
  - id: ann
    plans: [free, team]
    balances:
      messages:
        grants:
          - {id: welcome, amount: 50}
          - {id: spring, amount: 30, expires: 2027-03-01}
    entities:
      - {id: eu, feature: seats, name: Europe, plans: [seat]}
      - {id: us, feature: seats, name: America}
"""


@contextmanager
def applied(db_url: str, tmp_path: Path, text: str) -> Iterator[Billing]:
    """The runtime API on a database where `text` was applied at T0 (its clock moves)."""
    engine = connect(db_url)
    clock = Clock(T0)
    apply_file(engine, write(tmp_path, text), clock)
    try:
        yield Billing(engine=engine, clock=clock)
    finally:
        engine.dispose()


@pytest.fixture
def billing(db_url: str, tmp_path: Path) -> Iterator[Billing]:
    with applied(db_url, tmp_path, FILE) as app:
        yield app


def at(billing: Billing, when: datetime) -> None:
    billing.clock.now = when  # type: ignore[attr-defined]


def used(billing: Billing, feature: str, entity: str | None = None) -> dict[str, Decimal]:
    balance = billing.check("ann", feature, entity_id=entity).balance
    return {e.source.key: e.used for e in balance.breakdown}


def test_a_one_time_grant_is_used_up_for_good(billing: Billing) -> None:
    # the case: 100 included + grants, all used; two months later only the plan's
    # allowance is back (the expiring grant first, then the one without expiry)
    track = billing.track("ann", "messages", 150)
    assert (track.recorded, track.dropped) == (150, 0)
    assert used(billing, "messages") == {"plan:free": 100, "grant:spring": 30, "grant:welcome": 20}
    at(billing, datetime(2027, 3, 2))  # two resets later; the spring grant has expired
    check = billing.check("ann", "messages", required=131)
    balance = check.balance
    assert not check.allowed
    assert (balance.limit, balance.usage, balance.balance) == (150, 20, 130)
    assert used(billing, "messages") == {"plan:free": 0, "grant:welcome": 20}
    assert billing.check("ann", "messages", required=130).allowed
    # the app tracks more than is left: the balance stops at 0 and says what it dropped
    over = billing.track("ann", "messages", 140)
    assert (over.recorded, over.dropped, over.balance.balance) == (130, 10, 0)


def test_check_returns_the_total_and_the_breakdown(billing: Billing) -> None:
    billing.track("ann", "messages", 120)
    document = billing.check("ann", "messages").as_dict()
    assert (document["limit"], document["usage"], document["balance"]) == (180, 120, 60)
    assert [
        (b["source"], b["granted"], b["used"], b["remaining"]) for b in document["breakdown"]
    ] == [
        ("plan:free", 100, 100, 0),
        ("grant:spring", 30, 20, 10),
        ("grant:welcome", 50, 0, 50),
    ]
    assert document["breakdown"][0]["next_reset"] == datetime(2027, 2, 1)
    assert document["breakdown"][1]["expires"] == datetime(2027, 3, 1)


def test_entities_are_enforced_and_count_as_their_customers_usage(billing: Billing) -> None:
    # the customer holds 3 seats; its two entities take 2
    seats = billing.check("ann", "seats")
    assert (seats.balance.limit, seats.balance.usage, seats.balance.balance) == (3, 2, 1)
    assert billing.check("ann", "seats", required=1).allowed
    assert not billing.check("ann", "seats", required=2).allowed
    # an entity's own plan: sso and 20 messages a month, used before its customer's
    assert billing.check("ann", "sso", entity_id="eu").allowed
    assert not billing.check("ann", "sso").allowed
    assert not billing.check("ann", "sso", entity_id="us").allowed
    track = billing.track("ann", "messages", 25, entity_id="eu")
    assert track.as_dict()["entity_id"] == "eu"
    assert used(billing, "messages", "eu") == {
        "plan:seat": 20,
        "plan:free": 5,
        "grant:spring": 0,
        "grant:welcome": 0,
    }
    # the customer itself sees its own sources only (the 5 it gave the entity)
    assert used(billing, "messages") == {"plan:free": 5, "grant:spring": 0, "grant:welcome": 0}
    with pytest.raises(UnknownEntity, match=r"has no entity 'eux'.*did you mean 'eu'"):
        billing.check("ann", "messages", entity_id="eux")
    with pytest.raises(InvalidRequest, match="entity id"):
        billing.track("ann", "messages", 1, entity_id=" ")


def test_a_refund_gives_back_the_last_sources_first(billing: Billing) -> None:
    billing.track("ann", "messages", 150)
    back = billing.track("ann", "messages", -40)
    assert back.recorded == -40
    assert used(billing, "messages") == {"plan:free": 100, "grant:spring": 10, "grant:welcome": 0}


def test_overage_must_be_cap_or_allow(billing: Billing) -> None:
    with pytest.raises(InvalidRequest, match="overage must be 'cap' or 'allow'"):
        billing.track("ann", "messages", 1, overage="sometimes")


ROLLOVERS = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  calls: {name: API calls, type: metered, consumable: true}
plans:
  pro:
    name: Pro
    price: {amount: 20, interval: month}
    items:
      - {feature: messages, included: 100, reset: month,
         rollover: {max: 150, expires_after: {months: 2}}}
      - {feature: calls, included: 10, reset: hour, interval_count: 6}
  metered:
    name: Metered
    add_on: true
    price: {amount: 5, interval: month}
    items:
      - {feature: calls, included: 0, max_purchase: 50,
         price: {amount: 1, billing: pay_per_use, interval: month}}
customers:
  - {id: bo, plans: [pro, metered]}
"""


@pytest.fixture
def rolling(db_url: str, tmp_path: Path) -> Iterator[Billing]:
    with applied(db_url, tmp_path, ROLLOVERS) as app:
        yield app


def breakdown(billing: Billing, feature: str) -> list[tuple[str, Decimal, Decimal]]:
    balance = billing.check("bo", feature).balance
    return [(e.source.key, e.source.granted, e.used) for e in balance.breakdown]


def test_unused_allowance_rolls_over_within_its_cap_until_it_expires(rolling: Billing) -> None:
    rolling.track("bo", "messages", 40)
    at(rolling, datetime(2027, 2, 1))  # January's 60 unused carry over, until April
    assert breakdown(rolling, "messages") == [
        ("rollover:pro:202702010000", 60, 0),
        ("plan:pro", 100, 0),
    ]
    taken = rolling.track("bo", "messages", 70)  # the rollover first
    assert [(e.source.key, e.used) for e in taken.balance.breakdown] == [
        ("rollover:pro:202702010000", 60),
        ("plan:pro", 10),
    ]
    at(rolling, datetime(2027, 3, 1))  # February's 90 unused carry (150 held at most)
    assert breakdown(rolling, "messages") == [
        ("rollover:pro:202703010000", 90, 0),
        ("plan:pro", 100, 0),
    ]
    rolling.track("bo", "messages", 0)  # writes March's period (the used-up rollover goes)
    at(rolling, datetime(2027, 5, 2))  # March's 100 and April's 50 carried; February's gone
    balance = rolling.check("bo", "messages").balance
    assert [(e.source.key, e.source.granted) for e in balance.breakdown] == [
        ("rollover:pro:202704010000", 60),
        ("rollover:pro:202705010000", 90),
        ("plan:pro", 100),
    ]
    assert (balance.rollover, balance.limit) == (150, 250)


def test_resets_every_six_hours_and_overage_stops_at_max_purchase(rolling: Billing) -> None:
    first = rolling.track("bo", "calls", 75)
    # 10 included, then the pay-per-use add-on takes 50 (its cap), 15 are not recorded
    assert (first.recorded, first.dropped, first.balance.overage) == (60, 15, 50)
    assert breakdown(rolling, "calls") == [("plan:pro", 10, 10), ("plan:metered", 0, 50)]
    assert not rolling.check("bo", "calls").allowed
    assert first.balance.next_reset == datetime(2027, 1, 1, 6)
    allowed = rolling.track("bo", "calls", 5, overage="allow")  # recorded past the cap
    assert (allowed.recorded, allowed.dropped, allowed.balance.overage) == (5, 0, 55)
    at(rolling, datetime(2027, 1, 1, 6))  # the 6-hour allowance is back; the overage is not
    again = rolling.check("bo", "calls", required=10)
    assert again.allowed and not rolling.check("bo", "calls", required=11).allowed


# --- property: any history of tracks, resets and grants ------------------------------------

HISTORY = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  pro:
    name: Pro
    items:
      - {feature: messages, included: 100, reset: week,
         price: {amount: 1, billing: pay_per_use, interval: week}}
customers:
  - id: kim
    plans: [pro]
"""

steps = st.lists(
    st.one_of(
        st.tuples(st.just("track"), st.integers(-60, 250)),
        st.tuples(st.just("wait"), st.integers(0, 20)),
        st.tuples(st.just("grant"), st.integers(1, 90)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=steps)
def test_any_history_keeps_the_breakdown_whole(
    sqlite_url: str, tmp_path: Path, history: list[tuple[str, int]]
) -> None:
    """Through the runtime API on a real database: no source ever goes below 0 (only the
    pay-per-use item goes over), what a grant gave is never given back by a reset, and what
    `track` says it recorded is what the sources hold."""
    engine = connect(sqlite_url)
    clock = Clock(T0)
    grants: list[str] = []
    text = HISTORY
    apply_file(engine, write(tmp_path, text), clock)
    app = Billing(engine=engine, clock=clock)
    given_up: dict[str, Decimal] = {}
    try:
        for step, number in history:
            if step == "wait":
                clock.now += timedelta(days=number)
            elif step == "grant":
                grants.append(f"{{id: g{len(grants)}, amount: {number}}}")
                text = (
                    HISTORY
                    + f"    balances:\n      messages:\n        grants: [{', '.join(grants)}]\n"
                )
                apply_file(engine, write(tmp_path, text), clock)
            else:
                before = app.check("kim", "messages").balance.usage
                taken = app.track("kim", "messages", number)
                assert taken.balance.usage - before == taken.recorded
                if number >= 0:
                    assert taken.recorded + taken.dropped == number
            balance = app.check("kim", "messages").balance
            for entry in balance.breakdown:
                assert entry.used >= 0 and entry.remaining >= 0
                if entry.source.kind == "grant":
                    if step != "track" or number >= 0:  # only a refund gives a grant back
                        assert entry.used >= given_up.get(entry.source.key, Decimal(0))
                    given_up[entry.source.key] = entry.used
                elif not entry.source.priced:
                    assert entry.used <= entry.source.granted
    finally:
        engine.dispose()
        for path in tmp_path.glob("*.db"):
            path.unlink()


UPGRADE = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  free:
    name: Free
    group: main
    items:
      - {feature: messages, included: 100, reset: month}
  plus:
    name: Plus
    group: main
    items:
      - {feature: messages, included: 1000, reset: month}
customers:
  - id: lee
    plans: [PLAN]
"""


def test_a_new_plan_starts_from_the_usage_of_the_one_it_replaced(
    db_url: str, tmp_path: Path
) -> None:
    with applied(db_url, tmp_path, UPGRADE.replace("PLAN", "free")) as app:
        app.track("lee", "messages", 80)
        at(app, datetime(2027, 1, 15))
        plus = write(tmp_path, UPGRADE.replace("PLAN", "plus"))
        apply_file(app.engine, plus, app.clock)  # type: ignore[arg-type]
        balance = app.check("lee", "messages").balance
        assert (balance.limit, balance.usage, balance.balance) == (1000, 80, 920)
        after = app.track("lee", "messages", 20).balance
        assert [(e.source.key, e.used) for e in after.breakdown] == [("plan:plus", 100)]
        assert app.check("lee", "messages").balance.usage == 100  # carried once, not again
