"""Metered prices bill the usage their meters recorded, through the real `stripe` client: in
arrears at each renewal, and so far in the preview of the next invoice. Amounts by hand."""

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

DAY = 86400


@pytest.fixture
def plan(client: stripe.StripeClient) -> dict[str, Any]:
    """Pro at $20 a month, and its messages as autumn-sync maps `included: 1000` with
    `price: {amount: 5, per: 100, billing: pay_per_use}`: a sum meter and a metered price
    whose first 1000 units are free, then 5 cents a unit (graduated tiers)."""
    meter = make_meter(client, "messages")
    product = make_product(client, "Pro")
    usage_product = make_product(client, "Pro – Messages")
    usage = client.v1.prices.create(
        params={
            "product": usage_product.id,
            "currency": "usd",
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [
                {"up_to": 1000, "unit_amount_decimal": "0"},
                {"up_to": "inf", "unit_amount_decimal": "5"},
            ],
        }
    )
    return {
        "customer": make_paying_customer(client, "jane@example.com"),
        "meter": meter,
        "base": make_price(client, product.id, 2000),
        "usage": usage,
    }


def report(client: stripe.StripeClient, customer: str, value: int, **extra: Any) -> Any:
    payload = {"stripe_customer_id": customer, "value": str(value)}
    params = {"event_name": "messages", "payload": payload, **extra}
    return client.v1.billing.meter_events.create(params=params)


def preview(client: stripe.StripeClient, sub: str) -> Any:
    return client.v1.invoices.create_preview(params={"subscription": sub})


def line_of(invoice: Any, price: Any) -> Any:
    (line,) = [x for x in invoice.lines.data if x.pricing.price_details.price == price.id]
    return line


def renewed(client: stripe.StripeClient, sub: Any) -> Any:
    return client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})


def test_usage_is_previewed_and_billed_at_renewal_through_the_tiers(
    client: stripe.StripeClient, emu: Emulator, plan: dict[str, Any]
) -> None:
    customer, usage = plan["customer"], plan["usage"]
    report(client, customer.id, 50, timestamp=emu.clock.now() - DAY)  # before the subscription
    sub = subscribe(client, customer.id, {"price": plan["base"].id}, {"price": usage.id})
    assert sub.latest_invoice.total == 2000  # metered usage is billed in arrears
    item = next(i for i in sub["items"].data if i.price.id == usage.id)
    period = (item.current_period_start, item.current_period_end)

    report(client, customer.id, 800, identifier="jane:messages:1")
    report(client, customer.id, 500, identifier="jane:messages:2")
    with pytest.raises(stripe.InvalidRequestError) as caught:  # a retry: counted once
        report(client, customer.id, 500, identifier="jane:messages:2")
    assert "already exists" in seen(caught.value).message

    # 1300 messages: 1000 free, 300 × 5 = 1500
    upcoming = preview(client, sub.id)
    line = line_of(upcoming, usage)
    assert (line.quantity, line.amount) == (1300, 1500)
    assert (line.period.start, line.period.end) == period
    assert upcoming.total == 2000 + 1500

    advance_to(emu, period[1])
    report(client, customer.id, 100)  # in the next period
    invoice = renewed(client, sub).latest_invoice
    assert invoice.billing_reason == "subscription_cycle"
    line = line_of(invoice, usage)
    assert (line.quantity, line.amount) == (1300, 1500)
    assert (line.period.start, line.period.end) == period
    assert line_of(invoice, plan["base"]).amount == 2000
    assert (invoice.total, invoice.status) == (3500, "paid")

    # the next period has 100 messages so far, within the free 1000
    line = line_of(preview(client, sub.id), usage)
    assert (line.quantity, line.amount) == (100, 0)


def test_a_per_unit_price_bills_transformed_usage(
    client: stripe.StripeClient, emu: Emulator, plan: dict[str, Any]
) -> None:
    packages = client.v1.prices.create(
        params={
            "product": make_product(client, "Pro – Messages by the hundred").id,
            "currency": "usd",
            "unit_amount": 500,
            "transform_quantity": {"divide_by": 100, "round": "up"},
            "recurring": {"interval": "month", "usage_type": "metered", "meter": plan["meter"].id},
        }
    )
    sub = subscribe(client, plan["customer"].id, {"price": packages.id})
    report(client, plan["customer"].id, 1301)
    # 1301 messages: 14 hundreds (rounded up) × $5.00
    assert line_of(preview(client, sub.id), packages).amount == 7000


def test_a_negative_total_bills_nothing(
    client: stripe.StripeClient, emu: Emulator, plan: dict[str, Any]
) -> None:
    customer, usage = plan["customer"], plan["usage"]
    sub = subscribe(client, customer.id, {"price": usage.id})
    report(client, customer.id, 1200)
    report(client, customer.id, -1500)  # a correction larger than the usage
    line = line_of(preview(client, sub.id), usage)
    assert (line.quantity, line.amount) == (0, 0)


def test_an_item_added_mid_period_bills_the_usage_from_then(
    client: stripe.StripeClient, emu: Emulator, plan: dict[str, Any]
) -> None:
    customer, usage = plan["customer"], plan["usage"]
    sub = subscribe(client, customer.id, {"price": plan["base"].id})
    start, end = sub["items"].data[0].current_period_start, sub["items"].data[0].current_period_end
    report(client, customer.id, 300)  # before the metered item exists
    advance_to(emu, start + (end - start) // 2)
    client.v1.subscriptions.update(
        sub.id, params={"items": [{"price": usage.id}], "proration_behavior": "none"}
    )
    report(client, customer.id, 1200)
    advance_to(emu, end)
    # 1200 messages since the item was added: 200 × 5 = 1000
    line = line_of(renewed(client, sub).latest_invoice, usage)
    assert (line.quantity, line.amount) == (1200, 1000)


def test_only_the_subscription_customers_usage_is_billed(
    client: stripe.StripeClient, emu: Emulator, plan: dict[str, Any]
) -> None:
    customer, usage = plan["customer"], plan["usage"]
    other = make_paying_customer(client, "joe@example.com")
    sub = subscribe(client, customer.id, {"price": usage.id})
    report(client, other.id, 5000)
    report(client, customer.id, 1010)
    assert line_of(preview(client, sub.id), usage).amount == 50
