"""Adds the Stripe changes to a catalog plan: read Stripe, map the catalog and the file's
customers as they will be after apply, diff, and order everything together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from autumn_sync.database.diff.catalog import PlanConflict
from autumn_sync.model.records import PlanContent
from autumn_sync.model.state import State
from autumn_sync.model.stripe import StripeCustomer, StripePrice, StripeSnapshot, StripeState
from autumn_sync.plan.changes import Change, Create, Replace, Update
from autumn_sync.plan.order import order
from autumn_sync.plan.plan import ChangePlan, Note, digest
from autumn_sync.stripe.assign import MissingLink, assign
from autumn_sync.stripe.diff.catalog import Context, diff_stripe
from autumn_sync.stripe.diff.customers import Waiting, diff_billing
from autumn_sync.stripe.map.catalog import desired_stripe
from autumn_sync.stripe.map.customers import BillingInputs, BillingPlan, plan_billing, with_items


@dataclass(frozen=True)
class StripeInputs:
    """What the database tells about Stripe and the customers' plan versions: the product
    names last written, the content of the versions the file's customers are on, and today
    (trials end on a date)."""

    written_names: Mapping[str, str]
    contents: Mapping[tuple[str, int], PlanContent]
    today: date


@dataclass(frozen=True)
class StripePlan:
    existing: StripeState  # as read, customers and subscriptions under their addresses
    wanted: StripeState
    changes: list[Change]
    waiting: list[Waiting]
    missing_links: list[MissingLink]


def with_stripe(
    plan: ChangePlan, current: State, desired: State, existing: StripeState, inputs: StripeInputs
) -> ChangePlan:
    """`plan` (the database's) with the Stripe changes it implies, and the subscriptions
    waiting for checkout as notes (raises `PlanConflict` for a link to a missing customer)."""
    stripe = plan_stripe(plan.changes, current, desired, existing, inputs)
    if stripe.missing_links:
        raise PlanConflict([str(missing) for missing in stripe.missing_links])
    notes = tuple(Note(w.address, w.note()) for w in stripe.waiting)
    kept = _kept(stripe.existing)
    return replace(
        plan,
        changes=order([*plan.changes, *stripe.changes]),
        notes=plan.notes + notes,
        stripe=StripeSnapshot(kept, stripe.wanted, fingerprint=stripe_fingerprint(kept)),
    )


def _kept(existing: StripeState) -> StripeState:
    """What a plan keeps of Stripe as read: the objects autumn-sync owns and the customers
    and subscriptions of the file's customers. Not the rest of the account's customers and
    subscriptions (people's emails and names, which a saved plan must not carry, and
    sign-ups that must not make a reviewed plan stale), nor unmanaged catalog objects."""
    ours = {s.stripe_id for s in existing.subscriptions.values() if s.stripe_id}
    return replace(
        existing,
        found_customers=(),
        found_subscriptions=(),
        unmanaged=(),
        parts={sid: parts for sid, parts in existing.parts.items() if sid in ours},
        unmanaged_customers=0,
        unmanaged_subscriptions=0,
    )


def plan_stripe(
    changes: Sequence[Change],
    current: State,
    desired: State,
    existing: StripeState,
    inputs: StripeInputs,
) -> StripePlan:
    """The Stripe objects `desired` needs once the database `changes` are applied to
    `current`, against `existing` (drift passes no changes and the database as `desired`)."""
    wanted, ctx = wanted_stripe(changes, current, desired, dict(inputs.written_names))
    billing = plan_billing(
        BillingInputs(
            current=current,
            desired=desired,
            versions_after=ctx.versions_after,
            moving=_moving(changes),
            contents=inputs.contents,
            today=inputs.today,
        )
    )
    existing, missing = assign(existing, billing)
    wanted = replace(wanted, prices={**wanted.prices, **billing.prices})
    catalog = diff_stripe(existing, wanted, ctx)
    renewed = _renewed(catalog)
    subscriptions = with_items(
        billing.subscriptions, existing, wanted.prices, renewed, ctx.versions_after
    )
    wanted = replace(
        wanted,
        customers=_wanted_customers(billing, existing),
        subscriptions={s.record.address: s.record for s in subscriptions},
    )
    billed, waiting = diff_billing(existing, wanted.customers, wanted.subscriptions, renewed)
    return StripePlan(existing, wanted, [*catalog, *billed], waiting, missing)


def _renewed(changes: Sequence[Change]) -> dict[str, int]:
    """Price address → the version of the new price this plan makes there."""
    return {
        c.address: c.after.version
        for c in changes
        if isinstance(c, Create | Replace) and isinstance(c.after, StripePrice)
    }


def _wanted_customers(billing: BillingPlan, existing: StripeState) -> dict[str, StripeCustomer]:
    """The Stripe customers billing needs, and those that exist already (never deleted, they
    stay the customer's when it no longer pays)."""
    return {
        p.record.address: p.record
        for p in billing.customers
        if p.needed or p.recorded or p.link or p.record.address in existing.customers
    }


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


def _moving(changes: Sequence[Change]) -> dict[str, tuple[int, int]]:
    """Plans whose current version's customers move to a new version: (from, to)."""
    moving = {}
    for change in changes:
        if isinstance(change, Update) and change.moving and change.new_version is not None:
            moved_from = getattr(change.before, "version", None)
            if moved_from is not None:
                moving[change.name] = (moved_from, change.new_version)
    return moving


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
    for plan_id, (moved_from, moved_to) in _moving(changes).items():
        # Only the current version's customers move; older versions keep theirs.
        kept = in_use.get(plan_id, frozenset()) - {moved_from}
        in_use[plan_id] = kept | {moved_to}
    return in_use


def stripe_fingerprint(state: StripeState) -> str:
    """A digest of what a plan kept of Stripe (see `_kept`): planning again gives the same
    digest unless one of those objects changed in Stripe."""
    data: list[Any] = [sorted(repr(record) for record in kind.values()) for kind in state.kinds()]
    data.append(sorted(repr(price) for price in state.superseded))
    data += [sorted(repr(item) for item in state.parts.items()), sorted(state.recorded.items())]
    data.append(sorted(state.generations.items()))
    return digest(data)
