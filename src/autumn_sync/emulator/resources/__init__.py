"""The emulated Stripe objects, one module per kind, and the table of all their routes."""

from __future__ import annotations

from autumn_sync.emulator.resources import (
    coupons,
    customers,
    invoices,
    meter_events,
    meters,
    payment_methods,
    previews,
    prices,
    products,
    promotion_codes,
    schedules,
    subscriptions,
)
from autumn_sync.emulator.routing import Route

ROUTES: list[Route] = [
    *products.ROUTES,
    *prices.ROUTES,
    *meters.ROUTES,
    *meter_events.ROUTES,
    *customers.ROUTES,
    *payment_methods.ROUTES,
    *subscriptions.ROUTES,
    *coupons.ROUTES,
    *promotion_codes.ROUTES,
    *previews.ROUTES,
    *invoices.ROUTES,
    *schedules.ROUTES,
]
