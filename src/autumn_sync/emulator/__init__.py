"""A stateful Stripe API emulator for autumn-sync's tests, benchmarks and demos.

It speaks Stripe's HTTP API (form-encoded requests, JSON responses, list objects, Stripe's
error shapes) for the objects the tool uses — products, prices, billing meters, customers,
subscriptions, subscription schedules, invoices, coupons, promotion codes — and enforces the
rules a reconciler depends on. It bills as Stripe does: first invoices, renewals, trials,
prorations, discounts and `invoices/create_preview`, in minor units; tests move time with
`emu.clock.advance(seconds)` and what fell due is done before the next request. It can add
latency, rate-limit, inject 500s and drop responses after doing the work. It uses only the
standard library; `stripe` is imported only by `Emulator.client()`.

    from autumn_sync.emulator import Emulator

    with Emulator(seed=1) as emu:
        stripe_client = emu.client()

From a shell: `python -m autumn_sync.emulator --port 12111 [--latency-ms N] [--rate-limit RPS]
[--fault-rate F] [--drop-rate F] [--seed N]`.
"""

from __future__ import annotations

from autumn_sync.emulator.app import API_VERSION
from autumn_sync.emulator.errors import StripeError
from autumn_sync.emulator.requestlog import LoggedRequest, RequestLog
from autumn_sync.emulator.server import DEFAULT_API_KEY, Emulator
from autumn_sync.emulator.store import Clock, State

__all__ = [
    "API_VERSION",
    "DEFAULT_API_KEY",
    "Clock",
    "Emulator",
    "LoggedRequest",
    "RequestLog",
    "State",
    "StripeError",
]
