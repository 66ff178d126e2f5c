"""What every Stripe applier gets (`StripeWriter`: the gateway, both Stripe states, the
journal and the ids known so far), the table appliers register in (`APPLIERS`), and
deterministic idempotency keys.

A key names the change and its generation: the address, the action, the parameters, how many
objects autumn-sync already made at that address, and the id the database recorded for it
before this change. A retry or a re-run of the same change sends the same key; re-creating an
object after an earlier one was archived, deleted in the dashboard or lost its ownership sends
a new one (Stripe would otherwise replay the old object for 24 hours).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from autumn_sync.model.stripe import OWNER_KEY, StripeState
from autumn_sync.plan.changes import Change
from autumn_sync.plan.registry import Appliers
from autumn_sync.stripe.gateway import Gateway, StripeFailure
from autumn_sync.stripe.journal import REJECTED, Journal

OnDone = Callable[[Connection, str], None]  # runs in the journal's transaction with the id


@dataclass
class StripeWriter:
    gateway: Gateway
    existing: StripeState
    desired: StripeState
    journal: Journal
    ids: dict[str, str] = field(default_factory=dict)  # address → Stripe id
    defaults: dict[str, str | None] = field(default_factory=dict)  # product → default price id

    def __post_init__(self) -> None:
        for kind in self.existing.kinds():
            for address, record in kind.items():
                if record.stripe_id:
                    self.ids[address] = record.stripe_id
        for address, product in self.existing.products.items():
            self.defaults[address] = product.default_price_id

    def write(
        self,
        change: Change,
        path: str,
        params: dict[str, Any],
        step: str = "",
        remember: str | None = None,
        name: str | None = None,
        also: OnDone | None = None,
    ) -> dict[str, Any]:
        """POST `params` to `path` for `change`, journaled, with its idempotency key. With
        `remember` (an address), the object's id is recorded for it (and `name` as the
        product name written) in the journal's transaction, as `also` records it elsewhere
        (a customer's Stripe id in its row)."""
        # A create keeps its key across runs (a stale plan applied twice replays it, never
        # makes a second object); any other write counts the earlier completed writes to the
        # address, so archive → reactivate → archive are three requests, not one replayed.
        earlier = 0 if path in CREATE_PATHS else self.journal.writes_before(change.address)
        generation = (self.existing.generations.get(change.address, 0), earlier)
        previous = self.existing.recorded.get(change.address)
        key = idempotency_key(change, path, params, generation, step, previous)
        key = self.journal.usable_key(key)
        self.journal.record(change.address, change.action, key, "started")
        try:
            obj = self.gateway.post(path, params, key)
        except Exception as exc:
            status = REJECTED if isinstance(exc, StripeFailure) and exc.rejected else "failed"
            self.journal.record(change.address, change.action, key, status, message=str(exc))
            raise
        self.journal.record(
            change.address,
            change.action,
            key,
            "done",
            obj.get("id"),
            remember=remember,
            name=name,
            also=also,
        )
        if remember is not None:
            self.ids[remember] = obj["id"]
        return obj

    def cancel(self, change: Change, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """DELETE `path` (cancelling a subscription now), journaled. Stripe takes no
        idempotency key on a DELETE: a retry whose first attempt went through is refused as
        already cancelled, which is then read back and taken as done."""
        key = f"DELETE {path}"  # what the journal shows in place of a key
        self.journal.record(change.address, change.action, key, "started")
        try:
            obj = self.gateway.request("delete", path, params)
        except StripeFailure as exc:
            current = self.gateway.request("get", path, {}) if exc.rejected else {}
            if current.get("status") != "canceled":
                status = REJECTED if exc.rejected else "failed"
                self.journal.record(change.address, change.action, key, status, message=str(exc))
                raise
            obj = current
        self.journal.record(change.address, change.action, key, "done", obj.get("id"))
        return obj


CREATE_PATHS = frozenset(
    {
        "/v1/products",
        "/v1/prices",
        "/v1/billing/meters",
        "/v1/coupons",
        "/v1/promotion_codes",
        "/v1/customers",
        "/v1/subscriptions",
        "/v1/subscription_schedules",
    }
)


def idempotency_key(
    change: Change,
    path: str,
    params: dict[str, Any],
    generation: tuple[int, int],
    step: str,
    previous: str | None = None,
) -> str:
    """The deterministic key of one request of `change`. `generation` is how many objects
    were made at the address and how many writes to it completed before; `previous` is the
    Stripe id the database recorded for the address before the change."""
    text = json.dumps(
        [change.address, change.action, step, path, params, generation, previous],
        sort_keys=True,
        default=str,
    )
    return "autumn-sync-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def owner_metadata(address: str, **extra: str) -> dict[str, str]:
    return {OWNER_KEY: address, **extra}


def reclaim(old: object, address: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` plus the ownership metadata when `old` lost it outside the tool."""
    if getattr(old, "owned", True):
        return params
    metadata = {**params.get("metadata", {}), OWNER_KEY: address}
    return {**params, "metadata": metadata}


APPLIERS: Appliers[StripeWriter] = Appliers("Stripe appliers")
