"""Customers the file manages, and the balances it declares for them.

A customer is known by its `id`, or by its `email` while it is pre-provisioned (no id until
the application's first `get_or_create`). Its `key` is the part of every address that names
it: `.user_123` or `[billing@acme.com]`, so `customer.user_123`, `customer[billing@acme.com]`,
`balance.user_123.messages`, `stripe_subscription[billing@acme.com].month`. The key comes from
the file: a pre-provisioned customer keeps its email key after the application binds an id.

Fields only the database knows (the internal row id, the version of a plan a customer is on,
the Stripe ids, the plans it had a free trial of) are left out of the comparison
(`model.attributes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import ClassVar

from autumn_sync.model.address import Kind, key_label, keyed, named
from autumn_sync.model.records import FixedPrice, PlanItem

CHARGE_AUTOMATICALLY = "charge_automatically"
SEND_INVOICE = "send_invoice"
# `CustomerPlan.status` of a plan whose Stripe subscription someone else than autumn-sync
# cancelled (it ends at `ends`), and of one subscribed again
CANCELED = "canceled"
ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class CustomerPlan:
    """A plan a customer (or one of its entities) is on. `price` and `items` make a custom
    version for this customer alone: `price` replaces the plan's fixed price, `items` replace
    the included usage and reset of the plan's items of the same features."""

    plan: str
    quantity: int = 1
    quantities: tuple[tuple[str, int], ...] = ()  # prepaid units per feature, sorted
    start: date | None = None
    trial_days: int | None = None
    price: FixedPrice | None = None
    items: tuple[PlanItem, ...] = ()
    # When the plan gives access (and bills), as the database holds it (the diff works them
    # out, the file never sets them): from `begins` (a future start; the end of the paid
    # period of the plan a downgrade replaces) until `ends` (the end of that period for the
    # plan left; the end of a subscription cancelled in Stripe)
    begins: date | None = None
    ends: date | None = None
    # Known only in the current state:
    version: int | None = None
    status: str | None = None
    trial_ends_at: date | None = None
    stripe_subscription_id: str | None = None
    attached: date | None = None  # when the customer was put on the plan

    @property
    def custom(self) -> bool:
        return self.price is not None or bool(self.items)

    def units(self, feature: str) -> int | None:
        """The prepaid units of `feature` the file gives the customer (None: not set)."""
        return dict(self.quantities).get(feature)

    def held_on(self, day: date) -> bool:
        """Whether the plan gives access (and bills) on `day`."""
        begun = self.begins is None or self.begins <= day
        return begun and (self.ends is None or day < self.ends)


@dataclass(frozen=True, slots=True)
class Entity:
    """A team or seat under a customer, counted by a feature, with its own plans."""

    id: str
    feature: str
    name: str | None = None
    plans: tuple[CustomerPlan, ...] = ()


@dataclass(frozen=True, slots=True)
class Customer:
    key: str
    customer_id: str | None = None
    email: str | None = None
    name: str | None = None
    fingerprint: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    stripe_customer: str | None = None  # an existing Stripe customer to link (`cus_…`)
    stripe_create: bool = False  # create the Stripe customer now, not when billing needs it
    collection: str = CHARGE_AUTOMATICALLY
    days_until_due: int | None = None
    plans: tuple[CustomerPlan, ...] = ()  # sorted by plan id
    entities: tuple[Entity, ...] = ()  # sorted by id
    rewards: tuple[str, ...] = ()  # sorted
    # Known only in the current state:
    internal_id: int | None = None
    managed: bool = True  # False: created by the application, not (yet) by the file
    stripe_id: str | None = None  # the Stripe customer the database records
    trialed: tuple[tuple[str, str], ...] = ()  # (entity id or '', plan) it had a trial of, sorted

    kind: ClassVar[Kind] = Kind.CUSTOMER

    @property
    def address(self) -> str:
        return keyed(Kind.CUSTOMER, self.key)

    @property
    def label(self) -> str:
        return key_label(self.key)

    def all_plans(self) -> tuple[tuple[str | None, CustomerPlan], ...]:
        """(entity id or None, plan) for the customer's own plans and its entities'."""
        own = tuple((None, plan) for plan in self.plans)
        return own + tuple((e.id, plan) for e in self.entities for plan in e.plans)

    def references(self) -> tuple[str, ...]:
        refs = [named(Kind.PLAN, plan.plan) for _, plan in self.all_plans()]
        refs += [named(Kind.FEATURE, entity.feature) for entity in self.entities]
        refs += [named(Kind.REWARD, reward) for reward in self.rewards]
        return tuple(dict.fromkeys(refs))


