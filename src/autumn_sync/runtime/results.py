"""What the runtime API returns: frozen records with an `as_dict()` for JSON output
(decimals stay `Decimal`, times `datetime`/`date`: `render.json.exact_json` writes them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from autumn_sync.model.address import Kind, customer_key, keyed
from autumn_sync.runtime.entitlements import BOOLEAN, FeatureBalance

CREATED = "created"  # get_or_create made a new customer
FOUND = "found"  # the id was known
CLAIMED = "claimed"  # a pre-provisioned customer with this email got the id


@dataclass(frozen=True)
class CheckResult:
    """The answer of `check`: whether `required` units of `feature_id` may be used now.
    `balance` is the feature's own, or that of the credit system the feature is counted in
    (`credit_system`, at `credit_cost` credits per unit: `needed` is in credits then)."""

    customer_id: str
    feature_id: str
    required: Decimal
    allowed: bool
    balance: FeatureBalance
    credit_system: str | None = None
    credit_cost: Decimal | None = None
    entity: str | None = None  # the entity checked (its balance, then its customer's)

    @property
    def needed(self) -> Decimal:
        """What the check takes from the balance: `required`, times the credit cost."""
        return self.required * (self.credit_cost or 1)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "customer_id": self.customer_id,
            **({"entity_id": self.entity} if self.entity is not None else {}),
            "feature_id": self.feature_id,
            "allowed": self.allowed,
            "required": self.required,
        }
        if self.balance.type == BOOLEAN:
            return {**found, "type": BOOLEAN}
        found.update({k: v for k, v in self.balance.as_dict().items() if k != "feature_id"})
        if self.credit_system is not None:
            found.update(
                credit_system=self.credit_system,
                credit_cost=self.credit_cost,
                needed=self.needed,
            )
        return found


@dataclass(frozen=True)
class TrackResult:
    """The answer of `track`: `value` units of `feature_id` recorded as `charged` units of
    `charged_feature` (the feature itself, or a credit system), and that balance after it.
    `replayed`: the `idempotency_key` was recorded before: this is that event, nothing was
    added, and `balance` is the balance now. `recorded`: the units of `charged` the balance
    took (given back, negative); `dropped`: those it did not (no overage allowed, or past
    the cap)."""

    customer_id: str
    feature_id: str
    value: Decimal
    charged_feature: str
    charged: Decimal
    balance: FeatureBalance
    idempotency_key: str | None = None
    replayed: bool = False
    entity: str | None = None
    recorded: Decimal | None = None  # None: a replay (the first event's count is not kept)
    dropped: Decimal = Decimal(0)

    def as_dict(self) -> dict[str, Any]:
        after = {k: v for k, v in self.balance.as_dict().items() if k not in ("feature_id", "type")}
        counted = {} if self.recorded is None else {"recorded": self.recorded}
        keyed = (
            {"idempotency_key": self.idempotency_key, "replayed": self.replayed}
            if self.idempotency_key is not None
            else {}
        )
        return {
            "customer_id": self.customer_id,
            **({"entity_id": self.entity} if self.entity is not None else {}),
            "feature_id": self.feature_id,
            "value": self.value,
            "charged_feature": self.charged_feature,
            "charged": self.charged,
            **counted,
            "dropped": self.dropped,
            **keyed,
            **after,
        }


@dataclass(frozen=True)
class PlanInfo:
    """A plan a customer (or one of its entities) is on, with its status at the time of
    asking (a trial that has ended reads `active`, one that has not begun `scheduled`, one
    past its end `ended`) and its next renewal (None for a plan
    without a recurring price)."""

    plan_id: str
    version: int
    status: str
    custom: bool = False
    entity_id: str | None = None
    quantity: int = 1
    started_at: date | None = None
    attached_at: datetime | None = None
    trial_ends_at: date | None = None
    begins_at: date | None = None  # access begins (a future start, a pending downgrade's plan)
    ends_at: date | None = None  # access ends (a downgrade, a cancellation in Stripe)
    price_amount: Decimal | None = None
    price_interval: str | None = None
    next_renewal: datetime | None = None
    stripe_subscription_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "version": self.version,
            "custom": self.custom,
            "status": self.status,
            "entity_id": self.entity_id,
            "quantity": self.quantity,
            "started_at": self.started_at,
            "attached_at": self.attached_at,
            "trial_ends_at": self.trial_ends_at,
            "begins_at": self.begins_at,
            "ends_at": self.ends_at,
            "price": None
            if self.price_amount is None
            else {"amount": self.price_amount, "interval": self.price_interval},
            "next_renewal": self.next_renewal,
            "stripe_subscription_id": self.stripe_subscription_id,
        }


@dataclass(frozen=True)
class CustomerInfo:
    """A customer as the database holds it. `managed`: the file declares it (`file_key` is
    how); `outcome` (get_or_create only): created, found, or claimed."""

    id: str | None
    email: str | None
    name: str | None
    fingerprint: str | None
    managed: bool
    created_at: datetime
    plans: tuple[PlanInfo, ...] = ()
    stripe_id: str | None = None
    file_key: str | None = None
    outcome: str | None = None

    @property
    def address(self) -> str:
        """`customer.user_123`, or `customer[billing@acme.com]` while it has no id."""
        return keyed(Kind.CUSTOMER, customer_key(self.id, self.email))

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "managed": self.managed,
            "created_at": self.created_at,
            "stripe_id": self.stripe_id,
            "plans": [plan.as_dict() for plan in self.plans],
        }
        if self.outcome is not None:
            found["outcome"] = self.outcome
        return found
