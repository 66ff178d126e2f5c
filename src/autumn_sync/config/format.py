"""Pydantic models of the file format (version 1). `extra="forbid"` everywhere: an unknown key
is an error. The JSON Schema in `schemas/` is generated from `BillingFile`.

These models only check shapes and single values; rules that need the whole file (references,
defaults per group, currency precision) live in `config.checks`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PROMO_CODE_PATTERN = r"^[A-Za-z0-9_-]+$"
PROMO_CODE_RULE = "use letters, digits, '_' and '-' only"
ID_RULE = "use up to 64 lower-case letters, digits, '_' and '-', starting with a letter or digit"
Id = Annotated[
    str,
    StringConstraints(pattern=f"^{ID_PATTERN.pattern}$"),
    Field(description=ID_RULE),
]
# Text the database can store: no NUL (PostgreSQL refuses it) nor other control characters
# but tab and newline.
TEXT_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
TEXT_RULE = "control characters (such as NUL) are not allowed"
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TEXT_PATTERN)]

# The database keeps numbers as NUMERIC(30, 12) (`db.types.Exact`).
MAX_INTEGER_DIGITS = 18
MAX_DECIMAL_PLACES = 12


def digits(value: Decimal) -> tuple[int, int]:
    """Digits before and after the decimal point of a finite `value`, without leading or
    trailing zeros (and without rounding, whatever its size)."""
    _, numerals, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, numerals)).lstrip("0")
    stripped = text.rstrip("0")
    exponent += len(text) - len(stripped)
    return max(0, len(stripped) + exponent), max(0, -exponent)


def _storable(value: Decimal) -> Decimal:
    before, after = digits(value)
    if before > MAX_INTEGER_DIGITS:
        raise ValueError(f"use at most {MAX_INTEGER_DIGITS} digits before the decimal point")
    if after > MAX_DECIMAL_PLACES:
        raise ValueError(f"use at most {MAX_DECIMAL_PLACES} decimal places")
    return value


STORABLE = AfterValidator(_storable)
Amount = Annotated[
    Decimal, Field(ge=0, description="Major units of the currency (20 = $20.00)."), STORABLE
]
PriceInterval = Literal["one_off", "week", "month", "quarter", "semi_annual", "year"]
MAX_INTERVAL_COUNT = 1000  # intervals between resets (`interval_count`)
ResetInterval = Literal["hour", "day", "week", "month", "quarter", "semi_annual", "year", "one_off"]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StripeSettingsSpec(Spec):
    create_customers: Annotated[
        Literal["when_needed", "always"],
        Field(
            description="when_needed: a customer is made in Stripe once billing needs it (a paid "
            "plan); always: every customer of the file is made in Stripe at once."
        ),
    ] = "when_needed"


class BillingSettingsSpec(Spec):
    upgrades: Annotated[
        Literal["prorate_now", "prorate_next_invoice", "no_proration"],
        Field(
            description="A customer moving to another plan of its group on its subscription: "
            "prorate_now invoices the difference for the rest of the period at once; "
            "prorate_next_invoice adds it to the next invoice; no_proration bills the new "
            "price from the next period."
        ),
    ] = "prorate_now"
    past_due: Annotated[
        Literal["allow", "deny"],
        Field(
            description="A plan whose payment failed (past_due in Stripe, told by a webhook): "
            "allow keeps granting it while Stripe retries the payment; deny stops `check` "
            "granting it until the invoice is paid."
        ),
    ] = "allow"


class SettingsSpec(Spec):
    currency: Annotated[str, Field(description="ISO 4217 code, lower case; new prices use it.")] = (
        "usd"
    )
    stripe: StripeSettingsSpec = StripeSettingsSpec()
    billing: BillingSettingsSpec = BillingSettingsSpec()


class FeatureSpec(Spec):
    name: Name
    type: Literal["boolean", "metered", "credit_system"]
    consumable: Annotated[
        bool | None,
        Field(description="Metered only: true = used up and reset, false = continuous (seats)."),
    ] = None
    credit_costs: Annotated[
        dict[Id, Annotated[Decimal, Field(gt=0), STORABLE]] | None,
        Field(description="Credit systems only: credits deducted per unit of a metered feature."),
    ] = None


class TierSpec(Spec):
    up_to: Annotated[
        Annotated[Decimal, Field(gt=0), STORABLE] | Literal["inf"],
        Field(description="Upper bound of the tier in units; the last tier is `inf`."),
    ]
    amount: Amount


class UsagePriceSpec(Spec):
    billing: Literal["prepaid", "pay_per_use"]
    amount: Amount | None = None
    per: Annotated[int, Field(ge=1, description="The amount is for this many units.")] = 1
    tiers: list[TierSpec] | None = None
    tier_mode: Literal["graduated", "volume"] | None = None
    interval: PriceInterval | None = None


class MonthsSpec(Spec):
    months: Annotated[int, Field(ge=1, le=120)]


class RolloverSpec(Spec):
    """What of an item's unused allowance carries over at a reset, and for how long."""

    max: Annotated[
        Annotated[Decimal, Field(gt=0), STORABLE] | None,
        Field(description="The most units the carried-over balance may hold."),
    ] = None
    max_percentage: Annotated[
        Annotated[Decimal, Field(gt=0, le=100), STORABLE] | None,
        Field(description="The most the carried-over balance may hold, in % of the allowance."),
    ] = None
    expires_after: Annotated[
        Literal["never"] | MonthsSpec,
        Field(description="How long carried-over units last: never, or {months: N}."),
    ] = "never"

    @field_validator("expires_after", mode="before")
    @classmethod
    def _expiry_form(cls, value: Any) -> Any:
        """One message naming both forms, instead of one per member of the union."""
        if value == "never" or (isinstance(value, dict) and set(value) == {"months"}):
            return value
        raise ValueError("use 'never' or {months: N}")


