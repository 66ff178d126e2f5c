"""Idempotency keys on POST requests, as Stripe keeps them.

A key is scoped to the API key that sent it. The first request with a key runs; its status
and body are kept (unless the result is one Stripe does not keep, see `StripeError.saved`) and
every later request with the same key and the same method, path and parameters gets them
again with `Idempotent-Replayed: true`. The same key with a different request is an
`idempotency_error`; while the first request still runs, a second one gets a 409. Keys are
forgotten 24 hours (emulator time) after their first use.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from autumn_sync.emulator.errors import idempotency_in_progress, idempotency_mismatch, invalid
from autumn_sync.emulator.forms import Form
from autumn_sync.emulator.store import Clock

KEY_TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass
class Record:
    """What the first request with a key asked, and (once finished) what it got."""

    method: str
    path: str
    params: Form
    created: int
    request_id: str
    status: int | None = None
    body: bytes = b""

    def same_request(self, method: str, path: str, params: Form) -> bool:
        """Whether another request is the identical request."""
        return (self.method, self.path, self.params) == (method, path, params)


class IdempotencyStore:
    """Idempotency records by (API key, idempotency key)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], Record] = {}
        self._order: deque[tuple[int, tuple[str, str]]] = deque()

    def begin(
        self, scope: str, key: str, method: str, path: str, params: Form, request_id: str
    ) -> Record | None:
        """The finished record to replay, or None after registering this request as running.

        Raises an idempotency error when the key belongs to a different request or to one
        still in progress.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise invalid(f"Idempotency keys may be at most {MAX_KEY_LENGTH} characters long.")
        with self._lock:
            self._prune()
            record = self._records.get((scope, key))
            if record is None:
                now = self._clock.now()
                self._records[(scope, key)] = Record(method, path, params, now, request_id)
                self._order.append((now, (scope, key)))
                return None
            if not record.same_request(method, path, params):
                raise idempotency_mismatch(key)
            if record.status is None:
                raise idempotency_in_progress(key)
            return record

    def finish(self, scope: str, key: str, status: int, body: bytes, keep: bool) -> None:
        """Record the result of the running request, or release the key when not kept."""
        with self._lock:
            if not keep:
                self._records.pop((scope, key), None)
                return
            record = self._records.get((scope, key))
            if record is not None:
                record.status, record.body = status, body

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def _prune(self) -> None:
        """Forget keys first used more than 24 hours ago (oldest first)."""
        horizon = self._clock.now() - KEY_TTL_SECONDS
        while self._order and self._order[0][0] <= horizon:
            created, ident = self._order.popleft()
            record = self._records.get(ident)
            if record is not None and record.created == created:
                del self._records[ident]
