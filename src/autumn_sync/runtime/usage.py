"""`check` and `track`: a customer's balances at run time (rules in `runtime.entitlements`).

`track` adds to the usage with one atomic `UPDATE balances SET usage = usage + :value` under a
row lock, after resetting the usage when its reset date has passed; the balance row is made
on first use (a concurrent first use of the same balance is told apart by its primary key).
Each track is kept as a usage event, written first in the same transaction: with an
idempotency key, the unique constraint on (customer, key) lets one of several processes
tracking the same key at once record it; the others' transactions fail whole (nothing is
added) and they return the event recorded.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, Row, case, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from autumn_sync.config.format import TEXT_PATTERN
from autumn_sync.database import schema as t
from autumn_sync.runtime.customers import ATTEMPTS, conflict
from autumn_sync.runtime.entitlements import (
    BOOLEAN,
    BalanceRow,
    Entitlements,
    advance,
    feature_balance,
    first_reset,
    route,
)
from autumn_sync.runtime.errors import InvalidRequest, UnknownFeature
from autumn_sync.runtime.queries import entitlements, known_customer
from autumn_sync.runtime.results import CheckResult, TrackResult

Number = Decimal | int | str
MAX_PLACES = 12  # what the database keeps (NUMERIC(30, 12))
MAX_DIGITS = 30 - MAX_PLACES
LARGEST = Decimal(10) ** MAX_DIGITS
MAX_KEY = 255  # usage_events.idempotency_key


def amount(value: Number | float, what: str) -> Decimal:
    """`value` as an exact decimal (`InvalidRequest` when it is not a finite number that the
    database can keep)."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequest(f"{what} must be a number, not {value!r}") from None
    exponent = number.as_tuple().exponent
    if not number.is_finite() or not isinstance(exponent, int):
        raise InvalidRequest(f"{what} must be a finite number, not {value!r}")
    if -exponent > MAX_PLACES:
        raise InvalidRequest(f"{what} has more than {MAX_PLACES} decimal places")
    if abs(number) >= LARGEST:
        raise InvalidRequest(f"{what} is too large (at most {MAX_DIGITS} digits before the point)")
    return number


def idempotency_key(key: str | None) -> str | None:
    """`key` if the database can keep it (`InvalidRequest` for an empty or overlong one)."""
    if key is None:
        return None
    if not key.strip():
        raise InvalidRequest("an idempotency key must not be empty")
    if len(key) > MAX_KEY:
        raise InvalidRequest(f"an idempotency key has at most {MAX_KEY} characters")
    if not re.fullmatch(TEXT_PATTERN, key):
        raise InvalidRequest("an idempotency key must not contain control characters")
    return key


def load(
    engine: Engine, customer_id: str, feature_id: str, now: datetime
) -> tuple[Row[Any], Entitlements]:
    """The customer's row and entitlements at `now` (`UnknownCustomer`, `UnknownFeature`)."""
    row, ents, _ = _load(engine, customer_id, feature_id, now, None)
    return row, ents


def _load(
    engine: Engine, customer_id: str, feature_id: str, now: datetime, key: str | None
) -> tuple[Row[Any], Entitlements, Row[Any] | None]:
    """`load`, and the customer's event recorded with `key` (read before the balances: a
    balance read after the event includes it)."""
    with engine.connect() as conn:
        row = known_customer(conn, customer_id)
        first = None if key is None else _recorded(conn, row.internal_id, key)
        ents = entitlements(conn, row, now)
    if feature_id not in ents.features:
        raise UnknownFeature(feature_id, ents.features)
    return row, ents, first


def evaluate(
    ents: Entitlements, customer_id: str, feature_id: str, required: Decimal, now: datetime
) -> CheckResult:
    """Whether `required` units of `feature_id` may be used at `now`."""
    if ents.features[feature_id].type == BOOLEAN:
        balance = feature_balance(ents, feature_id, now)
        return CheckResult(customer_id, feature_id, required, balance.access, balance)
    target = route(ents, feature_id)
    balance = feature_balance(ents, target.feature, now)
    cost = target.cost if target.credit_system else None
    return CheckResult(
        customer_id=customer_id,
        feature_id=feature_id,
        required=required,
        allowed=balance.covers(required * target.cost),
        balance=balance,
        credit_system=target.credit_system,
        credit_cost=cost,
    )


def check(
    engine: Engine, customer_id: str, feature_id: str, required: Decimal, now: datetime
) -> CheckResult:
    """Read-only: a reset that is due shows as usage 0, without being written."""
    _, ents = load(engine, customer_id, feature_id, now)
    return evaluate(ents, customer_id, feature_id, required, now)


