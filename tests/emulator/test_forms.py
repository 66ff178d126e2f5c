"""Stripe's form encoding as the emulator decodes it, and requests written by hand (curl style)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from autumn_sync.emulator import Emulator, StripeError
from autumn_sync.emulator.forms import decode, from_mapping


def test_nested_brackets_and_arrays() -> None:
    form = decode(
        "recurring[interval]=month&tiers[0][up_to]=10&tiers[1][up_to]=inf"
        "&expand[]=tiers&expand[]=product&metadata[a]=1&metadata[b]="
    )
    assert form == {
        "recurring": {"interval": "month"},
        "tiers": {"0": {"up_to": "10"}, "1": {"up_to": "inf"}},
        "expand": ["tiers", "product"],
        "metadata": {"a": "1", "b": ""},
    }


def test_encoded_brackets_and_blank_values() -> None:
    assert decode("metadata%5Bk%5D=v%20w&name=") == {"metadata": {"k": "v w"}, "name": ""}


@pytest.mark.parametrize("body", ["a=1&a[b]=2", "a[b]=1&a[b][c]=2", "a[=1", "[x]=1"])
def test_malformed_or_conflicting_names(body: str) -> None:
    with pytest.raises(StripeError) as caught:
        decode(body)
    assert caught.value.status == 400


def test_from_mapping_matches_the_client_encoding() -> None:
    assert from_mapping({"active": False, "items": [{"price": "p", "quantity": 2}], "x": None}) == {
        "active": "false",
        "items": {"0": {"price": "p", "quantity": "2"}},
    }


def test_hand_written_request(emu: Emulator) -> None:
    product = emu.call("POST", "/v1/products", {"name": "Pro"})
    body = (
        f"product={product['id']}&currency=usd&billing_scheme=tiered&tiers_mode=volume"
        "&tiers[0][up_to]=5&tiers[0][unit_amount]=100&tiers[1][up_to]=inf&tiers[1][unit_amount]=80"
        "&recurring[interval]=month&expand[]=tiers"
    )
    request = urllib.request.Request(
        emu.url + "/v1/prices",
        data=body.encode(),
        headers={"Authorization": "Bearer sk_test_curl"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        price = json.loads(response.read())
    assert [tier["up_to"] for tier in price["tiers"]] == [5, None]
    query = "/v1/prices?expand[]=data.tiers&limit=1"
    request = urllib.request.Request(emu.url + query, headers={"Authorization": "Bearer sk_test_c"})
    with urllib.request.urlopen(request) as response:
        listed = json.loads(response.read())
    assert listed["data"][0]["tiers"][1]["unit_amount"] == 80


def test_in_process_call_bypasses_http(emu: Emulator) -> None:
    created = emu.call("POST", "/v1/customers", {"email": "a@example.com", "metadata": {"k": "v"}})
    assert created["metadata"] == {"k": "v"}
    assert emu.call("GET", f"/v1/customers/{created['id']}")["email"] == "a@example.com"
    assert len(emu.requests) == 0
    with pytest.raises(StripeError) as caught:
        emu.call("GET", "/v1/customers/cus_missing")
    assert caught.value.status == 404
