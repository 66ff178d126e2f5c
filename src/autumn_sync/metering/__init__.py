"""`autumn-sync usage report`: the usage `track` recorded, sent to Stripe's meters exactly
once, so that Stripe's invoices charge the usage beyond the included units at the price.

A run, meant for a scheduler (every few minutes, and soon after each period ends):

1. sends again, with their identifiers, the events an earlier run wrote down but did not see
   through (it died, or Stripe failed): Stripe counts an identifier it has seen in the last
   24 hours once; one written down more than 23 hours ago is not sent again (Stripe may have
   counted it and forgotten its identifier since): it is named, for a person to check;
2. works out, per customer, feature priced pay-per-use and period, the units not yet reported
   (`metering.plan`), writes them down as `pending` in one transaction, then sends them (on
   several threads, within Stripe's rate limit) and marks them `sent` in batches.

A run killed anywhere sends, when run again, exactly the rest; a run with nothing new sends
nothing. `dry_run` works out the events and sends nothing.

Continuous features billed per use (seats in use: their usage does not reset) are billed by
a licensed price at the usage as the subscription item's quantity, not by a meter: a run
reads each such customer's subscription and, where the item's quantity is not the usage,
sets it (`create_prorations`: the change is prorated on the next invoice). A run with
nothing new sets nothing; a dry run with Stripe reads, without Stripe only says the usage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from autumn_sync.metering import ledger
from autumn_sync.metering.plan import (
    Late,
    MeterEvent,
    QuantityChange,
    SeatItem,
    event_params,
    events,
    periods_of,
)
from autumn_sync.model.address import Address, Kind, named
from autumn_sync.model.stripe import OWNER_KEY
from autumn_sync.stripe.executor import DEFAULT_WORKERS
from autumn_sync.stripe.gateway import Gateway, StripeFailure

PATH = "/v1/billing/meter_events"
STALE = timedelta(hours=23)  # Stripe forgets an identifier after 24 hours
BATCH = 200  # events marked sent per transaction
PRORATION = "create_prorations"  # a quantity change is prorated on the next invoice


@dataclass
class UsageReport:
    """What a run sent, would send (`dry_run`), and could not."""

    events: list[MeterEvent] = field(default_factory=list)  # new, sent or to send
    resent: list[str] = field(default_factory=list)  # identifiers of earlier runs, sent now
    late: list[Late] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)  # written down over 23 hours ago
    failed: list[tuple[str, str]] = field(default_factory=list)  # (identifier, why)
    sent: list[str] = field(default_factory=list)
    # subscription items' quantities set to the usage of a continuous feature (or to set)
    quantities: list[QuantityChange] = field(default_factory=list)
    quantities_set: list[QuantityChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.late or self.unconfirmed or self.failed)


OnSent = Callable[[int, int], None]  # (events done, events in all)


def report_usage(
    engine: Engine,
    gateway: Gateway | None,
    now: datetime,
    customers: Sequence[str] = (),
    dry_run: bool = False,
    on_sent: OnSent | None = None,
    workers: int = DEFAULT_WORKERS,
) -> UsageReport:
    """Send (or, with `dry_run`, work out) the usage not yet reported; see the module. A dry
    run reads Stripe when given a gateway."""
    report = UsageReport()
    if not dry_run:
        assert gateway is not None, "sending needs Stripe"
        _send_pending(engine, gateway, now, report, workers)
    with engine.begin() as conn:
        items = ledger.billed_items(conn, customers)
        usage = ledger.usage_by_period(conn, items, now)
        done = ledger.reported(conn, (i.customer_internal_id for i in items))
        for found in events(periods_of(items, usage, done), now):
            if isinstance(found, Late):
                report.late.append(found)
            else:
                report.events.append(found)
        if not dry_run:
            ledger.write_down(conn, report.events, now)
    if not dry_run:
        assert gateway is not None
        requests = [(e.identifier, e.params()) for e in report.events]
        report.sent = _send_all(engine, gateway, now, requests, report, workers, on_sent)
    with engine.connect() as conn:
        seats = ledger.seat_items(conn, customers)
    _set_quantities(seats, gateway, now, report, dry_run, workers)
    return report


def _set_quantities(
    seats: Sequence[SeatItem],
    gateway: Gateway | None,
    now: datetime,
    report: UsageReport,
    dry_run: bool,
    workers: int,
) -> None:
    """Each item's quantity brought to the usage (on `workers` threads)."""
    if gateway is None:
        report.quantities += [QuantityChange(s, None, None, s.quantity) for s in seats]
        return
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = {pool.submit(_set_quantity, s, gateway, now, dry_run): s for s in seats}
        for future in as_completed(futures):
            seat = futures[future]
            try:
                change, done = future.result()
            except StripeFailure as exc:
                report.failed.append((f"{seat.customer_id} {seat.feature} quantity", str(exc)))
                continue
            if change is not None:
                report.quantities.append(change)
                if done:
                    report.quantities_set.append(change)
    report.quantities.sort(key=lambda c: (c.item.customer_id, c.item.feature))


