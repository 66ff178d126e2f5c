"""The database as it will be once a plan's changes are applied: the *projected* `State`.
Pure: the current state, the desired one and the changes between them in, a `State` out.

What Stripe must mirror is the database after apply, not the file: the plan versions each
customer will be on (a customer keeps its version when its plan gets a new one, unless the
plan moves its customers), each plan's version, the versions customers are on, the Stripe
ids the database records, and the trials as attaching sets them. The Stripe planner takes
this value instead of re-deriving it from the changes.

- Plans: the file's, each at its version after apply (a new version when the change makes
  one), with the customers on each version as the database counts them now, those of a plan
  that moves its customers counted on the new version; plans that leave the file and keep
  customers are there, archived.
- Customers: the file's, each with what the database knows of it (row, bound id, Stripe id)
  and, per plan, the version, trial and Stripe subscription it keeps, or those it gets when
  the plan is attached (the plan's version after apply; a trial from the start or today,
  none when the customer or entity had one of the plan: one trial per customer per plan).
- Settings, features, rewards and balances: the file's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta

from autumn_sync.model.customers import Customer, CustomerPlan, declared
from autumn_sync.model.records import Plan
from autumn_sync.model.state import State
from autumn_sync.plan.changes import Archive, Change, Update


def project(current: State, desired: State, changes: Iterable[Change], today: date) -> State:
    """The database once `changes` (the diff of `current` and `desired`) are applied."""
    changes = list(changes)
    moves = moving(changes)
    plans = _plans(current, desired, changes, moves)
    matched = _matched(current, desired, changes)
    attach = _Attach(plans, moves, today)
    customers = {
        key: attach.customer(customer, matched.get(key))
        for key, customer in desired.customers.items()
    }
    return State(
        settings=desired.settings if desired.settings is not None else current.settings,
        features=desired.features,
        plans=plans,
        rewards=desired.rewards,
        customers=customers,
        balances=desired.balances,
        app_customers=current.app_customers,
    )


def moving(changes: Iterable[Change]) -> dict[str, int]:
    """Plans whose customers on older versions all move to one version: plan → that version
    (a new one, or the current one when only the customers move)."""
    moves = {}
    for change in changes:
        before = change.before
        if not (isinstance(change, Update) and isinstance(before, Plan) and change.moving):
            continue
        target = change.new_version or before.version
        if target is not None:
            moves[before.id] = target
    return moves


def _plans(
    current: State, desired: State, changes: list[Change], moves: Mapping[str, int]
) -> dict[str, Plan]:
    new_versions = {
        change.after.id: change.new_version
        for change in changes
        if isinstance(change, Update) and isinstance(change.after, Plan) and change.new_version
    }
    archived = {
        c.before.id for c in changes if isinstance(c, Archive) and isinstance(c.before, Plan)
    }
    plans: dict[str, Plan] = {}
    for pid, old in current.plans.items():
        if pid not in desired.plans and (old.archived or pid in archived):
            plans[pid] = replace(old, archived=True, versions_in_use=_in_use(old, moves.get(pid)))
    for pid, plan in desired.plans.items():
        held = current.plans.get(pid)
        version = new_versions.get(pid) or (held.version if held is not None else None) or 1
        in_use = _in_use(held, moves.get(pid)) if held is not None else ()
        customers = dict(in_use).get(version, 0)
        plans[pid] = replace(
            plan, version=version, versions_in_use=in_use, customers=customers, archived=False
        )
    return plans


def _in_use(plan: Plan, move: int | None) -> tuple[tuple[int, int], ...]:
    """The plan's (version, customers), the customers of the versions that move counted on
    the version they move to."""
    counts = dict(plan.versions_in_use)
    if move is not None:
        moved = sum(counts.pop(v) for v in [v for v in counts if v < move])
        counts[move] = counts.get(move, 0) + moved
    return tuple(sorted((v, n) for v, n in counts.items() if n))


def _matched(current: State, desired: State, changes: list[Change]) -> dict[str, Customer]:
    """Desired key → the database's customer it is: the `before` of its update, else (it has
    no change) the managed customer of the same key; a customer the plan creates has none."""
    updated = {
        c.after.key: c.before
        for c in changes
        if isinstance(c, Update)
        and isinstance(c.before, Customer)
        and isinstance(c.after, Customer)
    }
    matched = dict(updated)
    for key in desired.customers:
        old = current.customers.get(key)
        if key not in updated and old is not None and old.managed:
            matched[key] = old
    return matched


@dataclass(frozen=True)
class _Attach:
    """What a customer's plans are projected with: the plans after apply, the plans moving
    their customers to a new version, and today (a trial attached now starts today)."""

    plans: Mapping[str, Plan]
    moves: Mapping[str, int]
    today: date

    def customer(self, wanted: Customer, old: Customer | None) -> Customer:
        if old is not None and self.kept(wanted, old):
            return old  # as the database holds it: nothing of it changes
        held = {(e or "", p.plan): p for e, p in old.all_plans()} if old is not None else {}
        trialed = frozenset(old.trialed) if old is not None else frozenset()
        projected = replace(
            wanted,
            plans=self.plans_of(wanted.plans, held, trialed, ""),
            entities=tuple(
                replace(e, plans=self.plans_of(e.plans, held, trialed, e.id))
                for e in wanted.entities
            ),
        )
        given = {(e or "", p.plan) for e, p in projected.all_plans() if p.trial_ends_at}
        projected = replace(projected, trialed=tuple(sorted(trialed | given)))
        if old is None:
            return projected
        return replace(
            projected,
            customer_id=wanted.customer_id or old.customer_id,
            internal_id=old.internal_id,
            stripe_id=old.stripe_id,
            managed=True,
        )

    def kept(self, wanted: Customer, old: Customer) -> bool:
        """Whether the database keeps `old` as it is: the file names it the same way and
        declares the same, and none of its plans moves its customers to a new version."""
        return (
            old.managed
            and old.key == wanted.key
            and declared(old) == declared(wanted)
            and not any(plan.plan in self.moves for _, plan in old.all_plans())
        )

    def plans_of(
        self,
        wanted: tuple[CustomerPlan, ...],
        held: Mapping[tuple[str, str], CustomerPlan],
        trialed: frozenset[tuple[str, str]],
        entity: str,
    ) -> tuple[CustomerPlan, ...]:
        return tuple(
            self.plan(plan, held.get((entity, plan.plan)), (entity, plan.plan) in trialed)
            for plan in wanted
        )

    def plan(self, wanted: CustomerPlan, old: CustomerPlan | None, trialed: bool) -> CustomerPlan:
        """The plan as the customer will hold it: what it keeps of it (its version, or the
        one its customers move to; its trial and Stripe subscription), or what attaching it
        gives (the plan's version after apply; a trial from the start or today, unless the
        customer or entity, `trialed`, had one of the plan)."""
        plan = self.plans.get(wanted.plan)
        if old is not None and old.version is not None:
            move = self.moves.get(wanted.plan)
            kept = move if move is not None and old.version < move else old.version
            return replace(
                wanted,
                version=kept,
                status=wanted.status or old.status,  # as Stripe says, when it said
                trial_ends_at=old.trial_ends_at,
                stripe_subscription_id=old.stripe_subscription_id,
                attached=old.attached,
            )
        attached = plan.version if plan is not None else None
        trial_end = None if trialed else self.trial_end(wanted, plan)
        return replace(wanted, version=attached, trial_ends_at=trial_end, attached=self.today)

    def trial_end(self, wanted: CustomerPlan, plan: Plan | None) -> date | None:
        """When the free trial attaching the plan gives ends (the customer's own trial days,
        else the plan's); apply may give none to a fingerprint that had one of the plan."""
        days = wanted.trial_days
        if days is None and plan is not None and plan.content.free_trial is not None:
            days = plan.content.free_trial.days
        start = wanted.begins or wanted.start or self.today
        return start + timedelta(days=days) if days else None
