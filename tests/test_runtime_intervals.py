"""Calendar arithmetic of resets and renewals: month ends, leap years, and (property) the next
boundary is the first one after now."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autumn_sync.runtime.intervals import add_intervals, next_boundary, recurs

INTERVALS = ("day", "week", "month", "quarter", "semi_annual", "year")


@pytest.mark.parametrize(
    ("start", "interval", "count", "expected"),
    [
        (datetime(2026, 1, 31), "month", 1, datetime(2026, 2, 28)),
        (datetime(2026, 1, 31), "month", 2, datetime(2026, 3, 31)),  # no drift from Feb 28
        (datetime(2028, 2, 29), "year", 1, datetime(2029, 2, 28)),
        (datetime(2028, 2, 29), "year", 4, datetime(2032, 2, 29)),
        (datetime(2026, 8, 31, 9, 30), "semi_annual", 1, datetime(2027, 2, 28, 9, 30)),
        (datetime(2026, 11, 30), "quarter", 1, datetime(2027, 2, 28)),
        (datetime(2026, 12, 29), "week", 1, datetime(2027, 1, 5)),
        (datetime(2026, 12, 31, 23), "day", 1, datetime(2027, 1, 1, 23)),
    ],
)
def test_add_intervals(start: datetime, interval: str, count: int, expected: datetime) -> None:
    assert add_intervals(start, interval, count) == expected


def test_next_boundary_is_strictly_after_now() -> None:
    anchor = datetime(2026, 1, 10, 12)
    assert next_boundary(anchor, "month", datetime(2026, 1, 1)) == anchor
    assert next_boundary(anchor, "month", anchor) == datetime(2026, 2, 10, 12)
    assert next_boundary(anchor, "month", datetime(2026, 5, 20)) == datetime(2026, 6, 10, 12)
    assert next_boundary(anchor, "year", datetime(2030, 1, 10, 12)) == datetime(2031, 1, 10, 12)
    assert recurs("month") and not recurs("one_off") and not recurs(None)


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))


@given(anchor=moments, now=moments, interval=st.sampled_from(INTERVALS))
def test_next_boundary_is_the_first_boundary_after_now(
    anchor: datetime, now: datetime, interval: str
) -> None:
    found = next_boundary(anchor, interval, now)
    assert found > now
    if found > anchor:  # then the boundary before it has passed
        count = next(k for k in range(1, 10**6) if add_intervals(anchor, interval, k) == found)
        assert add_intervals(anchor, interval, count - 1) <= now
    else:
        assert found == anchor
