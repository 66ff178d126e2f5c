"""`check` and `track`: a customer's balances at run time (rules in `runtime.entitlements`).

`track` takes the units from the balance's sources (`runtime.breakdown`) under a lock taken
first (the customer's row, `SELECT … FOR UPDATE`; SQLite's write lock, `BEGIN IMMEDIATE`): it
reads the feature's `balance_usage` rows again, closes the periods that ended, deducts, and
writes the rows that changed. Each track is kept as a usage event (customer, entity, feature,
value, the units charged, what the balance took of them and dropped, time, key), written in
the same transaction: with an idempotency key, the unique constraint on (customer, key) lets
one of several processes tracking the same key at once record it; the others' transactions
fail whole (nothing is added) and they return the event recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from autumn_sync.config.format import TEXT_PATTERN
from autumn_sync.database import schema as t
from autumn_sync.runtime.breakdown import (
    ALLOW,
    CAP,
    Closed,
    Deducted,
    Entry,
    Stored,
    deduct,
    row_changes,
)
from autumn_sync.runtime.customers import ATTEMPTS, conflict
from autumn_sync.runtime.entitlements import (
    BOOLEAN,
    Entitlements,
    State,
    balance_of,
    feature_balance,
    route,
    state,
)
from autumn_sync.runtime.errors import InvalidRequest, UnknownEntity, UnknownFeature
from autumn_sync.runtime.queries import entitlements, entity_ids, known_customer, stored_row
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


def entity_id(entity: str | None) -> str | None:
    """`entity` if it can be an entity's id (`InvalidRequest` for an empty one)."""
    if entity is None:
        return None
    if not entity.strip() or not re.fullmatch(TEXT_PATTERN, entity) or len(entity) > MAX_KEY:
        raise InvalidRequest(f"an entity id must be 1 to {MAX_KEY} characters, not {entity!r}")
    return entity


def load(
    engine: Engine, customer_id: str, feature_id: str, now: datetime, entity: str | None = None
) -> tuple[Row[Any], Entitlements]:
    """The customer's row and entitlements at `now`, for the customer or its entity `entity`
    (`UnknownCustomer`, `UnknownEntity`, `UnknownFeature`)."""
    row, ents, _ = _load(engine, customer_id, feature_id, now, None, entity)
    return row, ents


def _load(
    engine: Engine,
    customer_id: str,
    feature_id: str,
    now: datetime,
    key: str | None,
    entity: str | None,
) -> tuple[Row[Any], Entitlements, Row[Any] | None]:
    """`load`, and the customer's event recorded with `key` (read before the balances: a
    balance read after the event includes it)."""
    with engine.connect() as conn:
        row = known_customer(conn, customer_id)
        if entity is not None:
            known_entity(conn, row, entity)
        first = None if key is None else _recorded(conn, row.internal_id, key)
        ents = entitlements(conn, row, now, entity or "")
    if feature_id not in ents.features:
        raise UnknownFeature(feature_id, ents.features)
    return row, ents, first


def known_entity(conn: Connection, customer: Row[Any], entity: str) -> None:
    """`UnknownEntity` unless the customer has an entity with this id (its entities' ids are
    read only then, to name the closest)."""
    e = t.entities
    mine = (e.c.customer_internal_id == customer.internal_id) & (e.c.id == entity)
    if conn.execute(select(e.c.id).where(mine)).first() is None:
        raise UnknownEntity(customer.id, entity, entity_ids(conn, customer.internal_id))


def evaluate(
    ents: Entitlements, customer_id: str, feature_id: str, required: Decimal, now: datetime
) -> CheckResult:
    """Whether `required` units of `feature_id` may be used at `now`."""
    entity = ents.entity or None
    if ents.features[feature_id].type == BOOLEAN:
        balance = feature_balance(ents, feature_id, now)
        return CheckResult(
            customer_id, feature_id, required, balance.access, balance, entity=entity
        )
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
        entity=entity,
    )


def check(
    engine: Engine,
    customer_id: str,
    feature_id: str,
    required: Decimal,
    now: datetime,
    entity: str | None = None,
) -> CheckResult:
    """Read-only: a reset that is due shows as usage 0, without being written."""
    _, ents = load(engine, customer_id, feature_id, now, entity)
    return evaluate(ents, customer_id, feature_id, required, now)


def overage_mode(overage: str) -> str:
    """`overage` if it is one `track` takes (`InvalidRequest` else)."""
    if overage not in (CAP, ALLOW):
        raise InvalidRequest(f"overage must be {CAP!r} or {ALLOW!r}, not {overage!r}")
    return overage


