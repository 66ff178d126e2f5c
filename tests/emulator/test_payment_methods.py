"""Payment methods, the payment a subscription needs, and discounts kept on update, through
the real `stripe` client."""

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

NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider "
    "adding a default payment method."
)


def test_a_test_card_attached_is_a_card_of_the_customer(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "jane@example.com"})
    method = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert method.id.startswith("pm_") and method.id != "pm_card_visa"
    assert (method.type, method.customer, method.card.brand, method.card.last4) == (
        "card",
        customer.id,
        "visa",
        "4242",
    )
    assert client.v1.payment_methods.retrieve(method.id).customer == customer.id
    settings = {"invoice_settings": {"default_payment_method": method.id}}
    updated = client.v1.customers.update(customer.id, params=settings)  # type: ignore[arg-type]
    assert updated.invoice_settings.default_payment_method == method.id

    client.v1.payment_methods.detach(method.id)
    after = client.v1.customers.retrieve(customer.id)
    assert after.invoice_settings.default_payment_method is None


def test_a_default_payment_method_must_be_attached(client: stripe.StripeClient) -> None:
    jane = client.v1.customers.create(params={"email": "jane@example.com"})
    john = make_paying_customer(client, "john@example.com")
    johns = john.invoice_settings.default_payment_method
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.update(
            jane.id,
            params={"invoice_settings": {"default_payment_method": johns}},
        )
    error = seen(caught.value)
    assert (error.status, error.param) == (400, "invoice_settings[default_payment_method]")
    assert error.message == (
        f"The customer does not have a payment method with the ID {johns}. The payment method "
        "must be attached to the customer."
    )
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_methods.attach(johns, params={"customer": jane.id})
    assert "already been attached" in seen(again.value).message


def test_a_customer_made_with_a_test_card_has_it_as_default(client: stripe.StripeClient) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    method = client.v1.payment_methods.retrieve(customer.invoice_settings.default_payment_method)
    assert (method.customer, method.card.brand) == (customer.id, "visa")


@pytest.fixture
def prices(client: stripe.StripeClient) -> dict[str, Any]:
    product = make_product(client)
    metered = {"interval": "month", "usage_type": "metered", "meter": make_meter(client).id}
    return {
        "base": make_price(client, product.id, 2000),
        "usage": make_price(client, product.id, 5, recurring=metered),
        "free": make_price(client, product.id, 0),
    }


def test_charging_automatically_needs_a_payment_method(
    client: stripe.StripeClient, prices: dict[str, Any]
) -> None:
    customer = client.v1.customers.create(params={"email": "jane@example.com"}).id

    def subscribe(price: str, **extra: Any) -> Any:
        params = {"customer": customer, "items": [{"price": prices[price].id}], **extra}
        return client.v1.subscriptions.create(params=params)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        subscribe("base")
    assert (seen(caught.value).status, seen(caught.value).message) == (400, NO_PAYMENT_METHOD)
    # Nothing is due now: allowed without one.
    assert subscribe("usage").status == "active"  # metered: billed at the end of the period
    assert subscribe("free").status == "active"
    assert subscribe("base", trial_period_days=14).status == "trialing"
    invoiced = subscribe("base", collection_method="send_invoice", days_until_due=30)
    assert invoiced.status == "active"
    assert subscribe("base", payment_behavior="default_incomplete").status == "incomplete"
    assert client.v1.subscriptions.list(params={"status": "all"}).data[0].status == "incomplete"


def test_an_update_keeps_the_discounts_it_names(
    client: stripe.StripeClient, prices: dict[str, Any]
) -> None:
    for coupon in ("launch20", "loyal10"):
        client.v1.coupons.create(params={"id": coupon, "percent_off": 10, "duration": "forever"})
    customer = make_paying_customer(client, "jane@example.com").id
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"price": prices["base"].id}],
            "discounts": [{"coupon": "launch20"}],
        }
    )
    (first,) = sub.discounts
    both = client.v1.subscriptions.update(
        sub.id, params={"discounts": [{"discount": first}, {"coupon": "loyal10"}]}
    )
    assert both.discounts[0] == first and len(both.discounts) == 2
    assert client.v1.coupons.retrieve("launch20").times_redeemed == 1  # kept, not redeemed again
    cleared = client.v1.subscriptions.update(sub.id, params={"discounts": ""})
    assert cleared.discounts == []

    other = client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": prices["usage"].id}]}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.update(other.id, params={"discounts": [{"discount": first}]})
    assert seen(caught.value).param == "discounts[0][discount]"
