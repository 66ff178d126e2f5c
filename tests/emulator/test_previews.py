"""`invoices.create_preview` through the real `stripe` client: amounts worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import (
    halfway,
    make_price,
    make_product,
    seen,
    subscribe,
)


def preview(client: stripe.StripeClient, **params: Any) -> Any:
    return client.v1.invoices.create_preview(params=params)  # type: ignore[arg-type]


def amounts(invoice: Any) -> list[int]:
    return [line.amount for line in invoice.lines.data]


def test_next_invoice_as_it_is(client: stripe.StripeClient, plans: dict[str, Any]) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id, "quantity": 2})
    item = sub["items"].data[0]
    invoice = preview(client, subscription=sub.id)
    assert invoice.id.startswith("upcoming_in_")
    assert invoice.billing_reason == "upcoming"
    assert invoice.status == "draft"
    # the renewal: 2 × $10 for the next period
    assert amounts(invoice) == [2000]
    assert (invoice.period_start, invoice.period_end) == (
        item.current_period_start,
        item.current_period_end,
    )
    assert invoice.lines.data[0].period.start == item.current_period_end
    assert client.v1.invoices.list(params={"subscription": sub.id}).data == [
        client.v1.invoices.retrieve(sub.latest_invoice.id)
    ]


@pytest.mark.parametrize(
    ("behavior", "expected", "prorated"),
    [
        # unused half of $10, remaining half of $20, then the next month at $20
        ("create_prorations", [-500, 1000, 2000], [True, True, False]),
        # the invoice made now: the prorations alone
        ("always_invoice", [-500, 1000], [True, True]),
        # the next month at $20, no prorations
        ("none", [2000], [False]),
    ],
)
def test_proposed_upgrade(
    emu: Emulator,
    client: stripe.StripeClient,
    plans: dict[str, Any],
    behavior: str,
    expected: list[int],
    prorated: list[bool],
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    moment = halfway(emu, sub)
    item = sub["items"].data[0]
    invoice = preview(
        client,
        subscription=sub.id,
        subscription_details={
            "items": [{"id": item.id, "price": plans["pro"].id}],
            "proration_behavior": behavior,
            "proration_date": moment,
        },
    )
    assert amounts(invoice) == expected
    assert invoice.total == sum(expected)
    flags = [line.parent.subscription_item_details.proration for line in invoice.lines.data]
    assert flags == prorated
    unchanged = client.v1.subscriptions.retrieve(sub.id)
    assert unchanged["items"].data[0].price.id == plans["basic"].id


def test_preview_shows_pending_prorations(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id, "quantity": 1})
    moment = halfway(emu, sub)
    item = sub["items"].data[0]
    client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "quantity": 3}], "proration_date": moment}
    )
    invoice = preview(client, subscription=sub.id)
    # 1 seat half unused: -500; 3 seats for the remaining half: +1500; next month 3 × $10
    assert amounts(invoice) == [-500, 1500, 3000]
    assert invoice.total == 4000


def test_proposed_interval_change_is_invoiced_at_once(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    moment = halfway(emu, sub)
    item = sub["items"].data[0]
    invoice = preview(
        client,
        subscription=sub.id,
        subscription_details={
            "items": [{"id": item.id, "price": plans["yearly"].id}],
            "proration_date": moment,
        },
    )
    # half of the $10 month back, a year at $100
    assert amounts(invoice) == [-500, 10000]
    assert invoice.parent.subscription_details.subscription_proration_date == moment


def test_new_subscription(client: stripe.StripeClient, plans: dict[str, Any]) -> None:
    addon = make_price(client, make_product(client, "Add-on").id, 800)
    invoice = preview(
        client,
        customer=plans["customer"].id,
        subscription_details={
            "items": [
                {"price": plans["basic"].id, "quantity": 3},
                {"price": addon.id, "quantity": 2},
            ]
        },
    )
    # 3 seats × $10 + 2 × $8 = 3000 + 1600
    assert amounts(invoice) == [3000, 1600]
    assert invoice.total == 4600
    assert client.v1.subscriptions.list(params={"customer": plans["customer"].id}).data == []


def test_new_subscription_with_trial_and_coupon(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    trial_end = emu.clock.now() + 7 * 86400
    trial = preview(
        client,
        customer=plans["customer"].id,
        subscription_details={"items": [{"price": plans["pro"].id}], "trial_end": trial_end},
    )
    assert (amounts(trial), trial.total) == ([0], 0)

    client.v1.coupons.create(
        params={
            "id": "pro20",
            "percent_off": 20,
            "applies_to": {"products": [plans["product"].id]},
        }
    )
    other = make_price(client, make_product(client, "Other").id, 500)
    discounted = preview(
        client,
        customer=plans["customer"].id,
        discounts=[{"coupon": "pro20"}],
        subscription_details={"items": [{"price": plans["pro"].id}, {"price": other.id}]},
    )
    # 2000 + 500, and 20 % off the Pro line only: 2500 - 400
    assert discounted.total == 2100
    assert client.v1.coupons.retrieve("pro20").times_redeemed == 0


def test_trialing_subscription_previews_the_first_paid_invoice(
    client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["pro"].id}, trial_period_days=14)
    invoice = preview(client, subscription=sub.id)
    assert amounts(invoice) == [2000]
    assert invoice.lines.data[0].period.start == sub.trial_end


def test_no_upcoming_invoice_when_canceling(
    client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        preview(client, subscription=sub.id, subscription_details={"cancel_at_period_end": True})
    assert seen(caught.value).code == "invoice_upcoming_none"
    client.v1.subscriptions.cancel(sub.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        preview(client, subscription=sub.id)
    assert seen(caught.value).code == "invoice_upcoming_none"


def test_refuses_what_stripe_refuses(client: stripe.StripeClient, plans: dict[str, Any]) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        preview(client, customer=plans["customer"].id)
    assert seen(caught.value).code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        preview(client, customer=plans["customer"].id, upcoming=True)
    assert seen(caught.value).code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        preview(client, subscription="sub_missing")
    assert seen(caught.value).param == "subscription"


def test_new_subscription_starting_later(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    start = emu.clock.now() + 5 * 86400
    invoice = preview(
        client,
        customer=plans["customer"].id,
        subscription_details={"items": [{"price": plans["pro"].id}], "start_date": start},
    )
    assert (amounts(invoice), invoice.lines.data[0].period.start) == ([2000], start)


def test_proposed_schedule_phases(client: stripe.StripeClient, plans: dict[str, Any]) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["pro"].id})
    item = sub["items"].data[0]
    invoice = preview(
        client,
        subscription=sub.id,
        schedule_details={
            "phases": [
                {"items": [{"price": plans["pro"].id}], "end_date": item.current_period_end},
                {"items": [{"price": plans["basic"].id, "quantity": 2}]},
            ]
        },
    )
    # from the period's end the second phase applies: 2 × $10
    assert amounts(invoice) == [2000]
    assert invoice.lines.data[0].pricing.price_details.price == plans["basic"].id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        preview(
            client,
            subscription=sub.id,
            schedule_details={
                "end_behavior": "cancel",
                "phases": [
                    {"items": [{"price": plans["pro"].id}], "end_date": item.current_period_end}
                ],
            },
        )
    assert seen(caught.value).code == "invoice_upcoming_none"