def track(
    engine: Engine,
    customer_id: str,
    feature_id: str,
    value: Decimal,
    now: datetime,
    key: str | None = None,
) -> TrackResult:
    """Record `value` units of `feature_id` (negative gives usage back; usage never goes
    below 0), counted in the credit system that covers the feature when the customer has no
    item for it, and keep the event; with a `key` already recorded for the customer, the
    recorded event instead (`InvalidRequest` if it is not this feature and value)."""
    row, ents, first = _load(engine, customer_id, feature_id, now, key)
    if ents.features[feature_id].type == BOOLEAN:
        raise InvalidRequest(f"feature {feature_id!r} is boolean: there is no usage to track")
    if first is not None:
        return _replay(ents, customer_id, feature_id, value, first, now)
    target = route(ents, feature_id)
    charged = value * target.cost
    if target.feature not in ents.balances:
        _first_use(engine, row.internal_id, target.feature)
    event = {
        "customer_internal_id": row.internal_id,
        "feature_id": feature_id,
        "value": value,
        "charged_feature_id": target.feature,
        "charged": charged,
        "created_at": now,
        "idempotency_key": key,
    }
    for attempt in range(ATTEMPTS):
        try:
            with engine.begin() as conn:
                conn.execute(insert(t.usage_events).values(**event))
                stored = _add(conn, ents, row.internal_id, target.feature, charged, now)
            break
        except IntegrityError:
            if key is None:
                raise
            # another process recorded this key first: its event, on the balance it made
            _, ents, first = _load(engine, customer_id, feature_id, now, key)
            if first is None:
                raise
            return _replay(ents, customer_id, feature_id, value, first, now)
        except OperationalError as exc:
            if attempt + 1 == ATTEMPTS or not conflict(exc):
                raise
    after = replace(ents, balances={**ents.balances, target.feature: stored})
    return TrackResult(
        customer_id=customer_id,
        feature_id=feature_id,
        value=value,
        charged_feature=target.feature,
        charged=charged,
        balance=feature_balance(after, target.feature, now),
        idempotency_key=key,
    )


def _recorded(conn: Connection, iid: int, key: str) -> Row[Any] | None:
    """The customer's event recorded with `key`, if there is one."""
    e = t.usage_events
    mine = (e.c.customer_internal_id == iid) & (e.c.idempotency_key == key)
    return conn.execute(select(e).where(mine)).first()


def _replay(
    ents: Entitlements,
    customer_id: str,
    feature_id: str,
    value: Decimal,
    first: Row[Any],
    now: datetime,
) -> TrackResult:
    """The event recorded under the key of this repeat, with the balance now."""
    if first.feature_id != feature_id or Decimal(first.value) != value:
        raise InvalidRequest(
            f"idempotency key {first.idempotency_key!r} was used for another event "
            f"({first.feature_id} {Decimal(first.value).normalize():f} at {first.created_at}): "
            "use a new key for a new event"
        )
    return TrackResult(
        customer_id=customer_id,
        feature_id=feature_id,
        value=Decimal(first.value),
        charged_feature=first.charged_feature_id,
        charged=Decimal(first.charged),
        balance=feature_balance(ents, first.charged_feature_id, now),
        idempotency_key=first.idempotency_key,
        replayed=True,
    )


def _first_use(engine: Engine, iid: int, feature_id: str) -> None:
    """Make the balance row (usage 0); another process may just have made it."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(t.balances).values(customer_internal_id=iid, feature_id=feature_id, usage=0)
            )
    except IntegrityError:
        pass


def _close_period(conn: Connection, iid: int, feature_id: str, row: BalanceRow) -> None:
    """Keep the usage of the period that ends, for `usage report` to send to Stripe."""
    if row.usage and row.next_reset is not None:
        closed = insert(t.usage_periods).values(
            customer_internal_id=iid,
            feature_id=feature_id,
            period_end=row.next_reset,
            usage=row.usage,
        )
        conn.execute(closed)


def _add(
    conn: Connection, ents: Entitlements, iid: int, feature_id: str, charged: Decimal, now: datetime
) -> BalanceRow:
    """Reset the usage if due, add `charged`, and return the row as it now stands."""
    b = t.balances
    mine = (b.c.customer_internal_id == iid) & (b.c.feature_id == feature_id)
    locked = conn.execute(select(b).where(mine).with_for_update()).one()
    row = BalanceRow(locked.allowance, locked.reset_at, locked.usage, locked.next_reset)
    added = b.c.usage + charged
    values: dict[str, Any] = {"usage": case((added < literal_column("0"), 0), else_=added)}
    if ents.features[feature_id].resets:
        if row.next_reset is None:
            values["next_reset"] = first_reset(ents, feature_id, row, now)
        elif now >= row.next_reset:
            values = {
                "usage": max(charged, Decimal(0)),
                "next_reset": advance(ents, feature_id, row.next_reset, now),
            }
            _close_period(conn, iid, feature_id, row)
    conn.execute(update(b).where(mine).values(**values))
    fresh = conn.execute(select(b.c.usage, b.c.next_reset).where(mine)).one()
    return replace(row, usage=fresh.usage, next_reset=fresh.next_reset)
