"""`database.diff.schedule`: what the database learns from Stripe about a subscription
someone else cancelled (the customer in the portal, the dashboard, dunning)."""

from __future__ import annotations

from datetime import date

from autumn_sync.database.diff.schedule import plan_dates
from autumn_sync.model.customers import ACTIVE, CANCELED, CustomerPlan

TODAY = date(2026, 12, 1)
END = date(2027, 1, 1)


def held(status: str = ACTIVE, ends: date | None = None) -> CustomerPlan:
    return CustomerPlan("pro", status=status, ends=ends, stripe_subscription_id="sub_1")


def test_a_subscription_cancelled_in_stripe_marks_its_plan_cancelled_from_its_end() -> None:
    (plan,) = plan_dates((held(),), (CustomerPlan("pro"),), {}, TODAY, {"sub_1": END})
    assert (plan.status, plan.ends) == (CANCELED, END)


def test_without_stripe_a_cancelled_plan_keeps_its_mark_even_once_ended() -> None:
    before = (held(CANCELED, TODAY),)
    for day in (TODAY, date(2027, 2, 1)):
        (plan,) = plan_dates(before, (CustomerPlan("pro"),), {}, day, None)
        assert (plan.status, plan.ends) == (CANCELED, TODAY)


def test_a_subscription_running_again_in_stripe_makes_the_plan_active_again() -> None:
    before = (held(CANCELED, END),)
    (plan,) = plan_dates(before, (CustomerPlan("pro"),), {}, TODAY, {"sub_1": None})
    assert (plan.status, plan.ends) == (ACTIVE, None)


def test_a_plan_autumn_sync_did_not_see_cancelled_is_left_as_it_is() -> None:
    (plan,) = plan_dates((held(),), (CustomerPlan("pro"),), {}, TODAY, {"sub_2": END})
    assert (plan.status, plan.ends) == (None, None)
