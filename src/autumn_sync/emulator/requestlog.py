"""A log of every request the emulator answered (or dropped), for tests to count and inspect."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class LoggedRequest:
    """One request: what was asked and how it ended.

    `template` is the endpoint's path template (`/v1/prices/{id}`); `status` is None when the
    response was dropped; `outcome` is one of `ok`, `error`, `replayed`, `rate_limited`,
    `fault`, `unauthorized`, `dropped`.
    """

    method: str
    path: str
    template: str
    query: str
    idempotency_key: str | None
    status: int | None
    outcome: str


class RequestLog:
    """Thread-safe list of `LoggedRequest`s in the order they finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def record(self, entry: LoggedRequest) -> None:
        """Append one finished request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        """A copy of every logged request."""
        with self._lock:
            return list(self._entries)

    def counts(self) -> Counter[tuple[str, str]]:
        """How many requests each (method, path template) received."""
        with self._lock:
            return Counter((entry.method, entry.template) for entry in self._entries)

    def count(self, method: str | None = None, template: str | None = None) -> int:
        """How many requests match `method` and `template` (None matches any)."""
        with self._lock:
            return sum(
                1
                for entry in self._entries
                if (method is None or entry.method == method)
                and (template is None or entry.template == template)
            )

    def clear(self) -> None:
        """Forget every logged request."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
