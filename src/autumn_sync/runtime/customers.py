"""`get_or_create`: the application meets its customers.

In order: a customer with the id is returned as it is; else a pre-provisioned customer (the
file's, still without an id) whose email matches gets the id (a conditional `UPDATE … WHERE id
IS NULL`) and keeps everything else, so the next `plan` shows no change for it; else a new
customer (not managed by the file) is made with the default plans. Two processes racing on the
same id end with one customer: the unique constraint on `customers.id` refuses the second
insert (or claim), which then reads the winner's row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError, OperationalError

from autumn_sync.config.errors import PATTERN_RULES
from autumn_sync.config.format import CUSTOMER_ID_PATTERN, EMAIL_PATTERN, MAX_EMAIL
from autumn_sync.database import schema as t
from autumn_sync.database.apply.customers import Trial, take_trial
from autumn_sync.runtime.errors import InvalidRequest
from autumn_sync.runtime.queries import ACTIVE, TRIALING, customer_by_id, customer_info
from autumn_sync.runtime.results import CLAIMED, CREATED, FOUND, CustomerInfo

ATTEMPTS = 5
MAX_ID = 255


@dataclass(frozen=True)
class NewCustomer:
    """What the application knows of a customer when it first meets it."""

    id: str
    email: str | None = None
    name: str | None = None
    fingerprint: str | None = None

    def check(self) -> None:
        """Raise `InvalidRequest` for an id or email the file would refuse (its rules:
        `config.format`)."""
        if not self.id or not self.id.strip():
            raise InvalidRequest("a customer id must not be empty")
        if len(self.id) > MAX_ID:
            raise InvalidRequest(f"a customer id has at most {MAX_ID} characters")
        if not re.fullmatch(CUSTOMER_ID_PATTERN, self.id):
            raise InvalidRequest(PATTERN_RULES[CUSTOMER_ID_PATTERN].format(value=self.id))
        if self.email is not None and (
            len(self.email) > MAX_EMAIL or not re.fullmatch(EMAIL_PATTERN, self.email)
        ):
            raise InvalidRequest(PATTERN_RULES[EMAIL_PATTERN].format(value=self.email))


def get_or_create(engine: Engine, new: NewCustomer, now: datetime) -> CustomerInfo:
    """The customer with `new.id`, made or bound to a pre-provisioned one if need be."""
    new.check()
    for attempt in range(ATTEMPTS):
        with engine.connect() as conn:
            row = customer_by_id(conn, new.id)
            if row is not None:
                return customer_info(conn, row, now, FOUND)
        try:
            return _make(engine, new, now)
        except IntegrityError:
            continue  # another process made or claimed this id first: read it
        except OperationalError as exc:
            if attempt + 1 == ATTEMPTS or not conflict(exc):
                raise
    raise InvalidRequest(f"customer {new.id!r} could not be read nor created")


def conflict(exc: OperationalError) -> bool:
    """A deadlock or lock timeout between concurrent writers (worth another try)."""
    text = str(exc.orig).lower()
    return "deadlock" in text or "lock" in text


def _make(engine: Engine, new: NewCustomer, now: datetime) -> CustomerInfo:
    with engine.begin() as conn:
        iid = _claim(conn, new.id, new.email) if new.email else None
        outcome = CLAIMED
        if iid is None:
            iid, outcome = _create(conn, new, now), CREATED
        row = conn.execute(select(t.customers).where(t.customers.c.internal_id == iid)).one()
        return customer_info(conn, row, now, outcome)


def _claim(conn: Connection, customer_id: str, email: str | None) -> int | None:
    """Give `customer_id` to the pre-provisioned customer with `email`, if there is one
    (the first made, should there be several) and no one else claimed it meanwhile."""
    c = t.customers
    if email is None:
        return None
    # Emails match whatever their case (Billing@Acme.com is billing@acme.com).
    waiting = c.c.managed & c.c.id.is_(None) & (func.lower(c.c.email) == email.lower())
    query = select(c.c.internal_id).where(waiting).order_by(c.c.internal_id).limit(1)
    iid = conn.execute(query).scalar()
    if iid is None:
        return None
    claimed = conn.execute(
        update(c).where((c.c.internal_id == iid) & c.c.id.is_(None)).values(id=customer_id)
    )
    return int(iid) if claimed.rowcount == 1 else None


def _create(conn: Connection, new: NewCustomer, now: datetime) -> int:
    """A new application customer on the default plans."""
    result = conn.execute(
        insert(t.customers).values(
            id=new.id,
            email=new.email,
            name=new.name,
            fingerprint=new.fingerprint,
            created_at=now,
            managed=False,
        )
    )
    iid = int(result.inserted_primary_key[0])  # type: ignore[index]
    for plan in _default_plans(conn):
        attach_default(conn, iid, plan, new.fingerprint, now)
    return iid


def _default_plans(conn: Connection) -> list[Row[Any]]:
    """Default plans (not archived, not add-ons) at their current versions, with their trial."""
    p, v = t.plans, t.plan_versions
    query = (
        select(p.c.id, p.c.current_version, v.c.trial_days, v.c.trial_unique_fingerprint)
        .join(v, (v.c.plan_id == p.c.id) & (v.c.version == p.c.current_version))
        .where(p.c.is_default == true(), ~p.c.archived, ~p.c.add_on)
        .order_by(p.c.id)
    )
    return list(conn.execute(query))


def attach_default(
    conn: Connection, iid: int, plan: Row[Any], fingerprint: str | None, now: datetime
) -> None:
    """Put a customer on a default plan (`plan`: its id, current version, trial days and
    whether one trial per fingerprint), with its free trial unless the customer or its
    fingerprint (when the plan gives one per fingerprint) had one of the plan. A row of the
    plan the customer had (ended) is dropped first."""
    days = plan.trial_days
    trial_end = now.date() + timedelta(days=days) if days else None
    if trial_end is not None:
        fp = fingerprint if plan.trial_unique_fingerprint else None
        trial = Trial(iid, "", plan.id, trial_end, fp)
        trial_end = trial_end if take_trial(conn, trial, now) else None
    _drop_ended(conn, iid, plan.id)
    conn.execute(
        insert(t.customer_plans).values(
            customer_internal_id=iid,
            plan_id=plan.id,
            version=plan.current_version,
            status=TRIALING if trial_end else ACTIVE,
            entity_id="",
            quantity=1,
            attached_at=now,
            trial_ends_at=trial_end,
        )
    )


def _drop_ended(conn: Connection, iid: int, plan_id: str) -> None:
    """Drop the customer's own row of `plan_id` and its custom items, if it has one."""
    cp, ci = t.customer_plans, t.customer_plan_items
    mine = (cp.c.customer_internal_id == iid) & (cp.c.entity_id == "") & (cp.c.plan_id == plan_id)
    found = conn.execute(select(cp.c.internal_id).where(mine)).scalars().all()
    if found:
        conn.execute(delete(ci).where(ci.c.customer_plan_id.in_(found)))
        conn.execute(delete(cp).where(cp.c.internal_id.in_(found)))
