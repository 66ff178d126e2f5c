"""Prorations of a mid-period change, through the real `stripe` client.

The change is made at the exact middle of a period (`proration_date`), so Stripe's fraction,
(period end - proration date) / (period end - period start), is exactly 1/2.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import (
    advance_to,
    halfway,
    make_price,
    make_product,
    seen,
    subscribe,
)


def upgrade(client: stripe.StripeClient, sub: Any, price: str, **extra: Any) -> Any:
    item = sub["items"].data[0]
    return client.v1.subscriptions.update(
        sub.id,
        params={"items": [{"id": item.id, "price": price}], "expand": ["latest_invoice"], **extra},
    )


def renewal(emu: Emulator, client: stripe.StripeClient, sub: Any) -> Any:
    """The invoice made when the current period ends."""
    end = client.v1.subscriptions.retrieve(sub.id)["items"].data[0].current_period_end
    advance_to(emu, end)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert renewed.latest_invoice.billing_reason == "subscription_cycle"
    return renewed.latest_invoice


def test_create_prorations_waits_for_the_next_invoice(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    moment = halfway(emu, sub)
    updated = upgrade(client, sub, plans["pro"].id, proration_date=moment)
    assert updated.latest_invoice.id == sub.latest_invoice.id  # nothing invoiced now
    invoice = renewal(emu, client, sub)
    credit, debit, period = invoice.lines.data
    # unused half of $10: -500; remaining half of $20: +1000; then the next month at $20
    assert [line.amount for line in invoice.lines.data] == [-500, 1000, 2000]
    assert credit.parent.subscription_item_details.proration is True
    assert credit.parent.subscription_item_details.invoice_item.startswith("ii_")
    assert debit.description.startswith("Remaining time on 1 × Pro")
    assert credit.description.startswith("Unused time on 1 × Pro")
    assert period.parent.subscription_item_details.proration is False
    assert (credit.period.start, credit.period.end) == (
        moment,
        sub["items"].data[0].current_period_end,
    )
    assert invoice.total == -500 + 1000 + 2000


def test_always_invoice_bills_the_prorations_now(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    moment = halfway(emu, sub)
    updated = upgrade(
        client, sub, plans["pro"].id, proration_date=moment, proration_behavior="always_invoice"
    )
    invoice = updated.latest_invoice
    assert (invoice.billing_reason, invoice.status) == ("subscription_update", "paid")
    assert [line.amount for line in invoice.lines.data] == [-500, 1000]
    assert invoice.total == invoice.amount_paid == 500  # -500 + 1000
    # the prorations are billed: the renewal bills only the new month at $20
    assert renewal(emu, client, sub).total == 2000


def test_none_makes_no_prorations(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    moment = halfway(emu, sub)
    updated = upgrade(
        client, sub, plans["pro"].id, proration_date=moment, proration_behavior="none"
    )
    assert updated.latest_invoice.id == sub.latest_invoice.id
    assert [line.amount for line in renewal(emu, client, sub).lines.data] == [2000]


def test_quantity_change_credits_old_seats_and_charges_new(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id, "quantity": 3})
    moment = halfway(emu, sub)
    item = sub["items"].data[0]
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "quantity": 5}],
            "proration_behavior": "always_invoice",
            "proration_date": moment,
            "expand": ["latest_invoice"],
        },
    )
    lines = updated.latest_invoice.lines.data
    # 3 seats × $10 half unused: -1500; 5 seats × $10 for the remaining half: +2500
    assert [line.amount for line in lines] == [-1500, 2500]
    assert [line.quantity for line in lines] == [3, 5]
    assert updated.latest_invoice.total == 1000


def test_downgrade_with_always_invoice_leaves_credit(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["pro"].id})
    moment = halfway(emu, sub)
    updated = upgrade(
        client, sub, plans["basic"].id, proration_date=moment, proration_behavior="always_invoice"
    )
    invoice = updated.latest_invoice
    # -1000 (half of $20) + 500 (half of $10) = -500: nothing to pay, 500 of credit
    assert (invoice.total, invoice.amount_due, invoice.ending_balance) == (-500, 0, -500)
    assert client.v1.customers.retrieve(plans["customer"].id).balance == -500
    # the credit pays part of the renewal: 1000 - 500
    assert renewal(emu, client, sub).amount_due == 500


def test_new_interval_resets_the_billing_cycle(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    moment = halfway(emu, sub)
    updated = upgrade(client, sub, plans["yearly"].id, proration_date=moment)
    invoice = updated.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    # unused half of the $10 month: -500; a full year at $100: +10000
    assert [line.amount for line in invoice.lines.data] == [-500, 10000]
    assert invoice.total == 9500
    item = updated["items"].data[0]
    assert item.current_period_start == invoice.created == updated.billing_cycle_anchor
    assert item.current_period_end - item.current_period_start >= 365 * 86400


def test_adding_and_removing_items(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    addon = make_price(client, make_product(client, "Add-on").id, 600)
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    moment = halfway(emu, sub)
    item = sub["items"].data[0]
    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "deleted": True}, {"price": addon.id}],
            "proration_behavior": "always_invoice",
            "proration_date": moment,
            "expand": ["latest_invoice"],
        },
    )
    # the removed $10 item: -500; the added $6 item for half a month: +300
    assert [line.amount for line in updated.latest_invoice.lines.data] == [-500, 300]


def test_no_prorations_during_a_trial(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(
        client, plans["customer"].id, {"price": plans["basic"].id}, trial_period_days=10
    )
    emu.clock.advance(3 * 86400)
    updated = upgrade(client, sub, plans["pro"].id, proration_behavior="always_invoice")
    assert updated.latest_invoice.id == sub.latest_invoice.id
    advance_to(emu, sub.trial_end)
    ended = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert (ended.status, ended.latest_invoice.total) == ("active", 2000)


def test_proration_date_must_be_in_the_period(
    client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["basic"].id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        upgrade(client, sub, plans["pro"].id, proration_date=sub.start_date - 86400)
    assert seen(caught.value).param == "proration_date"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        upgrade(client, sub, plans["pro"].id, proration_behavior="sometimes")
    assert seen(caught.value).param == "proration_behavior"


def test_cancelling_now_with_prorate_and_invoice_now_credits_the_unused_time(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    """DELETE with `prorate` and `invoice_now` halfway through: a final invoice crediting
    half of the $20 month (-1000), which the customer's next invoice uses: a $100 yearly
    subscription made then asks for 10000 - 1000."""
    sub = subscribe(client, plans["customer"].id, {"price": plans["pro"].id})
    halfway(emu, sub)
    client.v1.subscriptions.cancel(sub.id, params={"prorate": True, "invoice_now": True})
    listed = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [invoice.total for invoice in listed] == [-1000, 2000]  # newest first
    yearly = subscribe(client, plans["customer"].id, {"price": plans["yearly"].id})
    assert (yearly.latest_invoice.total, yearly.latest_invoice.amount_due) == (10000, 9000)


def test_cancelling_now_without_prorate_credits_nothing(
    emu: Emulator, client: stripe.StripeClient, plans: dict[str, Any]
) -> None:
    sub = subscribe(client, plans["customer"].id, {"price": plans["pro"].id})
    halfway(emu, sub)
    client.v1.subscriptions.cancel(sub.id)
    listed = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [invoice.total for invoice in listed] == [2000]
