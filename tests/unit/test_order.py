"""Dependency order of changes (`plan.order`), on hand-made changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from autumn_sync.model.customers import Customer, CustomerPlan
from autumn_sync.model.records import Plan, PlanContent
from autumn_sync.plan.changes import Archive, Update
from autumn_sync.plan.order import order

TEAM = Plan(id="team", name="Team", group="main", content=PlanContent())


def test_a_plan_archived_while_a_customer_keeps_it_until_its_period_ends() -> None:
    """The file drops Team and moves Jane down to Pro: Team is archived, and Jane keeps it
    until January (a downgrade at the end of the paid period). Her change still references
    Team, so it comes after the archive, which need not wait for it (no cycle)."""
    jane = Customer(key=".jane", customer_id="jane", plans=(CustomerPlan("team"),))
    downgraded = replace(
        jane,
        plans=(
            CustomerPlan("pro", begins=date(2027, 1, 1)),
            CustomerPlan("team", ends=date(2027, 1, 1)),
        ),
    )
    customer = Update(jane.address, jane, downgraded)
    archived = Archive(TEAM.address, TEAM, replace(TEAM, archived=True))

    assert [c.address for c in order([customer, archived])] == ["plan.team", "customer.jane"]


def test_a_customer_leaving_a_plan_goes_before_its_archive() -> None:
    jane = Customer(key=".jane", customer_id="jane", plans=(CustomerPlan("team"),))
    moved = replace(jane, plans=(CustomerPlan("pro"),))
    customer = Update(jane.address, jane, moved)
    archived = Archive(TEAM.address, TEAM, replace(TEAM, archived=True))

    assert [c.address for c in order([archived, customer])] == ["customer.jane", "plan.team"]