class ItemSpec(Spec):
    feature: Id
    included: Annotated[
        Annotated[Decimal, Field(ge=0), STORABLE] | None,
        Field(description="Units given free each period (metered and credit systems)."),
    ] = None
    unlimited: Annotated[
        bool,
        Field(
            description="No limit on the feature (metered and credit systems): a metered item "
            "says `included`, `unlimited: true` or has a price."
        ),
    ] = False
    reset: Annotated[
        ResetInterval | None,
        Field(description="How often the allowance comes back whole; one_off: never."),
    ] = None
    interval_count: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_INTERVAL_COUNT,
            description="The allowance resets every N reset intervals (`reset: month` and 3: "
            "each quarter); more than 1 needs a recurring reset and no pay-per-use price.",
        ),
    ] = 1
    rollover: Annotated[
        RolloverSpec | None,
        Field(
            description="Unused allowance carries over at each reset (consumable features and "
            "credit systems with included usage and a recurring reset)."
        ),
    ] = None
    price: UsagePriceSpec | None = None
    max_purchase: Annotated[
        Annotated[Decimal, Field(gt=0), STORABLE] | None,
        Field(
            description="The most units billed beyond the allowance in a period (items with a "
            "pay-per-use price only)."
        ),
    ] = None


class FixedPriceSpec(Spec):
    amount: Amount
    interval: PriceInterval


class FreeTrialSpec(Spec):
    days: Annotated[int, Field(ge=1, le=730)]
    card_required: Annotated[
        bool,
        Field(
            description="true: the subscription waits for the customer's checkout; false: it "
            "starts at once with the trial, no payment method needed."
        ),
    ] = False
    unique_fingerprint: Annotated[
        bool,
        Field(
            description="true: one trial of this plan per fingerprint (device or card), "
            "whichever customer has it. Every plan gives one trial per customer (and entity) "
            "whatever this says."
        ),
    ] = False
    on_end: Annotated[
        Literal["cancel", "bill"],
        Field(
            description="A trial without a card that ends with no payment method: cancel the "
            "subscription, or bill (an invoice the customer is asked to pay)."
        ),
    ] = "cancel"


