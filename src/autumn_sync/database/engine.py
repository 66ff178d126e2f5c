"""Opening the billing database and bringing its schema up to date (Alembic, on first use)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from autumn_sync.database.schema import metadata

log = logging.getLogger(__name__)
DEFAULT_URL = "sqlite:///autumn-sync.db"
ENV_VAR = "AUTUMN_SYNC_DATABASE_URL"
VERSION_TABLE = "autumn_sync_schema_version"
_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATING_KEY = int.from_bytes(b"autumnmg", "big")  # PostgreSQL advisory key while migrating
_MIGRATING = "autumn_sync_migrate"  # + the database: MariaDB's lock name while migrating


class DatabaseError(Exception):
    """The database cannot be opened or migrated; the message is safe to print."""


NAME_IT = f"name the billing database with --database-url or {ENV_VAR}"


def database_url(explicit: str | None = None, stripe_connected: bool = False) -> str:
    """The URL to use: the given one, else `AUTUMN_SYNC_DATABASE_URL`, else the local SQLite
    file `autumn-sync.db`, which only a run without Stripe may fall back to (a run with a
    Stripe key against a new, empty database would plan to re-make the live catalog). An
    empty URL is refused, never taken for "unset"."""
    named = explicit if explicit is not None else os.environ.get(ENV_VAR)
    if named is not None and not named.strip():
        where = "--database-url" if explicit is not None else ENV_VAR
        raise DatabaseError(f"the database URL is empty ({where}=''): {NAME_IT}.")
    if named is not None:
        return with_driver(named.strip())
    if stripe_connected:
        raise DatabaseError(
            "a Stripe key is set but no billing database is named: "
            f"{NAME_IT} (the local {DEFAULT_URL} is used only without Stripe)."
        )
    return DEFAULT_URL


# A URL that names no driver gets the one autumn-sync installs (`postgres://` is Heroku's
# and libpq's spelling of `postgresql://`).
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
# What to install when a driver's module is missing, by the URL's driver.
_INSTALL = {
    "psycopg": "pip install 'autumn-sync[postgresql]' (psycopg)",
    "psycopg2": "pip install psycopg2-binary, or use postgresql+psycopg:// "
    "with pip install 'autumn-sync[postgresql]'",
    "pymysql": "pip install 'autumn-sync[mysql]' (PyMySQL)",
    "mysqldb": "pip install mysqlclient, or use mysql+pymysql:// "
    "with pip install 'autumn-sync[mysql]'",
}


def with_driver(url: str) -> str:
    """`url` with autumn-sync's driver when it names none (`postgres://`, `postgresql://`,
    `mysql://`, `mariadb://`); any other URL as it is."""
    scheme, separator, rest = url.partition("://")
    driver = _DRIVERS.get(scheme.lower()) if separator else None
    return f"{driver}://{rest}" if driver else url


def open_engine(url: str) -> Engine:
    """An engine for `url` (SQLite gets foreign keys on); the URL's password never leaks."""
    url = with_driver(url)
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        raise DatabaseError(_missing_driver(url, exc)) from None
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(f"cannot use database URL {_safe(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _missing_driver(url: str, exc: ImportError) -> str:
    """The message for a database driver that is not installed: what to install."""
    try:
        driver = make_url(url).get_driver_name()
    except ArgumentError:
        driver = ""
    module = exc.name or driver
    install = _INSTALL.get(driver, f"install the Python package that provides {module!r}")
    return f"the database driver {module} for {_safe(url)} is not installed: {install}."


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def database_identity(url: str | None = None) -> str:
    """A digest naming the database at `url` (see `database_url`) without its password: a
    saved plan remembers it, so that it is not applied to another database."""
    resolved = database_url(url)
    try:
        named = make_url(resolved).set(password=None).render_as_string(hide_password=False)
    except ArgumentError:
        named = resolved
    return hashlib.sha256(named.encode()).hexdigest()[:16]


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL (None for another database or an in-memory one)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def url_secrets(url: str | None = None) -> list[str]:
    """The password in the database URL (`url`, else `AUTUMN_SYNC_DATABASE_URL`), to keep
    out of logs."""
    named = url if url is not None else os.environ.get(ENV_VAR)
    if not named:
        return []
    try:
        password = make_url(named).password
    except ArgumentError:
        return []
    return [str(password)] if password else []


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["version_table"] = VERSION_TABLE
    return config


_SCRIPT_LOCK = threading.Lock()


@cache
def _script() -> ScriptDirectory:
    """The migrations, read once per process (reading them again at every connection took
    most of the time of opening a database)."""
    with _SCRIPT_LOCK:
        script = ScriptDirectory.from_config(_config())
        script.get_current_head()  # loads every revision now, under the lock
        return script


def head_revision() -> str:
    """The newest migration this version of autumn-sync knows."""
    head = _script().get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, replay: bool = False) -> None:
    """Bring the schema up to the newest migration; a no-op when it already is. An empty
    database gets the newest tables at once, stamped with the newest migration (as Alembic
    advises; `replay` runs every migration instead, for the tests that compare the two).
    Runs that start at once on a new database migrate it once: the others wait for the
    first and then find the schema up to date."""
    with engine.connect() as connection:
        if _revision(connection) == head_revision():
            return
    with engine.connect() as connection, _migrating(connection), connection.begin():
        _exclusive(connection)
        if _revision(connection) == head_revision():
            return
        if not replay and _empty(connection):
            log.info("creating the tables at %s", head_revision())
            metadata.create_all(connection)
            _context(connection).stamp(_script(), "head")
            return
        log.info("migrating the database to %s", head_revision())
        _upgrade_to_head(connection)


