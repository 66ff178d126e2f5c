"""List endpoints: Stripe's list object, limits, cursors and auto-pagination."""

from __future__ import annotations

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import make_price, make_product, seen


def test_auto_paging_over_more_than_a_hundred(emu: Emulator, client: stripe.StripeClient) -> None:
    product = make_product(client)
    created = [make_price(client, product.id, amount).id for amount in range(1, 251)]
    emu.requests.clear()
    pages = client.v1.prices.list(params={"limit": 100, "expand": ["data.tiers"]})
    seen_ids = [price.id for price in pages.auto_paging_iter()]
    assert seen_ids == list(reversed(created))
    assert emu.requests.count("GET", "/v1/prices") == 3


def test_list_object_shape_and_default_limit(client: stripe.StripeClient) -> None:
    for index in range(12):
        make_product(client, f"P{index}")
    page = client.v1.products.list()
    assert (page.object, page.url, page.has_more, len(page.data)) == (
        "list",
        "/v1/products",
        True,
        10,
    )


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_bounds(client: stripe.StripeClient, limit: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.list(params={"limit": limit})
    error = seen(caught.value)
    assert (error.status, error.param) == (400, "limit")


def test_cursors(client: stripe.StripeClient) -> None:
    ids = [make_product(client, f"P{index}").id for index in range(5)]  # oldest first
    after = client.v1.products.list(params={"limit": 2, "starting_after": ids[3]})
    assert ([p.id for p in after.data], after.has_more) == ([ids[2], ids[1]], True)
    last = client.v1.products.list(params={"limit": 2, "starting_after": ids[1]})
    assert ([p.id for p in last.data], last.has_more) == ([ids[0]], False)
    before = client.v1.products.list(params={"limit": 2, "ending_before": ids[1]})
    assert ([p.id for p in before.data], before.has_more) == ([ids[3], ids[2]], True)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.list(params={"starting_after": ids[0], "ending_before": ids[1]})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.products.list(params={"starting_after": "prod_missing"})
    assert seen(caught.value).param == "starting_after"


def test_backwards_auto_paging(client: stripe.StripeClient) -> None:
    ids = [make_product(client, f"P{index}").id for index in range(7)]
    page = client.v1.products.list(params={"limit": 2, "ending_before": ids[0]})
    # Paging backwards, the client walks from the cursor towards the newest object.
    assert [p.id for p in page.auto_paging_iter()] == ids[1:]


def test_cursor_survives_deletion(client: stripe.StripeClient) -> None:
    ids = [make_product(client, f"P{index}").id for index in range(3)]
    client.v1.products.delete(ids[1])
    rest = client.v1.products.list(params={"starting_after": ids[1]})
    assert [p.id for p in rest.data] == [ids[0]]


def test_created_filter(emu: Emulator, client: stripe.StripeClient) -> None:
    old = make_product(client, "old")
    emu.clock.advance(3600)
    new = make_product(client, "new")
    recent = client.v1.products.list(params={"created": {"gt": old.created}})
    assert [p.id for p in recent.data] == [new.id]
    exact = client.v1.products.list(params={"created": old.created})
    assert [p.id for p in exact.data] == [old.id]
