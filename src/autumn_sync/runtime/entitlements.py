"""What a customer (or one of its entities) is entitled to, computed from the rows the
database holds (pure: no I/O).

The rules, shared by `check`, `track` and `show`:

- **Plans.** The customer's own plans (and, asked for an entity, the entity's plans too)
  whose status is active, trialing or past due (or cancelled in Stripe, until its end)
  count, within their dates, each at the version it is on; a custom item replaces the
  included usage and reset of that feature's item.
- **Boolean features** are allowed when some plan has the item.
- **Balances** of metered features and credit systems are a breakdown (`runtime.breakdown`):
  one source per plan item (its included usage; the prepaid units bought, `quantities`;
  a prepaid item without included usage gives `per` units for each unit of the plan's
  quantity), per grant that has not expired, and per rollover. An item that says
  `unlimited: true` makes the feature unlimited. The file's declared allowance
  (`balances.<feature>.allowance`) replaces the included usage of the customer's plan
  items while it applies (until `reset_at`): the first item in the order gets it, the others
  none; with no item it is a source of its own.
- **Plan changes.** The usage of the current period of a plan the customer left goes to the
  first item of the plan that replaced it: a new plan starts from it, not from 0.
- **Resets.** An item of a consumable feature (or a credit system) resets at its `reset`
  (else its price's interval) every `interval_count` intervals, counted from the billing
  cycle when the plan has a price (a trial's end, else its start), else from its start.
  Continuous features (seats) never reset; an entity of a feature counts as one unit of
  the customer's usage of it.
- **Credit systems.** A feature the customer has no source for, but that a credit system
  the customer has covers (`credit_costs`), is checked and tracked against the credit
  system's balance, at its credit cost per unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from autumn_sync.runtime.breakdown import (
    ALLOWANCE,
    GRANT,
    PLAN,
    ROLLOVER,
    Closed,
    Entry,
    Rollover,
    Source,
    Stored,
    advance,
    covers,
    deduct,
    entries_of,
    ordered,
    overage_target,
)
from autumn_sync.runtime.intervals import midnight, recurs

BOOLEAN = "boolean"
CREDIT_SYSTEM = "credit_system"
PAY_PER_USE = "pay_per_use"
PREPAID = "prepaid"
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FeatureDef:
    """A feature of the catalog; `credit_costs` (credit systems): feature → credits per unit."""

    id: str
    name: str
    type: str
    consumable: bool
    credit_costs: Mapping[str, Decimal]

    @property
    def resets(self) -> bool:
        return self.type == CREDIT_SYSTEM or (self.type != BOOLEAN and self.consumable)


@dataclass(frozen=True, slots=True)
class Item:
    """A plan item as one customer (or entity: `entity`) has it, custom items applied."""

    plan_id: str
    feature: str
    included: Decimal | None
    reset: str | None
    billing: str | None = None
    per: int | None = None
    price_interval: str | None = None
    quantity: int = 1
    units: int | None = None  # prepaid units bought (`quantities`), included ones counted
    anchor: datetime | None = None  # where its periods are counted from
    unlimited: bool = False  # `unlimited: true` (a custom included usage ends it)
    every: int = 1  # `interval_count`
    rollover: Rollover | None = None
    max_purchase: Decimal | None = None
    entity: str = ""

    @property
    def allowance(self) -> Decimal:
        if self.units is not None:
            return Decimal(self.units)
        if self.included is not None:
            return self.included
        if self.billing == PREPAID:
            return Decimal(self.quantity * (self.per or 1))
        return ZERO

    @property
    def interval(self) -> str | None:
        """The reset interval: `reset` (`one_off`: none), else the price's interval."""
        if self.reset is not None:
            return self.reset if recurs(self.reset) else None
        return self.price_interval if recurs(self.price_interval) else None


