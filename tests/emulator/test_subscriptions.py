"""Subscriptions through the real `stripe` client."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.emulator.helpers import (
    make_meter,
    make_paying_customer,
    make_price,
    make_product,
    seen,
)


@pytest.fixture
def setup(client: stripe.StripeClient) -> dict[str, Any]:
    """A customer, a licensed price and a metered price on one product."""
    product = make_product(client)
    meter = make_meter(client)
    metered = {"interval": "month", "usage_type": "metered", "meter": meter.id}
    return {
        "customer": make_paying_customer(client, "jane@example.com"),
        "base": make_price(client, product.id, 2000),
        "usage": make_price(client, product.id, 5, recurring=metered),
    }


def test_create_with_items(client: stripe.StripeClient, setup: dict[str, Any]) -> None:
    sub = client.v1.subscriptions.create(
        params={
            "customer": setup["customer"].id,
            "items": [{"price": setup["base"].id, "quantity": 3}, {"price": setup["usage"].id}],
            "metadata": {"autumn_sync_address": "stripe_subscription.user_123.pro"},
        }
    )
    assert sub.id.startswith("sub_")
    assert (sub.object, sub.status, sub.collection_method) == (
        "subscription",
        "active",
        "charge_automatically",
    )
    assert sub.customer == setup["customer"].id
    items = sub["items"].data
    assert [item.id[:3] for item in items] == ["si_", "si_"]
    assert [item.price.id for item in items] == [setup["base"].id, setup["usage"].id]
    assert [item.quantity for item in items] == [3, None]
    assert items[0].current_period_end > items[0].current_period_start
    assert sub.metadata["autumn_sync_address"] == "stripe_subscription.user_123.pro"


def test_send_invoice_trial_and_cancel_at_period_end(
    client: stripe.StripeClient, setup: dict[str, Any]
) -> None:
    sub = client.v1.subscriptions.create(
        params={
            "customer": setup["customer"].id,
            "items": [{"price": setup["base"].id}],
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "trial_period_days": 14,
            "cancel_at_period_end": True,
        }
    )
    assert (sub.collection_method, sub.days_until_due, sub.status) == (
        "send_invoice",
        30,
        "trialing",
    )
    assert sub.trial_end - sub.trial_start == 14 * 86400
    assert sub.cancel_at_period_end is True
    assert sub.cancel_at == sub["items"].data[0].current_period_end


def test_send_invoice_needs_days_until_due(
    client: stripe.StripeClient, setup: dict[str, Any]
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.create(
            params={
                "customer": setup["customer"].id,
                "items": [{"price": setup["base"].id}],
                "collection_method": "send_invoice",
            }
        )
    assert seen(caught.value).param == "days_until_due"


def test_refuses_bad_items(client: stripe.StripeClient, setup: dict[str, Any]) -> None:
    customer = setup["customer"].id
    cases = [
        ([{"price": "price_missing"}], "items[0][price]"),
        ([{"price": setup["usage"].id, "quantity": 2}], "items[0][quantity]"),
        ([{"price": setup["base"].id}, {"price": setup["base"].id}], "items"),
    ]
    for items, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.subscriptions.create(params={"customer": customer, "items": items})
        assert seen(caught.value).param == param
    client.v1.prices.update(setup["base"].id, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.create(
            params={"customer": customer, "items": [{"price": setup["base"].id}]}
        )
    assert "archived" in seen(caught.value).message
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.create(
            params={"customer": "cus_missing", "items": [{"price": setup["usage"].id}]}
        )
    assert (seen(caught.value).param, seen(caught.value).code) == ("customer", "resource_missing")


def test_update_items_and_cancel(client: stripe.StripeClient, setup: dict[str, Any]) -> None:
    sub = client.v1.subscriptions.create(
        params={"customer": setup["customer"].id, "items": [{"price": setup["base"].id}]}
    )
    item = sub["items"].data[0]
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "quantity": 5}, {"price": setup["usage"].id}],
            "proration_behavior": "none",
        },
    )
    assert [(i.price.id, i.quantity) for i in updated["items"].data] == [
        (setup["base"].id, 5),
        (setup["usage"].id, None),
    ]
    removed = client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "deleted": True}]}
    )
    assert [i.price.id for i in removed["items"].data] == [setup["usage"].id]

    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled"
    assert isinstance(canceled.canceled_at, int)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    kept = client.v1.subscriptions.update(sub.id, params={"metadata": {"note": "churned"}})
    assert kept.metadata["note"] == "churned"


def test_list_filters(client: stripe.StripeClient, setup: dict[str, Any]) -> None:
    customer = setup["customer"].id
    other = client.v1.customers.create(params={"email": "other@example.com"}).id
    first = client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": setup["base"].id}]}
    )
    second = client.v1.subscriptions.create(
        params={"customer": other, "items": [{"price": setup["usage"].id}]}
    )
    client.v1.subscriptions.cancel(second.id)

    def ids(**params: object) -> list[str]:
        return [s.id for s in client.v1.subscriptions.list(params=params).data]  # type: ignore[arg-type]

    assert ids() == [first.id]
    assert ids(status="all") == [second.id, first.id]
    assert ids(status="canceled") == [second.id]
    assert ids(customer=other, status="all") == [second.id]
    assert ids(price=setup["base"].id) == [first.id]


def test_discounts_and_expand(client: stripe.StripeClient, setup: dict[str, Any]) -> None:
    coupon = client.v1.coupons.create(
        params={"id": "launch20", "percent_off": 20, "duration": "forever"}
    )
    sub = client.v1.subscriptions.create(
        params={
            "customer": setup["customer"].id,
            "items": [{"price": setup["base"].id}],
            "discounts": [{"coupon": coupon.id}],
            "expand": ["customer", "discounts", "items.data.price.product"],
        }
    )
    assert sub.customer.email == "jane@example.com"
    assert sub.discounts[0].source.coupon == "launch20"
    assert sub["items"].data[0].price.product.name == "Pro"
    assert client.v1.coupons.retrieve("launch20").times_redeemed == 1
    cleared = client.v1.subscriptions.update(sub.id, params={"discounts": ""})
    assert cleared.discounts == []
