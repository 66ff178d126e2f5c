"""What happens when the emulator's clock moves: trial ends, renewals, cancellations."""

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
def price(client: stripe.StripeClient) -> Any:
    return make_price(client, make_product(client, "Pro").id, 2000)


def cardless(client: stripe.StripeClient) -> Any:
    return client.v1.customers.create(params={"email": "nocard@example.com"})


def invoices_of(client: stripe.StripeClient, sub_id: str) -> list[Any]:
    return list(client.v1.invoices.list(params={"subscription": sub_id}).data)


def trial(client: stripe.StripeClient, customer: str, price: str, behavior: str | None) -> Any:
    extra: dict[str, Any] = {"trial_period_days": 7}
    if behavior is not None:
        extra["trial_settings"] = {"end_behavior": {"missing_payment_method": behavior}}
    return subscribe(client, customer, {"price": price}, **extra)


def test_trial_with_a_payment_method_ends_in_a_paid_invoice(
    emu: Emulator, client: stripe.StripeClient, price: Any
) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    sub = trial(client, customer.id, price.id, "cancel")
    assert sub.status == "trialing"
    assert sub.trial_settings.end_behavior.missing_payment_method == "cancel"
    advance_to(emu, sub.trial_end)
    ended = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert ended.status == "active"
    invoice = ended.latest_invoice
    assert (invoice.billing_reason, invoice.status, invoice.total) == (
        "subscription_cycle",
        "paid",
        2000,
    )
    item = ended["items"].data[0]
    assert item.current_period_start == sub.trial_end == ended.billing_cycle_anchor
    assert invoice.lines.data[0].period.start == sub.trial_end


@pytest.mark.parametrize(
    ("behavior", "status", "invoices"),
    [
        ("cancel", "canceled", 1),
        ("pause", "paused", 1),
        ("create_invoice", "active", 2),
        (None, "active", 2),  # create_invoice is the default
    ],
)
def test_trial_without_a_payment_method(
    emu: Emulator,
    client: stripe.StripeClient,
    price: Any,
    behavior: str | None,
    status: str,
    invoices: int,
) -> None:
    sub = trial(client, cardless(client).id, price.id, behavior)
    assert sub.latest_invoice.total == 0
    advance_to(emu, sub.trial_end)
    ended = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert ended.status == status
    assert len(invoices_of(client, sub.id)) == invoices
    if status == "active":
        assert (ended.latest_invoice.status, ended.latest_invoice.amount_due) == ("open", 2000)
    if status == "paused":
        assert ended.status_details.paused.subscription.type == "trial_end_without_payment_method"
    if status == "canceled":
        assert ended.ended_at == sub.trial_end


def test_trial_settings_change_on_update_and_trial_end_now(
    client: stripe.StripeClient, price: Any
) -> None:
    sub = trial(client, cardless(client).id, price.id, None)
    updated = client.v1.subscriptions.update(
        sub.id, params={"trial_settings": {"end_behavior": {"missing_payment_method": "pause"}}}
    )
    assert updated.trial_settings.end_behavior.missing_payment_method == "pause"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.update(
            sub.id,
            params={"trial_settings": {"end_behavior": {"missing_payment_method": "shrug"}}},
        )
    assert seen(caught.value).param == "trial_settings[end_behavior][missing_payment_method]"
    ended = client.v1.subscriptions.update(sub.id, params={"trial_end": "now"})
    assert ended.status == "paused"


def test_ending_a_trial_now_bills_at_once(client: stripe.StripeClient, price: Any) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    sub = trial(client, customer.id, price.id, None)
    ended = client.v1.subscriptions.update(
        sub.id, params={"trial_end": "now", "expand": ["latest_invoice"]}
    )
    assert ended.status == "active"
    assert (ended.latest_invoice.total, ended.latest_invoice.status) == (2000, "paid")


def test_several_periods_at_once_renew_in_order(
    emu: Emulator, client: stripe.StripeClient, price: Any
) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    sub = subscribe(client, customer.id, {"price": price.id})
    emu.clock.advance(100 * DAY)  # three month ends at least
    renewed = client.v1.subscriptions.retrieve(sub.id)
    found = invoices_of(client, sub.id)
    created = [invoice.created for invoice in reversed(found)]
    assert created == sorted(created)
    assert [i.billing_reason for i in found][-1] == "subscription_create"
    # three month ends fall within 100 days (any three months last 89 to 92 days, four at
    # least 120): the first invoice and three renewals
    assert len(found) == 4
    assert all(invoice.total == 2000 for invoice in found)
    item = renewed["items"].data[0]
    assert item.current_period_start <= emu.clock.now() < item.current_period_end
    assert found[0].created == item.current_period_start


def test_cancel_at_a_moment(emu: Emulator, client: stripe.StripeClient, price: Any) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    moment = emu.clock.now() + 5 * DAY
    sub = subscribe(client, customer.id, {"price": price.id}, cancel_at=moment)
    assert sub.cancel_at == moment
    emu.clock.advance(6 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        subscribe(client, customer.id, {"price": price.id}, cancel_at=emu.clock.now() - 10)
    assert seen(caught.value).param == "cancel_at"


def test_incomplete_subscription_expires(
    emu: Emulator, client: stripe.StripeClient, price: Any
) -> None:
    sub = subscribe(
        client, cardless(client).id, {"price": price.id}, payment_behavior="default_incomplete"
    )
    emu.clock.advance(23 * 3600 + 1)
    expired = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert expired.status == "incomplete_expired"
    assert expired.latest_invoice.status == "void"


def test_nothing_due_costs_no_scan(emu: Emulator, client: stripe.StripeClient, price: Any) -> None:
    customer = make_paying_customer(client, "jane@example.com")
    sub = subscribe(client, customer.id, {"price": price.id})
    assert emu.state.due_at == sub["items"].data[0].current_period_end
    calls: list[int] = []
    handler = emu.state.due_handler
    assert handler is not None
    emu.state.due_handler = lambda state: calls.append(1) or handler(state)
    client.v1.subscriptions.retrieve(sub.id)
    assert calls == []
    advance_to(emu, sub["items"].data[0].current_period_end)
    client.v1.subscriptions.retrieve(sub.id)
    assert calls == [1]
