"""Applying the Stripe changes of a plan: one applier per (change, record) class, each write
journaled with its idempotency key (`writer`); `executor` runs them with bounded concurrency."""

from __future__ import annotations

from autumn_sync.stripe.apply import catalog, customers
from autumn_sync.stripe.apply.writer import APPLIERS, StripeWriter

__all__ = ["APPLIERS", "StripeWriter", "catalog", "customers"]
