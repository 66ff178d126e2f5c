"""Invoices made by subscriptions, and what they charge, through the real `stripe` client.

Every amount is worked out by hand in the test, in minor units.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import (
    advance_to,
    make_meter,
    make_paying_customer,
    make_price,
    make_product,
    seen,
    subscribe,
)


def tiered_price(client: stripe.StripeClient, product: str, mode: str) -> Any:
    """10 units included (a free first tier), then $10 a unit up to 20, then $8."""
    return client.v1.prices.create(
        params={
            "product": product,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "billing_scheme": "tiered",
            "tiers_mode": mode,
            "tiers": [
                {"up_to": 10, "unit_amount": 0},
                {"up_to": 20, "unit_amount": 1000},
                {"up_to": "inf", "unit_amount": 800},
            ],
        }
    )


@pytest.fixture
def customer(client: stripe.StripeClient) -> Any:
    return make_paying_customer(client, "jane@example.com")


def test_first_invoice_bills_the_first_period(client: stripe.StripeClient, customer: Any) -> None:
    product = make_product(client, "Seats")
    price = make_price(client, product.id, 1000)
    sub = subscribe(client, customer.id, {"price": price.id, "quantity": 3})
    invoice = sub.latest_invoice
    assert invoice.id.startswith("in_")
    assert (invoice.status, invoice.billing_reason) == ("paid", "subscription_create")
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.customer == customer.id
    # 3 seats × $10.00 = 3000
    assert (invoice.subtotal, invoice.total, invoice.amount_due, invoice.amount_paid) == (
        3000,
        3000,
        3000,
        3000,
    )
    [line] = invoice.lines.data
    item = sub["items"].data[0]
    assert (line.amount, line.currency, line.quantity) == (3000, "usd", 3)
    assert (line.period.start, line.period.end) == (
        item.current_period_start,
        item.current_period_end,
    )
    assert line.pricing.price_details.price == price.id
    assert line.parent.subscription_item_details.subscription_item == item.id
    assert line.parent.subscription_item_details.proration is False
    assert line.discount_amounts == []
    assert "Seats" in line.description

    fetched = client.v1.subscriptions.retrieve(sub.id)
    assert fetched.latest_invoice == invoice.id
    assert client.v1.invoices.retrieve(invoice.id).total == 3000


def test_invoice_list_filters(client: stripe.StripeClient, customer: Any) -> None:
    product = make_product(client)
    price = make_price(client, product.id, 500)
    other = client.v1.customers.create(params={"email": "other@example.com"})
    first = subscribe(client, customer.id, {"price": price.id})
    second = subscribe(
        client,
        other.id,
        {"price": price.id},
        collection_method="send_invoice",
        days_until_due=14,
    )

    def ids(**params: Any) -> list[str]:
        return [i.id for i in client.v1.invoices.list(params=params).data]  # type: ignore[arg-type]

    assert ids() == [second.latest_invoice.id, first.latest_invoice.id]
    assert ids(customer=customer.id) == [first.latest_invoice.id]
    assert ids(subscription=second.id) == [second.latest_invoice.id]
    assert ids(status="open") == [second.latest_invoice.id]
    assert ids(status="paid") == [first.latest_invoice.id]
    assert ids(limit=1, starting_after=second.latest_invoice.id) == [first.latest_invoice.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.list(params={"status": "lost"})  # type: ignore[typeddict-item]
    assert seen(caught.value).param == "status"


def test_send_invoice_is_open_until_due(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "ap@example.com"})
    price = make_price(client, make_product(client).id, 4900)
    sub = subscribe(
        client,
        customer.id,
        {"price": price.id},
        collection_method="send_invoice",
        days_until_due=30,
    )
    invoice = sub.latest_invoice
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("open", 4900, 0)
    assert invoice.due_date == invoice.created + 30 * 86400
    assert invoice.collection_method == "send_invoice"


def test_trial_invoice_is_free_and_metered_prices_bill_nothing_now(
    client: stripe.StripeClient, customer: Any
) -> None:
    product = make_product(client)
    base = make_price(client, product.id, 2000)
    meter = make_meter(client)
    usage = make_price(
        client,
        product.id,
        5,
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
    )
    trial = subscribe(client, customer.id, {"price": base.id}, trial_period_days=14)
    invoice = trial.latest_invoice
    assert (invoice.status, invoice.total) == ("paid", 0)
    [line] = invoice.lines.data
    assert line.amount == 0
    assert line.period.end == trial.trial_end

    metered = subscribe(client, customer.id, {"price": usage.id})
    assert metered.latest_invoice.lines.data == []
    assert metered.latest_invoice.total == 0


def test_incomplete_subscription_has_an_open_invoice(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "nocard@example.com"})
    price = make_price(client, make_product(client).id, 1500)
    sub = subscribe(client, customer.id, {"price": price.id}, payment_behavior="default_incomplete")
    assert sub.status == "incomplete"
    assert (sub.latest_invoice.status, sub.latest_invoice.amount_due) == ("open", 1500)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # 10 free + 10 × $10 + 30 × $8 = 0 + 10000 + 24000
        ("graduated", 34000),
        # all 50 units in the last tier: 50 × $8
        ("volume", 40000),
    ],
)
def test_tiered_prices(
    client: stripe.StripeClient, customer: Any, mode: str, expected: int
) -> None:
    price = tiered_price(client, make_product(client).id, mode)
    sub = subscribe(client, customer.id, {"price": price.id, "quantity": 50})
    assert sub.latest_invoice.lines.data[0].amount == expected
    assert sub.latest_invoice.total == expected


def test_tiers_with_flat_amounts_and_few_units(client: stripe.StripeClient, customer: Any) -> None:
    price = client.v1.prices.create(
        params={
            "product": make_product(client).id,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [
                {"up_to": 5, "flat_amount": 1000, "unit_amount_decimal": "0.5"},
                {"up_to": "inf", "flat_amount": 300, "unit_amount": 200},
            ],
        }
    )
    sub = subscribe(client, customer.id, {"price": price.id, "quantity": 3})
    # only the first tier is reached: $10 flat + 3 × 0.5¢ = 1001.5 → rounded half up to 1002
    assert sub.latest_invoice.total == 1002
    bigger = subscribe(
        client,
        make_paying_customer(client, "b@example.com").id,
        {
            "price": price.id,
            "quantity": 7,
        },
    )
    # 1000 + 5 × 0.5 + 300 + 2 × 200 = 1702.5 → 1703
    assert bigger.latest_invoice.total == 1703


def test_decimal_unit_amounts_round_once_per_line(
    client: stripe.StripeClient, customer: Any
) -> None:
    price = client.v1.prices.create(
        params={
            "product": make_product(client).id,
            "currency": "usd",
            "unit_amount_decimal": "12.345",
            "recurring": {"interval": "month"},
        }
    )
    sub = subscribe(client, customer.id, {"price": price.id, "quantity": 10})
    # 10 × 12.345¢ = 123.45¢ → 123
    assert sub.latest_invoice.total == 123


def test_coupon_applies_only_to_its_products(client: stripe.StripeClient, customer: Any) -> None:
    pro = make_product(client, "Pro")
    addon = make_product(client, "Add-on")
    pro_price = make_price(client, pro.id, 2000)
    addon_price = make_price(client, addon.id, 3000)
    client.v1.coupons.create(
        params={
            "id": "pro20",
            "percent_off": 20,
            "duration": "forever",
            "applies_to": {"products": [pro.id]},
        }
    )
    sub = subscribe(
        client,
        customer.id,
        {"price": pro_price.id},
        {"price": addon_price.id},
        discounts=[{"coupon": "pro20"}],
    )
    invoice = sub.latest_invoice
    pro_line, addon_line = invoice.lines.data
    discount = sub.discounts[0]
    # subtotal 2000 + 3000 = 5000; 20 % of the Pro line only: 400
    assert invoice.subtotal == 5000
    assert [(d.amount, d.discount) for d in pro_line.discount_amounts] == [(400, discount)]
    assert addon_line.discount_amounts == []
    assert [(d.amount, d.discount) for d in invoice.total_discount_amounts] == [(400, discount)]
    assert (invoice.total, invoice.amount_due) == (4600, 4600)
    assert invoice.discounts == [discount]


def test_amount_off_is_shared_in_proportion(client: stripe.StripeClient, customer: Any) -> None:
    product = make_product(client)
    small = make_price(client, product.id, 1000)
    large = make_price(client, product.id, 2000)
    client.v1.coupons.create(params={"id": "five", "amount_off": 500, "currency": "usd"})
    sub = subscribe(
        client,
        customer.id,
        {"price": small.id},
        {"price": large.id},
        discounts=[{"coupon": "five"}],
    )
    lines = sub.latest_invoice.lines.data
    # $5 off 1000 + 2000: 1000/3000 × 500 = 166.67 → 167, the rest (333) on the last line
    assert [line.discount_amounts[0].amount for line in lines] == [167, 333]
    assert sub.latest_invoice.total == 3000 - 500


def test_stacked_discounts_apply_one_after_the_other(
    client: stripe.StripeClient, customer: Any
) -> None:
    price = make_price(client, make_product(client).id, 10000)
    client.v1.coupons.create(params={"id": "half", "percent_off": 50, "duration": "forever"})
    client.v1.coupons.create(
        params={"id": "ten", "amount_off": 1000, "currency": "usd", "duration": "forever"}
    )
    sub = subscribe(
        client,
        customer.id,
        {"price": price.id},
        discounts=[{"coupon": "half"}, {"coupon": "ten"}],
    )
    # 10000 - 50 % (5000) = 5000, then - 1000 = 4000
    assert [d.amount for d in sub.latest_invoice.total_discount_amounts] == [5000, 1000]
    assert sub.latest_invoice.total == 4000


def test_renewal_after_a_repeating_coupon_ended(
    emu: Emulator, client: stripe.StripeClient, customer: Any
) -> None:
    price = make_price(client, make_product(client).id, 1000)
    client.v1.coupons.create(
        params={
            "id": "two-months",
            "percent_off": 25,
            "duration": "repeating",
            "duration_in_months": 2,
        }
    )
    sub = subscribe(client, customer.id, {"price": price.id}, discounts=[{"coupon": "two-months"}])
    # month 1: 1000 - 25 % = 750
    assert sub.latest_invoice.total == 750
    totals = []
    for _ in range(2):
        end = client.v1.subscriptions.retrieve(sub.id)["items"].data[0].current_period_end
        advance_to(emu, end)
        renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
        assert renewed.latest_invoice.billing_reason == "subscription_cycle"
        totals.append(renewed.latest_invoice.total)
    # month 2 is still within the two months (750); month 3 starts when the discount ends (1000)
    assert totals == [750, 1000]
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []
    cycles = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.billing_reason for i in cycles] == [
        "subscription_cycle",
        "subscription_cycle",
        "subscription_create",
    ]


def test_once_coupon_discounts_only_the_first_invoice(
    emu: Emulator, client: stripe.StripeClient, customer: Any
) -> None:
    price = make_price(client, make_product(client).id, 2000)
    client.v1.coupons.create(params={"id": "welcome", "amount_off": 500, "currency": "usd"})
    sub = subscribe(client, customer.id, {"price": price.id}, discounts=[{"coupon": "welcome"}])
    assert sub.latest_invoice.total == 2000 - 500
    advance_to(emu, sub["items"].data[0].current_period_end)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert renewed.latest_invoice.total == 2000
    assert renewed.discounts == []


def test_renewal_moves_periods_on_the_anchor(
    emu: Emulator, client: stripe.StripeClient, customer: Any
) -> None:
    price = make_price(client, make_product(client).id, 1200)
    sub = subscribe(client, customer.id, {"price": price.id, "quantity": 2})
    first = sub["items"].data[0]
    advance_to(emu, first.current_period_end)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    item = renewed["items"].data[0]
    assert item.current_period_start == first.current_period_end
    assert item.current_period_end > item.current_period_start
    invoice = renewed.latest_invoice
    assert invoice.created == first.current_period_end
    assert (invoice.period_start, invoice.period_end) == (
        first.current_period_start,
        first.current_period_end,
    )
    # 2 × $12.00 for the new period
    assert invoice.total == 2400
    assert invoice.lines.data[0].period.start == first.current_period_end


def test_canceling_at_period_end_makes_no_renewal(
    emu: Emulator, client: stripe.StripeClient, customer: Any
) -> None:
    price = make_price(client, make_product(client).id, 1200)
    sub = subscribe(client, customer.id, {"price": price.id})
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    advance_to(emu, sub["items"].data[0].current_period_end)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled"
    assert ended.ended_at == sub["items"].data[0].current_period_end
    assert len(client.v1.invoices.list(params={"subscription": sub.id}).data) == 1
