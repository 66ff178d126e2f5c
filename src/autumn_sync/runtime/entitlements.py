"""What a customer is entitled to, computed from the rows the database holds (pure: no I/O).

The rules, shared by `check`, `track` and `show`:

- **Plans.** The customer's own plans (not its entities') whose status is active, trialing or
  past due (or cancelled in Stripe, until its end) count, within their dates, each at the
  version the customer is on; a custom item of the customer's
  plan replaces the included usage and reset of that feature's item.
- **Boolean features** are allowed when some plan has the item.
- **Limit** of a metered feature or credit system: the declared allowance (the file's
  `balances.<feature>.allowance`) while it applies (no `reset_at`, or before it), else the
  sum over the plans' items of their included usage (the prepaid units the customer bought,
  `quantities`, when it did; a prepaid item without included usage gives `per` units for
  each unit of the plan's quantity: Extra credits gives 1,000 credits);
  plus every grant that has not expired (no `expires`, or before it). An item that says
  `unlimited: true` is unlimited (unless an allowance is declared); one without included usage
  gives none (a priced one as above). An item with a
  pay-per-use price allows overage: usage beyond the limit is allowed (and billed).
- **Credit systems.** A feature the customer has no item, allowance or grant for, but that a
  credit system the customer has covers (`credit_costs`), is checked and tracked against the
  credit system's balance, at its credit cost per unit.
- **Resets.** A consumable feature (and a credit system) resets at the interval of its item
  (`reset`, else its price's interval; the shortest if plans differ). The next reset is kept
  with the balance: first the declared `reset_at` if it is still ahead, else the first period
  boundary after now counted from the plan's start (its declared start, else when it was
  attached). When now reaches it, usage is 0 again and the next reset moves on by whole
  intervals past now. Continuous features (seats) never reset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from autumn_sync.runtime.intervals import DAYS, MONTHS, midnight, next_boundary, recurs

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
    """A plan item as one customer has it (custom items already applied)."""

    plan_id: str
    feature: str
    included: Decimal | None
    reset: str | None
    billing: str | None = None
    per: int | None = None
    price_interval: str | None = None
    quantity: int = 1
    units: int | None = None  # prepaid units bought (`quantities`), included ones counted
    anchor: datetime | None = None  # when the customer's plan started
    unlimited: bool = False  # `unlimited: true` (a custom included usage ends it)

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
        for interval in (self.reset, self.price_interval):
            if recurs(interval):
                return interval
        return None


@dataclass(frozen=True, slots=True)
class BalanceRow:
    allowance: Decimal | None = None
    reset_at: date | None = None
    usage: Decimal = ZERO
    next_reset: datetime | None = None


@dataclass(frozen=True, slots=True)
class GrantRow:
    feature: str
    amount: Decimal
    expires: date | None = None


@dataclass(frozen=True)
class Entitlements:
    """Everything `check` needs about one customer, as read in one go."""

    customer_id: str | None
    created_at: datetime
    features: Mapping[str, FeatureDef]
    items: tuple[Item, ...]
    balances: Mapping[str, BalanceRow]
    grants: tuple[GrantRow, ...]

    def items_for(self, feature: str) -> list[Item]:
        return [item for item in self.items if item.feature == feature]

    def holds(self, feature: str) -> bool:
        """Whether the customer has an item, a declared allowance or a grant for `feature`."""
        row = self.balances.get(feature)
        declared = row is not None and row.allowance is not None
        granted = any(g.feature == feature for g in self.grants)
        return bool(self.items_for(feature)) or declared or granted

    def shown_features(self) -> list[str]:
        """The features a customer view lists: those with an item, a balance or a grant."""
        found = {i.feature for i in self.items} | set(self.balances)
        found |= {g.feature for g in self.grants}
        return sorted(f for f in found if f in self.features)


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


@dataclass(frozen=True, slots=True)
class FeatureBalance:
    """One feature's balance for one customer at a moment: `limit` is `included` (the
    allowance, or the plans' included usage) plus `granted`; `balance` is `limit - usage`
    (negative past the limit with overage). Unlimited features have no limit or balance."""

    feature: str
    type: str
    access: bool
    unlimited: bool = False
    included: Decimal | None = None
    granted: Decimal = ZERO
    usage: Decimal = ZERO
    overage_allowed: bool = False
    next_reset: datetime | None = None

    @property
    def limit(self) -> Decimal | None:
        if self.unlimited or self.included is None:
            return None
        return self.included + self.granted

    @property
    def balance(self) -> Decimal | None:
        limit = self.limit
        return None if limit is None else limit - self.usage

    def covers(self, needed: Decimal) -> bool:
        """Whether `needed` more units may be used now."""
        if not self.access:
            return False
        balance = self.balance
        return self.unlimited or self.overage_allowed or (balance is not None and balance >= needed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_id": self.feature,
            "type": self.type,
            "unlimited": self.unlimited,
            "limit": self.limit,
            "included": self.included,
            "granted": self.granted,
            "usage": self.usage,
            "balance": self.balance,
            "overage_allowed": self.overage_allowed,
            "next_reset": self.next_reset,
        }


def feature_balance(ents: Entitlements, feature_id: str, now: datetime) -> FeatureBalance:
    """The balance of `feature_id` itself (no credit-system routing) at `now`."""
    feature = ents.features[feature_id]
    items = ents.items_for(feature_id)
    if feature.type == BOOLEAN:
        return FeatureBalance(feature_id, feature.type, access=bool(items))
    usage, next_reset = period(ents, feature, now)
    declared = _declared_allowance(ents.balances.get(feature_id), now)
    unlimited = declared is None and any(item.unlimited for item in items)
    included = declared if declared is not None else sum((i.allowance for i in items), ZERO)
    return FeatureBalance(
        feature=feature_id,
        type=feature.type,
        access=ents.holds(feature_id),
        unlimited=unlimited,
        included=None if unlimited else included,
        granted=_granted(ents, feature_id, now),
        usage=usage,
        overage_allowed=any(item.billing == PAY_PER_USE for item in items),
        next_reset=next_reset,
    )


def _declared_allowance(row: BalanceRow | None, now: datetime) -> Decimal | None:
    if row is None or row.allowance is None:
        return None
    if row.reset_at is not None and now.date() >= row.reset_at:
        return None
    return row.allowance


def _granted(ents: Entitlements, feature_id: str, now: datetime) -> Decimal:
    today = now.date()
    live = (
        g.amount
        for g in ents.grants
        if g.feature == feature_id and (g.expires is None or today < g.expires)
    )
    return sum(live, ZERO)


# --- resets --------------------------------------------------------------------------------


def reset_terms(ents: Entitlements, feature_id: str) -> tuple[str, datetime] | None:
    """(interval, anchor) of the feature's resets: the shortest interval among its items,
    anchored at that plan's start (the customer's creation when unknown); None when the
    feature does not reset."""
    if not ents.features[feature_id].resets:
        return None
    timed = [i for i in ents.items_for(feature_id) if i.interval is not None]
    if not timed:
        return None
    item = min(timed, key=lambda i: (_length(i.interval or ""), i.anchor or ents.created_at))
    assert item.interval is not None
    return item.interval, item.anchor or ents.created_at


def _length(interval: str) -> int:
    return DAYS[interval] if interval in DAYS else MONTHS[interval] * 31


def period(
    ents: Entitlements, feature: FeatureDef, now: datetime
) -> tuple[Decimal, datetime | None]:
    """(usage, next reset) at `now`: usage is 0 once the stored next reset has passed."""
    row = ents.balances.get(feature.id) or BalanceRow()
    if not feature.resets:
        return row.usage, None
    if row.next_reset is None:
        return row.usage, first_reset(ents, feature.id, row, now)
    if now < row.next_reset:
        return row.usage, row.next_reset
    return ZERO, advance(ents, feature.id, row.next_reset, now)


def first_reset(
    ents: Entitlements, feature_id: str, row: BalanceRow, now: datetime
) -> datetime | None:
    """The next reset of a balance that has none yet: the declared `reset_at` if it is
    ahead, else the next period boundary from the plan's start."""
    if row.reset_at is not None and midnight(row.reset_at) > now:
        return midnight(row.reset_at)
    terms = reset_terms(ents, feature_id)
    return None if terms is None else next_boundary(terms[1], terms[0], now)


def advance(ents: Entitlements, feature_id: str, due: datetime, now: datetime) -> datetime | None:
    """The reset after `due` (which `now` has reached): by whole intervals past now."""
    terms = reset_terms(ents, feature_id)
    return None if terms is None else next_boundary(due, terms[0], now)
