"""The emulator's stored objects: one table per kind, a clock, and id generation.

Time-driven work (renewals, trial ends, schedule phases) is done lazily: `due_at` is the
earliest moment something falls due, and `run_due`, called before each request, hands the
state to `due_handler` only once the clock has passed it.

Objects are kept as JSON-ready dicts in their full shape (fields Stripe hides unless expanded,
such as price `tiers`, are stored and stripped when presented). References to other objects
are ids. Every table remembers the creation order (a global sequence), which lists and cursors
use; the sequence of a deleted object is kept so a cursor pointing at it still works.

Tests may look at and change objects behind the API's back through `State.get`, `State.all`,
`State.modify` and `State.set_metadata`.
"""

from __future__ import annotations

import copy
import math
import random
import string
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

from autumn_sync.emulator.errors import no_such

JsonDict = dict[str, object]

# kind (the `object` field) -> (id prefix, noun used in "No such ..." messages)
KINDS: dict[str, tuple[str, str]] = {
    "product": ("prod_", "product"),
    "price": ("price_", "price"),
    "billing.meter": ("mtr_", "billing meter"),
    "customer": ("cus_", "customer"),
    "subscription": ("sub_", "subscription"),
    "subscription_item": ("si_", "subscription item"),
    "coupon": ("", "coupon"),
    "promotion_code": ("promo_", "promotion code"),
    "discount": ("di_", "discount"),
    "payment_method": ("pm_", "payment method"),
    "invoice": ("in_", "invoice"),
    "invoiceitem": ("ii_", "invoice item"),
    "line_item": ("il_", "line item"),
    "subscription_schedule": ("sub_sched_", "subscription schedule"),
}
ID_ALPHABET = string.ascii_letters + string.digits


class Clock:
    """Emulator time: the wall clock plus an offset that tests can advance."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self.offset = 0.0

    def now(self) -> int:
        """Seconds since the epoch, as Stripe's timestamps are."""
        return int(self._now() + self.offset)

    def advance(self, seconds: float) -> None:
        """Move emulator time forward (for expiry of idempotency keys, trials, periods)."""
        self.offset += seconds


class Table:
    """The objects of one kind, in creation order."""

    def __init__(self) -> None:
        self.rows: dict[str, JsonDict] = {}
        self._ids: list[str] = []
        self._seqs: list[int] = []
        self.seq_of: dict[str, int] = {}

    def add(self, obj: JsonDict, seq: int) -> None:
        """Store a new object; `seq` must be larger than any before."""
        object_id = str(obj["id"])
        self.rows[object_id] = obj
        self._ids.append(object_id)
        self._seqs.append(seq)
        self.seq_of[object_id] = seq

    def remove(self, object_id: str) -> None:
        """Drop an object (its sequence stays known for cursors)."""
        del self.rows[object_id]
        index = bisect_left(self._seqs, self.seq_of[object_id])
        del self._ids[index]
        del self._seqs[index]

    def newest_first(self, below: int | None = None) -> Iterator[JsonDict]:
        """Objects from newest to oldest, only those created before sequence `below`."""
        end = len(self._seqs) if below is None else bisect_left(self._seqs, below)
        for index in range(end - 1, -1, -1):
            yield self.rows[self._ids[index]]

    def oldest_first(self, above: int) -> Iterator[JsonDict]:
        """Objects from oldest to newest, only those created after sequence `above`."""
        start = bisect_left(self._seqs, above + 1)
        for index in range(start, len(self._ids)):
            yield self.rows[self._ids[index]]


