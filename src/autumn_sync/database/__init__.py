"""The billing database, the system of record: its tables and migrations (`schema`,
`migrations`), connections (`engine`), the apply lock (`lock`), and the three stages of the
pipeline on it: `read` (the current `State`), `diff` (pure: the changes to the desired
`State`, and the projected `State` they leave) and `apply` (the changes, in one
transaction). `pipeline` reaches the database through this module only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

from autumn_sync.database.apply import apply_changes
from autumn_sync.database.diff import PlanConflict, diff
from autumn_sync.database.diff.customers import dated
from autumn_sync.database.diff.schedule import Cancellations
from autumn_sync.database.engine import statements_logged
from autumn_sync.database.project import project
from autumn_sync.database.read import read_state, versions_with_customers
from autumn_sync.model.state import State
from autumn_sync.plan.plan import ChangePlan

__all__ = [
    "Cancellations",
    "DatabasePlan",
    "PlanConflict",
    "apply_changes",
    "dated",
    "plan_database",
    "read_state",
    "statements_logged",
    "versions_with_customers",
]


@dataclass(frozen=True)
class DatabasePlan:
    """The database's changes (a `ChangePlan`) and the database they leave (`projected`,
    worked out when asked for: only Stripe needs it)."""

    plan: ChangePlan
    current: State
    desired: State
    today: date

    @cached_property
    def projected(self) -> State:
        return project(self.current, self.desired, self.plan.changes, self.today)


def plan_database(
    current: State, desired: State, today: date, cancelled: Cancellations | None = None
) -> DatabasePlan:
    """The changes that turn `current` into `desired`, and the database once they are
    applied (raises `PlanConflict`); the desired customers' plans get the dates they begin
    and end in the database (a downgrade at the end of the paid period, a future start, a
    subscription cancelled in Stripe: `cancelled`, given when Stripe was read)."""
    desired = dated(current, desired, today, cancelled)
    return DatabasePlan(diff(current, desired), current, desired, today)
