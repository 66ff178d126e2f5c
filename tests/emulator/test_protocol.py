"""Authentication, error shapes, idempotency keys and the request log."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import make_price, make_product, seen


def raw(emu: Emulator, path: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    """A GET sent with urllib, to control the headers exactly."""
    request = urllib.request.Request(emu.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_missing_and_invalid_keys_are_401(emu: Emulator) -> None:
    status, body = raw(emu, "/v1/products", {})
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    status, _ = raw(emu, "/v1/products", {"Authorization": "Bearer sk_test_ok"})
    assert status == 200
    with pytest.raises(stripe.AuthenticationError) as caught:
        emu.client(api_key="pk_test_not_a_secret_key").v1.products.list()
    error = seen(caught.value)
    assert error.status == 401
    assert error.message.startswith("Invalid API Key provided")


def test_only_configured_keys_are_accepted() -> None:
    with Emulator(api_keys={"sk_test_the_one"}) as emu:
        assert emu.client(api_key="sk_test_the_one").v1.products.list().data == []
        with pytest.raises(stripe.AuthenticationError):
            emu.client(api_key="sk_test_another").v1.products.list()


def test_error_shape_and_headers(emu: Emulator) -> None:
    status, body = raw(emu, "/v1/prices/price_x", {"Authorization": "Bearer sk_test_a"})
    assert status == 404
    assert body == {
        "error": {
            "type": "invalid_request_error",
            "message": "No such price: 'price_x'",
            "code": "resource_missing",
            "param": "id",
        }
    }
    status, body = raw(emu, "/v1/charges", {"Authorization": "Bearer sk_test_a"})
    assert status == 404
    assert "Unrecognized request URL (GET: /v1/charges)" in str(body)


def test_response_headers(client: stripe.StripeClient) -> None:
    product = make_product(client)
    headers = product.last_response.headers
    assert headers["Request-Id"].startswith("req_")
    assert headers["Stripe-Version"] == stripe.api_version
    assert headers["Content-Type"] == "application/json"


def test_same_key_replays_the_first_response(emu: Emulator, client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "create-pro-1"}
    first = client.v1.products.create(params={"name": "Pro"}, options=options)
    second = client.v1.products.create(params={"name": "Pro"}, options=options)
    assert second.id == first.id
    assert second.to_dict() == first.to_dict()
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert second.last_response.headers["Original-Request"] == first.last_response.request_id
    assert emu.state.count("product") == 1


def test_same_key_with_other_parameters_is_an_error(client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "k"}
    client.v1.products.create(params={"name": "Pro"}, options=options)
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.products.create(params={"name": "Team"}, options=options)
    error = seen(caught.value)
    assert (error.status, error.type) == (400, "idempotency_error")
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={"name": "Pro"}, options=options)


def test_keys_are_scoped_per_api_key(emu: Emulator) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "shared"}
    one = emu.client(api_key="sk_test_one").v1.products.create(
        params={"name": "P"}, options=options
    )
    two = emu.client(api_key="sk_test_two").v1.products.create(
        params={"name": "P"}, options=options
    )
    assert one.id != two.id


def test_rule_errors_replay_but_validation_errors_do_not(client: stripe.StripeClient) -> None:
    product = make_product(client)
    holder = make_price(client, product.id, lookup_key="pro")
    conflicting = {"product": product.id, "currency": "usd", "unit_amount": 5, "lookup_key": "pro"}
    options: stripe.RequestOptions = {"idempotency_key": "price-2"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(params=conflicting, options=options)  # type: ignore[arg-type]
    client.v1.prices.update(holder.id, params={"lookup_key": "elsewhere"})  # frees `pro`
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.create(params=conflicting, options=options)  # type: ignore[arg-type]
    assert caught.value.headers is not None
    assert caught.value.headers["Idempotent-Replayed"] == "true"

    invalid = {"product": product.id, "currency": "usd"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(params=invalid, options={"idempotency_key": "price-3"})  # type: ignore[arg-type]
    fixed = {**invalid, "unit_amount": 7}
    price = client.v1.prices.create(params=fixed, options={"idempotency_key": "price-3"})  # type: ignore[arg-type]
    assert price.unit_amount == 7


def test_keys_expire_after_a_day(emu: Emulator, client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "daily"}
    first = client.v1.products.create(params={"name": "Pro"}, options=options)
    emu.clock.advance(24 * 3600 + 1)
    second = client.v1.products.create(params={"name": "Pro"}, options=options)
    assert second.id != first.id
    assert len(emu.idempotency) == 1


def test_request_log_counts_by_template(emu: Emulator, client: stripe.StripeClient) -> None:
    product = make_product(client)
    client.v1.products.retrieve(product.id)
    client.v1.products.retrieve(product.id)
    client.v1.products.list(params={"limit": 100})
    counts = emu.requests.counts()
    assert counts[("POST", "/v1/products")] == 1
    assert counts[("GET", "/v1/products/{id}")] == 2
    assert emu.requests.count("GET", "/v1/products") == 1
    last = emu.requests.entries()[-1]
    assert (last.method, last.path, last.query, last.status, last.outcome) == (
        "GET",
        "/v1/products",
        "limit=100",
        200,
        "ok",
    )
    assert emu.requests.entries()[0].idempotency_key  # the client sends one on every POST


def test_a_request_cut_short_is_not_served(emu: Emulator) -> None:
    """A client killed while sending (headers out, body cut short) never reaches the API: no
    object is made and its idempotency key stays free, so the full request sent again with
    the same key is served as a first request (a real server waits for the whole body)."""
    host, port = emu.url.removeprefix("http://").split(":")
    body = "email=cut%40example.com&metadata[autumn_sync_address]=stripe_customer.cut&name=Cut"
    head = (
        "POST /v1/customers HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Authorization: Bearer sk_test_cut\r\n"
        "Idempotency-Key: cut-short-1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + body[:20].encode())
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1024) == b""  # closed without an answer
    client = emu.client(api_key="sk_test_cut")
    made = client.v1.customers.create(
        {
            "email": "cut@example.com",
            "metadata": {"autumn_sync_address": "stripe_customer.cut"},
            "name": "Cut",
        },
        {"idempotency_key": "cut-short-1"},
    )
    assert made.email == "cut@example.com"
    assert [c["id"] for c in emu.state.all("customer")] == [made.id]
