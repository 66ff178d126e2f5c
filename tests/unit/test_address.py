"""Addresses print and parse in one place (`model.address`); kinds carry their rank and target;
appliers and renderers are registered once per key."""

from __future__ import annotations

import pytest

from autumn_sync.database.apply import APPLIERS as DATABASE_APPLIERS
from autumn_sync.model.address import Address, AddressError, Kind, Target, customer_key, keyed
from autumn_sync.model.customers import Balance, Customer
from autumn_sync.model.records import Feature, FeatureType
from autumn_sync.model.stripe import StripePrice, StripeSubscription
from autumn_sync.plan.changes import Archive, Create, Delete, Replace, Update
from autumn_sync.plan.registry import Appliers, Registry, RegistryError
from autumn_sync.stripe.apply import APPLIERS as STRIPE_APPLIERS

ADDRESSES = [
    ("settings", Address(Kind.SETTINGS)),
    ("feature.messages", Address(Kind.FEATURE, "messages")),
    ("plan.pro", Address(Kind.PLAN, "pro")),
    ("plan.pro.v2", Address(Kind.PLAN, "pro", version=2)),
    ("customer.user_1", Address(Kind.CUSTOMER, "user_1")),
    ("customer.a.b:c", Address(Kind.CUSTOMER, "a.b:c")),
    ("customer[billing@acme.com]", Address(Kind.CUSTOMER, "billing@acme.com", by_email=True)),
    ("balance.user.1.messages", Address(Kind.BALANCE, "user.1", "messages")),
    (
        "balance[billing@acme.com].messages",
        Address(Kind.BALANCE, "billing@acme.com", "messages", by_email=True),
    ),
    ("stripe_product.pro.seats", Address(Kind.STRIPE_PRODUCT, "pro", "seats")),
    ("stripe_price.pro.base[user_1]", Address(Kind.STRIPE_PRICE, "pro", "base", "user_1")),
    ("stripe_price.pro.base.v1", Address(Kind.STRIPE_PRICE, "pro", "base", version=1)),
    (
        "stripe_price.pro.base#price_9",
        Address(Kind.STRIPE_PRICE, "pro", "base", instance="price_9"),
    ),
    (
        "stripe_promotion_code.launch20.LAUNCH20",
        Address(Kind.STRIPE_PROMOTION_CODE, "launch20", "LAUNCH20"),
    ),
    (
        "stripe_subscription[ap@acme.com].pro[team-a]",
        Address(Kind.STRIPE_SUBSCRIPTION, "ap@acme.com", "pro", "team-a", by_email=True),
    ),
]


@pytest.mark.parametrize(("text", "address"), ADDRESSES, ids=[t for t, _ in ADDRESSES])
def test_addresses_print_and_parse_back(text: str, address: Address) -> None:
    assert Address.parse(text) == address
    assert str(address) == text


@pytest.mark.parametrize(
    ("text", "owner"),
    [
        ("stripe_price.pro.base[user_1]", "plan.pro"),
        ("stripe_meter.pro.messages", "plan.pro"),
        ("stripe_promotion_code.launch20.CODE", "reward.launch20"),
        ("balance[a@b.com].seats", "customer[a@b.com]"),
        ("stripe_subscription.user_1.pro[team]", "customer.user_1"),
        ("stripe_customer.user_1", "customer.user_1"),
    ],
)
def test_an_object_of_stripe_or_a_balance_is_part_of_an_object_of_the_file(
    text: str, owner: str
) -> None:
    assert str(Address.parse(text).owner) == owner
    assert Address.parse(owner).owner is None


@pytest.mark.parametrize("text", ["nope", "plan", "plan.pro.x", "customer", "unmanaged:price_1"])
def test_what_is_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(AddressError, match="is not an address"):
        Address.parse(text)


def test_records_print_their_addresses_and_carry_their_kind() -> None:
    customer = Customer(key=customer_key(None, "a@b.com"), email="a@b.com")
    assert customer.address == "customer[a@b.com]" == keyed(Kind.CUSTOMER, customer.key)
    assert Balance(customer=".u1", feature="seats").address == "balance.u1.seats"
    assert Feature("sso", "SSO", FeatureType.BOOLEAN).kind is Kind.FEATURE
    assert StripeSubscription.kind.target is Target.STRIPE
    assert Kind.SETTINGS.rank < Kind.PLAN.rank < Kind.CUSTOMER.rank < Kind.STRIPE_METER.rank
    assert Kind.STRIPE_PRICE.rank < Kind.STRIPE_SUBSCRIPTION.rank
    assert {k.target for k in Kind if k.mirrors is not None} == {Target.DATABASE, Target.STRIPE}


def test_a_key_registered_twice_is_refused() -> None:
    table: Registry[str, int] = Registry("numbers")
    table.add("one", 1)
    with pytest.raises(RegistryError, match="numbers: 'one' is registered twice"):
        table.add("one", 2)
    with pytest.raises(RegistryError, match="nothing is registered for 'two'"):
        table["two"]
    appliers: Appliers[None] = Appliers("test appliers")

    @appliers.made(Create, Feature)
    def _first(_ctx: None, _change: Create, _feature: Feature) -> None: ...

    with pytest.raises(RegistryError, match="Create of Feature is registered twice"):

        @appliers.made(Create, Feature)
        def _second(_ctx: None, _change: Create, _feature: Feature) -> None: ...


def test_every_change_the_planner_makes_has_one_applier() -> None:
    database = set(DATABASE_APPLIERS.keys())
    assert (Update, Customer) in database and (Delete, Balance) in database
    stripe = set(STRIPE_APPLIERS.keys())
    for change in (Create, Update, Replace, Archive):
        assert (change, StripePrice) in stripe
    assert not database & stripe
