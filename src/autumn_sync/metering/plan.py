"""What `usage report` sends: the meter events that bring Stripe's usage of each billed
item, per period, up to the usage `track` recorded, and what they cost. Pure: no I/O.

A customer's usage of a feature priced pay-per-use is reported whole (the price's first
tier, up to the included units, is free: Stripe bills only what is beyond), in whole units
as Stripe's meters take them (a fraction of a unit used counts as a unit). A price "amount
per N units" bills the usage beyond the free tier in whole packs of N, rounded up: the units
reported are the included ones and the packs begun, each counted as N units (101 beyond at
$1 per 100 are reported as 200: Stripe, which prices each unit at amount / N, bills $2).
Stripe's prices stay per unit: `transform_quantity` would round packs in Stripe, but it
does not go with tiers, and the free tier is one. Per period (the balance's, which ends at
its reset), the units already reported (sent, or written down to send) are taken from the
units to report: the rest is one event. Its identifier names the customer, the feature,
the period and the units reported before it, so the same event written again by a run that
died is the same identifier, which Stripe counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

WINDOW = timedelta(days=35)  # Stripe takes meter events up to 35 days old
ZERO = Decimal(0)


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # units; None: the last tier
    amount: Decimal  # minor units per unit


@dataclass(frozen=True)
class BilledItem:
    """A customer's feature billed pay-per-use on a Stripe meter: who, which meter, and the
    price (in minor units per unit, the included units a free first tier; the price is for
    `per` units, so the usage beyond the free tier is billed in whole packs of `per`)."""

    customer_internal_id: int
    customer_id: str
    stripe_customer_id: str
    feature: str
    plan: str
    event_name: str
    meter: str  # the meter's address
    included: Decimal
    tiers: tuple[Tier, ...]
    volume: bool = False
    currency: str = "usd"
    per: int = 1

    @property
    def free(self) -> Decimal:
        """The units of the price's free first tier (Stripe's tiers end on whole units)."""
        return whole(self.included)

    def billed(self, usage: Decimal) -> Decimal:
        """The units Stripe's meter should hold for `usage` in a period: the usage in whole
        units, those beyond the free tier rounded up to whole packs of `per` (at 1 per 100
        with 1,000 included, 1,101 are reported as 1,200: Stripe bills 2 packs)."""
        used = whole(usage)
        if used <= self.free:
            return used
        packs = ((used - self.free) / self.per).to_integral_value(rounding=ROUND_CEILING)
        return self.free + packs * self.per

    def cost(self, units: Decimal) -> Decimal:
        """What Stripe bills for `units` on the meter in a period: through the tiers, the
        line rounded once to a whole minor unit (halves away from zero), as Stripe does."""
        tiers = (Tier(self.free, ZERO), *self.tiers) if self.free else self.tiers
        if self.volume:
            tier = next((t for t in tiers if t.up_to is None or units <= t.up_to), tiers[-1])
            return _minor_units(units * tier.amount)
        total, floor = ZERO, ZERO
        for tier in tiers:
            top = units if tier.up_to is None else min(units, tier.up_to)
            if top > floor:
                total += (top - floor) * tier.amount
            floor = max(floor, tier.up_to or floor)
        return _minor_units(total)


@dataclass(frozen=True)
class SeatItem:
    """A customer's continuous feature (seats in use) billed pay-per-use: Stripe bills the
    quantity of its subscription's item at `stripe_price.<plan>.<feature>`, which is the
    usage `track` recorded, prorated."""

    customer_id: str
    plan: str
    feature: str
    subscription: str  # its Stripe subscription's id
    usage: Decimal

    @property
    def quantity(self) -> int:
        """The quantity Stripe should bill: the usage in whole units (none below 0)."""
        return max(int(whole(self.usage)), 0)


@dataclass(frozen=True)
class QuantityChange:
    """A subscription item's quantity set to the usage (`before` None: not read, a dry run
    without Stripe)."""

    item: SeatItem
    item_id: str | None
    before: int | None
    after: int

    def idempotency_key(self, now: datetime) -> str:
        """Unique to this change: the item, the quantity and the run's time."""
        return f"autumn_sync:quantity:{self.item_id}:{self.after}:{now:%Y%m%dT%H%M%S}"


@dataclass(frozen=True)
class Period:
    """The usage of one billed feature in one period, and what was reported of it."""

    item: BilledItem
    end: datetime
    usage: Decimal
    reported: Decimal


@dataclass(frozen=True)
class MeterEvent:
    identifier: str
    item: BilledItem
    period_end: datetime
    value: Decimal
    timestamp: int
    amount: Decimal  # what Stripe bills for it, in minor units

    def params(self) -> dict[str, object]:
        """The request's parameters (`POST /v1/billing/meter_events`)."""
        item = self.item
        return event_params(
            item.event_name, self.identifier, self.timestamp, item.stripe_customer_id, self.value
        )


def event_params(
    event_name: str, identifier: str, timestamp: int, stripe_customer_id: str, value: Decimal
) -> dict[str, object]:
    """The parameters of `POST /v1/billing/meter_events` for one event."""
    return {
        "event_name": event_name,
        "identifier": identifier,
        "timestamp": timestamp,
        "payload": {
            "stripe_customer_id": stripe_customer_id,
            "value": format(value.normalize(), "f"),
        },
    }


@dataclass(frozen=True)
class Late:
    """Usage of a period Stripe no longer takes events for (over 35 days ago)."""

    item: BilledItem
    period_end: datetime
    value: Decimal


def whole(usage: Decimal) -> Decimal:
    """Stripe's meters take whole units: a fraction of a unit used is billed as a unit."""
    return usage.to_integral_value(rounding=ROUND_CEILING)


def identifier(item: BilledItem, period_end: datetime, before: Decimal) -> str:
    """`autumn_sync:user_1:messages:20270101T000000:1300` (at most 100 characters)."""
    units = format(before.normalize(), "f")
    text = f"autumn_sync:{item.customer_id}:{item.feature}:{period_end:%Y%m%dT%H%M%S}:{units}"
    return text if len(text) <= 100 else f"autumn_sync:{item.customer_internal_id}:{text[-60:]}"


def events(periods: Iterable[Period], now: datetime) -> Iterator[MeterEvent | Late]:
    """One event per period whose units to report (`BilledItem.billed`) are above what was
    reported: timestamped now, or in the last second of a period that ended."""
    for period in periods:
        billed = period.item.billed(period.usage)
        value = billed - period.reported
        if value <= 0:
            continue
        if period.end <= now - WINDOW:
            yield Late(period.item, period.end, value)
            continue
        moment = min(now, period.end - timedelta(seconds=1))
        cost = period.item.cost(billed) - period.item.cost(period.reported)
        yield MeterEvent(
            identifier=identifier(period.item, period.end, period.reported),
            item=period.item,
            period_end=period.end,
            value=value,
            timestamp=_epoch(moment),
            amount=cost,
        )


def periods_of(
    items: Iterable[BilledItem],
    usage: Mapping[tuple[int, str], Mapping[datetime, Decimal]],
    reported: Mapping[tuple[int, str, datetime], Decimal],
) -> Iterator[Period]:
    """The periods of each billed item with usage, oldest first."""
    for item in items:
        for end, used in sorted(usage.get((item.customer_internal_id, item.feature), {}).items()):
            done = reported.get((item.customer_internal_id, item.feature, end), ZERO)
            yield Period(item, end, used, done)


def _minor_units(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def _epoch(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())