def track(
    engine: Engine,
    customer_id: str,
    feature_id: str,
    value: Decimal,
    now: datetime,
    key: str | None = None,
    entity: str | None = None,
    overage: str = CAP,
) -> TrackResult:
    """Record `value` units of `feature_id` (negative gives usage back), taken from the
    balance's sources in order (`runtime.breakdown`), counted in the credit system that
    covers the feature when the customer has no source for it, and keep the event; with a
    `key` already recorded for the customer, the recorded event instead (`InvalidRequest`
    if it is not this feature, value and entity)."""
    row, ents, first = _load(engine, customer_id, feature_id, now, key, entity)
    if ents.features[feature_id].type == BOOLEAN:
        raise InvalidRequest(f"feature {feature_id!r} is boolean: there is no usage to track")
    if first is not None:
        return _replay(ents, customer_id, feature_id, value, first, now, entity)
    target = route(ents, feature_id)
    charged = value * target.cost
    event = {
        "customer_internal_id": row.internal_id,
        "entity_id": entity,
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
                _lock(conn, row.internal_id)
                found, after, taken = _take(
                    conn, ents, row.internal_id, target.feature, charged, now, overage
                )
                counted = {"recorded": taken.recorded, "dropped": taken.dropped}
                conn.execute(insert(t.usage_events).values(**event, **counted))
            break
        except IntegrityError:
            if key is None:
                raise
            # another process recorded this key first: its event, with the balance now
            _, ents, first = _load(engine, customer_id, feature_id, now, key, entity)
            if first is None:
                raise
            return _replay(ents, customer_id, feature_id, value, first, now, entity)
        except OperationalError as exc:
            if attempt + 1 == ATTEMPTS or not conflict(exc):
                raise
    return TrackResult(
        customer_id=customer_id,
        feature_id=feature_id,
        value=value,
        charged_feature=target.feature,
        charged=charged,
        balance=balance_of(found, after),
        idempotency_key=key,
        entity=entity,
        recorded=taken.recorded,
        dropped=taken.dropped,
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
    entity: str | None,
) -> TrackResult:
    """The event recorded under the key of this repeat (`InvalidRequest` if it was of another
    feature, value or entity), with the balance now."""
    same = (first.feature_id, Decimal(first.value), first.entity_id) == (feature_id, value, entity)
    if not same:
        of = f" of entity {first.entity_id}" if first.entity_id is not None else ""
        raise InvalidRequest(
            f"idempotency key {first.idempotency_key!r} was used for another event "
            f"({first.feature_id} {Decimal(first.value).normalize():f}{of} at "
            f"{first.created_at}): use a new key for a new event"
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
        entity=first.entity_id,
        recorded=first.recorded,
        dropped=first.dropped if first.dropped is not None else Decimal(0),
    )


def _lock(conn: Connection, iid: int) -> None:
    """Lock the customer's row before anything is read or written (the event's insert checks
    its foreign key by sharing the row: taking it for update after that would deadlock two
    tracks). SQLite locks the whole database for writing instead, at once (the driver would
    begin the transaction only at the first write, after the reads)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    c = t.customers
    conn.execute(select(c.c.internal_id).where(c.c.internal_id == iid).with_for_update())


def _take(
    conn: Connection,
    ents: Entitlements,
    iid: int,
    feature: str,
    charged: Decimal,
    now: datetime,
    overage: str,
) -> tuple[Entitlements, State, Deducted]:
    """Under the customer's lock: the feature's rows read again, due resets applied,
    `charged` taken, and the rows written. The units the customer's entities take (seats)
    are in use: what they leave is what a track may take (they are not written)."""
    u = t.balance_usage
    scopes = ("", ents.entity) if ents.entity else ("",)
    mine = (u.c.customer_internal_id == iid) & u.c.entity_id.in_(scopes)
    rows = {
        (r.entity_id, r.feature_id, r.source): stored_row(r)
        for r in conn.execute(select(u).where(mine & (u.c.feature_id == feature)))
    }
    others = {k: v for k, v in ents.stored.items() if k[1] != feature}
    fresh = replace(ents, stored={**others, **rows})
    found = state(fresh, feature, now)
    if found.entities and charged > 0:
        allowed = deduct(found.viewed(), charged, overage)
        stored = deduct(found.entries, allowed.recorded, ALLOW).entries
        taken = Deducted(stored, allowed.recorded, allowed.dropped)
    else:
        taken = deduct(found.entries, charged, overage)
    before = {(k[0], k[2]): v for k, v in rows.items()}
    write(conn, iid, feature, before, taken.entries, found.closed, now)
    return fresh, replace(found, entries=taken.entries, closed=[]), taken


def write(
    conn: Connection,
    iid: int,
    feature: str,
    before: Mapping[tuple[str, str], Stored],
    entries: Sequence[Entry],
    closed: Sequence[Closed],
    now: datetime,
) -> None:
    """The rows of `entries` written where they changed (a rollover used up or expired
    goes), and the usage of the priced periods that closed kept for `usage report`."""
    u = t.balance_usage
    plan = row_changes(feature, before, entries, now)
    mine = (u.c.customer_internal_id == iid) & (u.c.feature_id == feature)
    for entity, key in plan.gone:
        conn.execute(delete(u).where(mine & (u.c.entity_id == entity) & (u.c.source == key)))
    for row in plan.changed:
        values = {"used": row.used, "next_reset": row.next_reset}
        where = mine & (u.c.entity_id == row.entity) & (u.c.source == row.key)
        conn.execute(update(u).where(where).values(**values))
    if plan.new:
        conn.execute(insert(u), [_values(iid, row) for row in plan.new])
    priced = {e.source.key for e in entries if e.source.priced and not e.source.entity}
    periods = [
        {
            "customer_internal_id": iid,
            "feature_id": feature,
            "period_end": c.end,
            "source": c.key,
            "usage": c.used,
        }
        for c in closed
        if c.key in priced and not c.entity
    ]
    if periods:
        conn.execute(insert(t.usage_periods), periods)


def _values(iid: int, row: Stored) -> dict[str, Any]:
    return {
        "customer_internal_id": iid,
        "entity_id": row.entity,
        "feature_id": row.feature,
        "source": row.key,
        "used": row.used,
        "next_reset": row.next_reset,
        "amount": row.amount,
        "expires": row.expires,
    }
