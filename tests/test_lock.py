"""The apply lock (`autumn_sync.database.lock`) on each database: refused at once or waited
for, freed on errors and with a killed process, forced free by `force_unlock`, and reported
by `current_lock`. Other holders are threads or, for what crosses processes (the real case),
`python -c` children that say when they hold the lock."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text

from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.database.lock import (
    LockError,
    LockHeld,
    LockInfo,
    current_lock,
    force_unlock,
    locked,
)
from autumn_sync.database.lock.backends import MARIADB_NAME_MAX, MARIADB_PREFIX, mariadb_lock_name
from tests.conftest import reset_database

# Takes the lock as OPERATION, says so, holds it until a line comes on stdin (or it is
# killed), then says it let go.
HOLD = """
import sys
from autumn_sync.database.engine import connect
from autumn_sync.database.lock import locked

engine = connect(sys.argv[1])
with locked(engine, sys.argv[2]) as info:
    print("locked", info.lock_id, flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@dataclass
class Holder:
    """A child process holding the lock."""

    process: subprocess.Popen[str]
    lock_id: str

    def finish(self) -> str:
        """Let the child leave its `with` block; what it printed after."""
        out, _ = self.process.communicate("\n", timeout=30)
        return out

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@contextmanager
def holding(url: str, operation: str = "apply") -> Iterator[Holder]:
    """A child process that holds the lock of the database at `url` (it is there once this
    yields: the child has printed its "locked" line)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, operation],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        words = process.stdout.readline().split()
        assert words[:1] == ["locked"], words
        yield Holder(process, words[1])
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def rows(engine: Engine) -> list[str]:
    """The lock ids in the description table."""
    with engine.connect() as conn:
        return list(conn.execute(select(t.apply_lock.c.lock_id)).scalars())


def this_process() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --- one run at a time ------------------------------------------------------------------


def test_a_second_run_is_refused_at_once_with_who_holds_the_lock(engine: Engine) -> None:
    waits: list[LockInfo | None] = []
    with locked(engine, "apply") as first:
        with pytest.raises(LockHeld) as refused, locked(engine, "plan", on_wait=waits.append):
            pytest.fail("the lock was taken twice")
        assert current_lock(engine) == first
    assert waits == []
    assert refused.value.info == first
    assert first.holder == this_process()
    assert first.operation == "apply"
    assert abs(first.since - utc_now()) < timedelta(minutes=1)
    assert str(refused.value) == (
        f"the billing database is locked by {this_process()} (apply) since "
        f"{first.since:%Y-%m-%d %H:%M:%S} UTC, lock id {first.lock_id}. Wait for it "
        "(--lock-timeout SECONDS), or if that run is gone: "
        f"autumn-sync force-unlock {first.lock_id}"
    )
    assert current_lock(engine) is None
    assert rows(engine) == []


@pytest.mark.slow
def test_a_lock_held_by_another_process_is_refused_and_named(db_url: str, engine: Engine) -> None:
    with holding(db_url, "plan") as holder:
        with pytest.raises(LockHeld) as refused, locked(engine, "apply"):
            pytest.fail("the lock was taken twice")
        info = refused.value.info
        assert info is not None
        assert info.lock_id == holder.lock_id
        assert info.holder.endswith(f" pid {holder.process.pid}")
        assert info.operation == "plan"
        assert current_lock(engine) == info
        assert holder.finish() == "released\n"
    assert holder.process.returncode == 0
    assert current_lock(engine) is None


@pytest.mark.slow
def test_waiting_takes_the_lock_when_the_holder_lets_go(engine: Engine) -> None:
    """A thread holds the lock and lets go a second after the waiter starts waiting."""
    taken, release = threading.Event(), threading.Event()
    held: list[LockInfo] = []

    def hold() -> None:
        with locked(engine, "apply") as info:
            held.append(info)
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(30)
    waits: list[LockInfo | None] = []

    def waiting(info: LockInfo | None) -> None:
        waits.append(info)
        threading.Timer(1.0, release.set).start()

    start = time.monotonic()
    with locked(engine, "apply", timeout=30, on_wait=waiting, poll=0.05) as mine:
        waited = time.monotonic() - start
        assert current_lock(engine) == mine
    thread.join(30)
    assert waits == held  # once, naming the holder
    assert mine.lock_id != held[0].lock_id
    assert 1.0 <= waited < 20


@pytest.mark.slow
def test_waiting_ends_in_a_refusal_when_the_timeout_passes(db_url: str, engine: Engine) -> None:
    waits: list[LockInfo | None] = []
    with holding(db_url) as holder:
        start = time.monotonic()
        with (
            pytest.raises(LockHeld) as refused,
            locked(engine, "apply", timeout=0.6, on_wait=waits.append, poll=0.1),
        ):
            pytest.fail("the lock was taken twice")
        waited = time.monotonic() - start
    assert 0.6 <= waited < 10
    assert refused.value.info is not None
    assert refused.value.info.lock_id == holder.lock_id
    assert waits == [refused.value.info]


def test_the_lock_is_released_when_the_block_raises(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), locked(engine, "apply"):
        assert len(rows(engine)) == 1
        raise RuntimeError("boom")
    assert current_lock(engine) is None
    assert rows(engine) == []
    with locked(engine, "apply") as again:
        assert rows(engine) == [again.lock_id]


def test_the_holder_can_write_while_holding_the_lock(engine: Engine) -> None:
    """The description row is committed before the block: the holder's own transactions
    (apply's) do not wait on it, and the lock's connection is not idle in a transaction."""
    with locked(engine, "apply") as info:
        with engine.begin() as conn:
            conn.execute(insert(t.settings).values(key="currency", value="usd"))
            conn.execute(t.apply_lock.update().values(operation="apply!"))
        assert current_lock(engine) == LockInfo(info.lock_id, info.holder, "apply!", info.since)
        with engine.connect() as conn:
            session = conn.execute(select(t.apply_lock.c.session_id)).scalar_one()
            assert open_transactions(conn, session) == 0
    with engine.connect() as conn:
        assert conn.execute(select(t.settings.c.value)).scalars().all() == ["usd"]


def open_transactions(conn: object, session: int | None) -> int:
    """How many open transactions the database session `session` has (SQLite: none, the
    lock holds no connection)."""
    assert hasattr(conn, "execute")
    dialect = conn.dialect.name  # type: ignore[attr-defined]
    if dialect == "sqlite":
        assert session is None
        return 0
    query = {
        "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE pid = :s "
        "AND state LIKE 'idle in transaction%'",
        "mysql": "SELECT count(*) FROM information_schema.innodb_trx "
        "WHERE trx_mysql_thread_id = :s",
    }[dialect]
    return int(conn.execute(text(query), {"s": session}).scalar_one())


# --- runs that die, and force-unlock ------------------------------------------------------


@pytest.mark.slow
def test_a_killed_holder_loses_the_lock(db_url: str, engine: Engine) -> None:
    with holding(db_url) as holder:
        assert current_lock(engine) is not None
        assert rows(engine) == [holder.lock_id]
        holder.kill()
    # The database notices the closed connection (the OS closes the file) a moment later.
    with locked(engine, "apply", timeout=10, poll=0.05) as mine:
        assert rows(engine) == [mine.lock_id]  # the dead run's row is overwritten
        assert current_lock(engine) == mine
    assert current_lock(engine) is None


def test_a_row_left_behind_is_not_a_lock(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(t.apply_lock).values(
                lock_id="deadbeef",
                holder="ci@runner pid 7",
                operation="apply",
                since=datetime(2026, 1, 2, 3, 4, 5),
            )
        )
    assert current_lock(engine) is None
    with pytest.raises(LockError, match=r"^the billing database is not locked$"):
        force_unlock(engine, "deadbeef")
    with locked(engine, "apply") as mine:
        assert rows(engine) == [mine.lock_id]


def test_force_unlock_refuses_another_lock_id(db_url: str, engine: Engine) -> None:
    with holding(db_url) as holder:
        info = current_lock(engine)
        assert info is not None
        with pytest.raises(LockError) as refused:
            force_unlock(engine, "0badc0de")
        assert str(refused.value) == (
            f"no lock with id 0badc0de; the current lock is {holder.lock_id} held by "
            f"{info.holder} (apply) since {info.since:%Y-%m-%d %H:%M:%S} UTC"
        )
        assert current_lock(engine) == info
        with pytest.raises(LockHeld), locked(engine, "apply"):
            pytest.fail("the lock was taken twice")


@pytest.mark.slow
def test_force_unlock_frees_the_lock_of_a_hung_process(db_url: str, engine: Engine) -> None:
    """The child still runs (hung); once its lock is forced, a new run takes the lock at once,
    and the child finishing later takes neither that lock nor its description away."""
    with holding(db_url) as holder:
        released = force_unlock(engine, holder.lock_id)
        assert released.lock_id == holder.lock_id
        assert released.holder.endswith(f" pid {holder.process.pid}")
        with locked(engine, "apply") as mine:
            assert holder.finish() == "released\n"
            assert holder.process.returncode == 0
            assert current_lock(engine) == mine
            assert rows(engine) == [mine.lock_id]
            with pytest.raises(LockHeld), locked(engine, "plan"):
                pytest.fail("the lock was taken twice")
    assert current_lock(engine) is None


def test_force_unlock_without_a_lock(engine: Engine) -> None:
    with pytest.raises(LockError, match=r"^the billing database is not locked$"):
        force_unlock(engine, "0badc0de")


# --- where the lock lives ----------------------------------------------------------------


def test_a_sqlite_lock_is_a_file_next_to_the_database(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'billing.db'}")
    with locked(engine, "apply"):
        assert sorted(p.name for p in tmp_path.iterdir()) == ["billing.db", "billing.db.lock"]
    engine.dispose()


def test_an_in_memory_database_is_locked_within_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine, other = connect("sqlite://"), connect("sqlite://")
    with locked(engine, "apply") as info:
        with pytest.raises(LockHeld), locked(engine, "plan"):
            pytest.fail("the lock was taken twice")
        with locked(other, "apply"):  # another in-memory database
            assert current_lock(engine) == info
    assert current_lock(engine) is None
    assert list(tmp_path.iterdir()) == []
    engine.dispose()
    other.dispose()


def test_mariadb_lock_names_name_the_database_within_64_characters() -> None:
    assert mariadb_lock_name("billing") == "autumn_sync_apply.billing"
    long_a, long_b = mariadb_lock_name("a" * 64), mariadb_lock_name("a" * 63 + "b")
    assert len(long_a) == len(long_b) == MARIADB_NAME_MAX
    assert long_a.startswith(MARIADB_PREFIX)
    assert long_a != long_b


MIGRATE = """
import sys
from autumn_sync.database.engine import connect
print("ready", flush=True)
sys.stdin.readline()
connect(sys.argv[1]).dispose()
print("migrated", flush=True)
"""


@pytest.mark.slow
def test_runs_starting_at_once_on_a_new_database_migrate_it_once(db_url: str) -> None:
    """Six first runs at once, three times over (the apply lock is taken only once the schema
    exists): one migrates, the others wait for it and find the schema up to date."""
    for _ in range(3):
        if db_url.startswith("sqlite"):
            Path(db_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        else:
            reset_database(db_url)
        _migrate_at_once(db_url, 6)


def _migrate_at_once(db_url: str, count: int) -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for run in runs:
        assert run.stdout is not None and run.stdout.readline() == "ready\n"
    for run in runs:  # released together
        assert run.stdin is not None
        run.stdin.write("go\n")
        run.stdin.flush()
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * count, [err for _, err in results]
    assert all(out == "migrated\n" for out, _ in results)
