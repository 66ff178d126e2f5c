"""The billing objects carry every field the pinned `stripe` package declares for them.

The package lists each object's fields as class annotations; only those Stripe leaves out of
an ordinary response are absent here: `deleted` (deleted objects only), an invoice's
`payments` (includable) and a plan's `tiers` (expandable).
"""

from __future__ import annotations

from typing import Any

import stripe

from tests.emulator.helpers import make_paying_customer, make_price, make_product, subscribe

NOT_ALWAYS = {"OBJECT_NAME", "deleted", "payments", "tiers"}


def declared(cls: type) -> set[str]:
    """The fields the `stripe` package declares on a class."""
    return set(cls.__annotations__) - NOT_ALWAYS


def shown(obj: Any) -> set[str]:
    return set(obj.to_dict())


def test_billing_objects_have_every_declared_field(client: stripe.StripeClient) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    price = make_price(client, make_product(client).id, 1000)
    client.v1.coupons.create(params={"id": "c5", "percent_off": 5, "duration": "forever"})
    sub = subscribe(client, customer.id, {"price": price.id}, discounts=[{"coupon": "c5"}])
    invoice = sub.latest_invoice
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    item = sub["items"].data[0]
    discount = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["discounts"]}).discounts[
        0
    ]
    cases = [
        (stripe.Subscription, sub),
        (stripe.SubscriptionItem, item),
        (stripe.Plan, item.plan),
        (stripe.Invoice, invoice),
        (stripe.InvoiceLineItem, invoice.lines.data[0]),
        (stripe.SubscriptionSchedule, schedule),
        (stripe.SubscriptionSchedule.Phase, schedule.phases[0]),
        (stripe.Discount, discount),
    ]
    for cls, obj in cases:
        assert shown(obj) == declared(cls), cls.__name__


def test_expandable_fields_are_ids_unless_expanded(client: stripe.StripeClient) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    price = make_price(client, make_product(client).id, 1000)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    plain = client.v1.subscriptions.retrieve(sub.id)
    assert isinstance(plain.latest_invoice, str)
    assert plain.schedule == schedule.id
    expanded = client.v1.subscriptions.retrieve(
        sub.id, params={"expand": ["latest_invoice", "schedule", "customer"]}
    )
    assert expanded.latest_invoice.object == "invoice"
    assert expanded.schedule.object == "subscription_schedule"
    invoice = client.v1.invoices.retrieve(
        plain.latest_invoice,
        params={
            "expand": [
                "customer",
                "parent.subscription_details.subscription",
                "lines.data.pricing.price_details.price",
            ]
        },
    )
    assert invoice.customer.id == customer.id
    assert invoice.parent.subscription_details.subscription.id == sub.id
    assert invoice.lines.data[0].pricing.price_details.price.id == price.id
