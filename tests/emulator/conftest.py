"""Fixtures for the emulator's tests: a running emulator and a real `stripe` client on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import make_paying_customer, make_price, make_product


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """An emulator with no latency or faults, served on an ephemeral port."""
    with Emulator(seed=7) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> stripe.StripeClient:
    """A `stripe.StripeClient` pointed at the emulator, without retries."""
    result: stripe.StripeClient = emu.client()
    return result


@pytest.fixture
def plans(client: stripe.StripeClient) -> dict[str, Any]:
    """A customer with a card; $10 and $20 monthly prices and a $100 yearly one, of one
    product."""
    product = make_product(client, "Pro")
    return {
        "customer": make_paying_customer(client, "jane@example.com"),
        "product": product,
        "basic": make_price(client, product.id, 1000),
        "pro": make_price(client, product.id, 2000),
        "yearly": make_price(client, product.id, 10000, recurring={"interval": "year"}),
    }
