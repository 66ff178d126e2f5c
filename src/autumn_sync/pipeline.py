"""The pipeline in four verbs, free of click: load the desired state, read the current one,
make the plan, apply it. The command line and tests both go through here; it reaches the
database through `autumn_sync.database` and Stripe through `autumn_sync.stripe`."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from autumn_sync import database, stripe
from autumn_sync.config.load import load_file
from autumn_sync.drift import DriftReport, compute_drift
from autumn_sync.model.address import Target
from autumn_sync.model.customers import Lookup
from autumn_sync.model.state import State
from autumn_sync.model.stripe import StripeState
from autumn_sync.plan.changes import Change
from autumn_sync.plan.plan import ChangePlan, fingerprint
from autumn_sync.plan.saved import SavedPlan, encode
from autumn_sync.plan.target import select
from autumn_sync.stripe import DEFAULT_WORKERS, Gateway, StripeInputs

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The default clock: now, in UTC, without tzinfo (stored times are UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class ApplyRefused(Exception):
    """The plan cannot be applied as it is; nothing was written. The message says why."""


DATABASE_CHANGED = "the database changed since the plan was made"


class StalePlan(ApplyRefused):
    """What the plan was made against changed since (the database, Stripe or the billing
    file); nothing was written. The message says what."""


class EditedPlan(ApplyRefused):
    """A saved plan whose changes are not the changes its billing file makes against the
    database and Stripe it was made against: it was edited after it was saved (its digests
    are plain hashes anyone can recompute). Nothing was written."""


def load_desired(path: str | Path) -> State:
    """The desired state from the billing file at `path` (raises `ConfigError`)."""
    return load_file(path)


def read_current(engine: Engine) -> State:
    """The current state from the database."""
    with engine.connect() as connection:
        return database.read_state(connection)


@dataclass(frozen=True)
class Observed:
    """What a plan or a drift report is made against: the database's state (with the
    application's customers the file names), and, with Stripe connected, what the database
    records of Stripe and what Stripe holds."""

    current: State
    inputs: StripeInputs | None = None
    stripe: StripeState | None = None


def observe(engine: Engine, desired: State, gateway: Gateway | None, clock: Clock) -> Observed:
    """Read the database, then Stripe (given a gateway)."""
    with database.statements_logged(engine, "read the database"), engine.connect() as connection:
        current = database.read_state(connection, Lookup.of(desired.customers.values()))
        inputs = stripe.read_inputs(connection, clock().date()) if gateway is not None else None
    if log.isEnabledFor(logging.INFO):
        managed = sum(c.managed for c in current.customers.values())
        log.info(
            "the database holds %d plans, %d customers of the file", len(current.plans), managed
        )
    if gateway is None or inputs is None:
        return Observed(current)
    return Observed(current, inputs, stripe.read_stripe(gateway, inputs.recorded))


def make_plan(
    engine: Engine,
    desired: State,
    gateway: Gateway | None = None,
    clock: Clock = utc_now,
    targets: Sequence[str] = (),
) -> ChangePlan:
    """Read the database (and Stripe, given a gateway) and diff against `desired`, limited
    to `targets` and what they depend on when given (raises `PlanConflict`, `TargetError`,
    and `StripeFailure` when Stripe cannot be read)."""
    observed = observe(engine, desired, gateway, clock)
    cancelled = stripe.cancellations(observed.stripe) if observed.stripe is not None else None
    planned = database.plan_database(observed.current, desired, clock().date(), cancelled)
    plan = planned.plan
    if observed.stripe is not None and observed.inputs is not None:
        plan = stripe.with_stripe(plan, planned.projected, observed.stripe, observed.inputs)
    return select(plan, targets) if targets else plan


def file_digest(path: str | Path) -> str:
    """The sha256 of the billing file's bytes (what a saved plan remembers of it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_plan(
    plan: ChangePlan,
    path: str | Path,
    database: str,
    targets: Sequence[str] = (),
    clock: Clock = utc_now,
) -> SavedPlan:
    """`plan`, made from the billing file at `path` against the database whose identity
    is `database` (see `database_identity`), ready to be written with `saved.dumps`."""
    return SavedPlan(
        plan=plan,
        file_path=str(path),
        file_sha256=file_digest(path),
        database=database,
        targets=tuple(targets),
        created_at=clock().isoformat(timespec="seconds"),
    )


