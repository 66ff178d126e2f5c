"""When a customer's plans begin and end in the database (`database.diff.schedule`): pure,
on plans and dates alone; and what the database learns from Stripe about a subscription
someone else cancelled (the customer in the portal, the dashboard, dunning)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from autumn_sync.database.diff.schedule import plan_dates
from autumn_sync.model.customers import ACTIVE, CANCELED, CustomerPlan
from autumn_sync.model.records import FixedPrice, Plan, PlanContent

TODAY = date(2026, 12, 16)
JANUARY = date(2027, 1, 1)
DEC_1 = date(2026, 12, 1)


def plan(pid: str, amount: int | None, interval: str = "month") -> Plan:
    price = FixedPrice(Decimal(amount), interval) if amount is not None else None
    return Plan(id=pid, name=pid, group="main", content=PlanContent(price=price))


CATALOG = {
    p.id: p
    for p in (
        plan("free", None),
        plan("pro", 20),
        plan("team", 50),
        plan("business", 200, "year"),
    )
}


def held(pid: str, **state: object) -> CustomerPlan:
    """A plan the database holds, attached on 2026-12-01, active."""
    return replace(
        CustomerPlan(pid, version=1, status="active", attached=date(2026, 12, 1)), **state
    )  # type: ignore[arg-type]


def dates(
    before: tuple[CustomerPlan, ...], *after: CustomerPlan
) -> list[tuple[str, object, object]]:
    return [(p.plan, p.begins, p.ends) for p in plan_dates(before, after, CATALOG, TODAY)]


def test_a_downgrade_waits_for_the_end_of_the_period_paid() -> None:
    assert dates((held("team"),), CustomerPlan("pro")) == [
        ("pro", JANUARY, None),
        ("team", None, JANUARY),
    ]


def test_a_downgrade_to_a_free_plan_waits_too() -> None:
    assert dates((held("pro"),), CustomerPlan("free")) == [
        ("free", JANUARY, None),
        ("pro", None, JANUARY),
    ]


@pytest.mark.parametrize(
    ("before", "why"),
    [
        (held("pro"), "an upgrade"),
        (held("team", trial_ends_at=date(2026, 12, 20)), "during the trial"),
        (held("business"), "another interval"),
    ],
)
def test_other_changes_are_made_now(before: CustomerPlan, why: str) -> None:
    after = "team" if before.plan == "pro" else "pro"
    assert dates((before,), CustomerPlan(after)) == [(after, None, None)], why


def test_the_period_counts_from_the_trials_end() -> None:
    team = held("team", trial_ends_at=date(2026, 12, 10))
    assert dates((team,), CustomerPlan("pro"))[0] == ("pro", date(2027, 1, 10), None)


def test_a_pending_downgrade_is_what_the_database_holds_and_stays() -> None:
    before = (held("pro", begins=JANUARY), held("team", ends=JANUARY))
    assert dates(before, CustomerPlan("pro")) == [("pro", JANUARY, None), ("team", None, JANUARY)]


def test_naming_the_higher_plan_again_calls_the_downgrade_off() -> None:
    before = (held("pro", begins=JANUARY), held("team", ends=JANUARY))
    assert dates(before, CustomerPlan("team")) == [("team", None, None)]


def test_a_plan_that_ended_is_dropped() -> None:
    before = (held("pro", begins=date(2026, 12, 1)), held("team", ends=date(2026, 12, 1)))
    assert dates(before, CustomerPlan("pro")) == [("pro", date(2026, 12, 1), None)]


def test_a_future_start_begins_then_and_the_plan_it_replaces_stays_until_then() -> None:
    assert dates((), CustomerPlan("pro", start=JANUARY)) == [("pro", JANUARY, None)]
    assert dates((held("pro"),), CustomerPlan("team", start=JANUARY)) == [
        ("pro", None, JANUARY),
        ("team", JANUARY, None),
    ]


def test_a_start_moved_on_a_plan_begun_does_not_take_it_away() -> None:
    assert dates((held("team"),), CustomerPlan("team", start=JANUARY)) == [("team", None, None)]
    waiting = held("team", start=JANUARY, begins=JANUARY)
    later = date(2027, 2, 1)
    assert dates((waiting,), CustomerPlan("team", start=later)) == [("team", later, None)]


def test_a_plan_cancelled_in_stripe_keeps_its_end() -> None:
    cancelled = held("pro", status="canceled", ends=JANUARY)
    assert dates((cancelled,), CustomerPlan("pro")) == [("pro", None, JANUARY)]


def test_a_plan_already_ending_that_the_file_drops_stays_until_it_ends() -> None:
    """Paid for until January: dropped from the file, a plan cancelled in Stripe, or one a
    downgrade leaves whose replacement is dropped too, gives access until then."""
    cancelled = held("pro", status="canceled", ends=JANUARY)
    (kept,) = plan_dates((cancelled,), (), CATALOG, TODAY)
    assert (kept.plan, kept.status, kept.ends) == ("pro", "active", JANUARY)
    pending = (held("pro", begins=JANUARY), held("team", ends=JANUARY))
    assert dates(pending) == [("team", None, JANUARY)]
    over = held("pro", status="canceled", ends=TODAY)
    assert plan_dates((over,), (), CATALOG, TODAY) == ()


# --- cancelled in Stripe -------------------------------------------------------------------


def recorded(status: str = ACTIVE, ends: date | None = None) -> CustomerPlan:
    """Pro, recorded as billed by the Stripe subscription `sub_1`."""
    return CustomerPlan("pro", status=status, ends=ends, stripe_subscription_id="sub_1")


def test_a_subscription_cancelled_in_stripe_marks_its_plan_cancelled_from_its_end() -> None:
    (plan,) = plan_dates((recorded(),), (CustomerPlan("pro"),), {}, DEC_1, {"sub_1": JANUARY})
    assert (plan.status, plan.ends) == (CANCELED, JANUARY)


def test_without_stripe_a_cancelled_plan_keeps_its_mark_even_once_ended() -> None:
    before = (recorded(CANCELED, DEC_1),)
    for day in (DEC_1, date(2027, 2, 1)):
        (plan,) = plan_dates(before, (CustomerPlan("pro"),), {}, day, None)
        assert (plan.status, plan.ends) == (CANCELED, DEC_1)


def test_a_subscription_running_again_in_stripe_makes_the_plan_active_again() -> None:
    before = (recorded(CANCELED, JANUARY),)
    (plan,) = plan_dates(before, (CustomerPlan("pro"),), {}, DEC_1, {"sub_1": None})
    assert (plan.status, plan.ends) == (ACTIVE, None)


def test_a_plan_autumn_sync_did_not_see_cancelled_is_left_as_it_is() -> None:
    (plan,) = plan_dates((recorded(),), (CustomerPlan("pro"),), {}, DEC_1, {"sub_2": JANUARY})
    assert (plan.status, plan.ends) == (None, None)