@dataclass(frozen=True, slots=True)
class Declared:
    """The file's allowance of a feature for a customer, until `reset_at`."""

    allowance: Decimal | None = None
    reset_at: date | None = None

    def applies(self, now: datetime) -> bool:
        return self.allowance is not None and (self.reset_at is None or now.date() < self.reset_at)


@dataclass(frozen=True, slots=True)
class GrantRow:
    feature: str
    amount: Decimal
    expires: date | None = None
    id: str = ""


@dataclass(frozen=True)
class Entitlements:
    """Everything `check` needs about one customer (or one of its entities, `entity`), as
    read in one go."""

    customer_id: str | None
    created_at: datetime
    features: Mapping[str, FeatureDef]
    items: tuple[Item, ...]
    declared: Mapping[str, Declared]
    grants: tuple[GrantRow, ...]
    stored: Mapping[tuple[str, str, str], Stored]  # (entity, feature, source key) → row
    entity: str = ""
    entity_counts: Mapping[str, int] | None = None  # feature → the customer's entities of it

    def items_for(self, feature: str) -> list[Item]:
        return [item for item in self.items if item.feature == feature]

    def holds(self, feature: str) -> bool:
        """Whether the customer has an item, a declared allowance or a grant for `feature`."""
        row = self.declared.get(feature)
        declared = row is not None and row.allowance is not None
        granted = any(g.feature == feature for g in self.grants)
        return bool(self.items_for(feature)) or declared or granted

    def shown_features(self) -> list[str]:
        """The features a customer view lists: those with an item, a balance or a grant."""
        found = {i.feature for i in self.items} | set(self.declared)
        found |= {g.feature for g in self.grants}
        return sorted(f for f in found if f in self.features)

    def rows_of(self, feature: str) -> dict[tuple[str, str], Stored]:
        return {(e, k): row for (e, f, k), row in self.stored.items() if f == feature}


@dataclass(frozen=True, slots=True)
class Route:
    """Where usage of a feature is counted: its own balance (cost 1), or a credit system's."""

    feature: str
    cost: Decimal = Decimal(1)
    credit_system: str | None = None


def route(ents: Entitlements, feature_id: str) -> Route:
    """The feature itself when the customer holds it; else the first credit system (by id)
    the customer holds that covers it; else the feature itself (which then has no access)."""
    if ents.holds(feature_id):
        return Route(feature_id)
    for fid in sorted(ents.features):
        cost = ents.features[fid].credit_costs.get(feature_id)
        if cost is not None and ents.holds(fid):
            return Route(fid, cost, credit_system=fid)
    return Route(feature_id)


# --- sources -------------------------------------------------------------------------------


def sources(ents: Entitlements, feature_id: str, now: datetime) -> list[Source]:
    """The sources of `feature_id`'s balance at `now` (grants not expired; rollovers of items
    still held)."""
    feature = ents.features[feature_id]
    plans = [_plan_source(ents, feature, item) for item in ents.items_for(feature_id)]
    declared = ents.declared.get(feature_id)
    if declared is not None and declared.applies(now):
        plans = _declared(plans, declared)
    grants = [_grant_source(g) for g in ents.grants if g.feature == feature_id]
    live = [g for g in grants if g.expires is None or g.expires > now]
    return plans + live + _rollovers(ents, feature_id, plans)


def _plan_source(ents: Entitlements, feature: FeatureDef, item: Item) -> Source:
    interval = item.interval if feature.resets else None
    return Source(
        key=f"{PLAN}:{item.plan_id}",
        kind=PLAN,
        entity=item.entity,
        plan_id=item.plan_id,
        granted=item.allowance,
        unlimited=item.unlimited,
        interval=interval,
        every=item.every,
        anchor=(item.anchor or ents.created_at) if interval else None,
        priced=item.billing == PAY_PER_USE,
        max_purchase=item.max_purchase if item.billing == PAY_PER_USE else None,
        rollover=item.rollover,
    )