def check_saved(
    engine: Engine, saved: SavedPlan, database: str, gateway: Gateway | None
) -> ChangePlan:
    """The plan to apply for `saved`: raise `StalePlan` unless the billing file, the database
    (its identity and state) and the Stripe objects the plan is about are what `saved` was
    made against, and `EditedPlan` unless its changes are exactly those the file makes
    against them now (`apply_plan` checks the database's state again, in the transaction
    that applies)."""
    if database != saved.database:
        raise StalePlan("it was made against another database")
    path = Path(saved.file_path)
    if not path.is_file():
        raise StalePlan(f"the billing file {path} it was made from is not here to compare")
    if file_digest(path) != saved.file_sha256:
        raise StalePlan(f"the billing file {path} changed since the plan was made")
    snapshot = saved.plan.stripe
    if (snapshot is None) != (gateway is None):
        raise StalePlan(
            "it was made without Stripe, and this apply has a Stripe key"
            if snapshot is None
            else "it was made with Stripe connected, and this apply has no Stripe key"
        )
    # Planning the same file again reads the database and Stripe as `saved` was made from them
    # and digests them alike: a different digest is a change made since.
    fresh = make_plan(engine, load_desired(path), gateway, targets=saved.targets)
    if fresh.state_fingerprint != saved.plan.state_fingerprint:
        raise StalePlan(DATABASE_CHANGED)
    stripe_now = fresh.stripe.fingerprint if fresh.stripe is not None else None
    if snapshot is not None and stripe_now != snapshot.fingerprint:
        raise StalePlan("objects in Stripe changed since the plan was made")
    _check_unedited(saved.plan, fresh)
    return fresh


def _check_unedited(saved: ChangePlan, fresh: ChangePlan) -> None:
    """Raise `EditedPlan` unless `saved` is `fresh`, the plan made again from the same file
    against the same state, in every value apply would use (the count of the application's
    customers aside: sign-ups do not make a plan stale)."""
    if _comparable(saved) == _comparable(fresh):
        return
    saved_changes = {c.address: encode(c) for c in saved.changes}
    fresh_changes = {c.address: encode(c) for c in fresh.changes}
    differing = sorted(
        address
        for address in saved_changes.keys() | fresh_changes.keys()
        if saved_changes.get(address) != fresh_changes.get(address)
    )
    what = ", ".join(differing[:5]) + (", …" if len(differing) > 5 else "")
    what = what or "the Stripe objects it writes"
    raise EditedPlan(
        "the saved plan does not hold the changes its billing file makes against the "
        f"database and Stripe it was made against (differing: {what}): it was edited after "
        "it was saved, or made on another day (trial ends move with the date). Nothing was "
        "applied; run plan again and review the new plan."
    )


def _comparable(plan: ChangePlan) -> object:
    return encode(replace(plan, app_customers=0))


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[Change, ...]
    refused: tuple[Change, ...] = ()  # re-subscriptions not allowed: left for a later apply


def _is_stripe(change: Change) -> bool:
    return change.kind.target is Target.STRIPE


def check_destroys(plan: ChangePlan, allow_destroy: bool) -> None:
    """Raise `ApplyRefused` when `plan` destroys something and that is not allowed (the
    command line calls it before asking for confirmation; `apply_plan` again before acting)."""
    if plan.destroys and not allow_destroy:
        addresses = ", ".join(c.address for c in plan.destroys)
        raise ApplyRefused(
            f"the plan destroys {addresses}. Nothing was applied; re-run with --allow-destroy."
        )


def apply_plan(
    engine: Engine,
    plan: ChangePlan,
    *,
    allow_destroy: bool = False,
    allow_resubscribe: bool = False,
    clock: Clock = utc_now,
    on_change: Callable[[Change], None] | None = None,
    gateway: Gateway | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ApplyResult:
    """Apply the database changes of `plan` in one transaction (after checking the database
    is still in the state the plan was made against), then its Stripe changes through
    `gateway`, journaled. Destroys need `allow_destroy`; subscribing again a customer who
    cancelled needs `allow_resubscribe` (without it those changes are left out, the rest
    applied, and the result names them). A Stripe failure raises `StripeApplyFailed` with
    what was done; running apply again picks up from there."""
    check_destroys(plan, allow_destroy)
    refused = () if allow_resubscribe else plan.resubscribes
    stripe_changes = [c for c in plan.changes if _is_stripe(c) and c not in refused]
    if stripe_changes and (gateway is None or plan.stripe is None):
        raise ApplyRefused("the plan has Stripe changes but Stripe is not connected")
    now = clock()
    applying = database.statements_logged(engine, "apply to the database")
    with applying, engine.begin() as connection:
        if fingerprint(database.read_state(connection, plan.lookup)) != plan.state_fingerprint:
            raise StalePlan(DATABASE_CHANGED)
        database_changes = [c for c in plan.changes if not _is_stripe(c)]
        database.apply_changes(connection, database_changes, now)
    for change in database_changes:  # reported once committed
        if on_change is not None:
            on_change(change)
    if stripe_changes:
        assert gateway is not None and plan.stripe is not None
        stripe.apply_stripe(engine, gateway, stripe_changes, plan.stripe, clock, workers, on_change)
    applied = tuple(c for c in plan.changes if c not in refused)
    return ApplyResult(applied=applied, refused=refused)


def check_drift(
    engine: Engine, desired: State, gateway: Gateway | None, clock: Clock = utc_now
) -> DriftReport:
    """Compare the database with Stripe (given a gateway) and with the file's `desired`."""
    observed = observe(engine, desired, gateway, clock)
    if observed.inputs is None:
        return compute_drift(observed.current, desired, None, None, clock().date())
    return compute_drift(
        observed.current, desired, observed.stripe, observed.inputs, clock().date()
    )
