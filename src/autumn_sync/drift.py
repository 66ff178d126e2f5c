"""Drift: what changed outside autumn-sync. Pure: the caller reads the database, Stripe and
the file; this compares them.

- database ↔ Stripe: the Stripe objects the database's catalog and customers map to, against
  what Stripe holds (missing, archived, terms changed, ownership metadata removed, renamed in
  the dashboard — cosmetic — or active though no longer needed; customers deleted,
  subscriptions cancelled or changed: items, prices, quantities, collection);
- file ↔ database: the catalog changes a `plan` would make;
- unmanaged Stripe objects are listed apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from autumn_sync.database.diff.catalog import diff
from autumn_sync.model.address import Kind
from autumn_sync.model.state import State
from autumn_sync.model.stripe import (
    StripeProduct,
    StripeState,
    StripeSubscription,
    UnmanagedObject,
)
from autumn_sync.plan.changes import Archive, Change, Create, Replace, Update
from autumn_sync.render.values import show
from autumn_sync.stripe.plan import StripeInputs, plan_stripe

DriftKind = Literal[
    "missing",
    "ownership_removed",
    "not_created",
    "archived",
    "terms",
    "changed",
    "renamed",
    "extra",
    "deleted",
    "cancelled",
]


@dataclass(frozen=True, slots=True)
class DriftItem:
    address: str
    kind: DriftKind
    message: str
    cosmetic: bool = False


@dataclass(frozen=True)
class DriftReport:
    stripe: tuple[DriftItem, ...]  # empty when Stripe is not connected
    pending: tuple[Change, ...]  # catalog changes the file would make
    unmanaged: tuple[UnmanagedObject, ...]
    stripe_connected: bool
    # The application's customers and subscriptions in Stripe (left alone, only counted).
    unmanaged_customers: int = 0
    unmanaged_subscriptions: int = 0

    @property
    def found(self) -> bool:
        return bool(self.stripe or self.pending)


def compute_drift(
    database: State,
    file: State,
    stripe: StripeState | None,
    stored: dict[str, str],
    inputs: StripeInputs,
) -> DriftReport:
    """Compare the three; `stored` and `inputs` are what the database recorded of Stripe
    (ids, product names last written, the versions customers are on)."""
    pending = diff(database, file).changes
    if stripe is None:
        return DriftReport((), pending, (), stripe_connected=False)
    items, read = _stripe_items(database, stripe, stored, inputs)
    items.sort(key=lambda item: item.address)
    return DriftReport(
        tuple(items),
        pending,
        stripe.unmanaged,
        stripe_connected=True,
        unmanaged_customers=read.unmanaged_customers,
        unmanaged_subscriptions=read.unmanaged_subscriptions,
    )


def _stripe_items(
    database: State, stripe: StripeState, stored: dict[str, str], inputs: StripeInputs
) -> tuple[list[DriftItem], StripeState]:
    managed = {key: c for key, c in database.customers.items() if c.managed}
    database = replace(database, customers=managed)  # not the application's the file names
    planned = plan_stripe((), database, database, stripe, inputs)
    known = {**stored, **planned.existing.recorded}
    unmanaged_ids = {obj.stripe_id for obj in stripe.unmanaged}
    items = [_item(change, known, unmanaged_ids) for change in planned.changes]
    items += _renames(stripe, planned.wanted, dict(inputs.written_names))
    items += [_cancelled(w.address, w.ended) for w in planned.waiting if w.ended is not None]
    items += [DriftItem(m.address, "deleted", str(m)) for m in planned.missing_links]
    return items, planned.existing


def _cancelled(address: str, ended: StripeSubscription) -> DriftItem:
    return DriftItem(address, "cancelled", f"{ended.stripe_id} was cancelled in Stripe")


def _item(change: Change, stored: dict[str, str], unmanaged_ids: set[str]) -> DriftItem:
    address = change.address
    billing = _billing_item(change, stored)
    if billing is not None:
        return billing
    if isinstance(change, Create):
        known = stored.get(address)
        if known and known in unmanaged_ids:
            return DriftItem(
                address,
                "ownership_removed",
                f"{known} lost its autumn_sync_address metadata (now unmanaged)",
            )
        if known:
            return DriftItem(address, "missing", f"{known} is gone from Stripe")
        return DriftItem(address, "not_created", "not in Stripe yet (an apply is pending)")
    if isinstance(change, Replace):
        return DriftItem(address, "terms", f"terms no longer match: {_fields(change)}")
    if isinstance(change, Archive):
        return DriftItem(address, "extra", "active in Stripe, but the catalog does not need it")
    if change.before is not None and not getattr(change.before, "owned", True):
        stripe_id = getattr(change.before, "stripe_id", "")
        return DriftItem(
            address,
            "ownership_removed",
            f"{stripe_id} lost its autumn_sync_address metadata (plan restores it)",
        )
    if isinstance(change, Update) and any(f.path == "active" and f.after for f in change.fields):
        return DriftItem(address, "archived", "archived outside autumn-sync")
    return DriftItem(address, "changed", f"changed outside autumn-sync: {_fields(change)}")


def _billing_item(change: Change, stored: dict[str, str]) -> DriftItem | None:
    """Customers deleted and subscriptions cancelled, set to cancel or changed in Stripe."""
    address, before = change.address, change.before
    if isinstance(change, Create) and isinstance(before, StripeSubscription):
        return _cancelled(address, before)
    if isinstance(change, Create) and change.kind is Kind.STRIPE_CUSTOMER and stored.get(address):
        return DriftItem(address, "deleted", f"{stored[address]} was deleted in Stripe")
    if isinstance(change, Archive) and isinstance(before, StripeSubscription):
        message = f"{before.stripe_id} is active in Stripe, but the database has no such plan"
        return DriftItem(address, "extra", message)
    if isinstance(change, Update) and isinstance(before, StripeSubscription) and not before.active:
        message = f"{before.stripe_id} was set to cancel at period end in Stripe"
        return DriftItem(address, "changed", message)
    return None


def _fields(change: Change) -> str:
    return "; ".join(f"{f.path}: {show(f.before)} → {show(f.after)}" for f in change.fields)


def _renames(stripe: StripeState, wanted: StripeState, written: dict[str, str]) -> list[DriftItem]:
    """Products renamed in the dashboard: reported as cosmetic, not overwritten."""
    items = []
    for address, product in stripe.products.items():
        desired: StripeProduct | None = wanted.products.get(address)
        last = written.get(address)
        if desired is None or last is None or product.name == last or desired.name != last:
            continue
        message = (
            f"renamed in Stripe to {show(product.name)} (cosmetic: kept; the catalog says "
            f"{show(desired.name)})"
        )
        items.append(DriftItem(address, "renamed", message, cosmetic=True))
    return items
