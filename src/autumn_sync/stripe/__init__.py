"""Stripe, downstream of the database: what it holds is read (`read`), what the database
after apply maps to is worked out (`map`, pure), the two are compared (`diff`, pure) and the
changes applied (`apply`, journaled, through `gateway`, the one importer of the `stripe`
package). `pipeline` reaches Stripe through this module only:

- `read_inputs`: what the database records of Stripe (ids, names written, versions);
- `read_stripe`: what Stripe holds;
- `cancellations`: which subscriptions someone else cancelled there, for the database;
- `with_stripe`: a database plan with the Stripe changes it implies;
- `apply_stripe`: carry them out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

from sqlalchemy import Connection, Engine

from autumn_sync.database import versions_with_customers
from autumn_sync.model.stripe import StripeSnapshot, StripeState
from autumn_sync.plan.changes import Change
from autumn_sync.stripe.apply import StripeWriter
from autumn_sync.stripe.executor import DEFAULT_WORKERS, StripeApplyFailed, run_stripe_changes
from autumn_sync.stripe.gateway import Gateway, StripeConfig, StripeFailure
from autumn_sync.stripe.journal import Journal, stored_ids, written_names
from autumn_sync.stripe.plan import StripeInputs, with_stripe
from autumn_sync.stripe.read import read_stripe

__all__ = [
    "DEFAULT_WORKERS",
    "Gateway",
    "StripeApplyFailed",
    "StripeConfig",
    "StripeFailure",
    "StripeInputs",
    "apply_stripe",
    "cancellations",
    "read_inputs",
    "read_stripe",
    "with_stripe",
]


def read_inputs(connection: Connection, today: date) -> StripeInputs:
    """What the database records of Stripe (three queries and three): the id of each
    address, the product names last written, the versions customers are on."""
    return StripeInputs(
        recorded=stored_ids(connection),
        written_names=written_names(connection),
        contents=versions_with_customers(connection),
        today=today,
    )


def cancellations(state: StripeState) -> dict[str, date | None]:
    """Stripe subscription id → the day it ends or ended when someone else than autumn-sync
    cancelled it (the customer in the portal, the dashboard, dunning), None while it runs or
    autumn-sync cancelled it: what the database marks (`database.Cancellations`)."""
    found = {}
    for sub in state.found_subscriptions:
        if sub.stripe_id is None or (sub.cancelled_outside and sub.ends_on is None):
            continue  # (a cancellation without a date Stripe did not give: left as it is)
        found[sub.stripe_id] = sub.ends_on if sub.cancelled_outside else None
    return found


def apply_stripe(
    engine: Engine,
    gateway: Gateway,
    changes: Sequence[Change],
    snapshot: StripeSnapshot,
    clock: Callable[[], datetime],
    workers: int = DEFAULT_WORKERS,
    on_change: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Carry out the Stripe `changes` of a plan made against `snapshot`, journaled in the
    database of `engine` (raises `StripeApplyFailed` with what was done)."""
    writer = StripeWriter(gateway, snapshot.existing, snapshot.desired, Journal(engine, clock))
    return run_stripe_changes(changes, writer, workers, on_change)
