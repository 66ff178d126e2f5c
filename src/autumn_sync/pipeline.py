"""The pipeline in four verbs, free of click: load the desired state, read the current one,
make the plan, apply it. The command line and tests both go through here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from autumn_sync.apply.database import Context, apply_change
from autumn_sync.config.load import load_file
from autumn_sync.diff.catalog import diff
from autumn_sync.model.state import State
from autumn_sync.plan.changes import Change
from autumn_sync.plan.plan import ChangePlan, fingerprint
from autumn_sync.sources.database import read_state

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: now, in UTC, without tzinfo (stored times are UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class ApplyRefused(Exception):
    """The plan cannot be applied as it is; nothing was written. The message says why."""


def load_desired(path: str | Path) -> State:
    """The desired state from the billing file at `path` (raises `ConfigError`)."""
    return load_file(path)


def read_current(engine: Engine) -> State:
    """The current state from the database."""
    with engine.connect() as connection:
        return read_state(connection)


def make_plan(engine: Engine, desired: State) -> ChangePlan:
    """Read the database and diff it against `desired` (raises `PlanConflict`)."""
    return diff(read_current(engine), desired)


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[Change, ...]


def apply_plan(
    engine: Engine,
    plan: ChangePlan,
    *,
    allow_destroy: bool = False,
    clock: Clock = utc_now,
    on_change: Callable[[Change], None] | None = None,
) -> ApplyResult:
    """Apply `plan` in one transaction, after checking the database is still in the state
    the plan was made against. Destroys need `allow_destroy`."""
    if plan.destroys and not allow_destroy:
        addresses = ", ".join(c.address for c in plan.destroys)
        raise ApplyRefused(
            f"the plan destroys {addresses}; re-run with --allow-destroy to allow it"
        )
    now = clock()
    with engine.begin() as connection:
        if fingerprint(read_state(connection)) != plan.state_fingerprint:
            raise ApplyRefused(
                "the database changed since the plan was made; plan again and review the result"
            )
        ctx = Context(connection, now)
        for change in plan.changes:
            apply_change(ctx, change)
            if on_change is not None:
                on_change(change)
    return ApplyResult(applied=plan.changes)
