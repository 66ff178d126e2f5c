"""Adds the Stripe changes to a catalog plan: read Stripe, map the catalog as it will be
after apply, diff, and order everything together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from autumn_sync.model.state import State
from autumn_sync.model.stripe import StripeSnapshot, StripeState
from autumn_sync.plan.changes import Change, Update
from autumn_sync.plan.order import order
from autumn_sync.plan.plan import ChangePlan, digest
from autumn_sync.stripe.diff import Context, diff_stripe
from autumn_sync.stripe.mapping import desired_stripe


def with_stripe(
    plan: ChangePlan,
    current: State,
    desired: State,
    existing: StripeState,
    written_names: dict[str, str],
) -> ChangePlan:
    """`plan` (the catalog's) with the Stripe changes it implies."""
    wanted, ctx = wanted_stripe(plan.changes, current, desired, written_names)
    stripe_changes = diff_stripe(existing, wanted, ctx)
    return replace(
        plan,
        changes=order([*plan.changes, *stripe_changes]),
        stripe=StripeSnapshot(existing, wanted, fingerprint=digest(_stripe_data(existing))),
    )


def wanted_stripe(
    changes: Sequence[Change], current: State, desired: State, written_names: dict[str, str]
) -> tuple[StripeState, Context]:
    """The Stripe objects `desired` maps to once the catalog `changes` are applied to
    `current`, and what the Stripe diff must know of them (drift passes no changes)."""
    versions = _versions_after(changes, current, desired)
    ctx = Context(
        written_names=written_names,
        versions_in_use=_in_use_after(changes, current),
        versions_after=versions,
    )
    return desired_stripe(desired, versions), ctx


def _versions_after(changes: Sequence[Change], current: State, desired: State) -> dict[str, int]:
    """Each desired plan's version once the catalog changes are applied."""
    versions = {pid: p.version or 1 for pid, p in current.plans.items() if pid in desired.plans}
    for change in changes:
        if isinstance(change, Update) and change.new_version is not None:
            versions[change.name] = change.new_version
    return versions


def _in_use_after(changes: Sequence[Change], current: State) -> dict[str, frozenset[int]]:
    """The versions customers will be on once the catalog changes are applied."""
    in_use = {
        pid: frozenset(v for v, count in p.versions_in_use if count)
        for pid, p in current.plans.items()
    }
    for change in changes:
        if isinstance(change, Update) and change.moving and change.new_version is not None:
            # Only the current version's customers move; older versions keep theirs.
            moved_from = getattr(change.before, "version", None)
            kept = in_use.get(change.name, frozenset()) - {moved_from}
            in_use[change.name] = kept | {change.new_version}
    return in_use


def _stripe_data(state: StripeState) -> list[Any]:
    return [sorted(repr(record) for record in kind.values()) for kind in state.kinds()] + [
        sorted(repr(p) for p in state.superseded)
    ]