def _declared(plans: list[Source], declared: Declared) -> list[Source]:
    """The plans' sources with the declared allowance in place of their included usage: the
    customer's first (in order) gets it, the others none; none: a source of its own."""
    assert declared.allowance is not None
    mine = [s for s in ordered(Entry(s) for s in plans) if not s.source.entity]
    ends = midnight(declared.reset_at) if declared.reset_at is not None else None
    if not mine:
        return [*plans, Source(ALLOWANCE, ALLOWANCE, granted=declared.allowance)]
    first = mine[0].source
    given = {first.key: declared.allowance}
    return [_replace_granted(s, given.get(s.key, ZERO), ends) if not s.entity else s for s in plans]


def _replace_granted(source: Source, granted: Decimal, ends: datetime | None) -> Source:
    return replace(source, granted=granted, unlimited=False, first_reset=ends)


def _grant_source(grant: GrantRow) -> Source:
    expires = midnight(grant.expires) if grant.expires is not None else None
    return Source(f"{GRANT}:{grant.id}", GRANT, granted=grant.amount, expires=expires)


def _rollovers(ents: Entitlements, feature_id: str, plans: list[Source]) -> list[Source]:
    """The stored rollovers of the items among `plans` (those of items no longer held wait)."""
    held = {(s.entity, s.plan_id): s for s in plans if s.kind == PLAN}
    found = []
    for (entity, key), row in sorted(ents.rows_of(feature_id).items()):
        if not key.startswith(f"{ROLLOVER}:"):
            continue
        plan = held.get((entity, key.split(":")[1]))
        if plan is None or row.amount is None:
            continue
        found.append(
            Source(
                key=key,
                kind=ROLLOVER,
                entity=entity,
                plan_id=plan.plan_id,
                granted=row.amount,
                interval=plan.interval,
                every=plan.every,
                expires=row.expires,
            )
        )
    return found


# --- balances ------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """A feature's entries at a moment (due resets applied, not yet written), the periods
    that closed, and the units its customer's entities take (seats)."""

    feature: str
    entries: list[Entry]
    closed: list[Closed]
    entities: Decimal = ZERO

    def viewed(self) -> list[Entry]:
        """The entries with the units the customer's entities take from its own sources
        (not from an entity's): what `check` sees."""
        if not self.entities:
            return self.entries
        own = [e for e in self.entries if e.source.entity]
        shared = [e for e in self.entries if not e.source.entity]
        return own + deduct(shared, self.entities).entries


def state(ents: Entitlements, feature_id: str, now: datetime) -> State:
    """The feature's breakdown at `now`: resets that are due applied (not written)."""
    rows = ents.rows_of(feature_id)
    found = carried_over(entries_of(sources(ents, feature_id, now), rows), rows, now)
    entries, closed = advance(found, now)
    counted = (ents.entity_counts or {}).get(feature_id, 0)
    return State(feature_id, entries, closed, Decimal(counted))


def carried_over(
    entries: list[Entry], rows: Mapping[tuple[str, str], Stored], now: datetime
) -> list[Entry]:
    """`entries` with the usage of the current period of plans left (a plan changed within
    its group) carried to the first item of the plans held that has no row yet: a new plan
    starts from the usage of the one it replaced, not from 0."""
    held = {(e.source.entity, e.source.key) for e in entries}
    left: dict[str, Decimal] = {}
    for (entity, key), row in rows.items():
        running = row.next_reset is None or row.next_reset > now
        if key.startswith(f"{PLAN}:") and (entity, key) not in held and running and row.used:
            left[entity] = left.get(entity, ZERO) + row.used
    result = list(entries)
    for entity, used in left.items():
        fresh = [
            e
            for e in ordered(result)
            if e.source.kind == PLAN
            and e.source.entity == entity
            and (entity, e.source.key) not in rows
        ]
        if fresh:
            index = result.index(fresh[0])
            result[index] = replace(fresh[0], used=fresh[0].used + used)
    return result


