"""Calendar arithmetic for resets and renewals (pure).

An interval is one of `hour`, `day`, `week`, `month`, `quarter`, `semi_annual`, `year`
(`one_off` never recurs), taken `every` times (an item's `interval_count`). Months are
calendar months: a period that starts on the 31st ends on the last day of a shorter month
(Jan 31 + 1 month = Feb 28), and each boundary is counted from the anchor, so the day does
not drift (Jan 31 + 2 months = Mar 31).
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, time, timedelta

STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
DAYS = {"day": 1, "week": 7}
MONTHS = {"month": 1, "quarter": 3, "semi_annual": 6, "year": 12}


def recurs(interval: str | None) -> bool:
    """Whether `interval` repeats (`one_off` and None do not)."""
    return interval in STEPS or interval in MONTHS


def add_intervals(start: datetime, interval: str, count: int) -> datetime:
    """`start` plus `count` intervals."""
    if interval in STEPS:
        return start + STEPS[interval] * count
    years, month0 = divmod(start.month - 1 + MONTHS[interval] * count, 12)
    year = start.year + years
    day = min(start.day, monthrange(year, month0 + 1)[1])
    return start.replace(year=year, month=month0 + 1, day=day)


def next_boundary(anchor: datetime, interval: str, now: datetime, every: int = 1) -> datetime:
    """The first `anchor + k × every intervals` (k ≥ 0) strictly after `now`."""
    if anchor > now:
        return anchor
    count = _at_least(anchor, interval, now) // every * every
    while add_intervals(anchor, interval, count) <= now:
        count += every
    return add_intervals(anchor, interval, count)


def length(interval: str, every: int = 1) -> timedelta:
    """About how long `every` intervals last (to order intervals: shortest first)."""
    if interval in STEPS:
        return STEPS[interval] * every
    return timedelta(days=31 * MONTHS[interval] * every)


def _at_least(anchor: datetime, interval: str, now: datetime) -> int:
    """A count of intervals from `anchor` that does not pass `now` (where to start looking)."""
    if interval in STEPS:
        return max(int((now - anchor) / STEPS[interval]), 0)
    months = (now.year - anchor.year) * 12 + now.month - anchor.month
    return max(months // MONTHS[interval] - 1, 0)


def midnight(day: date) -> datetime:
    """The start of `day` (stored times are UTC, without tzinfo)."""
    return datetime.combine(day, time())
