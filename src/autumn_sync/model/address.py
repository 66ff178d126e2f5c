"""Addresses: the stable, printable name of every object (DESIGN §5), printed and parsed here
and nowhere else.

    feature.messages   plan.pro   plan.pro.v2   reward.launch20   settings
    customer.user_123   customer[billing@acme.com]   balance.user_123.messages
    stripe_product.pro   stripe_product.pro.messages   stripe_price.pro.base
    stripe_price.pro.base[user_123]   stripe_price.pro.base#price_123   stripe_price.pro.base.v1
    stripe_meter.pro.messages   stripe_coupon.launch20   stripe_promotion_code.launch20.CODE
    stripe_customer.user_123   stripe_subscription[billing@acme.com].month[team-a]

An address is a `Kind`, a key (an id; for the kinds keyed by a customer, the customer's id or,
in brackets, its email), an optional part (a price's `base` or feature, a subscription's
interval, a balance's feature, a promotion code), an optional index in brackets (whose own price,
which entity's subscription), a plan version (`show`, and an older version's price) and an
instance after `#` (one of several Stripe objects of one address). Records and changes hold
addresses as text (cheap to compare, hash and print); `Address.parse` gives the typed view
where code needs its parts.

A customer's *key* is the part of every address that names it: `.user_123`, or
`[billing@acme.com]` while it is known by email. The database stores it (`file_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache


class Target(StrEnum):
    """The system an object lives in."""

    DATABASE = "database"
    STRIPE = "stripe"


class Kind(StrEnum):
    """The kinds of objects, in the order apply makes them (removals go the other way)."""

    SETTINGS = "settings"
    FEATURE = "feature"
    PLAN = "plan"
    REWARD = "reward"
    CUSTOMER = "customer"
    BALANCE = "balance"
    STRIPE_METER = "stripe_meter"
    STRIPE_PRODUCT = "stripe_product"
    STRIPE_PRICE = "stripe_price"
    STRIPE_COUPON = "stripe_coupon"
    STRIPE_PROMOTION_CODE = "stripe_promotion_code"
    STRIPE_CUSTOMER = "stripe_customer"
    STRIPE_SUBSCRIPTION = "stripe_subscription"

    @property
    def rank(self) -> int:
        """Where the kind's creates and updates come in an apply (its removals come in the
        reverse order)."""
        return _RANKS[self]

    @property
    def target(self) -> Target:
        return Target.DATABASE if _RANKS[self] <= _RANKS[Kind.BALANCE] else Target.STRIPE

    @property
    def mirrors(self) -> Kind | None:
        """The kind of the file's object that an object of this kind is part of: a Stripe
        price is part of its plan, a balance of its customer."""
        return _MIRRORS.get(self)

    @property
    def customer_keyed(self) -> bool:
        """Whether the key is a customer's (`.user_1` or `[a@b.com]`)."""
        return self in _CUSTOMER_KEYED


_RANKS = {kind: rank for rank, kind in enumerate(Kind)}
_MIRRORS = {
    Kind.BALANCE: Kind.CUSTOMER,
    Kind.STRIPE_METER: Kind.PLAN,
    Kind.STRIPE_PRODUCT: Kind.PLAN,
    Kind.STRIPE_PRICE: Kind.PLAN,
    Kind.STRIPE_COUPON: Kind.REWARD,
    Kind.STRIPE_PROMOTION_CODE: Kind.REWARD,
    Kind.STRIPE_CUSTOMER: Kind.CUSTOMER,
    Kind.STRIPE_SUBSCRIPTION: Kind.CUSTOMER,
}
_CUSTOMER_KEYED = frozenset(
    {Kind.CUSTOMER, Kind.BALANCE, Kind.STRIPE_CUSTOMER, Kind.STRIPE_SUBSCRIPTION}
)
UNMANAGED = "unmanaged:"  # a reference to a Stripe object autumn-sync does not own: not an address


class AddressError(ValueError):
    """The text is not an address; the message says what one looks like."""


# --- printing (hot: plain string building) --------------------------------------------------


def named(kind: Kind, key: str, part: str | None = None, index: str | None = None) -> str:
    """The address of an object named by an id: `plan.pro`, `stripe_price.pro.base[user_1]`."""
    # `kind + …` (not `kind.value`): the enum's value lookup would cost a third of the time
    text = kind + "." + key if part is None else kind + "." + key + "." + part
    return text if index is None else f"{text}[{index}]"


def keyed(kind: Kind, key: str, part: str | None = None, index: str | None = None) -> str:
    """The address of an object of a customer's, by the customer's key (`.user_1` or
    `[a@b.com]`): `customer.user_1`, `balance[a@b.com].messages`."""
    text = kind + key if part is None else kind + key + "." + part
    return text if index is None else f"{text}[{index}]"


def versioned(address: str, version: int) -> str:
    """The price `address` has for an older plan version: `stripe_price.pro.base.v1`."""
    return str(replace(Address.parse(address), version=version))


def instance(address: str, stripe_id: str) -> str:
    """One of several Stripe objects of `address`: `stripe_price.pro.base#price_123`."""
    return f"{address}#{stripe_id}"


def customer_key(customer_id: str | None, email: str | None) -> str:
    """`.user_123` for a customer with an id, `[billing@acme.com]` for one known by email."""
    if customer_id:
        return f".{customer_id}"
    assert email, "a customer has an id or an email"
    return f"[{email}]"


