"""Fixtures for the emulator's tests: a running emulator and a real `stripe` client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from autumn_sync.emulator import Emulator


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
