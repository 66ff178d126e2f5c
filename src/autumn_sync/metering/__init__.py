"""`autumn-sync usage report`: the usage `track` recorded, sent to Stripe's meters exactly
once, so that Stripe's invoices charge the usage beyond the included units at the price.

A run, meant for a scheduler (every few minutes, and soon after each period ends):

1. sends again, with their identifiers, the events an earlier run wrote down but did not see
   through (it died, or Stripe failed): Stripe counts an identifier it has seen in the last
   24 hours once; one written down more than 23 hours ago is not sent again (Stripe may have
   counted it and forgotten its identifier since): it is named, for a person to check;
2. works out, per customer, feature priced pay-per-use and period, the units not yet reported
   (`metering.plan`), writes them down as `pending` in one transaction, then sends each and
   marks it `sent`.

A run killed anywhere sends, when run again, exactly the rest; a run with nothing new sends
nothing. `dry_run` works out the events and sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from autumn_sync.metering import ledger
from autumn_sync.metering.plan import Late, MeterEvent, events, periods_of
from autumn_sync.stripe.gateway import Gateway, StripeFailure

PATH = "/v1/billing/meter_events"
STALE = timedelta(hours=23)  # Stripe forgets an identifier after 24 hours


@dataclass
class UsageReport:
    """What a run sent, would send (`dry_run`), and could not."""

    events: list[MeterEvent] = field(default_factory=list)  # new, sent or to send
    resent: list[str] = field(default_factory=list)  # identifiers of earlier runs, sent now
    late: list[Late] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)  # written down over 23 hours ago
    failed: list[tuple[str, str]] = field(default_factory=list)  # (identifier, why)
    sent: list[str] = field(default_factory=list)

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
) -> UsageReport:
    """Send (or, with `dry_run`, work out) the usage not yet reported; see the module."""
    report = UsageReport()
    if not dry_run:
        assert gateway is not None, "sending needs Stripe"
        _send_pending(engine, gateway, now, report)
    with engine.begin() as conn:
        items = ledger.billed_items(conn, customers)
        usage = ledger.usage_by_period(conn, items)
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
        _send(engine, gateway, now, report, on_sent)
    return report


def _send_pending(engine: Engine, gateway: Gateway, now: datetime, report: UsageReport) -> None:
    with engine.connect() as conn:
        waiting = ledger.pending(conn)
    for row in waiting:
        if row.created_at < now - STALE:
            report.unconfirmed.append(row.identifier)
            continue
        if _post(engine, gateway, now, row.identifier, _params(row), report):
            report.resent.append(row.identifier)


def _send(
    engine: Engine, gateway: Gateway, now: datetime, report: UsageReport, on_sent: OnSent | None
) -> None:
    total = len(report.events)
    for done, event in enumerate(report.events, start=1):
        if _post(engine, gateway, now, event.identifier, event.params(), report):
            report.sent.append(event.identifier)
        if on_sent is not None:
            on_sent(done, total)


def _post(
    engine: Engine,
    gateway: Gateway,
    now: datetime,
    identifier: str,
    params: dict[str, Any],
    report: UsageReport,
) -> bool:
    """Send one event (its identifier is its idempotency key too) and mark it sent."""
    try:
        gateway.post(PATH, params, identifier)
    except StripeFailure as exc:
        report.failed.append((identifier, str(exc)))
        return False
    with engine.begin() as conn:
        ledger.mark_sent(conn, identifier, now)
    return True


def _params(row: Any) -> dict[str, Any]:
    """The request of an event written down by an earlier run."""
    return {
        "event_name": row.event_name,
        "identifier": row.identifier,
        "timestamp": row.timestamp,
        "payload": {
            "stripe_customer_id": row.stripe_customer_id,
            "value": format(row.value.normalize(), "f"),
        },
    }