def _set_quantity(
    seat: SeatItem, gateway: Gateway, now: datetime, dry_run: bool
) -> tuple[QuantityChange | None, bool]:
    """Read the subscription; set its item's quantity to the usage when it differs (the
    change, and whether it was sent); raises `StripeFailure`."""
    sub = gateway.request("get", f"/v1/subscriptions/{seat.subscription}", {})
    found = _seat_item(sub, named(Kind.STRIPE_PRICE, seat.plan, seat.feature))
    if found is None:
        raise StripeFailure(
            f"subscription {seat.subscription} has no licensed item at "
            f"stripe_price.{seat.plan}.{seat.feature} (apply the plan first)"
        )
    item_id, quantity = found
    if quantity == seat.quantity:
        return None, False
    change = QuantityChange(seat, item_id, quantity, seat.quantity)
    if dry_run:
        return change, False
    params = {"quantity": seat.quantity, "proration_behavior": PRORATION}
    gateway.post(f"/v1/subscription_items/{item_id}", params, change.idempotency_key(now))
    return change, True


def _seat_item(sub: dict[str, Any], address: str) -> tuple[str, int] | None:
    """(item id, quantity) of the subscription's licensed item whose price is at `address`
    (a customer's own price, `stripe_price.pro.seats[user_1]`, too)."""
    for item in (sub.get("items") or {}).get("data") or ():
        price = item.get("price")
        quantity = item.get("quantity")
        if not isinstance(price, dict) or not isinstance(quantity, int):
            continue
        owner = (price.get("metadata") or {}).get(OWNER_KEY)
        if owner and _unindexed(owner) == address:
            return str(item["id"]), quantity
    return None


def _unindexed(address: str) -> str:
    try:
        parsed = Address.parse(address)
    except ValueError:
        return address
    return named(parsed.kind, parsed.key or "", parsed.part, None)


def _send_pending(
    engine: Engine, gateway: Gateway, now: datetime, report: UsageReport, workers: int
) -> None:
    with engine.connect() as conn:
        waiting = ledger.pending(conn)
    fresh = []
    for row in waiting:
        if row.created_at < now - STALE:
            report.unconfirmed.append(row.identifier)
        else:
            fresh.append((row.identifier, _params(row)))
    report.resent += _send_all(engine, gateway, now, fresh, report, workers, None)


def _send_all(
    engine: Engine,
    gateway: Gateway,
    now: datetime,
    requests: Sequence[tuple[str, dict[str, Any]]],
    report: UsageReport,
    workers: int,
    on_sent: OnSent | None,
) -> list[str]:
    """Send the events on `workers` threads (the gateway keeps to Stripe's rate limit,
    backing off on 429s), each with its identifier as its idempotency key; mark those Stripe
    took `sent`, in batches (one that dies before its batch is marked is sent again by the
    next run, and counted once). The identifiers sent."""
    sent: list[str] = []
    batch: list[str] = []
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = {pool.submit(gateway.post, PATH, params, key): key for key, params in requests}
        for done, future in enumerate(as_completed(futures), start=1):
            key = futures[future]
            try:
                future.result()
            except StripeFailure as exc:
                if not _seen(exc):
                    report.failed.append((key, str(exc)))
                else:
                    batch.append(key)  # Stripe has it from an earlier run
            else:
                batch.append(key)
            if len(batch) >= BATCH or done == len(futures):
                _mark(engine, batch, now)
                sent += batch
                batch = []
            if on_sent is not None:
                on_sent(done, len(futures))
    return sent


def _seen(exc: StripeFailure) -> bool:
    """Stripe's answer to an identifier it already has (sent by a run that died before it
    marked it): a 400 without an error code, `An event already exists with identifier …`."""
    return exc.status == 400 and "already exists with identifier" in str(exc)


def _mark(engine: Engine, identifiers: list[str], now: datetime) -> None:
    if identifiers:
        with engine.begin() as conn:
            ledger.mark_sent(conn, identifiers, now)


def _params(row: Any) -> dict[str, Any]:
    """The request of an event written down by an earlier run."""
    return event_params(
        row.event_name, row.identifier, row.timestamp, row.stripe_customer_id, row.value
    )
