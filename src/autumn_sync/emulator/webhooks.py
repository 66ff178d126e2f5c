"""Signed webhook delivery: the events Stripe sends when subscriptions and invoices change,
POSTed to one endpoint, so the whole loop (Stripe → webhook → billing database) runs locally.

After every request and every time-driven step (a renewal, a trial end, a cancellation
coming due; see `resources.due`), `Webhooks.observe` compares the statuses of subscriptions
and invoices with those it saw last and makes an event for each change, `created` at the
emulator's time of the change:

- a subscription whose status changed: `customer.subscription.updated` (with
  `previous_attributes.status`), or `customer.subscription.deleted` when it ended
  (`canceled`, `incomplete_expired`);
- an invoice paid (made paid, or paid later): `invoice.paid`; an invoice charged
  automatically that stays open with an amount due (no payment method, or the charge
  failed): `invoice.payment_failed`.

Each event is POSTed as JSON with a `Stripe-Signature` header as Stripe makes it:
`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the endpoint secret>`, signed at
each attempt with the wall clock (the receiver checks the time against its own). A delivery
that fails (no answer, or not 2xx) is retried with exponential backoff, a bounded number of
times. Deliveries run in one background thread: requests never wait for the endpoint.
Costs nothing when no webhook URL is configured.
"""

from __future__ import annotations

import copy
import heapq
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256

from autumn_sync.emulator.store import JsonDict, State, as_dict
from autumn_sync.emulator.views import present

API_VERSION = "2026-10-28.endive"
ENDED = ("canceled", "incomplete_expired")
ATTEMPTS = 6  # deliveries of one event at most
FIRST_DELAY = 0.5  # seconds before the first retry, doubled at each, at most MAX_DELAY
MAX_DELAY = 8.0
TIMEOUT = 5.0  # seconds an endpoint has to answer


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """Stripe's `Stripe-Signature` header value for `payload`, signed at `timestamp`."""
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode("utf-8"), signed, sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    event: JsonDict = field(compare=False)
    attempt: int = field(compare=False, default=1)


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver an event: the HTTP status (None: no answer)."""

    event_id: str
    type: str
    attempt: int
    status: int | None


class Webhooks:
    """Makes events of the state's changes and delivers them, signed, to `url`."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        attempts: int = ATTEMPTS,
        delays: tuple[float, float] = (FIRST_DELAY, MAX_DELAY),
        timeout: float = TIMEOUT,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.url, self._secret = url, secret
        self.attempts, self.delays, self.timeout = attempts, delays, timeout
        self._wall = wall
        self.events: list[JsonDict] = []  # every event made, oldest first
        self.deliveries: list[Delivery] = []  # every attempt, in order
        self._subscriptions: dict[str, object] = {}
        self._invoices: dict[str, object] = {}
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self._busy = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="stripe-webhooks", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Webhooks({self.url!r})"  # never the secret

    # --- events ---------------------------------------------------------------------------

    def snapshot(self, state: State) -> None:
        """Take the statuses as they are now, making no events (when delivery starts)."""
        with state.lock:
            self._subscriptions = _statuses(state, "subscription")
            self._invoices = _statuses(state, "invoice")

    def observe(self, state: State) -> None:
        """Make (and queue) the events of every status change since the last look."""
        for sub in state.tables["subscription"].rows.values():
            before = self._subscriptions.get(str(sub["id"]))
            if before is not None and before != sub["status"]:
                kind = "deleted" if sub["status"] in ENDED else "updated"
                self._emit(state, f"customer.subscription.{kind}", sub, {"status": before})
        for invoice in state.tables["invoice"].rows.values():
            before = self._invoices.get(str(invoice["id"]))
            if invoice["status"] != before:
                self._invoice_changed(state, invoice)
        self._subscriptions = _statuses(state, "subscription")
        self._invoices = _statuses(state, "invoice")

    def _invoice_changed(self, state: State, invoice: JsonDict) -> None:
        if invoice["status"] == "paid":
            self._emit(state, "invoice.paid", invoice)
        elif invoice["status"] == "open" and _charged_and_unpaid(invoice):
            self._emit(state, "invoice.payment_failed", invoice)

    def _emit(
        self, state: State, kind: str, obj: JsonDict, previous: JsonDict | None = None
    ) -> None:
        data: JsonDict = {"object": _presented(state, obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event: JsonDict = {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": API_VERSION,
            "created": state.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        with self._cond:
            self.events.append(event)
            heapq.heappush(self._queue, _Pending(self._wall(), next(self._seq), event))
            self._cond.notify_all()

    # --- delivery -------------------------------------------------------------------------

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until every event was delivered or given up on; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Stop delivering (what is still queued is dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=self.timeout + 1)

    def _run(self) -> None:
        while True:
            with self._cond:
                pending = self._next()
                if pending is None:
                    return
                self._busy += 1
            status = self._post(pending.event)
            with self._cond:
                self._busy -= 1
                self._record(pending, status)
                self._cond.notify_all()

    def _next(self) -> _Pending | None:
        """The next delivery once it is due (None: closed); called holding the lock."""
        while not self._closed:
            if self._queue and self._queue[0].due <= self._wall():
                return heapq.heappop(self._queue)
            wait = self._queue[0].due - self._wall() if self._queue else None
            self._cond.wait(wait)
        return None

    def _record(self, pending: _Pending, status: int | None) -> None:
        event = pending.event
        self.deliveries.append(
            Delivery(str(event["id"]), str(event["type"]), pending.attempt, status)
        )
        if (status is None or not 200 <= status < 300) and pending.attempt < self.attempts:
            delay = min(self.delays[0] * 2 ** (pending.attempt - 1), self.delays[1])
            retry = _Pending(self._wall() + delay, next(self._seq), event, pending.attempt + 1)
            heapq.heappush(self._queue, retry)

    def _post(self, event: JsonDict) -> int | None:
        body = json.dumps(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(body, self._secret, int(self._wall())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        request = urllib.request.Request(self.url, body.encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (OSError, ValueError):
            return None


def _statuses(state: State, kind: str) -> dict[str, object]:
    return {object_id: obj["status"] for object_id, obj in state.tables[kind].rows.items()}


def _charged_and_unpaid(invoice: JsonDict) -> bool:
    due = int(str(invoice.get("amount_remaining") or 0))
    return invoice.get("collection_method") == "charge_automatically" and due > 0


def _presented(state: State, obj: JsonDict) -> JsonDict:
    """The object as the API shows it (a copy, unexpanded)."""
    try:
        return present(state, obj)
    except Exception:  # an object no view presents: as stored
        return copy.deepcopy(dict(as_dict(obj)))
