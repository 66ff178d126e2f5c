"""Planning Stripe: read what it holds, map the database as it will be after apply (the
projected `State` the database plan yields) to what Stripe should hold, diff, and order the
Stripe changes together with the database's. The entry point is `with_stripe`; drift calls
`plan_stripe` with the database as it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from autumn_sync.database.diff import PlanConflict
from autumn_sync.model.customers import Customer
from autumn_sync.model.records import PlanContent
from autumn_sync.model.state import State
from autumn_sync.model.stripe import (
    StripeCustomer,
    StripePrice,
    StripePromotionCode,
    StripeSnapshot,
    StripeState,
)
from autumn_sync.plan.changes import Change, Create, Replace, Update
from autumn_sync.plan.order import order
from autumn_sync.plan.plan import ChangePlan, Note, digest
from autumn_sync.stripe.assign import MissingLink, assign
from autumn_sync.stripe.diff.catalog import DiffInputs, diff_stripe
from autumn_sync.stripe.diff.customers import Waiting, diff_billing
from autumn_sync.stripe.map.catalog import desired_stripe, older_versions, with_older_versions
from autumn_sync.stripe.map.customers import (
    BillingInputs,
    BillingPlan,
    offered_versions,
    plan_billing,
    with_items,
)


@dataclass(frozen=True)
class StripeInputs:
    """What the database records of Stripe, and what planning Stripe needs of it besides the
    state: the Stripe id of each address (`recorded`), the product names last written, the
    content of the versions the file's customers are on, and today (trials end on a date)."""

    recorded: Mapping[str, str]
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
    plan: ChangePlan, projected: State, existing: StripeState, inputs: StripeInputs
) -> ChangePlan:
    """`plan` (the database's, whose changes turn the database into `projected`) with the
    Stripe changes it implies, and the subscriptions waiting for checkout as notes (raises
    `PlanConflict` for a link to a missing customer)."""
    stripe = plan_stripe(projected, renamed_customers(plan.changes), existing, inputs)
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


def renamed_customers(changes: Sequence[Change]) -> dict[str, str]:
    """Customers the file names by another key than the database did: new key → old."""
    return {
        c.after.key: c.before.key
        for c in changes
        if isinstance(c, Update)
        and isinstance(c.before, Customer)
        and isinstance(c.after, Customer)
        and c.before.key != c.after.key
    }


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
    projected: State, renamed: Mapping[str, str], existing: StripeState, inputs: StripeInputs
) -> StripePlan:
    """The Stripe objects the database needs once applied (`projected`), against `existing`;
    `renamed` gives the keys customers had (their Stripe objects' metadata still names it)."""
    wanted, ctx = wanted_stripe(projected, dict(inputs.written_names), inputs.contents)
    billing = plan_billing(BillingInputs(projected, renamed, inputs.contents, inputs.today))
    existing, missing = assign(existing, billing)
    wanted = replace(
        wanted,
        prices={**wanted.prices, **billing.prices},
        promotion_codes=_unexpired(wanted, existing, inputs.today),
    )
    catalog = diff_stripe(existing, wanted, ctx)
    renewed = _renewed(catalog)
    subscriptions = with_items(
        billing.subscriptions, existing, wanted.prices, renewed, ctx.versions_after, _made(catalog)
    )
    wanted = replace(
        wanted,
        customers=_wanted_customers(billing, existing),
        subscriptions={s.record.address: s.record for s in subscriptions},
    )
    groups = {pid: plan.group for pid, plan in projected.plans.items() if plan.group}
    billed, waiting = diff_billing(
        existing, wanted.customers, wanted.subscriptions, renewed, groups
    )
    return StripePlan(existing, wanted, [*catalog, *billed], waiting, missing)


def _unexpired(
    wanted: StripeState, existing: StripeState, today: date
) -> dict[str, StripePromotionCode]:
    """The wanted promotion codes, but those that expire by the end of today and Stripe does
    not have: Stripe makes no code that expires in the past (and one made earlier stays as
    it is). The file stays valid as time passes its codes' expiry."""
    ends = datetime.combine(today + timedelta(days=1), time())
    return {
        address: code
        for address, code in wanted.promotion_codes.items()
        if code.expires_at is None or code.expires_at >= ends or address in existing.promotion_codes
    }


def _renewed(changes: Sequence[Change]) -> dict[str, int]:
    """Price address → the version of the new price this plan makes there."""
    return {
        c.address: c.after.version
        for c in changes
        if isinstance(c, Create | Replace) and isinstance(c.after, StripePrice)
    }


def _made(changes: Sequence[Change]) -> set[tuple[str, int]]:
    """The older versions' prices this plan makes: (price address, version)."""
    return {
        (c.after.address, c.after.version)
        for c in changes
        if isinstance(c, Create)
        and isinstance(c.after, StripePrice)
        and c.address != c.after.address
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
    projected: State,
    written_names: dict[str, str],
    contents: Mapping[tuple[str, int], PlanContent],
) -> tuple[StripeState, DiffInputs]:
    """The catalog's Stripe objects the database maps to once applied (with the prices of
    the older versions customers stay on, and their products and meters), and what the
    Stripe diff must know of them: the product names last written, the versions customers
    are on and each offered plan's version."""
    versions = offered_versions(projected)
    ctx = DiffInputs(
        written_names=written_names,
        versions_in_use={
            pid: frozenset(v for v, count in plan.versions_in_use if count)
            for pid, plan in projected.plans.items()
        },
        versions_after=versions,
    )
    desired = desired_stripe(projected, versions)
    older = older_versions(projected, contents, versions)
    return with_older_versions(desired, older, projected), ctx


def stripe_fingerprint(state: StripeState) -> str:
    """A digest of what a plan kept of Stripe (see `_kept`): planning again gives the same
    digest unless one of those objects changed in Stripe."""
    data: list[Any] = [sorted(repr(record) for record in kind.values()) for kind in state.kinds()]
    data.append(sorted(repr(price) for price in state.superseded))
    data += [sorted(repr(item) for item in state.parts.items()), sorted(state.recorded.items())]
    data.append(sorted(state.generations.items()))
    return digest(data)
