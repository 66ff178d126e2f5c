"""Opening the billing database and bringing its schema up to date (Alembic, on first use)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

DEFAULT_URL = "sqlite:///autumn-sync.db"
ENV_VAR = "AUTUMN_SYNC_DATABASE_URL"
VERSION_TABLE = "autumn_sync_schema_version"
_MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseError(Exception):
    """The database cannot be opened or migrated; the message is safe to print."""


def database_url(explicit: str | None = None) -> str:
    """The URL to use: the given one, else `AUTUMN_SYNC_DATABASE_URL`, else a local SQLite file."""
    return explicit or os.environ.get(ENV_VAR) or DEFAULT_URL


def open_engine(url: str) -> Engine:
    """An engine for `url` (SQLite gets foreign keys on); the URL's password never leaks."""
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise DatabaseError(f"cannot use database URL {_safe(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head_revision() -> str:
    """The newest migration this version of autumn-sync knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    """Bring the schema up to the newest migration; a no-op when it already is."""
    with engine.connect() as connection:
        current = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    if current == head_revision():
        return
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # The sqlite3 module begins a transaction only before INSERT/UPDATE/DELETE, so
            # each CREATE TABLE would commit on its own and a run killed half-way would leave
            # a half-made schema that no later run can migrate. One explicit BEGIN makes the
            # whole migration one transaction, as it is on PostgreSQL.
            connection.exec_driver_sql("BEGIN")
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def connect(url: str | None = None) -> Engine:
    """Open the database at `url` (see `database_url`) with its schema up to date."""
    resolved = database_url(url)
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
