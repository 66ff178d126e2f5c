"""Subscription schedules through the real `stripe` client, with the clock moving."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import (
    advance_to,
    make_paying_customer,
    make_price,
    make_product,
    seen,
    subscribe,
)

DAY = 86400


@pytest.fixture
def plans(client: stripe.StripeClient) -> dict[str, Any]:
    """A customer with a card and two monthly prices of one product: $10 and $20."""
    product = make_product(client, "Pro")
    return {
        "customer": make_paying_customer(client, "jane@example.com"),
        "basic": make_price(client, product.id, 1000),
        "pro": make_price(client, product.id, 2000),
    }


def test_schedule_starting_in_the_future(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    start = emu.clock.now() + 10 * DAY
    schedule = client.v1.subscription_schedules.create(
        params={
            "customer": plans["customer"].id,
            "start_date": start,
            "phases": [
                {
                    "items": [{"price": plans["basic"].id, "quantity": 2}],
                    "duration": {"interval": "month", "interval_count": 2},
                }
            ],
            "metadata": {"plan": "basic"},
        }
    )
    assert schedule.id.startswith("sub_sched_")
    assert (schedule.status, schedule.subscription, schedule.end_behavior) == (
        "not_started",
        None,
        "release",
    )
    assert schedule.phases[0].start_date == start
    listed = client.v1.subscription_schedules.list(params={"scheduled": True}).data
    assert [s.id for s in listed] == [schedule.id]
    first = client.v1.invoices.create_preview(params={"schedule": schedule.id})
    # 2 × $10 from the start date
    assert (first.total, first.lines.data[0].period.start) == (2000, start)
    assert client.v1.subscriptions.list(params={"customer": plans["customer"].id}).data == []

    advance_to(emu, start)
    started = client.v1.subscription_schedules.retrieve(
        schedule.id, params={"expand": ["subscription"]}
    )
    assert started.status == "active"
    sub = started.subscription
    assert (sub.start_date, sub.status, sub.schedule) == (start, "active", schedule.id)
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (invoice.billing_reason, invoice.created, invoice.total) == (
        "subscription_create",
        start,
        2000,
    )
    assert started.current_phase.start_date == start

    advance_to(emu, started.phases[0].end_date)
    released = client.v1.subscription_schedules.retrieve(schedule.id)
    assert (released.status, released.released_subscription) == ("released", sub.id)
    after = client.v1.subscriptions.retrieve(sub.id)
    assert (after.status, after.schedule) == ("active", None)


def test_downgrade_at_period_end_from_a_subscription(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["pro"].id})
    item = sub["items"].data[0]
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    [phase] = schedule.phases
    assert (phase.start_date, phase.end_date) == (
        item.current_period_start,
        item.current_period_end,
    )
    assert phase["items"][0].price == plans["pro"].id
    assert client.v1.subscriptions.retrieve(sub.id).schedule == schedule.id

    updated = client.v1.subscription_schedules.update(
        schedule.id,
        params={
            "phases": [
                {
                    "items": [{"price": plans["pro"].id}],
                    "start_date": phase.start_date,
                    "end_date": phase.end_date,
                },
                {"items": [{"price": plans["basic"].id}]},
            ]
        },
    )
    assert [p.start_date for p in updated.phases] == [phase.start_date, phase.end_date]
    still = client.v1.subscriptions.retrieve(sub.id)
    assert still["items"].data[0].price.id == plans["pro"].id  # the customer keeps Pro
    upcoming = client.v1.invoices.create_preview(
        params={"subscription": sub.id, "schedule": schedule.id}
    )
    # the next period at the $10 price, nothing prorated
    assert [line.amount for line in upcoming.lines.data] == [1000]

    advance_to(emu, item.current_period_end)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert [i.price.id for i in renewed["items"].data] == [plans["basic"].id]
    assert [line.amount for line in renewed.latest_invoice.lines.data] == [1000]
    assert renewed.latest_invoice.billing_reason == "subscription_cycle"
    assert client.v1.subscription_schedules.retrieve(schedule.id).status == "active"


def test_the_current_phase_keeps_its_start(
    client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["pro"].id})
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscription_schedules.update(
            schedule.id,
            params={
                "phases": [
                    {
                        "items": [{"price": plans["basic"].id}],
                        "start_date": schedule.phases[0].start_date + 60,
                    }
                ]
            },
        )
    assert seen(caught.value).param == "phases[0][start_date]"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    assert seen(caught.value).param == "from_subscription"


def test_end_behavior_cancel(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    schedule = client.v1.subscription_schedules.create(
        params={
            "customer": plans["customer"].id,
            "start_date": "now",
            "end_behavior": "cancel",
            "phases": [
                {"items": [{"price": plans["basic"].id}], "end_date": emu.clock.now() + 5 * DAY}
            ],
        }
    )
    assert schedule.status == "active"
    sub_id = schedule.subscription
    emu.clock.advance(6 * DAY)
    done = client.v1.subscription_schedules.retrieve(schedule.id)
    assert done.status == "completed"
    assert client.v1.subscriptions.retrieve(sub_id).status == "canceled"


def test_release_and_cancel(client: stripe.StripeClient, plans: dict[str, Any]) -> None:
    first = subscribe(client, plans["customer"].id, {"price": plans["pro"].id})
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": first.id})
    released = client.v1.subscription_schedules.release(schedule.id)
    assert (released.status, released.released_subscription) == ("released", first.id)
    assert client.v1.subscriptions.retrieve(first.id).schedule is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscription_schedules.cancel(schedule.id)

    second = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    other = client.v1.subscription_schedules.create(params={"from_subscription": second.id})
    canceled = client.v1.subscription_schedules.cancel(other.id)
    assert canceled.status == "canceled"
    assert client.v1.subscriptions.retrieve(second.id).status == "canceled"
    listed = client.v1.subscription_schedules.list(params={"customer": plans["customer"].id})
    assert [s.id for s in listed.data] == [other.id, schedule.id]


def test_phase_settings_and_refusals(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    customer = client.v1.customers.create(params={"email": "ap@example.com"})
    client.v1.coupons.create(params={"id": "half", "percent_off": 50, "duration": "forever"})
    schedule = client.v1.subscription_schedules.create(
        params={
            "customer": customer.id,
            "start_date": "now",
            "phases": [
                {
                    "items": [{"price": plans["pro"].id, "quantity": 3}],
                    "collection_method": "send_invoice",
                    "invoice_settings": {"days_until_due": 15},
                    "discounts": [{"coupon": "half"}],
                    "proration_behavior": "none",
                }
            ],
        },
    )
    sub = client.v1.subscriptions.retrieve(
        schedule.subscription, params={"expand": ["latest_invoice"]}
    )
    assert (sub.collection_method, sub.days_until_due) == ("send_invoice", 15)
    # 3 × $20 = 6000, half off: 3000
    assert (sub.latest_invoice.total, sub.latest_invoice.status) == (3000, "open")
    assert schedule.phases[0].invoice_settings.days_until_due == 15
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscription_schedules.create(
            params={
                "customer": customer.id,
                "start_date": "now",
                "phases": [{"items": [{"price": plans["pro"].id}], "iterations": 2}],
            }  # type: ignore[typeddict-unknown-key]
        )
    assert (seen(caught.value).code, seen(caught.value).param) == (
        "parameter_unknown",
        "phases[0][iterations]",
    )
