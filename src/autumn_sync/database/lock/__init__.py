"""The apply lock: one `apply` (or `plan --out`) at a time per billing database.

The lock is the database's own (`database/lock/backends.py`), so a run that dies loses it with its
connection or its process: a PostgreSQL session advisory lock, a MariaDB named lock, an OS
file lock next to a SQLite file. The `apply_lock` table only describes
the holder (who, doing what, since when) for the message a second run prints and for
`force_unlock`; a row left by a run that died is overwritten by the next holder.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from autumn_sync.database.lock.backends import Backend, Holder, LockError, Mutex, backend_for
from autumn_sync.database.schema import apply_lock

log = logging.getLogger(__name__)
UNKNOWN_AFTER = 2.0  # seconds a waiting run looks for the holder's name before going on without

__all__ = ["LockError", "LockHeld", "LockInfo", "current_lock", "force_unlock", "locked"]


@dataclass(frozen=True)
class LockInfo:
    """Who holds the lock: `holder` is "user@host pid N", `since` is UTC without tzinfo."""

    lock_id: str
    holder: str
    operation: str
    since: datetime

    def describe(self) -> str:
        """Say "HOLDER (OPERATION) since YYYY-MM-DD HH:MM:SS UTC"."""
        return f"{self.holder} ({self.operation}) since {self.since:%Y-%m-%d %H:%M:%S} UTC"


class LockHeld(Exception):
    """Another run holds the lock; `info` describes it (None when its holder is unknown).
    The message is one line, ready to print."""

    def __init__(self, info: LockInfo | None) -> None:
        super().__init__(_held_message(info))
        self.info = info


def _held_message(info: LockInfo | None) -> str:
    if info is None:
        return (
            "the billing database is locked by another run whose holder is unknown (it may "
            "have just started or finished). Try again, or wait for it (--lock-timeout SECONDS)"
        )
    return (
        f"the billing database is locked by {info.describe()}, lock id {info.lock_id}. "
        "Wait for it (--lock-timeout SECONDS), or if that run is gone: "
        f"autumn-sync force-unlock {info.lock_id}"
    )


@contextmanager
def locked(
    engine: Engine,
    operation: str,
    timeout: float = 0,
    on_wait: Callable[[LockInfo | None], None] | None = None,
    poll: float = 0.25,
) -> Iterator[LockInfo]:
    """Hold the billing database's lock for the block, as `operation` ("apply", "plan").

    When another run holds it, wait up to `timeout` seconds (polling every `poll` seconds;
    `on_wait` is called once, with the holder, when waiting begins), then raise `LockHeld`;
    with `timeout` 0 raise at once. The lock is released when the block ends, however."""
    backend = backend_for(engine)
    mutex = backend.mutex()
    started = time.monotonic()
    try:
        _take(engine, backend, mutex, (timeout, poll), on_wait)
        info = _describe(engine, operation, mutex.session())
        log.info(
            "lock %s taken for %s after %.2f s", info.lock_id, operation, time.monotonic() - started
        )
        try:
            yield info
        finally:
            _forget(engine, info.lock_id)
            log.info("lock %s released", info.lock_id)
    finally:
        mutex.release()


def current_lock(engine: Engine) -> LockInfo | None:
    """Who holds the lock now; None when it is free (a row left by a run that died is not a
    lock) or while its holder has not described itself yet."""
    holder = backend_for(engine).holder()
    return None if holder is None else _read(engine, holder)


def force_unlock(engine: Engine, lock_id: str) -> LockInfo:
    """Release the lock `lock_id` whose holder is gone or hung: end the database session that
    holds it (PostgreSQL, MariaDB) or remove the lock file (SQLite). Raises `LockError` when
    the database is not locked or another lock is held."""
    backend = backend_for(engine)
    holder = backend.holder()
    if holder is None:
        raise LockError("the billing database is not locked")
    info = _read(engine, holder)
    if info is None or info.lock_id != lock_id:
        current = (
            f" is {info.lock_id} held by {info.describe()}" if info else "'s holder is unknown"
        )
        raise LockError(f"no lock with id {lock_id}; the current lock{current}")
    log.info("force-unlock: ending %s, which holds lock %s", info.describe(), lock_id)
    backend.end(holder)
    _forget(engine, lock_id)
    return info


def _take(
    engine: Engine,
    backend: Backend,
    mutex: Mutex,
    timing: tuple[float, float],
    on_wait: Callable[[LockInfo | None], None] | None,
) -> None:
    """Try the lock until it is taken or `timeout` (of `timing`: timeout, poll) has passed."""
    timeout, poll = timing
    start = time.monotonic()
    told = on_wait is None
    while not mutex.acquire():
        left = start + timeout - time.monotonic()
        if left <= 0:
            holder = _holder_info(engine, backend)
            log.info("lock held by %s: gave up", holder.describe() if holder else "another run")
            raise LockHeld(holder)
        if left >= timeout - poll:
            log.info("lock held by another run: waiting up to %g s", timeout)
        log.debug("lock held by another run: %.2f s left to wait", left)
        if not told:
            # The holder describes itself just after taking the lock: give it a moment
            # before saying that it is unknown.
            info = _holder_info(engine, backend)
            if info is not None or time.monotonic() - start >= UNKNOWN_AFTER:
                assert on_wait is not None
                on_wait(info)
                told = True
        time.sleep(min(poll, left))


def _holder_info(engine: Engine, backend: Backend) -> LockInfo | None:
    holder = backend.holder()
    return None if holder is None else _read(engine, holder)


# --- the description row ----------------------------------------------------------------


def _describe(engine: Engine, operation: str, session: int | None) -> LockInfo:
    """Write the row that says who took the lock (replacing any left by a run that died), in
    a transaction of its own, committed before the holder's work begins."""
    info = LockInfo(secrets.token_hex(4), _holder_name(), operation[:30], _now())
    with engine.begin() as conn:
        conn.execute(delete(apply_lock))
        conn.execute(
            insert(apply_lock).values(
                lock_id=info.lock_id,
                holder=info.holder,
                operation=info.operation,
                since=info.since,
                session_id=session,
            )
        )
    return info


def _forget(engine: Engine, lock_id: str) -> None:
    """Delete the row of `lock_id` (only its own: a forced-out holder leaves the next one's);
    a failure is ignored, the row only describes the lock."""
    with suppress(SQLAlchemyError), engine.begin() as conn:
        conn.execute(delete(apply_lock).where(apply_lock.c.lock_id == lock_id))


def _read(engine: Engine, holder: Holder) -> LockInfo | None:
    """The row describing `holder`'s lock; None when there is none (a row written by another
    database session than the holder's is one left by a run that died)."""
    with engine.connect() as conn:
        rows = conn.execute(select(apply_lock).order_by(apply_lock.c.since.desc())).all()
    for row in rows:
        if holder.session is None or row.session_id == holder.session:
            return LockInfo(row.lock_id, row.holder, row.operation, row.since)
    return None


def _holder_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"[:255]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