@dataclass(frozen=True, slots=True)
class Grant:
    """Usage given once, keyed by id (positive or negative), until `expires` if set."""

    id: str
    amount: Decimal
    expires: date | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    """What the file declares of one customer's balance of one feature: an allowance that
    overrides the plans' included usage (until `reset_at` if set) and grants. Usage is the
    application's and never part of this record."""

    customer: str  # the customer's key
    feature: str
    allowance: Decimal | None = None
    reset_at: date | None = None
    grants: tuple[Grant, ...] = ()  # sorted by id

    kind: ClassVar[Kind] = Kind.BALANCE

    @property
    def address(self) -> str:
        return keyed(Kind.BALANCE, self.customer, self.feature)

    def references(self) -> tuple[str, ...]:
        """Its customer, and its feature while it declares something (a balance emptied as
        the feature leaves the file is emptied first: it does not wait for the feature)."""
        customer = keyed(Kind.CUSTOMER, self.customer)
        return (customer, named(Kind.FEATURE, self.feature)) if self.declared else (customer,)

    @property
    def declared(self) -> bool:
        return self.allowance is not None or self.reset_at is not None or bool(self.grants)


@dataclass(frozen=True, slots=True)
class Lookup:
    """The ids and emails of the file's customers: the database reader also returns the
    application's customers with these (the file may take over a customer the application
    created), besides every customer the file already manages."""

    ids: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()

    @classmethod
    def of(cls, customers: Iterable[Customer]) -> Lookup:
        listed = list(customers)
        return cls(
            ids=frozenset(c.customer_id for c in listed if c.customer_id),
            emails=frozenset(c.email for c in listed if c.email),
        )


def declared(customer: Customer) -> tuple[object, ...]:
    """What `customer` declares, as a tuple of its fields without what only the database
    knows (its row, the versions and status of its plans, Stripe ids): equal for equal
    declarations. A quick test before comparing field by field, and cheap to fingerprint."""
    values = list(_CUSTOMER_VALUES(customer))
    values[_PLANS] = _declared_plans(customer.plans)
    values[_ENTITIES] = tuple(_declared_entity(entity) for entity in customer.entities)
    return tuple(values)


def _declared_entity(entity: Entity) -> tuple[object, ...]:
    values = list(_ENTITY_VALUES(entity))
    values[_ENTITY_PLANS] = _declared_plans(entity.plans)
    return tuple(values)


def _declared_plans(plans: tuple[CustomerPlan, ...]) -> tuple[object, ...]:
    return tuple(map(_PLAN_VALUES, plans))


_CUSTOMER_STATE = frozenset({"key", "internal_id", "managed", "stripe_id", "trialed"})
_PLAN_STATE = frozenset(
    {"version", "status", "trial_ends_at", "stripe_subscription_id", "attached"}
)
_CUSTOMER_FIELDS = tuple(f.name for f in fields(Customer) if f.name not in _CUSTOMER_STATE)
_ENTITY_FIELDS = tuple(f.name for f in fields(Entity))
_PLAN_FIELDS = tuple(f.name for f in fields(CustomerPlan) if f.name not in _PLAN_STATE)
_CUSTOMER_VALUES = attrgetter(*_CUSTOMER_FIELDS)
_ENTITY_VALUES = attrgetter(*_ENTITY_FIELDS)
_PLAN_VALUES = attrgetter(*_PLAN_FIELDS)
_PLANS = _CUSTOMER_FIELDS.index("plans")
_ENTITIES = _CUSTOMER_FIELDS.index("entities")
_ENTITY_PLANS = _ENTITY_FIELDS.index("plans")
