"""Helpers for the emulator's tests: building objects through the API, reading errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe


@dataclass
class Seen:
    """What the client saw of an API error."""

    status: int | None
    type: str | None
    message: str
    param: str | None
    code: str | None


def seen(error: stripe.StripeError) -> Seen:
    """The status and error object of a `stripe` exception."""
    body: Any = error.json_body or {}
    details = body.get("error", {}) if isinstance(body, dict) else {}
    return Seen(
        error.http_status,
        details.get("type"),
        details.get("message", ""),
        details.get("param"),
        details.get("code"),
    )


def make_paying_customer(client: stripe.StripeClient, email: str, **extra: Any) -> Any:
    """A customer with a card as its default payment method (Stripe's test card id)."""
    params = {
        "email": email,
        "payment_method": "pm_card_visa",
        "invoice_settings": {"default_payment_method": "pm_card_visa"},
        **extra,
    }
    return client.v1.customers.create(params=params)


def make_product(client: stripe.StripeClient, name: str = "Pro", **extra: Any) -> Any:
    """A product created through the API."""
    return client.v1.products.create(params={"name": name, **extra})


def make_price(client: stripe.StripeClient, product: str, amount: int = 2000, **extra: Any) -> Any:
    """A monthly fixed price in USD created through the API."""
    params = {
        "product": product,
        "currency": "usd",
        "unit_amount": amount,
        "recurring": {"interval": "month"},
        **extra,
    }
    return client.v1.prices.create(params=params)


def make_meter(client: stripe.StripeClient, event_name: str = "messages") -> Any:
    """A sum meter created through the API."""
    params = {
        "display_name": event_name.title(),
        "event_name": event_name,
        "default_aggregation": {"formula": "sum"},
    }
    return client.v1.billing.meters.create(params=params)


def advance_to(emu: Any, moment: int) -> None:
    """Move the emulator's clock just past `moment`."""
    emu.clock.advance(moment - emu.clock.now() + 1)


def halfway(emu: Any, sub: Any) -> int:
    """Move the clock to the middle of the subscription's period; returns that moment."""
    item = sub["items"].data[0]
    middle = item.current_period_start + (item.current_period_end - item.current_period_start) // 2
    advance_to(emu, middle)
    return int(middle)


def subscribe(
    client: stripe.StripeClient, customer: str, *items: dict[str, Any], **extra: Any
) -> Any:
    """A subscription with `items`, its latest invoice expanded."""
    params = {"customer": customer, "items": list(items), "expand": ["latest_invoice"], **extra}
    return client.v1.subscriptions.create(params=params)
