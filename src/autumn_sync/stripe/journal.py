"""The apply journal and the Stripe ids kept in the database (each write its own short
transaction, so what was done in Stripe is on record even if the run dies next): catalog
objects' in `stripe_objects`, customers' in `customers.stripe_id` and subscriptions' in
`customer_plans.stripe_subscription_id`."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from autumn_sync.database import schema as t
from autumn_sync.model.address import key_is_email, key_label
from autumn_sync.model.customers import ACTIVE, CANCELED

REJECTED = "rejected"
log = logging.getLogger(__name__)


class Journal:
    """Records every Stripe write of one run: `started`, then `done`, `rejected` (Stripe
    answered with an error) or `failed` (no answer: the outcome is unknown)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock
        self.run_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._rejected: set[str] | None = None  # read on first use
        self._done: dict[str, int] | None = None  # likewise
        self._started: set[str] | None = None  # likewise, and only when logging

    def writes_before(self, address: str) -> int:
        """How many writes to `address` earlier runs completed. It goes into idempotency
        keys: archiving, reactivating and archiving again are three requests, not a replay of
        the first (Stripe keeps keys for 24 hours). A write that got no answer is not
        counted, so the next run sends it with the same key and gets Stripe's object back."""
        with self._lock:
            if self._done is None:
                journal = t.apply_journal
                query = (
                    select(journal.c.address, func.count())
                    .where(journal.c.status == "done")
                    .group_by(journal.c.address)
                )
                with self.engine.connect() as conn:
                    self._done = {address: count for address, count in conn.execute(query).all()}
            return self._done.get(address, 0)

    def usable_key(self, key: str) -> str:
        """`key`, or a successor of it when Stripe answered a request sent with it before
        with an error.

        Stripe keeps the answer of a request that reached its endpoint, errors included, and
        replays it for 24 hours: once the cause is removed (say a coupon made by hand with
        the id autumn-sync wants), the change must go out with a new key. That is safe: what
        an answered request did shows in the plan's read of Stripe. A request left without
        an answer (the run died, the connection broke) keeps its key, so that if Stripe did
        the work, or is still doing it, the next run gets that object, not a second one."""
        with self._lock:
            if self._rejected is None:
                journal = t.apply_journal
                query = select(journal.c.idempotency_key).where(journal.c.status == REJECTED)
                with self.engine.connect() as conn:
                    self._rejected = set(conn.execute(query).scalars())
            candidate, attempt = key, 0
            while candidate in self._rejected:
                attempt += 1
                candidate = f"{key}-r{attempt}"
        if candidate != key:
            log.info("key %s was answered with an error before: sending %s", key, candidate)
        elif log.isEnabledFor(logging.INFO) and key in self._unfinished():
            log.info("resending a write an earlier run left without an answer (key %s)", key)
        return candidate

    def _unfinished(self) -> set[str]:
        """Keys of writes an earlier run started and got no answer for (read once; only to
        say so in the log)."""
        with self._lock:
            if self._started is None:
                journal = t.apply_journal
                started = select(journal.c.idempotency_key).where(journal.c.status == "started")
                answered = select(journal.c.idempotency_key).where(
                    journal.c.status.in_(("done", REJECTED))
                )
                with self.engine.connect() as conn:
                    keys = set(conn.execute(started).scalars())
                    self._started = keys - set(conn.execute(answered).scalars())
            return self._started

    def record(
        self,
        address: str,
        action: str,
        key: str,
        status: str,
        stripe_id: str | None = None,
        message: str | None = None,
        remember: str | None = None,
        name: str | None = None,
        also: Callable[[Connection, str], None] | None = None,
    ) -> None:
        """Add one journal row; with `remember` (an address), also store `stripe_id` as that
        address's object (and `name` as the product name written), and run `also` with the
        id, in the same transaction."""
        now = self.clock()
        row = {
            "run_id": self.run_id,
            "address": address,
            "action": action,
            "idempotency_key": key,
            "status": status,
            "stripe_id": stripe_id,
            "message": message[:1000] if message else None,
            "at": now,
        }
        with self._lock, self.engine.begin() as conn:
            conn.execute(insert(t.apply_journal).values(**row))
            if remember is not None and stripe_id is not None:
                _upsert(conn, remember, stripe_id, name, now)
            if also is not None and stripe_id is not None:
                also(conn, stripe_id)
            if status == REJECTED and self._rejected is not None:
                self._rejected.add(key)


