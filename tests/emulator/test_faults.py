"""Load and fault knobs: dropped responses, injected 500s, rate limiting, latency, seeds."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import seen


def test_dropped_response_still_did_the_work() -> None:
    with Emulator(drop_rate=1.0, seed=1) as emu:
        client = emu.client()
        with pytest.raises(stripe.APIConnectionError):
            client.v1.products.create(params={"name": "Pro"})
        assert emu.state.count("product") == 1
        assert emu.requests.entries()[-1].outcome == "dropped"
        assert emu.requests.entries()[-1].status is None
        emu.configure(drop_rate=0.0)
        assert [p.name for p in client.v1.products.list().data] == ["Pro"]


def test_retrying_a_dropped_request_with_its_key_replays_it() -> None:
    with Emulator(drop_rate=1.0, seed=1) as emu:
        client = emu.client()
        options: stripe.RequestOptions = {"idempotency_key": "create-pro"}
        with pytest.raises(stripe.APIConnectionError):
            client.v1.products.create(params={"name": "Pro"}, options=options)
        emu.configure(drop_rate=0.0)
        product = client.v1.products.create(params={"name": "Pro"}, options=options)
        assert product.last_response.headers["Idempotent-Replayed"] == "true"
        assert emu.state.count("product") == 1


def test_client_retries_after_drops_create_nothing_twice() -> None:
    with Emulator(drop_rate=1.0, seed=1) as emu:
        client = emu.client(max_network_retries=1)
        with pytest.raises(stripe.APIConnectionError):
            client.v1.customers.create(params={"email": "jane@example.com"})
        posts = [e for e in emu.requests.entries() if e.method == "POST"]
        assert len(posts) == 2
        assert len({e.idempotency_key for e in posts}) == 1
        assert emu.state.count("customer") == 1


def test_fault_answers_500_before_doing_anything() -> None:
    with Emulator(fault_rate=1.0, seed=1) as emu:
        client = emu.client()
        with pytest.raises(stripe.APIError) as caught:
            client.v1.products.create(params={"name": "Pro"})
        error = seen(caught.value)
        assert (error.status, error.type) == (500, "api_error")
        assert emu.state.count("product") == 0
        assert emu.requests.entries()[-1].outcome == "fault"
        emu.configure(fault_rate=0.0)
        assert client.v1.products.list().data == []


def test_a_fault_does_not_burn_the_idempotency_key() -> None:
    with Emulator(fault_rate=1.0, seed=1) as emu:
        client = emu.client()
        options: stripe.RequestOptions = {"idempotency_key": "k"}
        with pytest.raises(stripe.APIError):
            client.v1.products.create(params={"name": "Pro"}, options=options)
        emu.configure(fault_rate=0.0)
        product = client.v1.products.create(params={"name": "Pro"}, options=options)
        assert "Idempotent-Replayed" not in product.last_response.headers
        assert emu.state.count("product") == 1


def test_rate_limit_answers_429_and_retries_succeed() -> None:
    with Emulator(rate_limit=4, seed=1) as emu:
        client = emu.client()
        with pytest.raises(stripe.RateLimitError) as caught:
            for _ in range(50):
                client.v1.products.list()
        error = seen(caught.value)
        assert (error.status, error.code) == (429, "rate_limit")
        assert caught.value.headers is not None
        assert caught.value.headers["Stripe-Should-Retry"] == "true"
        assert emu.requests.entries()[-1].outcome == "rate_limited"

        patient = emu.client(max_network_retries=5)
        names = [patient.v1.products.create(params={"name": f"P{i}"}).name for i in range(6)]
        assert names == [f"P{i}" for i in range(6)]
        assert emu.state.count("product") == 6


def test_latency_is_added_to_every_request() -> None:
    with Emulator(latency_ms=150) as emu:
        client = emu.client()
        started = time.monotonic()
        client.v1.products.list()
        assert time.monotonic() - started >= 0.15


def test_seed_makes_ids_reproducible() -> None:
    def ids(seed: int) -> list[str]:
        with Emulator(seed=seed) as emu:
            client = emu.client()
            return [client.v1.products.create(params={"name": "P"}).id for _ in range(3)]

    assert ids(42) == ids(42)
    assert ids(42) != ids(43)


def test_knobs_are_validated() -> None:
    with pytest.raises(ValueError):
        Emulator(fault_rate=1.5)
    with pytest.raises(ValueError):
        Emulator(latency_ms=-1)


def test_concurrent_creates_are_all_kept(emu: Emulator) -> None:
    client = emu.client()

    def create(index: int) -> str:
        return str(client.v1.products.create(params={"name": f"P{index}"}).id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(40)))
    assert len(set(ids)) == 40
    assert emu.state.count("product") == 40
