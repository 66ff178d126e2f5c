"""Prices through the real `stripe` client: shapes, expand of tiers, and Stripe's rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import make_meter, make_price, make_product, seen

GRADUATED = {
    "currency": "usd",
    "billing_scheme": "tiered",
    "tiers_mode": "graduated",
    "tiers": [{"up_to": 10, "unit_amount": 1000}, {"up_to": "inf", "unit_amount": 800}],
    "recurring": {"interval": "month"},
}


def test_fixed_recurring_price(client: stripe.StripeClient) -> None:
    product = make_product(client)
    price = make_price(client, product.id, 2000, nickname="Pro monthly", metadata={"k": "v"})
    assert price.id.startswith("price_")
    assert (price.object, price.livemode, price.type) == ("price", False, "recurring")
    assert (price.unit_amount, price.unit_amount_decimal) == (2000, Decimal("2000"))
    assert (price.currency, price.billing_scheme, price.nickname) == (
        "usd",
        "per_unit",
        "Pro monthly",
    )
    assert price.recurring.to_dict() == {
        "interval": "month",
        "interval_count": 1,
        "meter": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }
    assert price.product == product.id
    assert price.metadata.to_dict() == {"k": "v"}


def test_decimal_one_time_price(client: stripe.StripeClient) -> None:
    product = make_product(client)
    price = client.v1.prices.create(
        params={"product": product.id, "currency": "USD", "unit_amount_decimal": Decimal("0.05")}
    )
    assert (price.type, price.recurring, price.currency) == ("one_time", None, "usd")
    assert price.unit_amount is None
    assert price.unit_amount_decimal == Decimal("0.05")


def test_tiers_absent_unless_expanded(client: stripe.StripeClient) -> None:
    product = make_product(client)
    price = client.v1.prices.create(params={"product": product.id, **GRADUATED})  # type: ignore[typeddict-item]
    assert "tiers" not in price
    assert price.tiers_mode == "graduated"
    assert "tiers" not in client.v1.prices.retrieve(price.id)

    expanded = client.v1.prices.retrieve(price.id, params={"expand": ["tiers"]})
    assert [tier.up_to for tier in expanded.tiers] == [10, None]
    assert [tier.unit_amount for tier in expanded.tiers] == [1000, 800]

    listed = client.v1.prices.list(params={"expand": ["data.tiers"]})
    assert listed.data[0].tiers[1].unit_amount_decimal == Decimal("800")
    assert "tiers" not in client.v1.prices.list().data[0]


def test_expand_product_and_unknown_expansion(client: stripe.StripeClient) -> None:
    product = make_product(client, "Pro")
    price = make_price(client, product.id)
    expanded = client.v1.prices.retrieve(price.id, params={"expand": ["product"]})
    assert expanded.product.name == "Pro"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.retrieve(price.id, params={"expand": ["nickname"]})
    assert seen(caught.value).param == "expand"


@pytest.mark.parametrize(
    "change",
    [
        {"unit_amount": 5000},
        {"currency": "eur"},
        {"recurring": {"interval": "year"}},
        {"tiers": [{"up_to": "inf", "unit_amount": 1}]},
        {"billing_scheme": "tiered"},
    ],
)
def test_charging_terms_are_immutable(
    client: stripe.StripeClient, change: dict[str, object]
) -> None:
    price = make_price(client, make_product(client).id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.update(price.id, params=change)  # type: ignore[arg-type]
    error = seen(caught.value)
    name = next(iter(change))
    assert (error.status, error.type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "parameter_unknown",
        name,
    )
    assert error.message == f"Received unknown parameter: {name}"
    assert client.v1.prices.retrieve(price.id).unit_amount == 2000


def test_mutable_fields(client: stripe.StripeClient) -> None:
    price = make_price(client, make_product(client).id, metadata={"a": "1", "b": "2"})
    updated = client.v1.prices.update(
        price.id,
        params={"nickname": "renamed", "metadata": {"a": "", "c": "3"}, "active": False},
    )
    assert (updated.nickname, updated.active) == ("renamed", False)
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}


def test_lookup_key_unique_unless_transferred(client: stripe.StripeClient) -> None:
    product = make_product(client)
    old = make_price(client, product.id, 2000, lookup_key="pro_monthly")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_price(client, product.id, 2500, lookup_key="pro_monthly")
    error = seen(caught.value)
    assert (error.status, error.param) == (400, "lookup_key")
    assert old.id in error.message

    new = make_price(client, product.id, 2500, lookup_key="pro_monthly", transfer_lookup_key=True)
    assert new.lookup_key == "pro_monthly"
    assert client.v1.prices.retrieve(old.id).lookup_key is None
    found = client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]})
    assert [p.id for p in found.data] == [new.id]

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(old.id, params={"lookup_key": "pro_monthly"})
    moved = client.v1.prices.update(
        old.id, params={"lookup_key": "pro_monthly", "transfer_lookup_key": True}
    )
    assert moved.lookup_key == "pro_monthly"
    assert client.v1.prices.retrieve(new.id).lookup_key is None


def test_an_empty_lookup_key_is_refused_and_nothing_is_made(client: stripe.StripeClient) -> None:
    """Stripe reads an empty string as unsetting a parameter, and a lookup key can't be
    unset: a price made with `lookup_key=""` is refused, on create and on update."""
    product = make_product(client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_price(client, product.id, 2000, lookup_key="")
    assert (caught.value.code, caught.value.param) == ("parameter_invalid_empty", "lookup_key")
    assert client.v1.prices.list(params={"product": product.id}).data == []
    price = make_price(client, product.id, 2000, lookup_key="pro_monthly")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.update(price.id, params={"lookup_key": ""})
    assert caught.value.code == "parameter_invalid_empty"
    assert client.v1.prices.retrieve(price.id).lookup_key == "pro_monthly"


def test_default_price_cannot_be_archived(client: stripe.StripeClient) -> None:
    product = make_product(client)
    price = make_price(client, product.id)
    client.v1.products.update(product.id, params={"default_price": price.id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.update(price.id, params={"active": False})
    error = seen(caught.value)
    assert (error.status, error.param) == (400, "active")
    assert "default price" in error.message
    assert client.v1.prices.retrieve(price.id).active is True


def test_prices_cannot_be_deleted(client: stripe.StripeClient) -> None:
    price = make_price(client, make_product(client).id)
    assert not hasattr(client.v1.prices, "delete")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.raw_request("delete", f"/v1/prices/{price.id}")
    error = seen(caught.value)
    assert error.status == 404
    assert error.message.startswith(f"Unrecognized request URL (DELETE: /v1/prices/{price.id})")
    assert client.v1.prices.retrieve(price.id).active is True


def test_metered_price_needs_an_active_meter(client: stripe.StripeClient) -> None:
    product = make_product(client)
    metered = {"interval": "month", "usage_type": "metered"}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_price(client, product.id, 5, recurring=metered)
    error = seen(caught.value)
    assert (error.status, error.param) == (400, "recurring[meter]")

    meter = make_meter(client)
    price = make_price(client, product.id, 5, recurring={**metered, "meter": meter.id})
    assert (price.recurring.usage_type, price.recurring.meter) == ("metered", meter.id)

    client.v1.billing.meters.deactivate(meter.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_price(client, product.id, 6, recurring={**metered, "meter": meter.id})
    assert "inactive" in seen(caught.value).message


def test_tier_validation(client: stripe.StripeClient) -> None:
    product = make_product(client)
    bad_tiers = [{"up_to": 10, "unit_amount": 1}, {"up_to": 20, "unit_amount": 1}]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.create(params={"product": product.id, **GRADUATED, "tiers": bad_tiers})  # type: ignore[typeddict-item]
    assert seen(caught.value).param == "tiers[1][up_to]"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.prices.create(
            params={"product": product.id, **GRADUATED, "unit_amount": 5}  # type: ignore[typeddict-item]
        )
    assert seen(caught.value).param == "unit_amount"


def test_volume_tiers_with_flat_amounts_and_transform_quantity(client: stripe.StripeClient) -> None:
    product = make_product(client)
    volume = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "billing_scheme": "tiered",
            "tiers_mode": "volume",
            "tiers": [
                {"up_to": 5, "flat_amount": 0},
                {"up_to": "inf", "flat_amount_decimal": Decimal("99.5")},
            ],
        }
    )
    tiers = client.v1.prices.retrieve(volume.id, params={"expand": ["tiers"]}).tiers
    assert (tiers[0].flat_amount, tiers[1].flat_amount, tiers[1].flat_amount_decimal) == (
        0,
        None,
        Decimal("99.5"),
    )
    packaged = make_price(
        client, product.id, 500, transform_quantity={"divide_by": 100, "round": "up"}
    )
    assert packaged.transform_quantity.to_dict() == {"divide_by": 100, "round": "up"}


def test_list_filters(client: stripe.StripeClient) -> None:
    pro, team = make_product(client, "Pro"), make_product(client, "Team")
    monthly = make_price(client, pro.id)
    one_time = client.v1.prices.create(
        params={"product": pro.id, "currency": "usd", "unit_amount": 1}
    )
    archived = make_price(client, team.id, 3000)
    client.v1.prices.update(archived.id, params={"active": False})

    def ids(**params: object) -> list[str]:
        return [p.id for p in client.v1.prices.list(params=params).data]  # type: ignore[arg-type]

    assert ids() == [archived.id, one_time.id, monthly.id]
    assert ids(active=True) == [one_time.id, monthly.id]
    assert ids(active=False) == [archived.id]
    assert ids(product=pro.id) == [one_time.id, monthly.id]
    assert ids(type="one_time") == [one_time.id]
    assert ids(recurring={"interval": "month"}) == [archived.id, monthly.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        ids(lookup_keys=[f"k{i}" for i in range(11)])
    assert seen(caught.value).param == "lookup_keys"


def test_product_data_creates_the_product(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product_data": {"name": "Inline"}}
    )
    assert client.v1.products.retrieve(price.product).name == "Inline"


def test_changes_behind_the_back(emu: Emulator, client: stripe.StripeClient) -> None:
    price = make_price(client, make_product(client).id, lookup_key="pro", metadata={"owner": "x"})
    emu.state.modify("price", price.id, active=False, lookup_key="renamed")
    emu.state.set_metadata("price", price.id, "owner", None)
    fetched = client.v1.prices.retrieve(price.id)
    assert (fetched.active, fetched.lookup_key, fetched.metadata.to_dict()) == (
        False,
        "renamed",
        {},
    )
    assert [p.id for p in client.v1.prices.list(params={"lookup_keys": ["renamed"]}).data] == [
        price.id
    ]
    make_price(client, fetched.product, 100, lookup_key="pro")  # the old key is free again