def _upsert(
    conn: Connection, address: str, stripe_id: str, name: str | None, now: datetime
) -> None:
    objects = t.stripe_objects
    old = conn.execute(select(objects.c.written_name).where(objects.c.address == address)).first()
    written = name if name is not None else (old.written_name if old else None)
    conn.execute(delete(objects).where(objects.c.address == address))
    conn.execute(
        insert(objects).values(
            address=address, stripe_id=stripe_id, written_name=written, updated_at=now
        )
    )


def in_transaction(engine: Engine, work: Callable[[Connection], None]) -> None:
    """Run `work` in a short transaction of its own (recording an id without a write)."""
    with engine.begin() as conn:
        work(conn)


def customer_row(conn: Connection, key: str) -> int | None:
    """The row of the managed customer the file names `key`: its file key, else (a customer
    matched by id or email without changes keeps an older key) its id or email."""
    c = t.customers
    found = conn.execute(select(c.c.internal_id).where(c.c.file_key == key)).scalar()
    if found is None:
        column = c.c.email if key_is_email(key) else c.c.id
        value = key_label(key)
        query = select(c.c.internal_id).where((column == value) & c.c.managed)
        found = conn.execute(query.order_by(c.c.internal_id)).scalars().first()
    return int(found) if found is not None else None


def record_customer(key: str) -> Callable[[Connection, str], None]:
    """Stores a Stripe customer id as the one of the customer `key`."""

    def store(conn: Connection, stripe_id: str) -> None:
        row = customer_row(conn, key)
        if row is not None:
            c = t.customers
            conn.execute(update(c).where(c.c.internal_id == row).values(stripe_id=stripe_id))

    return store


def _plan_rows(conn: Connection, key: str, entity: str | None, plans: tuple[str, ...]) -> list[Any]:
    """The rows of a customer's (or entity's) plans among `plans`."""
    row = customer_row(conn, key)
    if row is None:
        return []
    cp = t.customer_plans
    query = select(cp.c.internal_id, cp.c.trial_ends_at).where(
        (cp.c.customer_internal_id == row)
        & (cp.c.entity_id == (entity or ""))
        & (cp.c.plan_id.in_(plans))
    )
    return list(conn.execute(query).all())


def record_subscription(
    key: str, entity: str | None, plans: tuple[str, ...], resumed: bool = False
) -> Callable[[Connection, str], None]:
    """Stores a Stripe subscription id as the one of a customer's (or entity's) plans; when
    the write subscribes again a customer who cancelled in Stripe (`resumed`), those plans
    marked cancelled are active again, with no end."""

    def store(conn: Connection, stripe_id: str) -> None:
        ids = [row.internal_id for row in _plan_rows(conn, key, entity, plans)]
        if ids:
            cp = t.customer_plans
            query = update(cp).where(cp.c.internal_id.in_(ids))
            conn.execute(query.values(stripe_subscription_id=stripe_id))
            if resumed:
                again = query.where(cp.c.status == CANCELED)
                conn.execute(again.values(status=ACTIVE, ends_at=None))

    return store


def trial_end(engine: Engine, key: str, entity: str | None, plans: tuple[str, ...]) -> date | None:
    """When the free trial of a subscription ends: the latest of its plans' trials, as the
    database recorded them when the plans were attached (one query)."""
    with engine.connect() as conn:
        rows = _plan_rows(conn, key, entity, plans)
    return max((r.trial_ends_at for r in rows if r.trial_ends_at is not None), default=None)


def written_names(conn: Connection) -> dict[str, str]:
    """Product address → the name autumn-sync last wrote to Stripe."""
    objects = t.stripe_objects
    query = select(objects.c.address, objects.c.written_name).where(
        objects.c.written_name.is_not(None)
    )
    return {address: name for address, name in conn.execute(query).all()}


def stored_ids(conn: Connection) -> dict[str, str]:
    """Address → the Stripe id autumn-sync recorded for it."""
    objects = t.stripe_objects
    rows = conn.execute(select(objects.c.address, objects.c.stripe_id)).all()
    return {address: stripe_id for address, stripe_id in rows}