@dataclass(frozen=True, slots=True)
class FeatureBalance:
    """One feature's balance at a moment: `limit` (`included` from plans + `rollover` +
    `granted`) less `usage` is `balance` (negative in overage); `breakdown` is per source,
    in the order usage is taken. Unlimited features have no limit or balance."""

    feature: str
    type: str
    access: bool
    unlimited: bool = False
    breakdown: tuple[Entry, ...] = ()
    overage_allowed: bool = False
    max_purchase: Decimal | None = None

    def _total(self, *kinds: str) -> Decimal:
        return sum((e.source.granted for e in self.breakdown if e.source.kind in kinds), ZERO)

    @property
    def included(self) -> Decimal | None:
        return None if self.unlimited else self._total(PLAN, ALLOWANCE)

    @property
    def rollover(self) -> Decimal:
        return self._total(ROLLOVER)

    @property
    def granted(self) -> Decimal:
        return self._total(GRANT)

    @property
    def usage(self) -> Decimal:
        return sum((e.used for e in self.breakdown), ZERO)

    @property
    def overage(self) -> Decimal:
        return sum((e.overage for e in self.breakdown), ZERO)

    @property
    def limit(self) -> Decimal | None:
        if self.unlimited:
            return None
        return self._total(PLAN, ALLOWANCE, ROLLOVER, GRANT)

    @property
    def balance(self) -> Decimal | None:
        limit = self.limit
        return None if limit is None else limit - self.usage

    @property
    def next_reset(self) -> datetime | None:
        resets = [e.next_reset for e in self.breakdown if e.source.interval and e.next_reset]
        return min(resets, default=None)

    def covers(self, needed: Decimal) -> bool:
        """Whether `needed` more units may be used now."""
        return self.access and (self.type == BOOLEAN or covers(self.breakdown, needed))

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_id": self.feature,
            "type": self.type,
            "unlimited": self.unlimited,
            "limit": self.limit,
            "included": self.included,
            "rollover": self.rollover,
            "granted": self.granted,
            "usage": self.usage,
            "balance": self.balance,
            "overage": self.overage,
            "overage_allowed": self.overage_allowed,
            "max_purchase": self.max_purchase,
            "next_reset": self.next_reset,
            "breakdown": [entry_dict(e) for e in self.breakdown],
        }


def entry_dict(entry: Entry) -> dict[str, Any]:
    source = entry.source
    return {
        "source": source.key,
        "kind": source.kind,
        "entity_id": source.entity or None,
        "plan_id": source.plan_id,
        "granted": None if source.unlimited else source.granted,
        "unlimited": source.unlimited,
        "used": entry.used,
        "remaining": None if source.unlimited else entry.remaining,
        "overage": entry.overage,
        "billed": source.priced,  # priced pay-per-use: its overage is billed
        "reset": source.interval,
        "interval_count": source.every if source.interval else None,
        "next_reset": entry.next_reset if source.interval else None,
        "expires": source.expires,
    }


def feature_balance(ents: Entitlements, feature_id: str, now: datetime) -> FeatureBalance:
    """The balance of `feature_id` itself (no credit-system routing) at `now`."""
    return balance_of(ents, state(ents, feature_id, now))


def balance_of(ents: Entitlements, found: State) -> FeatureBalance:
    """`found` as the balance the runtime answers with."""
    feature = ents.features[found.feature]
    if feature.type == BOOLEAN:
        return FeatureBalance(found.feature, feature.type, access=bool(ents.items_for(feature.id)))
    entries = tuple(ordered(found.viewed()))
    target = overage_target(entries)
    return FeatureBalance(
        feature=found.feature,
        type=feature.type,
        access=ents.holds(found.feature),
        unlimited=any(e.source.unlimited for e in entries),
        breakdown=entries,
        overage_allowed=target is not None,
        max_purchase=None if target is None else target.source.max_purchase,
    )
