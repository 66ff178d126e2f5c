"""Frozen domain records. Each has a stable `address` (DESIGN §5) and the ids it depends on.

Desired and current state use these same types; fields that only the database knows (the
current version number, how many customers are on it, whether a plan is archived) default to
"unknown / not archived" in the desired state and are ignored by the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from autumn_sync.model.address import Kind, named


class FeatureType(StrEnum):
    BOOLEAN = "boolean"
    METERED = "metered"
    CREDIT_SYSTEM = "credit_system"


class UsageModel(StrEnum):
    """How a usage price bills (the file's `billing:`): units bought ahead, or used."""

    PREPAID = "prepaid"
    PAY_PER_USE = "pay_per_use"


class TierMode(StrEnum):
    GRADUATED = "graduated"
    VOLUME = "volume"


class RewardType(StrEnum):
    PERCENTAGE = "percentage_discount"
    FIXED = "fixed_discount"


PRICE_INTERVALS = ("one_off", "week", "month", "quarter", "semi_annual", "year")
RESET_INTERVALS = ("hour", "day", "week", "month", "quarter", "semi_annual", "year", "one_off")
RECURRING_RESETS = RESET_INTERVALS[:-1]  # all but one_off (never resets)


ALWAYS = "always"  # settings.stripe.create_customers: every customer in Stripe at once
# settings.billing.upgrades: a plan change within a group bills the difference now (the
# default), on the next invoice, or not at all
PRORATE_NOW = "prorate_now"
PRORATE_NEXT_INVOICE = "prorate_next_invoice"
NO_PRORATION = "no_proration"
# settings.billing.past_due: whether `check` grants the plans whose payment failed
PAST_DUE_ALLOW = "allow"
PAST_DUE_DENY = "deny"


@dataclass(frozen=True, slots=True)
class Settings:
    currency: str
    create_customers: str | None = None  # None: when billing needs them; "always"
    upgrades: str | None = None  # how a plan change on a subscription is prorated; None: now
    past_due: str | None = None  # settings.billing.past_due: "deny"; None: allow

    kind: ClassVar[Kind] = Kind.SETTINGS

    @property
    def address(self) -> str:
        return Kind.SETTINGS.value

    def references(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Feature:
    id: str
    name: str
    type: FeatureType
    consumable: bool = False
    credit_costs: tuple[tuple[str, Decimal], ...] = ()  # (metered feature id, credits per unit)

    kind: ClassVar[Kind] = Kind.FEATURE

    @property
    def address(self) -> str:
        return named(Kind.FEATURE, self.id)

    def references(self) -> tuple[str, ...]:
        return tuple(named(Kind.FEATURE, fid) for fid, _ in self.credit_costs)


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: Decimal | None  # None is "inf"
    amount: Decimal


@dataclass(frozen=True, slots=True)
class UsagePrice:
    billing: UsageModel
    per: int = 1
    amount: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    tier_mode: TierMode | None = None
    interval: str | None = None


@dataclass(frozen=True, slots=True)
class Rollover:
    """Unused allowance carried over at each reset: the carried balance holds at most `max`
    units or `max_percentage` % of the allowance (neither: no cap), and each carried amount
    lasts `expires_months` months (None: for good)."""

    max: Decimal | None = None
    max_percentage: Decimal | None = None
    expires_months: int | None = None


@dataclass(frozen=True, slots=True)
class PlanItem:
    feature: str
    included: Decimal | None = None
    unlimited: bool = False  # no limit, said explicitly (an item without `included` has none)
    reset: str | None = None
    price: UsagePrice | None = None
    interval_count: int = 1  # the allowance resets every `interval_count` resets
    rollover: Rollover | None = None
    max_purchase: Decimal | None = None  # the most units billed per use beyond the allowance


@dataclass(frozen=True, slots=True)
class FixedPrice:
    amount: Decimal
    interval: str


@dataclass(frozen=True, slots=True)
class FreeTrial:
    days: int
    card_required: bool = False
    unique_fingerprint: bool = False  # one trial of the plan per fingerprint (and per customer)
    on_end: str = "cancel"  # cancel | bill: a trial without a card that ends with none


@dataclass(frozen=True, slots=True)
class PlanContent:
    """What a plan version captures: changing any of it while customers are on the version
    creates a new version. Items are kept sorted by feature id."""

    price: FixedPrice | None = None
    free_trial: FreeTrial | None = None
    items: tuple[PlanItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    content: PlanContent
    description: str | None = None
    group: str | None = None
    add_on: bool = False
    default: bool = False
    migrate_customers: bool = False
    # Known only in the current state:
    archived: bool = False
    version: int | None = None
    customers: int = 0  # customers on the current version
    versions_in_use: tuple[tuple[int, int], ...] = field(default=())  # (version, customers)

    kind: ClassVar[Kind] = Kind.PLAN

    @property
    def address(self) -> str:
        return named(Kind.PLAN, self.id)

    def references(self) -> tuple[str, ...]:
        return tuple(named(Kind.FEATURE, item.feature) for item in self.content.items)

    @property
    def customers_total(self) -> int:
        return sum(count for _, count in self.versions_in_use)


@dataclass(frozen=True, slots=True)
class Duration:
    kind: str  # once | forever | repeating
    months: int | None = None


@dataclass(frozen=True, slots=True)
class CodeRestrictions:
    """Who may redeem a promotion code, and how often (Stripe fixes these when it makes the
    code): at most `max_redemptions` times, before `expires_at` (UTC, whole seconds), and with
    `first_time_transaction` only customers who never paid."""

    max_redemptions: int | None = None
    expires_at: datetime | None = None
    first_time_transaction: bool = False


UNRESTRICTED = CodeRestrictions()


@dataclass(frozen=True, slots=True)
class Reward:
    id: str
    type: RewardType
    duration: Duration
    name: str | None = None
    percent_off: Decimal | None = None
    amount_off: Decimal | None = None
    plans: tuple[str, ...] = ()
    promo_codes: tuple[str, ...] = ()
    # (code, its restrictions) for the restricted codes only, sorted by code
    code_restrictions: tuple[tuple[str, CodeRestrictions], ...] = ()

    kind: ClassVar[Kind] = Kind.REWARD

    @property
    def address(self) -> str:
        return named(Kind.REWARD, self.id)

    def restrictions(self, code: str) -> CodeRestrictions:
        """The restrictions of one of the reward's codes (none: `UNRESTRICTED`)."""
        return dict(self.code_restrictions).get(code, UNRESTRICTED)

    def references(self) -> tuple[str, ...]:
        return tuple(named(Kind.PLAN, pid) for pid in self.plans)


CatalogRecord = Settings | Feature | Plan | Reward
