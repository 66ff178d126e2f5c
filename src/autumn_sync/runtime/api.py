"""The runtime API: what the application calls while it runs.

    from autumn_sync import Billing

    billing = Billing("postgresql+psycopg://…")        # or Billing(engine=engine, clock=…)
    customer = billing.get_or_create("user_42", email="jane@example.com")
    if billing.check("user_42", "messages").allowed:
        billing.track("user_42", "messages", 1)

The configuration file declares the catalog, the enterprise customers and their allowances;
the application finds or makes its customers, checks what they may use and records what they
used. `apply` never resets usage. The rules are in `runtime.entitlements`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from autumn_sync.database.engine import connect
from autumn_sync.runtime import usage
from autumn_sync.runtime.customers import NewCustomer, get_or_create
from autumn_sync.runtime.entitlements import FeatureBalance, feature_balance
from autumn_sync.runtime.errors import InvalidRequest, InvalidWebhook
from autumn_sync.runtime.queries import customer_info, entitlements, known_customer
from autumn_sync.runtime.results import CheckResult, CustomerInfo, TrackResult
from autumn_sync.runtime.webhooks import WebhookResult, handle_event

Clock = Callable[[], datetime]
WEBHOOK_SECRET = "STRIPE_WEBHOOK_SECRET"  # the webhook endpoint's signing secret (whsec_…)


def utc_now() -> datetime:
    """Now in UTC, without tzinfo (as `pipeline.utc_now`: stored times are UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Billing:
    """The runtime API on one billing database.

    `database_url` is opened (and migrated) as the command line does (`None`: the
    `AUTUMN_SYNC_DATABASE_URL` environment variable, else `sqlite:///autumn-sync.db`), or an
    existing `engine` is used. `clock` returns now: an aware datetime (converted to UTC), or
    a naive one in UTC.
    `webhook_secret` verifies Stripe's webhooks (None: the `STRIPE_WEBHOOK_SECRET`
    environment variable). Errors are `BillingError`s (`UnknownCustomer`, `UnknownEntity`,
    `UnknownFeature`, `InvalidRequest`, `InvalidWebhook`).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        clock: Clock = utc_now,
        webhook_secret: str | None = None,
    ) -> None:
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else connect(database_url)
        self.clock = clock
        self._webhook_secret = webhook_secret or os.environ.get(WEBHOOK_SECRET)

    def now(self) -> datetime:
        """The clock's time as the database keeps it: UTC without tzinfo (an aware time is
        converted; a naive one is taken as UTC)."""
        now = self.clock()
        return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo is not None else now

    def close(self) -> None:
        """Close the database connections this object opened (not those of a given engine)."""
        if self._owns_engine:
            self.engine.dispose()

    def get_or_create(
        self,
        id: str,
        email: str | None = None,
        name: str | None = None,
        fingerprint: str | None = None,
    ) -> CustomerInfo:
        """The customer with `id`, made if need be (idempotent, also across processes).

        - known id: returned as it is (`outcome` "found"; nothing is updated);
        - else a pre-provisioned customer of the file (no id yet) with this `email`: it gets
          the id and keeps its plans, balances and everything the file says ("claimed");
        - else a new customer, not managed by the file, on every default plan (not archived,
          not an add-on) at its current version, with the plan's free trial unless the plan
          allows one trial per fingerprint and `fingerprint` already had one of this plan
          ("created").
        """
        new = NewCustomer(id=id, email=email, name=name, fingerprint=fingerprint)
        return get_or_create(self.engine, new, self.now())

    def check(
        self,
        customer_id: str,
        feature_id: str,
        required: usage.Number = 1,
        entity_id: str | None = None,
    ) -> CheckResult:
        """Whether the customer (or its entity `entity_id`) may use `required` units of the
        feature now, with the balance it is checked against: the total (limit, usage, next
        reset) and the breakdown per source, in the order usage is taken. An entity's own
        plans come first, then its customer's. Reads only: nothing is recorded."""
        needed = usage.amount(required, "required")
        if needed < 0:
            raise InvalidRequest(f"required must be 0 or more, not {needed}")
        entity = usage.entity_id(entity_id)
        return usage.check(self.engine, customer_id, feature_id, needed, self.now(), entity)

    def track(
        self,
        customer_id: str,
        feature_id: str,
        value: usage.Number,
        idempotency_key: str | None = None,
        entity_id: str | None = None,
        overage: str = "cap",
    ) -> TrackResult:
        """Record `value` units of the feature used by the customer (or its entity
        `entity_id`; negative values give usage back); a feature counted in a credit system
        deducts `value × credit cost` credits. The units are taken from the balance's sources
        in order (`runtime.breakdown`); past them, a pay-per-use item takes them as overage
        up to its `max_purchase` (`overage="allow"`: past it too), else they are not
        recorded (`dropped`). Every track is kept as a usage event (`show` lists the recent
        ones).

        With an `idempotency_key`, the event is recorded once per customer and key, also when
        processes track it at the same time: a repeat changes nothing and returns the first
        event (`replayed` true) with the balance as it is now; the same key with another
        feature or value raises `InvalidRequest`."""
        used = usage.amount(value, "value")
        key = usage.idempotency_key(idempotency_key)
        entity = usage.entity_id(entity_id)
        mode = usage.overage_mode(overage)
        now = self.now()
        return usage.track(self.engine, customer_id, feature_id, used, now, key, entity, mode)

    def customer(self, customer_id: str) -> CustomerInfo:
        """The customer with `customer_id` and its plans (`UnknownCustomer`)."""
        with self.engine.connect() as conn:
            row = known_customer(conn, customer_id)
            return customer_info(conn, row, self.now())

    def balances(self, customer_id: str, entity_id: str | None = None) -> list[FeatureBalance]:
        """Every feature the customer (or its entity) has an item, an allowance or a grant
        for, with its balance now."""
        now = self.now()
        entity = usage.entity_id(entity_id)
        with self.engine.connect() as conn:
            row = known_customer(conn, customer_id)
            if entity is not None:
                usage.known_entity(conn, row, entity)
            ents = entitlements(conn, row, now, entity or "")
        return [feature_balance(ents, fid, now) for fid in ents.shown_features()]

    def handle_stripe_event(self, payload: bytes | str, signature: str | None) -> WebhookResult:
        """Record what a Stripe webhook says (checkout completed, invoice paid or failed,
        subscription updated or deleted) on the customer plans of its subscription, once.

        `payload` is the request's raw body, `signature` its `Stripe-Signature` header. A
        missing or wrong signature, or a body that is no event, raises `InvalidWebhook`
        (answer 400) and writes nothing; an event processed before is a no-op (`outcome`
        "duplicate"), and one older than an event already processed for its subscription
        changes no status ("stale"). See `runtime.webhooks`.
        """
        # the gateway (the one importer of `stripe`) verifies; imported here, where it is
        # needed: `autumn_sync.stripe` imports the database package, which imports this one
        from autumn_sync.stripe.gateway import WebhookRejected, verify_webhook

        try:
            event = verify_webhook(payload, signature, self._webhook_secret)
        except WebhookRejected as exc:
            raise InvalidWebhook(str(exc)) from None
        return handle_event(self.engine, event, self.now())
