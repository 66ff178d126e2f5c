"""Redeeming promotion codes and coupons on subscriptions, refused as Stripe refuses them."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import (
    make_paying_customer,
    make_price,
    make_product,
    seen,
    subscribe,
)

DAY = 86400


@pytest.fixture
def price(client: stripe.StripeClient) -> Any:
    return make_price(client, make_product(client, "Pro").id, 5000)


@pytest.fixture
def coupon(client: stripe.StripeClient) -> Any:
    return client.v1.coupons.create(params={"id": "save10", "percent_off": 10})


def promo(client: stripe.StripeClient, **params: Any) -> Any:
    return client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "save10"}, **params}
    )


def redeem(client: stripe.StripeClient, customer: str, price: str, code: str) -> Any:
    return subscribe(client, customer, {"price": price}, discounts=[{"promotion_code": code}])


def refusal(client: stripe.StripeClient, customer: str, price: str, code: str) -> str:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        redeem(client, customer, price, code)
    error = seen(caught.value)
    assert error.param == "discounts[0][promotion_code]"
    return error.message


def test_a_promotion_code_discounts_and_counts(
    client: stripe.StripeClient, price: Any, coupon: Any
) -> None:
    code = promo(client, code="TENOFF", max_redemptions=2)
    customer = make_paying_customer(client, "a@example.com")
    sub = redeem(client, customer.id, price.id, code.id)
    # $50 less 10 %: 5000 - 500
    assert sub.latest_invoice.total == 4500
    assert client.v1.promotion_codes.retrieve(code.id).times_redeemed == 1
    assert client.v1.coupons.retrieve("save10").times_redeemed == 1
    redeem(client, make_paying_customer(client, "b@example.com").id, price.id, code.id)
    exhausted = refusal(client, make_paying_customer(client, "c@example.com").id, price.id, code.id)
    assert "maximum" in exhausted


def test_expired_and_inactive_codes(
    emu: Emulator, client: stripe.StripeClient, price: Any, coupon: Any
) -> None:
    customer = make_paying_customer(client, "a@example.com")
    soon = promo(client, code="SOON", expires_at=emu.clock.now() + DAY)
    off = promo(client, code="OFF", active=False)
    assert "inactive" in refusal(client, customer.id, price.id, off.id)
    emu.clock.advance(2 * DAY)
    assert "expired" in refusal(client, customer.id, price.id, soon.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        promo(client, code="PAST", expires_at=emu.clock.now() - 10)
    assert seen(caught.value).param == "expires_at"


def test_first_time_transaction(client: stripe.StripeClient, price: Any, coupon: Any) -> None:
    code = promo(client, code="WELCOME", restrictions={"first_time_transaction": True})
    assert code.restrictions.first_time_transaction is True
    returning = make_paying_customer(client, "returning@example.com")
    subscribe(client, returning.id, {"price": price.id})  # a paid $50 invoice
    assert "never paid" in refusal(client, returning.id, price.id, code.id)
    newcomer = make_paying_customer(client, "new@example.com")
    assert redeem(client, newcomer.id, price.id, code.id).latest_invoice.total == 4500


def test_code_for_one_customer(client: stripe.StripeClient, price: Any, coupon: Any) -> None:
    owner = make_paying_customer(client, "owner@example.com")
    code = promo(client, code="MINE", customer=owner.id)
    other = make_paying_customer(client, "other@example.com")
    assert "another customer" in refusal(client, other.id, price.id, code.id)
    assert redeem(client, owner.id, price.id, code.id).latest_invoice.total == 4500


def test_exhausted_or_expired_coupon(
    emu: Emulator, client: stripe.StripeClient, price: Any
) -> None:
    client.v1.coupons.create(params={"id": "once", "percent_off": 50, "max_redemptions": 1})
    client.v1.coupons.create(
        params={"id": "late", "percent_off": 50, "redeem_by": emu.clock.now() + DAY}
    )
    first = make_paying_customer(client, "a@example.com")
    subscribe(client, first.id, {"price": price.id}, discounts=[{"coupon": "once"}])
    assert client.v1.coupons.retrieve("once").valid is False
    second = make_paying_customer(client, "b@example.com")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        subscribe(client, second.id, {"price": price.id}, discounts=[{"coupon": "once"}])
    assert (seen(caught.value).code, seen(caught.value).param) == (
        "coupon_expired",
        "discounts[0][coupon]",
    )
    emu.clock.advance(2 * DAY)
    assert client.v1.coupons.retrieve("late").valid is False
    with pytest.raises(stripe.InvalidRequestError):
        subscribe(client, second.id, {"price": price.id}, discounts=[{"coupon": "late"}])
