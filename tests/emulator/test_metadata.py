"""Stripe's metadata limits and merge semantics, through the real `stripe` client."""

from __future__ import annotations

import pytest
import stripe

from tests.emulator.helpers import make_product, seen


def test_empty_value_deletes_a_key_and_empty_metadata_clears(client: stripe.StripeClient) -> None:
    product = make_product(client, metadata={"a": "1", "b": "2"})
    merged = client.v1.products.update(product.id, params={"metadata": {"a": "", "c": "3"}})
    assert merged.metadata.to_dict() == {"b": "2", "c": "3"}
    cleared = client.v1.products.update(product.id, params={"metadata": ""})
    assert cleared.metadata.to_dict() == {}


def test_at_most_fifty_keys(client: stripe.StripeClient) -> None:
    fifty = {f"k{i}": "v" for i in range(50)}
    product = make_product(client, metadata=fifty)
    assert len(product.metadata.to_dict()) == 50
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.update(product.id, params={"metadata": {"one_more": "v"}})
    error = seen(caught.value)
    assert (error.status, error.type) == (400, "invalid_request_error")
    assert "50" in error.message
    replaced = client.v1.products.update(product.id, params={"metadata": {"k0": "", "new": "v"}})
    assert len(replaced.metadata.to_dict()) == 50


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"k" * 41: "v"}, "40"),
        ({"k": "v" * 501}, "500"),
    ],
)
def test_key_and_value_lengths(
    client: stripe.StripeClient, metadata: dict[str, str], fragment: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_product(client, metadata=metadata)
    error = seen(caught.value)
    assert error.status == 400
    assert fragment in error.message
    assert error.param is not None and error.param.startswith("metadata[")
    assert client.v1.products.list().data == []


def test_limits_at_the_edge_are_accepted(client: stripe.StripeClient) -> None:
    product = make_product(client, metadata={"k" * 40: "v" * 500})
    assert product.metadata["k" * 40] == "v" * 500


def test_metadata_on_every_kind(client: stripe.StripeClient) -> None:
    too_long = {"k": "v" * 501}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"metadata": too_long})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.coupons.create(params={"percent_off": 5, "metadata": too_long})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(
            params={
                "product": make_product(client).id,
                "currency": "usd",
                "unit_amount": 1,
                "metadata": too_long,
            }
        )
