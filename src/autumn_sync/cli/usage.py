"""`autumn-sync usage report`: the usage `track` recorded, sent to Stripe's meters (see
`autumn_sync.metering`)."""

from __future__ import annotations

import sys
from decimal import Decimal

import click

from autumn_sync.cli.common import (
    LOCK_TIMEOUT_OPTION,
    Options,
    fail,
    handles_errors,
    take_lock,
)
from autumn_sync.cli.output import echo
from autumn_sync.metering import UsageReport, report_usage
from autumn_sync.metering.plan import MeterEvent, QuantityChange
from autumn_sync.model.money import from_minor_units
from autumn_sync.pipeline import utc_now


@click.group()
def usage() -> None:
    """Usage recorded by `track`, and Stripe's meters."""


@usage.command("report")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing.")
@click.option(
    "--customer",
    "customers",
    multiple=True,
    metavar="ID",
    help="Only this customer (repeatable).",
)
@LOCK_TIMEOUT_OPTION
@click.pass_obj
@handles_errors
def report(
    options: Options, dry_run: bool, customers: tuple[str, ...], lock_timeout: float
) -> None:
    """Send the usage not yet reported to Stripe's meters, exactly once: per customer,
    feature priced pay-per-use and period, the units beyond what was sent; continuous
    features (seats in use) set their subscription item's quantity to the usage. Meant for
    a scheduler: every few minutes, and soon after each billing period ends."""
    gateway = options.gateway()
    if gateway is None and not dry_run:
        fail("usage report needs Stripe (STRIPE_API_KEY); --dry-run shows what it would send")
    engine = options.engine()
    now = utc_now()
    if dry_run:
        found = report_usage(engine, gateway, now, customers, dry_run=True)
        _show_planned(found)
        sys.exit(0 if found.ok else 1)
    with take_lock(engine, "usage report", lock_timeout):
        progress = _Progress() if sys.stderr.isatty() else None
        found = report_usage(engine, gateway, now, customers, on_sent=progress)
    _summary(found)
    if not found.ok:
        sys.exit(1)


def _show_planned(found: UsageReport) -> None:
    if not found.events and not found.quantities:
        echo("Nothing to report: Stripe has all the usage recorded.")
    elif found.events:
        rows = [_row(event) for event in found.events]
        header = ("CUSTOMER", "FEATURE", "PERIOD ENDS", "UNITS", "AMOUNT")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        units = sum(event.value for event in found.events)
        echo(f"Would send {len(found.events)} meter events ({_units(units)} units).")
    for change in found.quantities:
        verb = "would set" if change.before is not None else "usage (Stripe not read)"
        echo(f"Quantity: {_quantity(change)} ({verb})")
    _problems(found)


def _quantity(change: QuantityChange) -> str:
    """`user_1 seats: 5 → 7 units`."""
    before = f"{change.before} → " if change.before is not None else ""
    return f"{change.item.customer_id} {change.item.feature}: {before}{change.after} units"


def _row(event: MeterEvent) -> tuple[str, str, str, str, str]:
    return (
        event.item.customer_id,
        event.item.feature,
        f"{event.period_end:%Y-%m-%d %H:%M}",
        _units(event.value),
        _money(event),
    )


def _money(event: MeterEvent) -> str:
    currency = event.item.currency
    return f"{from_minor_units(event.amount, currency):f} {currency}"


def _units(value: Decimal | int) -> str:
    return format(Decimal(value).normalize(), "f")


def _summary(found: UsageReport) -> None:
    units = sum(e.value for e in found.events if e.identifier in set(found.sent))
    echo(
        f"Sent {len(found.sent)} meter events ({_units(units)} units)"
        + (f" and {len(found.resent)} an earlier run had not seen through" if found.resent else "")
        + "."
    )
    for change in found.quantities_set:
        echo(f"Quantity set: {_quantity(change)} (prorated on the next invoice).")
    _problems(found)


def _problems(found: UsageReport) -> None:
    for late in found.late:
        echo(
            f"Not sent: {late.item.customer_id} {late.item.feature}: {_units(late.value)} units "
            f"of the period that ended {late.period_end:%Y-%m-%d}: Stripe takes usage up to "
            "35 days old",
            err=True,
        )
    for identifier in found.unconfirmed:
        echo(
            f"Not sent again: {identifier}: written down over 23 hours ago, Stripe may have it "
            "(check the meter's event summaries; delete its usage_reports row to send it)",
            err=True,
        )
    for identifier, why in found.failed:
        echo(f"Not sent: {identifier}: {why} (the next run sends it)", err=True)


class _Progress:
    """`Reporting usage: 120/4000` on the terminal, redrawn in place."""

    def __call__(self, done: int, total: int) -> None:
        end = "\n" if done == total else ""
        echo(f"\rReporting usage: {done}/{total}{end}", nl=False, err=True)
