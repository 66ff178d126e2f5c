"""Which Stripe customer and subscription each customer of the file already is. Pure.

A customer is, in this order: the Stripe customer the file links (`stripe: {customer:
cus_…}`), the one whose id the database recorded, or one whose ownership metadata names its
address (made by a run that died before recording the id), under its key or the key it had
before (a pre-provisioned customer the file now names by id). A subscription likewise: the
one the database recorded, else one whose metadata names its address; a live one before one
that ended. What no file customer is, stays under the address its metadata names (a
customer that left the file: its objects are marked and cancelled, never deleted);
customers and subscriptions without ownership metadata are the application's, only counted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from autumn_sync.model.address import unmanaged
from autumn_sync.model.stripe import StripeCustomer, StripeState, StripeSubscription
from autumn_sync.stripe.map.customers import BillingPlan, PlannedCustomer, PlannedSubscription

R = TypeVar("R", StripeCustomer, StripeSubscription)


@dataclass
class _Pool(Generic[R]):
    """Found objects by id (in the order found: newest first) and by the address their
    metadata names, each taken at most once."""

    by_id: dict[str, R]
    taken: set[str] = field(default_factory=set)
    by_owner: dict[str, list[R]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for obj in self.by_id.values():
            if obj.owner:
                self.by_owner.setdefault(obj.owner, []).append(obj)

    def take(self, stripe_id: str | None) -> R | None:
        if stripe_id is None or stripe_id in self.taken or stripe_id not in self.by_id:
            return None
        self.taken.add(stripe_id)
        return self.by_id[stripe_id]

    def owned_by(self, addresses: Iterable[str | None]) -> list[R]:
        found = (o for a in addresses if a for o in self.by_owner.get(a, ()))
        return [o for o in found if o.stripe_id not in self.taken]


@dataclass(frozen=True)
class MissingLink:
    """A Stripe customer the file links (`stripe: {customer: cus_…}`) that Stripe does not
    have: `address` is the Stripe customer's address, `link` the id the file gives."""

    address: str
    link: str

    def __str__(self) -> str:
        return (
            f"{self.address}: the Stripe customer {self.link} it links does not exist "
            "(or was deleted); fix `stripe.customer` in the file"
        )


def assign(existing: StripeState, billing: BillingPlan) -> tuple[StripeState, list[MissingLink]]:
    """`existing` with its customers and subscriptions under the addresses of the file's
    customers, and the links to Stripe customers that do not exist (problems)."""
    customers, missing = _customers(existing.found_customers, billing.customers)
    by_customer_id = {c.stripe_id: a for a, c in customers.items() if c.stripe_id}
    subscriptions = _subscriptions(existing, billing.subscriptions, by_customer_id)
    recorded = {p.record.address: p.recorded for p in billing.customers if p.recorded}
    recorded.update({p.record.address: p.recorded for p in billing.subscriptions if p.recorded})
    owners = [c.owner for c in existing.found_customers]
    made = Counter(owners + [s.owner for s in existing.found_subscriptions])
    assigned = replace(
        existing,
        customers=customers,
        subscriptions=subscriptions,
        recorded={**existing.recorded, **recorded},
        generations={**existing.generations, **{a: n for a, n in made.items() if a}},
        unmanaged_customers=_unmanaged(existing.found_customers, customers.values()),
        unmanaged_subscriptions=_unmanaged(existing.found_subscriptions, subscriptions.values()),
    )
    return assigned, missing


def _customers(
    found: tuple[StripeCustomer, ...], planned: tuple[PlannedCustomer, ...]
) -> tuple[dict[str, StripeCustomer], list[MissingLink]]:
    pool = _Pool({c.stripe_id: c for c in found if c.stripe_id})
    result: dict[str, StripeCustomer] = {}
    missing = []
    for plan in planned:
        address = plan.record.address
        obj = pool.take(plan.link) or (None if plan.link else pool.take(plan.recorded))
        if plan.link and obj is None:
            missing.append(MissingLink(address, plan.link))
            continue
        if obj is None:
            candidates = pool.owned_by((address, plan.old_address))
            obj = pool.take(candidates[0].stripe_id) if candidates else None
        if obj is not None:
            result[address] = replace(obj, address=address, recorded=plan.recorded)
    _keep_owned(result, pool)
    return result, missing


def _subscriptions(
    existing: StripeState,
    planned: tuple[PlannedSubscription, ...],
    by_customer_id: dict[str, str],
) -> dict[str, StripeSubscription]:
    found = existing.found_subscriptions
    pool = _Pool({s.stripe_id: s for s in found if s.stripe_id})
    result: dict[str, StripeSubscription] = {}
    for plan in planned:
        record = plan.record
        recorded = pool.by_id.get(plan.recorded or "")
        candidates = [recorded] if recorded is not None and plan.recorded not in pool.taken else []
        candidates += pool.owned_by((record.address, plan.old_address))
        if not candidates:
            continue
        obj = pool.take(_live_first(candidates).stripe_id)
        assert obj is not None
        result[record.address] = replace(
            obj,
            address=record.address,
            entity=record.entity,
            recorded=plan.recorded,
        )
    _keep_owned(result, pool)
    return {a: _with_customer(s, existing, by_customer_id) for a, s in result.items()}


def _live_first(candidates: list[StripeSubscription]) -> StripeSubscription:
    """A live subscription before one that ended; among those, the first (the newest found,
    or the one the database recorded)."""
    return next((s for s in candidates if not s.ended), candidates[0])


def _with_customer(
    sub: StripeSubscription, existing: StripeState, by_customer_id: dict[str, str]
) -> StripeSubscription:
    parts = existing.parts.get(sub.stripe_id or "")
    customer_id = parts.customer_id if parts is not None else ""
    return replace(sub, customer=by_customer_id.get(customer_id, unmanaged(customer_id)))


def _keep_owned(result: dict[str, R], pool: _Pool[R]) -> None:
    """Owned objects no file customer took, under the address their metadata names (per
    address, a live one before an ended or archived one, a newer before an older)."""
    left: dict[str, list[R]] = defaultdict(list)
    for stripe_id, obj in pool.by_id.items():
        if obj.owner and stripe_id not in pool.taken:
            left[obj.owner].append(obj)
    for owner, objects in left.items():
        if owner not in result:
            result[owner] = next((o for o in objects if _alive(o)), objects[0])


def _alive(obj: StripeCustomer | StripeSubscription) -> bool:
    if isinstance(obj, StripeSubscription):
        return not obj.ended
    return obj.active


def _unmanaged(
    found: Iterable[StripeCustomer | StripeSubscription],
    kept: Iterable[StripeCustomer | StripeSubscription],
) -> int:
    ids = {o.stripe_id for o in kept}
    return sum(1 for o in found if o.stripe_id not in ids and not o.owner)