class PlanSpec(Spec):
    name: Name
    description: Annotated[str, StringConstraints(max_length=1000, pattern=TEXT_PATTERN)] | None = (
        None
    )
    group: Id | None = None
    add_on: bool = False
    default: Annotated[bool, Field(description="Attached to every new customer.")] = False
    migrate_customers: Annotated[
        bool,
        Field(
            description="Keep every customer on the newest version: the customers of all older"
            " versions move to it (also when the flag is set later)."
        ),
    ] = False
    price: FixedPriceSpec | None = None
    free_trial: FreeTrialSpec | None = None
    items: list[ItemSpec] = []


PromoCodeText = Annotated[str, StringConstraints(pattern=PROMO_CODE_PATTERN, max_length=64)]
MOMENT_RULE = (
    "use a date YYYY-MM-DD (2027-01-01) or a date and time YYYY-MM-DDTHH:MM:SSZ "
    "(2027-01-01T12:00:00Z)"
)
MAX_REDEMPTIONS = 2_147_483_647  # what the database's INTEGER holds


def utc_moment(value: Any) -> datetime:
    """A date (the start of that day, UTC) or an ISO 8601 date and time (UTC unless it says
    otherwise) as a UTC datetime without tzinfo; Stripe keeps whole seconds."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(MOMENT_RULE) from None
    if not isinstance(value, date):
        raise ValueError(MOMENT_RULE)
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if value.microsecond:
        raise ValueError("Stripe keeps whole seconds: leave out the fraction")
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("out of range: use a year before 9999") from None


Moment = Annotated[
    datetime,
    BeforeValidator(utc_moment),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]


class PromoCodeSpec(Spec):
    """A promotion code with Stripe's restrictions (changing one makes a new code)."""

    code: PromoCodeText
    max_redemptions: Annotated[
        int | None,
        Field(ge=1, le=MAX_REDEMPTIONS, description="How many times the code can be redeemed."),
    ] = None
    expires_at: Annotated[
        Moment | None,
        Field(
            description="When the code stops working: a date (the start of that day, UTC) "
            "or an ISO 8601 date and time (a code expired before it is made is not made)."
        ),
    ] = None
    first_time_transaction: Annotated[
        bool, Field(description="Only for customers who never paid before.")
    ] = False


PromoCodeRef = PromoCodeText | PromoCodeSpec


class RewardSpec(Spec):
    type: Literal["percentage_discount", "fixed_discount"]
    name: Name | None = None
    percent_off: Annotated[Decimal, Field(gt=0, le=100), STORABLE] | None = None
    amount_off: Annotated[Decimal, Field(gt=0), STORABLE] | None = None
    duration: Literal["once", "forever"] | MonthsSpec = "once"
    plans: Annotated[list[Id], Field(description="Plans the discount applies to; empty: all.")] = []
    promo_codes: Annotated[
        list[PromoCodeRef],
        Field(description="Codes customers enter: the text, or {code: …} with restrictions."),
    ] = []

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_form(cls, value: Any) -> Any:
        """One message naming both forms, instead of one per member of the union."""
        if value in ("once", "forever") or (isinstance(value, dict) and set(value) == {"months"}):
            return value
        raise ValueError("use 'once', 'forever' or {months: N}")


CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:|@+-]{0,254}$"
CUSTOMER_ID_RULE = (
    "use up to 255 letters, digits and '_', '.', ':', '|', '@', '+', '-', starting with a "
    "letter or digit"
)
STRIPE_CUSTOMER_PATTERN = r"^cus_[A-Za-z0-9]+$"
CustomerId = Annotated[
    str,
    StringConstraints(pattern=CUSTOMER_ID_PATTERN),
    Field(description="The application's id of the customer (up to 255 characters)."),
]
EMAIL_PATTERN = r"^[^@\s\[\]]+@[^@\s\[\]]+\.[^@\s\[\]]+$"
MAX_EMAIL = 320
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=MAX_EMAIL)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=TEXT_PATTERN)]
MetadataValue = Annotated[str, StringConstraints(max_length=500, pattern=TEXT_PATTERN)]


