"""Processes racing on the same customers and balances (PostgreSQL and MariaDB; SQLite
serialises writers anyway): get_or_create ends with one customer per id, a pre-provisioned
customer is claimed once, concurrent tracks add up, and 8 processes tracking with the same
idempotency key record it once (on SQLite too)."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from datetime import datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from sqlalchemy import func, select

from autumn_sync import Billing
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from tests.test_runtime import Clock, apply_file, stored_usage, write

pytestmark = pytest.mark.slow  # see pyproject.toml: the fast loop leaves these out

RACERS = 4
IDS = [f"racer_{n}" for n in range(25)]
NOW = datetime(2026, 1, 10, 12, 0)


def _fixed() -> datetime:
    return NOW


def _get_or_create(url: str, barrier: Barrier, queue: Any) -> None:
    billing = Billing(url, clock=_fixed)
    barrier.wait()
    outcomes = [(cid, billing.get_or_create(cid).outcome) for cid in IDS]
    claim = billing.get_or_create("acme_1", email="billing@acme.com")
    queue.put([*outcomes, ("acme_1", claim.outcome)])
    billing.close()


def _track(url: str, barrier: Barrier, queue: Any) -> None:
    billing = Billing(url, clock=_fixed)
    barrier.wait()
    for _ in range(20):
        billing.track("jane", "messages", 1)
        billing.track("acme_1", "images", 1)  # counted in credits, 4 each
    queue.put("done")
    billing.close()


def _track_once(url: str, barrier: Barrier, queue: Any) -> None:
    billing = Billing(url, clock=_fixed)
    barrier.wait()
    first = billing.track("jane", "messages", 7, idempotency_key="req-1")
    credits = billing.track("acme_1", "images", 2, idempotency_key="req-1")  # 8 credits
    queue.put((first.replayed, first.balance.usage, credits.replayed, credits.charged))
    billing.close()


def race(target: Any, url: str, racers: int = RACERS) -> list[Any]:
    """Run `target(url, barrier, queue)` in `racers` processes started together; their
    answers."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(racers)
    queue = context.Queue()
    processes = [context.Process(target=target, args=(url, barrier, queue)) for _ in range(racers)]
    for process in processes:
        process.start()
    answers: list[Any] = []
    deadline = time.monotonic() + 120
    while len(answers) < racers and time.monotonic() < deadline:
        try:
            answers.append(queue.get(timeout=1))
        except Empty:
            crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            assert not crashed, f"a racing process failed (exit codes {crashed})"
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return answers


@pytest.fixture
def applied_url(db_url: str, tmp_path: Path) -> str:
    engine = connect(db_url)
    apply_file(engine, write(tmp_path), Clock(NOW))
    engine.dispose()
    return db_url


@pytest.fixture
def server_url(applied_url: str) -> str:
    if applied_url.startswith("sqlite"):
        pytest.skip("racing processes are a test for database servers")
    return applied_url


def test_racing_get_or_create_makes_one_customer_per_id(server_url: str) -> None:
    answers = race(_get_or_create, server_url)
    outcomes = Counter(outcome for answer in answers for _, outcome in answer)
    assert outcomes == {"created": len(IDS), "claimed": 1, "found": (RACERS - 1) * (len(IDS) + 1)}
    engine = connect(server_url)
    c, cp = t.customers, t.customer_plans
    with engine.connect() as conn:
        ids = conn.execute(select(c.c.id, func.count()).group_by(c.c.id)).all()
        plans = conn.execute(
            select(cp.c.plan_id, func.count())
            .join(c, c.c.internal_id == cp.c.customer_internal_id)
            .where(c.c.id.in_(IDS))
            .group_by(cp.c.plan_id)
        ).all()
    assert sorted(ids) == sorted([("acme_1", 1), ("jane", 1), *((cid, 1) for cid in IDS)])
    assert plans == [("free", len(IDS))]
    engine.dispose()


def test_racing_tracks_add_up(server_url: str) -> None:
    engine = connect(server_url)
    Billing(engine=engine, clock=_fixed).get_or_create("acme_1", email="billing@acme.com")
    race(_track, server_url)
    assert stored_usage(engine, "jane", "messages") == RACERS * 20
    assert stored_usage(engine, "acme_1", "credits") == RACERS * 20 * 4
    engine.dispose()


def test_racing_tracks_with_the_same_idempotency_key_count_once(applied_url: str) -> None:
    engine = connect(applied_url)
    Billing(engine=engine, clock=_fixed).get_or_create("acme_1", email="billing@acme.com")
    answers = race(_track_once, applied_url, racers=8)
    # one process records each event (not necessarily the same one for both)
    assert Counter(a[0] for a in answers) == Counter(a[2] for a in answers) == {True: 7, False: 1}
    assert {(a[1], a[3]) for a in answers} == {(7, 8)}
    assert stored_usage(engine, "jane", "messages") == 7
    assert stored_usage(engine, "acme_1", "credits") == 8
    e = t.usage_events
    with engine.connect() as conn:
        rows = conn.execute(select(e.c.feature_id, e.c.idempotency_key).order_by(e.c.feature_id))
        assert rows.all() == [("images", "req-1"), ("messages", "req-1")]
    engine.dispose()
