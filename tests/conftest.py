"""Shared fixtures: real databases (SQLite always; PostgreSQL and MariaDB when their URLs are
set, as `.ci/run` does), a statement counter, and helpers to run the command line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from autumn_sync.cli.main import cli
from autumn_sync.database.engine import VERSION_TABLE, connect
from autumn_sync.database.schema import metadata

SERVER_URLS = {
    "postgresql": os.environ.get("AUTUMN_SYNC_TEST_POSTGRESQL_URL"),
    "mariadb": os.environ.get("AUTUMN_SYNC_TEST_MARIADB_URL"),
}
REQUIRE_SERVERS = os.environ.get("AUTUMN_SYNC_TEST_REQUIRE_SERVERS") == "1"
# One scratch database per test process, so parallel runs never share tables.
TEST_DATABASE = f"autumn_sync_test_{os.getpid()}"
_created: dict[str, str] = {}
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """With `-n`, workers steal tests from each other: the tests' durations are uneven (a few
    take seconds), and the default split leaves one worker idle at the end."""
    if getattr(config.option, "numprocesses", None) and config.option.dist == "load":
        config.option.dist = "worksteal"


def server_url(kind: str) -> str:
    """URL of this process's scratch database on the `kind` server (created on first use,
    dropped when the test session ends)."""
    if kind in _created:
        return _created[kind]
    base = SERVER_URLS[kind]
    if not base:
        if REQUIRE_SERVERS:
            pytest.fail(f"AUTUMN_SYNC_TEST_{kind.upper()}_URL is not set")
        pytest.skip(f"no {kind} server configured (set AUTUMN_SYNC_TEST_{kind.upper()}_URL)")
    _admin(base, f"CREATE DATABASE {TEST_DATABASE}")
    url = make_url(base).set(database=TEST_DATABASE).render_as_string(hide_password=False)
    _created[kind] = url
    return url


def _admin(base: str, statement: str) -> None:
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _drop_scratch_databases() -> Iterator[None]:
    yield
    for kind in list(_created):
        base = SERVER_URLS[kind]
        assert base is not None
        force = " WITH (FORCE)" if kind == "postgresql" else ""  # pooled connections linger
        _admin(base, f"DROP DATABASE IF EXISTS {TEST_DATABASE}{force}")
        del _created[kind]


# Tables of older revisions that a newer one replaced (0009: `fingerprint_plan_trials`).
REPLACED_TABLES = ("fingerprint_trials",)


def reset_database(url: str) -> None:
    """Drop every autumn-sync table (and those a test left downgraded, which newer
    migrations replace) so the next `connect` migrates from scratch."""
    engine = create_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        for table in (VERSION_TABLE, *REPLACED_TABLES):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


SERVERS = [pytest.param(kind, marks=pytest.mark.slow) for kind in ("postgresql", "mariadb")]


@pytest.fixture(params=["sqlite", *SERVERS])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each supported kind (the servers' runs are `slow`: the fast loop
    runs on SQLite)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'billing.db'}"
        return
    url = server_url(request.param)
    reset_database(url)
    yield url
    reset_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite database (for tests where the backend does not matter)."""
    return f"sqlite:///{tmp_path / 'billing.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(engine: Engine) -> Iterator[StatementCounter]:
    """Count the SQL statements `engine` executes inside the block."""
    counter = StatementCounter()

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        counter.statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", record)


def run_cli(*args: str, db: str | None = None, input: str | None = None) -> Result:
    """Run `autumn-sync ARGS` in-process, with `--database-url db` when given."""
    prefix = ["--no-color"] + (["--database-url", db] if db else [])
    return CliRunner().invoke(cli, [*prefix, *args], input=input, catch_exceptions=False)


@pytest.fixture(autouse=True)
def _no_stripe_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reach Stripe only through the emulator they start, never a key in the shell."""
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