class StripeLinkSpec(Spec):
    customer: Annotated[
        str | None,
        StringConstraints(pattern=STRIPE_CUSTOMER_PATTERN),
        Field(description="An existing Stripe customer to link (`cus_…`)."),
    ] = None
    create: Annotated[
        bool, Field(description="Create the Stripe customer now, not when billing needs it.")
    ] = False


class CustomerBillingSpec(Spec):
    collection: Literal["charge_automatically", "send_invoice"] = "charge_automatically"
    days_until_due: Annotated[int, Field(ge=1, le=365)] | None = None


class CustomItemSpec(Spec):
    feature: Id
    included: Annotated[Decimal, Field(ge=0), STORABLE] | None = None
    reset: ResetInterval | None = None


class CustomerPlanSpec(Spec):
    plan: Id
    quantity: Annotated[
        int,
        Field(ge=1, le=1_000_000, description="Licences of the whole plan: the base price × N."),
    ] = 1
    quantities: Annotated[
        dict[Id, Annotated[int, Field(ge=0, le=1_000_000_000)]],
        Field(
            description="Prepaid units per feature (the plan's included units count toward "
            "them): Stripe bills the units beyond the included ones at the feature's price, "
            "and `check` grants them all."
        ),
    ] = {}
    start: date | None = None
    trial_days: Annotated[int, Field(ge=0, le=730)] | None = None
    price: Annotated[
        FixedPriceSpec | None, Field(description="A negotiated price: a custom version.")
    ] = None
    items: Annotated[
        list[CustomItemSpec],
        Field(description="Included usage and reset for this customer alone: a custom version."),
    ] = []


PlanRef = Id | CustomerPlanSpec


class EntitySpec(Spec):
    id: CustomerId
    feature: Id
    name: Name | None = None
    plans: list[PlanRef] = []


class GrantSpec(Spec):
    id: Id
    amount: Annotated[Decimal, STORABLE]
    expires: date | None = None


class BalanceSpec(Spec):
    allowance: Annotated[
        Annotated[Decimal, Field(ge=0), STORABLE] | None,
        Field(description="Replaces the plans' included usage (until reset_at, if set)."),
    ] = None
    reset_at: date | None = None
    grants: list[GrantSpec] = []


class CustomerSpec(Spec):
    id: CustomerId | None = None
    email: Email | None = None
    name: Name | None = None
    fingerprint: Annotated[str, StringConstraints(max_length=255, pattern=TEXT_PATTERN)] | None = (
        None
    )
    metadata: dict[MetadataKey, MetadataValue] = {}
    stripe: StripeLinkSpec | None = None
    billing: CustomerBillingSpec | None = None
    plans: list[PlanRef] = []
    entities: list[EntitySpec] = []
    balances: dict[Id, BalanceSpec] = {}
    rewards: list[Id] = []


class BillingFile(Spec):
    """A billing catalog file, format version 1."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="autumn-sync billing file",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1]
    settings: SettingsSpec = SettingsSpec()
    features: dict[Id, FeatureSpec] = {}
    plans: dict[Id, PlanSpec] = {}
    rewards: dict[Id, RewardSpec] = {}
    customers: Annotated[
        list[CustomerSpec],
        Field(description="Managed customers, by id or (pre-provisioned) by email."),
    ] = []

    @classmethod
    def entry_model(cls, section: str) -> type[Spec]:
        """The model of one entry of `section` (features, plans, rewards or customers)."""
        return ENTRY_MODELS[section]


ENTRY_MODELS: dict[str, type[Spec]] = {
    "features": FeatureSpec,
    "plans": PlanSpec,
    "rewards": RewardSpec,
    "customers": CustomerSpec,
}


class FileShape(Spec):
    """The outline of a file: sections are checked here only as mappings with valid ids."""

    version: Literal[1]
    settings: SettingsSpec = SettingsSpec()
    features: dict[str, Any] = {}
    plans: dict[str, Any] = {}
    rewards: dict[str, Any] = {}
    customers: list[Any] = []
