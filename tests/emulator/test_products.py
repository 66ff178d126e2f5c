"""Products through the real `stripe` client: CRUD, filters, delete and default-price rules."""

from __future__ import annotations

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import make_price, make_product, seen


def test_create_retrieve_update(client: stripe.StripeClient) -> None:
    product = make_product(client, "Pro", metadata={"autumn_sync_address": "stripe_product.pro"})
    assert product.id.startswith("prod_")
    assert product.object == "product"
    assert product.livemode is False
    assert product.active is True
    assert isinstance(product.created, int)
    assert product.default_price is None
    assert product.metadata.to_dict() == {"autumn_sync_address": "stripe_product.pro"}

    updated = client.v1.products.update(product.id, params={"name": "Pro plan", "active": False})
    assert (updated.name, updated.active) == ("Pro plan", False)
    fetched = client.v1.products.retrieve(product.id)
    assert fetched.name == "Pro plan"
    assert fetched.metadata.to_dict() == {"autumn_sync_address": "stripe_product.pro"}


def test_chosen_id_and_duplicate(client: stripe.StripeClient) -> None:
    make_product(client, "Pro", id="pro")
    assert client.v1.products.retrieve("pro").name == "Pro"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_product(client, "Again", id="pro")
    assert seen(caught.value).code == "resource_already_exists"


def test_missing_product_is_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.retrieve("prod_missing")
    error = seen(caught.value)
    assert (error.status, error.type, error.code, error.param) == (
        404,
        "invalid_request_error",
        "resource_missing",
        "id",
    )
    assert error.message == "No such product: 'prod_missing'"


def test_name_is_required(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.create(params={"description": "no name"})  # type: ignore[typeddict-item]
    error = seen(caught.value)
    assert (error.status, error.param, error.code) == (400, "name", "parameter_missing")


def test_delete_without_prices(client: stripe.StripeClient) -> None:
    product = make_product(client)
    answer = client.v1.products.delete(product.id)
    assert answer.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.retrieve(product.id)


def test_delete_refused_when_product_has_prices(client: stripe.StripeClient) -> None:
    product = make_product(client)
    price = make_price(client, product.id)
    client.v1.prices.update(price.id, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.delete(product.id)
    error = seen(caught.value)
    assert (error.status, error.type) == (400, "invalid_request_error")
    assert "cannot be deleted" in error.message
    assert client.v1.products.retrieve(product.id).id == product.id


def test_default_price_data_and_default_price_rules(client: stripe.StripeClient) -> None:
    product = make_product(
        client,
        default_price_data={
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        },
    )
    default = client.v1.prices.retrieve(product.default_price)
    assert (default.unit_amount, default.product) == (900, product.id)

    other = make_product(client, "Other")
    foreign = make_price(client, other.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.update(product.id, params={"default_price": foreign.id})
    assert seen(caught.value).param == "default_price"

    replacement = make_price(client, product.id, 1200)
    moved = client.v1.products.update(product.id, params={"default_price": replacement.id})
    assert moved.default_price == replacement.id
    expanded = client.v1.products.retrieve(product.id, params={"expand": ["default_price"]})
    assert expanded.default_price.unit_amount == 1200


def test_unset_default_price_then_archive(client: stripe.StripeClient) -> None:
    product = make_product(client)
    price = make_price(client, product.id)
    client.v1.products.update(product.id, params={"default_price": price.id})
    client.v1.products.update(product.id, params={"default_price": ""})
    assert client.v1.prices.update(price.id, params={"active": False}).active is False


def test_list_filters(client: stripe.StripeClient) -> None:
    first = make_product(client, "A")
    second = make_product(client, "B", active=False)
    third = make_product(client, "C")
    everything = client.v1.products.list()
    assert [p.id for p in everything.data] == [third.id, second.id, first.id]
    assert everything.url == "/v1/products"
    active = client.v1.products.list(params={"active": True})
    assert [p.id for p in active.data] == [third.id, first.id]
    by_id = client.v1.products.list(params={"ids": [first.id, second.id]})
    assert {p.id for p in by_id.data} == {first.id, second.id}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.list(params={"ids": [first.id], "starting_after": third.id})
    assert seen(caught.value).param == "ids"


def test_rename_behind_the_back(emu: Emulator, client: stripe.StripeClient) -> None:
    product = make_product(client, "Pro")
    emu.state.modify("product", product.id, name="Renamed in the dashboard")
    emu.state.set_metadata("product", product.id, "owner", "someone")
    fetched = client.v1.products.retrieve(product.id)
    assert fetched.name == "Renamed in the dashboard"
    assert fetched.metadata.to_dict() == {"owner": "someone"}
    assert emu.state.get("product", product.id)["name"] == "Renamed in the dashboard"
