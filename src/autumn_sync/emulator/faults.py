"""Load and fault knobs: latency, a token-bucket rate limit, injected 500s, dropped responses.

A second bucket limits `POST /v1/billing/meter_events` alone. Stripe allows that endpoint
1,000 calls per second in live mode, while in test mode its calls count toward the basic limit
only; so it is off by default (the emulator answers as test mode) and a test turns it on to see
the tool back off from 429s while reporting usage.

The random draws come from one seeded generator so a run can be reproduced (given the same
order of requests). Knobs can be changed while the emulator runs.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable


class Unset(enum.Enum):
    """Marks a knob left out of `Faults.configure`."""

    KEEP = "keep"


class TokenBucket:
    """`rate` tokens per second, holding at most `burst` (default: one second's worth)."""

    def __init__(
        self, rate: float, burst: float | None = None, now: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self._now = now
        self._tokens = self.capacity
        self._stamp = now()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        with self._lock:
            now = self._now()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class Faults:
    """The emulator's knobs and the decisions they make for each request."""

    def __init__(
        self,
        latency_ms: float = 0.0,
        rate_limit: float | None = None,
        fault_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
        meter_event_rate_limit: float | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.latency_ms = 0.0
        self.fault_rate = 0.0
        self.drop_rate = 0.0
        self.bucket: TokenBucket | None = None
        self.meter_event_bucket: TokenBucket | None = None
        self.configure(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            fault_rate=fault_rate,
            drop_rate=drop_rate,
            meter_event_rate_limit=meter_event_rate_limit,
        )

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        rate_limit: float | Unset | None = Unset.KEEP,
        fault_rate: float | None = None,
        drop_rate: float | None = None,
        meter_event_rate_limit: float | Unset | None = Unset.KEEP,
    ) -> None:
        """Change knobs; arguments left out keep their value (`rate_limit=None` removes it,
        as `meter_event_rate_limit=None` does)."""
        if latency_ms is not None:
            self.latency_ms = _non_negative("latency_ms", latency_ms)
        if rate_limit is not Unset.KEEP:
            self.bucket = None if rate_limit is None else TokenBucket(float(rate_limit))
        if meter_event_rate_limit is not Unset.KEEP:
            limit = meter_event_rate_limit
            self.meter_event_bucket = None if limit is None else TokenBucket(float(limit))
        if fault_rate is not None:
            self.fault_rate = _fraction("fault_rate", fault_rate)
        if drop_rate is not None:
            self.drop_rate = _fraction("drop_rate", drop_rate)

    def delay(self) -> None:
        """Sleep for the configured latency."""
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)

    def admit(self) -> bool:
        """Whether the rate limit lets this request through."""
        bucket = self.bucket
        return bucket is None or bucket.take()

    def admit_meter_event(self) -> bool:
        """Whether the meter-event rate limit lets this meter event through."""
        bucket = self.meter_event_bucket
        return bucket is None or bucket.take()

    def fault(self) -> bool:
        """Whether to answer this request with an injected 500 before doing anything."""
        return self._roll(self.fault_rate)

    def drop(self) -> bool:
        """Whether to close the connection instead of sending the (already made) response."""
        return self._roll(self.drop_rate)

    def _roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate


def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return float(value)