def key_label(key: str) -> str:
    """The key as a person reads it: `user_123` or `billing@acme.com`."""
    return key[1:] if key.startswith(".") else key[1:-1]


def key_is_email(key: str) -> bool:
    """Whether the customer `key` names it by email (`[billing@acme.com]`)."""
    return key.startswith("[")


def unmanaged(stripe_id: str) -> str:
    """The reference to a Stripe object autumn-sync does not own."""
    return f"{UNMANAGED}{stripe_id}"


# --- the typed view ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """An address taken apart (see the module's docstring); `str()` prints it back."""

    kind: Kind
    key: str | None = None  # an id, or a customer's id or email (see `by_email`)
    part: str | None = None
    index: str | None = None
    by_email: bool = False
    version: int | None = None
    instance: str | None = None

    @classmethod
    def parse(cls, text: str) -> Address:
        """The address `text` prints (raises `AddressError`)."""
        return _parse(text)

    @property
    def customer_key(self) -> str:
        """The key of the customer a customer-keyed address names: `.user_1`, `[a@b.com]`."""
        assert self.kind.customer_keyed and self.key is not None
        return f"[{self.key}]" if self.by_email else f".{self.key}"

    @property
    def base(self) -> Address:
        """This address without its instance (`stripe_price.pro.base#price_1` → `…base`)."""
        return replace(self, instance=None)

    @property
    def owner(self) -> Address | None:
        """The file's object this one is part of: `plan.pro` for `stripe_price.pro.base`,
        `customer.user_1` for `balance.user_1.messages` or its Stripe subscription."""
        kind = self.kind.mirrors
        if kind is None:
            return None
        return Address(kind, self.key, by_email=self.by_email)

    @property
    def name(self) -> str:
        """The address without its kind, as the JSON plan's `name` (Terraform's): `pro`,
        `user_1.messages`, `[billing@acme.com]`; `settings` for the settings."""
        text = str(self)
        return text[len(self.kind.value) :].removeprefix(".") or text

    def __str__(self) -> str:
        if self.key is None:
            text = self.kind.value
        elif self.kind.customer_keyed:
            text = keyed(self.kind, self.customer_key, self.part)
        else:
            text = named(self.kind, self.key, self.part)
        if self.version is not None:
            text += f".v{self.version}"
        if self.index is not None:
            text += f"[{self.index}]"
        return text if self.instance is None else f"{text}#{self.instance}"


_SEGMENT = r"[^.\[\]#]+"
_INDEX = r"(?:\[(?P<index>[^\]]+)\])?"
_INSTANCE = r"(?:#(?P<instance>.+))?"
_CUSTOMER = r"(?:\.(?P<key>[^\[\]#]+?)|\[(?P<email>[^\]]+)\])"
_KIND = re.compile(r"[a-z_]+")
_PATTERNS = {
    Kind.CUSTOMER: re.compile(_CUSTOMER + "$"),
    Kind.STRIPE_CUSTOMER: re.compile(_CUSTOMER + "$"),
    Kind.BALANCE: re.compile(_CUSTOMER + rf"\.(?P<part>{_SEGMENT})$"),
    Kind.STRIPE_SUBSCRIPTION: re.compile(_CUSTOMER + rf"\.(?P<part>{_SEGMENT}){_INDEX}$"),
    # an older plan version's price: `stripe_price.pro.base.v1`
    Kind.STRIPE_PRICE: re.compile(
        rf"\.(?P<key>{_SEGMENT})(?:\.(?P<part>{_SEGMENT}))?(?:\.v(?P<version>[0-9]+))?"
        rf"{_INDEX}{_INSTANCE}$"
    ),
}
_NAMED = re.compile(rf"(?:\.(?P<key>{_SEGMENT})(?:\.(?P<part>{_SEGMENT}))?{_INDEX})?{_INSTANCE}$")
_VERSION = re.compile(r"v([0-9]+)")
FORMS = (
    "feature.ID, plan.ID, reward.ID, customer.ID, customer[EMAIL], balance.CUSTOMER.FEATURE, "
    "or a Stripe object's (stripe_price.PLAN.base, stripe_subscription.CUSTOMER.INTERVAL, …)"
)


@lru_cache(maxsize=4096)
def _parse(text: str) -> Address:
    found = _KIND.match(text)
    try:
        kind = Kind(found.group(0)) if found else None
    except ValueError:
        kind = None
    if kind is None:
        raise AddressError(f"{text!r} is not an address: use {FORMS}")
    match = _PATTERNS.get(kind, _NAMED).match(text, len(kind.value))
    if match is None:
        raise AddressError(f"{text!r} is not an address: use {FORMS}")
    groups = match.groupdict()
    email = groups.get("email")
    address = Address(
        kind,
        key=email if email is not None else groups.get("key"),
        part=groups.get("part"),
        index=groups.get("index"),
        by_email=email is not None,
        version=int(groups["version"]) if groups.get("version") else None,
        instance=groups.get("instance"),
    )
    if kind is Kind.PLAN and address.part is not None:
        version = _VERSION.fullmatch(address.part)
        if version is None:
            raise AddressError(f"{text!r} is not an address: a plan's is plan.ID or plan.ID.vN")
        address = replace(address, part=None, version=int(version.group(1)))
    if kind is not Kind.SETTINGS and address.key is None:
        raise AddressError(f"{text!r} is not an address: use {FORMS}")
    return address
