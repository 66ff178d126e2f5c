"""The billing database's own locks, which end with the connection or process holding them:
a PostgreSQL session advisory lock, a MariaDB named lock (`GET_LOCK`), an OS file lock
(`flock`) on `<database file>.lock` next to a SQLite file, and for an in-memory SQLite
database (reachable only through its engine, in one process) a lock inside the process.
`autumn_sync.database.lock` builds the apply lock on them."""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import threading
import time
import weakref
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

PG_KEY = int.from_bytes(b"autumnsy", "big")  # the advisory lock key (a bigint), per database
MARIADB_PREFIX = "autumn_sync_apply."  # + the database name: GET_LOCK names are server-wide
MARIADB_NAME_MAX = 64
END_WAIT = 10.0  # seconds `end` waits for the database to free an ended session's lock


class LockError(Exception):
    """The lock cannot be taken or forced; the message is one line, ready to print."""


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as the database sees it: a session id, None where it cannot tell."""

    session: int | None


class Mutex(Protocol):
    def acquire(self) -> bool:
        """Take the lock if it is free, without waiting; False when it is held."""

    def session(self) -> int | None:
        """The database session holding the lock once taken (None: not session-based)."""

    def release(self) -> None:
        """Give the lock back (if taken) and close what was opened for it."""


class Backend(Protocol):
    def mutex(self) -> Mutex:
        """A new, not yet taken, lock."""

    def holder(self) -> Holder | None:
        """Who holds the lock now; None when it is free."""

    def end(self, holder: Holder) -> None:
        """Free the lock `holder` holds (raises `LockError` when that is impossible)."""


def backend_for(engine: Engine) -> Backend:
    name = engine.dialect.name
    if name == "postgresql":
        return _SessionBackend(engine, _postgres_sql())
    if name in ("mysql", "mariadb"):
        return _SessionBackend(engine, _mariadb_sql(engine.url.database or ""))
    if name == "sqlite":
        path = _sqlite_file(engine)
        return _MemoryBackend(engine) if path is None else _FileBackend(f"{path}.lock")
    raise LockError(f"cannot lock a {name} database")


@dataclass(frozen=True)
class _Sql:
    """The statements of a session lock (`take` and `give` answer 1 on success)."""

    take: str
    give: str
    session: str
    holder: str
    end: str  # ends the session `:session`
    params: dict[str, Any]


def _postgres_sql() -> _Sql:
    return _Sql(
        take="SELECT pg_try_advisory_lock(:key)",
        give="SELECT pg_advisory_unlock(:key)",
        session="SELECT pg_backend_pid()",
        holder=(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() "
            "AND l.classid::bigint = :high AND l.objid::bigint = :low AND l.objsubid = 1"
        ),
        end="SELECT pg_terminate_backend(:session)",
        params={"key": PG_KEY, "high": PG_KEY >> 32, "low": PG_KEY & 0xFFFFFFFF},
    )


def _mariadb_sql(database: str) -> _Sql:
    return _Sql(
        take="SELECT GET_LOCK(:name, 0)",
        give="SELECT RELEASE_LOCK(:name)",
        session="SELECT CONNECTION_ID()",
        holder="SELECT IS_USED_LOCK(:name)",
        end="KILL CONNECTION :session",
        params={"name": mariadb_lock_name(database)},
    )


def mariadb_lock_name(database: str) -> str:
    """The GET_LOCK name for `database`: server-wide, so it names the database (hashed when
    the name would pass MariaDB's 64 characters)."""
    name = MARIADB_PREFIX + database
    if len(name) <= MARIADB_NAME_MAX:
        return name
    digest = hashlib.sha256(database.encode()).hexdigest()
    return MARIADB_PREFIX + digest[: MARIADB_NAME_MAX - len(MARIADB_PREFIX)]


class _SessionBackend:
    """A lock held by a database session (PostgreSQL, MariaDB)."""

    def __init__(self, engine: Engine, sql: _Sql) -> None:
        self.engine, self.sql = engine, sql

    def mutex(self) -> Mutex:
        return _SessionMutex(self.engine, self.sql)

    def holder(self) -> Holder | None:
        with self.engine.connect() as conn:
            session = conn.execute(text(self.sql.holder), self.sql.params).scalar()
        return None if session is None else Holder(int(session))

    def end(self, holder: Holder) -> None:
        problem = ""
        try:
            with self.engine.connect() as conn:
                conn.execute(text(self.sql.end), {"session": holder.session})
                conn.commit()
        except SQLAlchemyError as exc:
            problem = str(exc).strip().splitlines()[0]
        deadline = time.monotonic() + (0 if problem else END_WAIT)
        while self.holder() == holder:
            if time.monotonic() >= deadline:
                reason = f": {problem}" if problem else ""
                raise LockError(f"cannot end database session {holder.session}{reason}")
            time.sleep(0.05)


class _SessionMutex:
    """The lock, taken on a connection of its own that is kept while it is held."""

    def __init__(self, engine: Engine, sql: _Sql) -> None:
        self.engine, self.sql = engine, sql
        self.conn: Connection | None = None
        self.held = False

    def _scalar(self, statement: str) -> Any:
        """One statement, committed: the connection is never left idle in a transaction."""
        if self.conn is None:
            self.conn = self.engine.connect()
        value = self.conn.execute(text(statement), self.sql.params).scalar()
        self.conn.commit()
        return value

    def acquire(self) -> bool:
        self.held = self._scalar(self.sql.take) == 1
        return self.held

    def session(self) -> int | None:
        return int(self._scalar(self.sql.session))

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if self.held:
                conn.execute(text(self.sql.give), self.sql.params)
                conn.commit()
        except SQLAlchemyError:  # the session was ended (force-unlock): so was its lock
            conn.invalidate()
        finally:
            self.held = False
            with suppress(SQLAlchemyError):
                conn.close()


def _sqlite_file(engine: Engine) -> str | None:
    """The absolute path of the SQLite database file; None for an in-memory database."""
    database = engine.url.database or ""
    if database.startswith("file:"):
        database = database.removeprefix("file:").partition("?")[0]
    if database in ("", ":memory:") or engine.url.query.get("mode") == "memory":
        return None
    return os.path.abspath(database)


class _FileBackend:
    """An OS lock (flock) on a file next to the SQLite database; the OS frees it with the
    process that held it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def mutex(self) -> Mutex:
        return _FileMutex(self.path)

    def holder(self) -> Holder | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder(None)
        finally:
            os.close(fd)  # also lets go of the shared lock the probe took
        return None

    def end(self, holder: Holder) -> None:
        """Remove the file: a hung holder keeps its lock on a file no one opens any more."""
        with suppress(FileNotFoundError):
            os.unlink(self.path)


class _FileMutex:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise LockError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if _same_file(fd, self.path):
                self.fd = fd
                return True
            os.close(fd)  # removed by force-unlock since it was opened: lock the new file

    def session(self) -> int | None:
        return None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _same_file(fd: int, path: str) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


_memory_holders: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_memory_guard = threading.Lock()


class _MemoryBackend:
    """An in-memory SQLite database is only reachable through its engine, in this process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def mutex(self) -> Mutex:
        return _MemoryMutex(self.engine)

    def holder(self) -> Holder | None:
        with _memory_guard:
            return Holder(None) if self.engine in _memory_holders else None

    def end(self, holder: Holder) -> None:
        with _memory_guard:
            _memory_holders.pop(self.engine, None)


class _MemoryMutex:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        with _memory_guard:
            if self.engine in _memory_holders:
                return False
            _memory_holders[self.engine] = self.token
            return True

    def session(self) -> int | None:
        return None

    def release(self) -> None:
        with _memory_guard:
            if _memory_holders.get(self.engine) == self.token:
                del _memory_holders[self.engine]
