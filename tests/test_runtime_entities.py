"""Entities at run time, found wrong once and fixed (the customer Ann of
`test_runtime_breakdown`: 3 seats of Team, two entities of seats, eu and us)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autumn_sync import Billing
from autumn_sync.runtime.errors import InvalidRequest
from tests.test_runtime_breakdown import FILE, applied


@pytest.fixture
def billing(db_url: str, tmp_path: Path) -> Iterator[Billing]:
    with applied(db_url, tmp_path, FILE) as app:
        yield app


def test_a_track_of_seats_counts_the_seats_entities_take(billing: Billing) -> None:
    track = billing.track("ann", "seats", 2)  # 3 included, 2 taken by eu and us: 1 left
    assert (track.recorded, track.dropped, track.balance.usage) == (1, 1, 3)


def test_an_entity_sees_its_customers_seats_as_the_customer_does(billing: Billing) -> None:
    seats = billing.check("ann", "seats", entity_id="eu").balance
    assert (seats.limit, seats.usage, seats.balance) == (3, 2, 1)


def test_an_idempotency_key_used_for_another_entity_is_refused(billing: Billing) -> None:
    billing.track("ann", "messages", 5, idempotency_key="k", entity_id="eu")
    with pytest.raises(InvalidRequest, match="was used for another event"):
        billing.track("ann", "messages", 5, idempotency_key="k", entity_id="us")