def _empty(connection: Connection) -> bool:
    """Whether the database holds none of autumn-sync's tables (nor its version table)."""
    names = set(inspect(connection).get_table_names())
    return not names & {*metadata.tables, VERSION_TABLE}


def _upgrade_to_head(connection: Connection) -> None:
    """What `alembic upgrade head` does, with the migrations read once (`_script`): the
    environment (`migrations/env.py`) runs them on `connection`."""
    config = _config()
    config.attributes["connection"] = connection
    script = _script()

    def steps(revision: Any, _context: MigrationContext) -> Any:
        return script._upgrade_revs("head", revision)

    with EnvironmentContext(config, script, fn=steps, destination_rev="head"):
        script.run_env()


def _context(connection: Connection) -> MigrationContext:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})


def _revision(connection: Connection) -> str | None:
    return _context(connection).get_current_revision()


@contextmanager
def _migrating(connection: Connection) -> Iterator[None]:
    """On MariaDB/MySQL (whose DDL does not wait on transactions), a named lock held around
    the whole migration, released only once it is committed."""
    if connection.dialect.name not in ("mysql", "mariadb"):
        yield
        return
    database = connection.execute(text("SELECT DATABASE()")).scalar_one()
    name = f"{_MIGRATING}.{database}"[:64]
    taken = connection.execute(text("SELECT GET_LOCK(:name, 120)"), {"name": name}).scalar()
    connection.commit()
    if taken != 1:
        raise DatabaseError(f"another run has been migrating {database} for 2 minutes")
    try:
        yield
    finally:
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        connection.commit()


def _exclusive(connection: Connection) -> None:
    """Make this migration the only one on the database until it commits (SQLite and
    PostgreSQL; MariaDB has `_migrating`)."""
    if connection.dialect.name == "sqlite":
        # The sqlite3 module begins a transaction only before INSERT/UPDATE/DELETE, so each
        # CREATE TABLE would commit on its own and a run killed half-way would leave a
        # half-made schema that no later run can migrate. One explicit BEGIN makes the whole
        # migration one transaction, as it is on PostgreSQL; IMMEDIATE takes the write lock
        # now, so a second run waits here (the driver's busy timeout) and re-reads.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATING_KEY})


def connect(url: str | None = None) -> Engine:
    """Open the database at `url` (see `database_url`) with its schema up to date."""
    resolved = database_url(url)
    log.info("database %s", _safe(resolved))
    engine = open_engine(resolved)
    try:
        upgrade(engine)
    except Exception as exc:
        if isinstance(exc, DatabaseError):
            raise
        raise DatabaseError(f"cannot open database {_safe(resolved)}: {_first_line(exc)}") from None
    return engine


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@contextmanager
def statements_logged(engine: Engine, what: str) -> Iterator[None]:
    """Log (at INFO) how many SQL statements `engine` ran during the block, and how long it
    took, as `what: N SQL statements in T s`."""
    if not log.isEnabledFor(logging.INFO):
        yield
        return
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counted)
    started = time.monotonic()
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", counted)
        log.info("%s: %d SQL statements in %.2f s", what, count, time.monotonic() - started)
