"""Drift: what changed outside autumn-sync, as data (`render.drift` words it). Pure: the
caller reads the database, Stripe and the file; this compares them.

- database ↔ Stripe: the Stripe objects the database's catalog and customers map to, against
  what Stripe holds (missing, archived, terms changed, ownership metadata removed, renamed in
  the dashboard — cosmetic — or active though no longer needed; customers deleted,
  subscriptions cancelled or changed: items, prices, quantities, collection);
- file ↔ database: the catalog changes a `plan` would make;
- unmanaged Stripe objects are listed apart.

Drift is *found* when apply would correct something or a decision is needed; cosmetic
differences alone (which apply keeps) are reported but are not drift found.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from autumn_sync.database.diff.catalog import diff
from autumn_sync.database.diff.customers import dated
from autumn_sync.model.address import Kind
from autumn_sync.model.state import State
from autumn_sync.model.stripe import (
    StripeProduct,
    StripeState,
    StripeSubscription,
    UnmanagedObject,
)
from autumn_sync.plan.changes import Archive, Change, Create, FieldChange, Replace, Update
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
# What exactly was found, within a kind (each is worded by `render.drift`).
Finding = Literal[
    "gone",  # missing: the recorded object is gone from Stripe
    "unmanaged_now",  # ownership_removed: the object lost its metadata and is not found
    "restorable",  # ownership_removed: found by its recorded id; plan writes it back
    "not_created",
    "archived",
    "terms",
    "changed",
    "set_to_cancel",  # changed: a subscription set to cancel at period end in Stripe
    "renamed",
    "not_needed",  # extra: active in Stripe, not needed by the catalog
    "no_such_plan",  # extra: a subscription whose plan the database does not have
    "customer_deleted",  # deleted: a recorded customer deleted in Stripe
    "link_missing",  # deleted: the customer the file links does not exist
    "cancelled",
]


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One difference between the database and Stripe at `address`: its `kind` (the report's
    category), the `finding` within it, and what it is about: the Stripe id, the fields that
    differ (database → Stripe), a product's names (in Stripe, in the catalog)."""

    address: str
    kind: DriftKind
    finding: Finding
    stripe_id: str | None = None
    fields: tuple[FieldChange, ...] = ()
    names: tuple[str, str] | None = None
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
    def to_correct(self) -> tuple[DriftItem, ...]:
        """The Stripe differences apply corrects or that need a decision."""
        return tuple(item for item in self.stripe if not item.cosmetic)

    @property
    def cosmetic(self) -> tuple[DriftItem, ...]:
        """The Stripe differences apply rightly keeps (a product renamed in the dashboard)."""
        return tuple(item for item in self.stripe if item.cosmetic)

    @property
    def found(self) -> bool:
        """Whether there is drift to act on: cosmetic differences alone are not (exit 0)."""
        return bool(self.to_correct or self.pending)


def compute_drift(
    database: State,
    file: State,
    stripe: StripeState | None,
    inputs: StripeInputs | None,
    today: date,
) -> DriftReport:
    """Compare the three; `inputs` is what the database recorded of Stripe (ids, product
    names last written, the versions customers are on); Stripe is not connected without."""
    pending = diff(database, dated(database, file, today)).changes
    if stripe is None or inputs is None:
        return DriftReport((), pending, (), stripe_connected=False)
    items, read = _stripe_items(database, stripe, inputs)
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
    database: State, stripe: StripeState, inputs: StripeInputs
) -> tuple[list[DriftItem], StripeState]:
    """What Stripe holds against what the database, as it is, maps to (its managed
    customers only: not the application's the file names)."""
    managed = {key: c for key, c in database.customers.items() if c.managed}
    planned = plan_stripe(replace(database, customers=managed), {}, stripe, inputs)
    known = {**inputs.recorded, **planned.existing.recorded}
    unmanaged_ids = {obj.stripe_id for obj in stripe.unmanaged}
    items = [_item(change, known, unmanaged_ids) for change in planned.changes]
    items += _renames(stripe, planned.wanted, dict(inputs.written_names))
    items += [_cancelled(w.address, w.ended) for w in planned.waiting if w.ended is not None]
    items += [
        DriftItem(m.address, "deleted", "link_missing", m.link) for m in planned.missing_links
    ]
    return items, planned.existing


def _cancelled(address: str, ended: StripeSubscription) -> DriftItem:
    return DriftItem(address, "cancelled", "cancelled", ended.stripe_id)


def _item(change: Change, stored: dict[str, str], unmanaged_ids: set[str]) -> DriftItem:
    address = change.address
    billing = _billing_item(change, stored)
    if billing is not None:
        return billing
    if isinstance(change, Create):
        known = stored.get(address)
        if known and known in unmanaged_ids:
            return DriftItem(address, "ownership_removed", "unmanaged_now", known)
        if known:
            return DriftItem(address, "missing", "gone", known)
        return DriftItem(address, "not_created", "not_created")
    if isinstance(change, Replace):
        return DriftItem(address, "terms", "terms", fields=change.fields)
    if isinstance(change, Archive):
        return DriftItem(address, "extra", "not_needed")
    if change.before is not None and not getattr(change.before, "owned", True):
        stripe_id = getattr(change.before, "stripe_id", None)
        return DriftItem(address, "ownership_removed", "restorable", stripe_id)
    if isinstance(change, Update) and any(f.path == "active" and f.after for f in change.fields):
        return DriftItem(address, "archived", "archived")
    return DriftItem(address, "changed", "changed", fields=change.fields)


def _billing_item(change: Change, stored: dict[str, str]) -> DriftItem | None:
    """Customers deleted and subscriptions cancelled, set to cancel or changed in Stripe."""
    address, before = change.address, change.before
    if isinstance(change, Create) and isinstance(before, StripeSubscription):
        return _cancelled(address, before)
    if isinstance(change, Create) and change.kind is Kind.STRIPE_CUSTOMER and stored.get(address):
        return DriftItem(address, "deleted", "customer_deleted", stored[address])
    if isinstance(change, Archive) and isinstance(before, StripeSubscription):
        return DriftItem(address, "extra", "no_such_plan", before.stripe_id)
    if isinstance(change, Update) and isinstance(before, StripeSubscription) and not before.active:
        return DriftItem(address, "changed", "set_to_cancel", before.stripe_id)
    return None


def _renames(stripe: StripeState, wanted: StripeState, written: dict[str, str]) -> list[DriftItem]:
    """Products renamed in the dashboard: reported as cosmetic, not overwritten."""
    items = []
    for address, product in stripe.products.items():
        desired: StripeProduct | None = wanted.products.get(address)
        last = written.get(address)
        if desired is None or last is None or product.name == last or desired.name != last:
            continue
        names = (product.name, desired.name)
        items.append(DriftItem(address, "renamed", "renamed", names=names, cosmetic=True))
    return items
