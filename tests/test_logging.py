"""Logging (`-v`, `-vv`, `AUTUMN_SYNC_LOG`): Stripe requests with their status, duration and
retries, lock waits, journal replays and SQL statement counts on stderr; nothing without it;
never the Stripe key nor the database password."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.emulator.faults import TokenBucket
from autumn_sync.logs import Redact, configure
from autumn_sync.pipeline import apply_plan, load_desired, make_plan
from autumn_sync.stripe.executor import StripeApplyFailed
from autumn_sync.stripe.gateway import Gateway, StripeConfig, StripeFailure
from tests.conftest import EXAMPLES, run_cli

KEY = "sk_test_logging_secret_0123456789"
EXAMPLE = str(EXAMPLES / "billing.yaml")


@pytest.fixture(autouse=True)
def _logging_off() -> Iterator[None]:
    """Each test starts and ends with autumn-sync's logging as the command line leaves it
    without -v (the CLI runner's stderr is gone after each run)."""
    configure(0)
    yield
    configure(0)


def with_stripe(emu: Emulator, *args: str, db: str) -> Any:
    return run_cli("--stripe-api-key", KEY, "--stripe-api-base", emu.url, *args, db=db)


def test_verbose_shows_stripe_requests_locks_and_statements(sqlite_url: str) -> None:
    with Emulator() as emu:
        result = with_stripe(emu, "-v", "apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url)
    assert result.exit_code == 0, result.output
    log = result.stderr
    assert "INFO autumn_sync.stripe.gateway: GET /v1/products → 200 in " in log
    assert "INFO autumn_sync.stripe.gateway: POST /v1/products → 200 in " in log
    assert "INFO autumn_sync.database.lock: lock " in log and " taken for apply after " in log
    assert "read the database: 27 SQL statements in " in log
    assert "apply to the database: " in log
    assert "Idempotency-Key" not in log  # a DEBUG line
    assert "INFO" not in result.stdout  # the plan stays clean


def test_no_log_without_asking(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTUMN_SYNC_LOG", raising=False)
    with Emulator() as emu:
        result = with_stripe(emu, "plan", "-f", EXAMPLE, db=sqlite_url)
    assert result.exit_code == 0
    assert "autumn_sync." not in result.stderr


def test_the_environment_variable_and_debug(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTUMN_SYNC_LOG", "debug")
    with Emulator() as emu:
        result = with_stripe(emu, "apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url)
    assert result.exit_code == 0, result.output
    assert (
        "DEBUG autumn_sync.stripe.gateway: POST /v1/products with Idempotency-Key autumn-sync-"
        in (result.stderr)
    )


class LimitedOnce(TokenBucket):
    """A rate limit that refuses the third request only (whatever the machine's speed)."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.taken = 0
        self.counting = threading.Lock()

    def take(self) -> bool:
        with self.counting:
            self.taken += 1
            return self.taken != 3


def test_retries_are_logged(sqlite_url: str) -> None:
    with Emulator() as emu:
        emu.faults.bucket = LimitedOnce()
        result = with_stripe(emu, "-v", "apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url)
    assert result.exit_code == 0, result.output
    assert result.stderr.count(" → 429 in ") == 1
    assert "; retry in " in result.stderr


class Unreachable(Gateway):
    """A gateway whose POSTs to `/v1/products` fail as a dropped connection would, before
    Stripe sees them (the journal says "failed": the outcome is unknown)."""

    cut = True

    def post(self, path: str, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        if self.cut and path == "/v1/products":
            raise StripeFailure("connection dropped")
        return super().post(path, params, idempotency_key)


def test_a_write_an_earlier_run_left_unanswered_is_said_to_be_resent(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(1, stream=stream)
    engine = connect(f"sqlite:///{tmp_path / 'billing.db'}")
    desired = load_desired(EXAMPLE)
    with Emulator() as emu:
        gateway = Unreachable(StripeConfig(KEY, emu.url))
        with pytest.raises(StripeApplyFailed):
            apply_plan(engine, make_plan(engine, desired, gateway), gateway=gateway, workers=1)
        assert "resending" not in stream.getvalue()
        gateway.cut = False
        apply_plan(engine, make_plan(engine, desired, gateway), gateway=gateway, workers=1)
    engine.dispose()
    assert "resending a write an earlier run left without an answer (key autumn-sync-" in (
        stream.getvalue()
    )


def test_no_secret_in_any_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Stripe key and the database password, at the most verbose level, on every command
    that logs (PostgreSQL's trust authentication takes any password)."""
    from tests.conftest import server_url

    base = server_url("postgresql")
    url = make_url(base).set(password="hunter2-db-password").render_as_string(hide_password=False)
    monkeypatch.setenv("AUTUMN_SYNC_LOG", "debug")
    with Emulator() as emu:
        runs = [
            with_stripe(emu, "-vv", "apply", "-f", EXAMPLE, "--auto-approve", db=url),
            with_stripe(emu, "-vv", "plan", "-f", EXAMPLE, db=url),
            with_stripe(emu, "-vv", "drift", "-f", EXAMPLE, db=url),
        ]
    assert "DEBUG autumn_sync.stripe.gateway: POST" in runs[0].stderr
    for result in runs:
        assert "INFO autumn_sync.stripe.gateway: GET /v1/prices → 200" in result.stderr
        assert "postgres:***@127.0.0.1" in result.stderr
        for secret in (KEY, "hunter2-db-password"):
            assert secret not in result.output + result.stderr


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("using sk_test_abc123XYZ now", "using *** now"),
        ("key rk_live_ZZ9 too", "key *** too"),
        (
            "postgresql+psycopg://app:s3cr3t@db:5432/billing",
            "postgresql+psycopg://app:***@db:5432/billing",
        ),
        ("the given one: opensesame", "the given one: ***"),
    ],
)
def test_the_filter_masks_secrets(message: str, shown: str) -> None:
    record = logging.LogRecord("autumn_sync.x", logging.INFO, __file__, 1, message, None, None)
    Redact(["opensesame"]).filter(record)
    assert record.getMessage() == shown
