"""Coupons and promotion codes through the real `stripe` client."""

from __future__ import annotations

import pytest
import stripe

from tests.emulator.helpers import make_product, seen


def test_coupon_with_chosen_id(client: stripe.StripeClient) -> None:
    product = make_product(client)
    coupon = client.v1.coupons.create(
        params={
            "id": "launch20",
            "percent_off": 20,
            "duration": "repeating",
            "duration_in_months": 3,
            "name": "Launch 20%",
            "applies_to": {"products": [product.id]},
            "metadata": {"autumn_sync_address": "stripe_coupon.launch20"},
        }
    )
    assert (coupon.id, coupon.object, coupon.valid, coupon.times_redeemed) == (
        "launch20",
        "coupon",
        True,
        0,
    )
    assert (coupon.percent_off, coupon.amount_off, coupon.duration_in_months) == (20, None, 3)
    assert "applies_to" not in coupon
    expanded = client.v1.coupons.retrieve("launch20", params={"expand": ["applies_to"]})
    assert expanded.applies_to.products == [product.id]


def test_generated_id_and_amount_off(client: stripe.StripeClient) -> None:
    coupon = client.v1.coupons.create(params={"amount_off": 500, "currency": "usd"})
    assert len(coupon.id) == 8
    assert (coupon.amount_off, coupon.currency, coupon.duration) == (500, "usd", "once")


@pytest.mark.parametrize(
    "params",
    [
        {"percent_off": 20, "amount_off": 100, "currency": "usd"},
        {"amount_off": 100},
        {"percent_off": 150},
        {"percent_off": 10, "duration": "repeating"},
        {"percent_off": 10, "duration": "forever", "duration_in_months": 2},
    ],
)
def test_coupon_validation(client: stripe.StripeClient, params: dict[str, object]) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.coupons.create(params=params)  # type: ignore[arg-type]
    assert seen(caught.value).status == 400


def test_coupon_amounts_are_immutable(client: stripe.StripeClient) -> None:
    client.v1.coupons.create(params={"id": "c10", "percent_off": 10})
    for change in ({"percent_off": 50}, {"amount_off": 100}, {"duration": "forever"}):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.coupons.update("c10", params=change)  # type: ignore[arg-type]
        assert seen(caught.value).code == "parameter_unknown"
    renamed = client.v1.coupons.update("c10", params={"name": "Ten", "metadata": {"k": "v"}})
    assert (renamed.name, renamed.percent_off) == ("Ten", 10)


def test_coupon_delete_and_duplicate(client: stripe.StripeClient) -> None:
    client.v1.coupons.create(params={"id": "dup", "percent_off": 10})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.coupons.create(params={"id": "dup", "percent_off": 10})
    assert seen(caught.value).code == "resource_already_exists"
    assert client.v1.coupons.delete("dup").deleted is True
    assert client.v1.coupons.list().data == []


def test_promotion_code_uses_the_promotion_hash(client: stripe.StripeClient) -> None:
    client.v1.coupons.create(params={"id": "launch20", "percent_off": 20})
    promo = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "launch20"}, "code": "LAUNCH20"}
    )
    assert promo.id.startswith("promo_")
    assert (promo.code, promo.active, promo.object) == ("LAUNCH20", True, "promotion_code")
    assert promo.promotion.to_dict() == {"coupon": "launch20", "type": "coupon"}
    expanded = client.v1.promotion_codes.retrieve(promo.id, params={"expand": ["promotion.coupon"]})
    assert expanded.promotion.coupon.percent_off == 20

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.raw_request("post", "/v1/promotion_codes", coupon="launch20", code="OLDSTYLE")
    error = seen(caught.value)
    assert (error.code, error.param) == ("parameter_unknown", "coupon")


def test_promotion_code_rules_and_filters(client: stripe.StripeClient) -> None:
    client.v1.coupons.create(params={"id": "a", "percent_off": 10})
    client.v1.coupons.create(params={"id": "b", "percent_off": 20})
    first = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "a"}, "code": "SAVE"}
    )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.promotion_codes.create(
            params={"promotion": {"type": "coupon", "coupon": "b"}, "code": "save"}
        )
    assert seen(caught.value).param == "code"
    client.v1.promotion_codes.update(first.id, params={"active": False, "metadata": {"x": "1"}})
    second = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "b"}, "code": "SAVE"}
    )

    def ids(**params: object) -> list[str]:
        return [p.id for p in client.v1.promotion_codes.list(params=params).data]  # type: ignore[arg-type]

    assert ids(code="save") == [second.id, first.id]
    assert ids(coupon="a") == [first.id]
    assert ids(active=True) == [second.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.promotion_codes.update(first.id, params={"active": True})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.promotion_codes.create(params={"promotion": {"type": "coupon", "coupon": "zzz"}})
    assert (seen(caught.value).code, seen(caught.value).param) == (
        "resource_missing",
        "promotion[coupon]",
    )
