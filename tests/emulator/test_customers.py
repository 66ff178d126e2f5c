"""Customers through the real `stripe` client."""

from __future__ import annotations

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import make_paying_customer, make_price, make_product, seen


def test_create_update_retrieve(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(
        params={"email": "jane@example.com", "name": "Jane", "metadata": {"app_id": "user_123"}}
    )
    assert customer.id.startswith("cus_")
    assert (customer.object, customer.livemode, customer.email) == (
        "customer",
        False,
        "jane@example.com",
    )
    updated = client.v1.customers.update(
        customer.id,
        params={
            "name": "Jane Doe",
            "invoice_settings": {"footer": "Thanks"},
            "metadata": {"x": "1"},
        },
    )
    assert updated.name == "Jane Doe"
    assert updated.invoice_settings.footer == "Thanks"
    assert updated.metadata.to_dict() == {"app_id": "user_123", "x": "1"}
    assert client.v1.customers.retrieve(customer.id).name == "Jane Doe"


def test_list_by_email(client: stripe.StripeClient) -> None:
    jane = client.v1.customers.create(params={"email": "jane@example.com"})
    client.v1.customers.create(params={"email": "john@example.com"})
    found = client.v1.customers.list(params={"email": "jane@example.com"})
    assert [c.id for c in found.data] == [jane.id]
    assert len(client.v1.customers.list().data) == 2


def test_delete_cancels_subscriptions(client: stripe.StripeClient) -> None:
    customer = make_paying_customer(client, "gone@example.com")
    price = make_price(client, make_product(client).id)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    answer = client.v1.customers.delete(customer.id)
    assert answer.deleted is True
    assert client.v1.customers.retrieve(customer.id).deleted is True
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    assert client.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.update(customer.id, params={"name": "x"})
    assert seen(caught.value).status == 404


def test_customer_with_a_chosen_id(emu: Emulator, client: stripe.StripeClient) -> None:
    emu.add_customer("cus_ABC123", email="billing@acme.com", name="Acme Corp")
    fetched = client.v1.customers.retrieve("cus_ABC123")
    assert (fetched.email, fetched.name) == ("billing@acme.com", "Acme Corp")