class State:
    """All stored objects, guarded by one re-entrant lock."""

    def __init__(self, clock: Clock | None = None, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self.tables: dict[str, Table] = {kind: Table() for kind in KINDS}
        self.lookup_keys: dict[str, str] = {}
        self._ids = random.Random(seed)
        self._seq = 0
        self.due_at: float = math.inf
        self.due_handler: Callable[[State], None] | None = None
        self.frozen_now: int | None = None
        # Meter events have no id and are never listed: kept per meter, in the order received,
        # with the moment each `identifier` was last accepted (for its uniqueness window).
        self.meter_events: dict[str, list[JsonDict]] = {}
        self.meter_identifiers: dict[str, int] = {}
        # called after each request and each time-driven step (webhook events)
        self.observer: Callable[[State], None] | None = None

    def wake_at(self, moment: int | None) -> None:
        """Note that something (a renewal, a trial end, a phase change) falls due at `moment`."""
        if moment is not None and moment < self.due_at:
            self.due_at = moment

    def run_due(self) -> None:
        """Process what fell due since the last request; costs one comparison when nothing did."""
        if self.due_handler is not None and self.clock.now() >= self.due_at:
            with self.lock:
                self.due_handler(self)

    def observe(self) -> None:
        """Let the observer (webhook delivery) see what changed; holding the lock."""
        if self.observer is not None:
            self.observer(self)

    def now(self) -> int:
        """The emulator's current time (the moment being processed while catching up)."""
        return self.frozen_now if self.frozen_now is not None else self.clock.now()

    def new_id(self, kind: str, length: int = 24) -> str:
        """A fresh random id with the kind's prefix (reproducible with a seed)."""
        prefix = KINDS[kind][0]
        while True:
            body = "".join(self._ids.choice(ID_ALPHABET) for _ in range(length))
            if prefix + body not in self.tables[kind].rows:
                return prefix + body

    def random_token(self, length: int = 24) -> str:
        """A random letters-and-digits token (generated meter event identifiers)."""
        return "".join(self._ids.choice(ID_ALPHABET) for _ in range(length))

    def random_code(self, length: int = 8) -> str:
        """A random upper-case code (generated coupon ids and promotion codes)."""
        alphabet = string.ascii_uppercase + string.digits
        return "".join(self._ids.choice(alphabet) for _ in range(length))

    def add(self, obj: JsonDict) -> JsonDict:
        """Store a new object under its kind (`obj["object"]`)."""
        with self.lock:
            self._seq += 1
            self.tables[str(obj["object"])].add(obj, self._seq)
            return obj

    def find(self, kind: str, object_id: str) -> JsonDict | None:
        """The stored object (not a copy), or None."""
        return self.tables[kind].rows.get(object_id)

    def require(self, kind: str, object_id: str, param: str = "id", status: int = 404) -> JsonDict:
        """The stored object, or Stripe's `resource_missing` error."""
        obj = self.find(kind, object_id)
        if obj is None:
            raise no_such(KINDS[kind][1], object_id, param, status=status)
        return obj

    def remove(self, kind: str, object_id: str) -> None:
        """Delete an object for good."""
        with self.lock:
            self.tables[kind].remove(object_id)

    def kind_of(self, object_id: str) -> str | None:
        """Which table holds `object_id`, if any."""
        for kind, table in self.tables.items():
            if object_id in table.rows:
                return kind
        return None

    # Helpers for tests: inspect and change objects behind the API's back.

    def get(self, kind: str, object_id: str) -> JsonDict:
        """A deep copy of the stored object (raises KeyError when absent)."""
        with self.lock:
            return copy.deepcopy(self.tables[kind].rows[object_id])

    def all(self, kind: str) -> list[JsonDict]:
        """Deep copies of every stored object of `kind`, oldest first."""
        with self.lock:
            return copy.deepcopy(list(self.tables[kind].rows.values()))

    def count(self, kind: str) -> int:
        """How many objects of `kind` are stored."""
        return len(self.tables[kind].rows)

    def modify(self, kind: str, object_id: str, **fields: object) -> JsonDict:
        """Overwrite fields of a stored object without any of Stripe's rules (drift tests)."""
        with self.lock:
            obj = self.tables[kind].rows[object_id]
            obj.update(copy.deepcopy(fields))
            if kind == "price" and "lookup_key" in fields:
                self.reindex_lookup_keys()
            return copy.deepcopy(obj)

    def set_metadata(self, kind: str, object_id: str, key: str, value: str | None) -> None:
        """Set one metadata key behind the API's back; None deletes it."""
        with self.lock:
            metadata = self.tables[kind].rows[object_id].setdefault("metadata", {})
            assert isinstance(metadata, dict)
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value

    def reindex_lookup_keys(self) -> None:
        """Rebuild the lookup-key index after prices were changed directly."""
        self.lookup_keys = {
            str(price["lookup_key"]): price_id
            for price_id, price in self.tables["price"].rows.items()
            if price.get("lookup_key")
        }


def mapping(value: object) -> dict[str, str]:
    """A copy of a stored string mapping such as `metadata` (empty when unset)."""
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def as_dict(value: object) -> dict[str, object]:
    """A shallow copy of a stored hash (empty when unset)."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}
