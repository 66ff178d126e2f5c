"""Hypothesis strategies for the customers a file manages and the balances it declares, on a
given catalog: valid files only (the round-trip property checks it through the loader).

Identities come from a small pool, each always written the same way (an id alone, an id with
an email, two ids sharing an email, or an email alone: pre-provisioned), so two random files
share most customers: the diff sees updates and adoptions, not only creates and destroys. An
identity never changes form between two files: an id, once bound, is never taken back, so a
customer that loses its id in the file is not the same as one created without it (covered by
tests/test_customers.py instead).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, Decimal

from hypothesis import strategies as st

from autumn_sync.config.export import dump_state
from autumn_sync.config.load import load_text
from autumn_sync.config.problems import ConfigError
from autumn_sync.model.address import customer_key
from autumn_sync.model.customers import (
    CHARGE_AUTOMATICALLY,
    SEND_INVOICE,
    Balance,
    Customer,
    CustomerPlan,
    Entity,
    Grant,
)
from autumn_sync.model.money import exponent
from autumn_sync.model.records import (
    PRICE_INTERVALS,
    RECURRING_RESETS,
    RESET_INTERVALS,
    FeatureType,
    FixedPrice,
    Plan,
    PlanItem,
    UsageModel,
)
from autumn_sync.model.state import State

IDENTITIES: tuple[tuple[str | None, str | None], ...] = (
    ("c1", None),
    ("c2", "c2@example.com"),
    ("c3", "shared@example.com"),
    ("c4", "shared@example.com"),
    (None, "a@example.com"),
    (None, "b@example.com"),
)
GRANT_IDS = ("g1", "g2", "g3")
ENTITY_IDS = ("e1", "e2")
METADATA_KEYS = ("crm_id", "segment", "owner")
DATES = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
BALANCE_TYPES = (FeatureType.METERED, FeatureType.CREDIT_SYSTEM)


def exact(n: int, places: int) -> Decimal:
    return Decimal(f"{n}E-{places}")


def amounts(places: int, signed: bool = False) -> st.SearchStrategy[Decimal]:
    low = -(10**6) if signed else 0
    return st.integers(0, places).flatmap(
        lambda p: st.integers(low, 10**6).map(lambda n: exact(n, p))
    )


def own_resets(item: PlanItem) -> tuple[str, ...]:
    """The resets a customer's own version may give the plan's `item`: one a price has for
    a pay-per-use item, one that recurs where the item counts resets or rolls over."""
    if item.price is not None and item.price.billing is UsageModel.PAY_PER_USE:
        return tuple(r for r in RESET_INTERVALS if r not in ("hour", "one_off"))
    if item.interval_count != 1 or item.rollover is not None:
        return RECURRING_RESETS
    return RESET_INTERVALS


@st.composite
def customer_plan(draw: st.DrawFn, plan: Plan, catalog: State, places: int) -> CustomerPlan:
    """`plan` as it is, or with terms and a custom version (price, included usage)."""
    if draw(st.booleans()):
        return CustomerPlan(plan.id)
    metered = [
        item
        for item in plan.content.items
        if catalog.features[item.feature].type is not FeatureType.BOOLEAN
    ]
    chosen = draw(st.lists(st.sampled_from(metered), unique=True, max_size=2)) if metered else []
    items = tuple(
        PlanItem(
            item.feature,
            included=draw(st.none() | amounts(6)),
            reset=draw(st.none() | st.sampled_from(own_resets(item))),
        )
        for item in sorted(chosen, key=lambda i: i.feature)
    )
    # an item setting neither changes nothing: the file drops it
    items = tuple(i for i in items if i.included is not None or i.reset is not None)
    prices = st.builds(FixedPrice, amounts(places), st.sampled_from(PRICE_INTERVALS))
    price = draw(st.none() | prices)
    priced = price is not None or plan.content.price is not None  # licences need a base price
    return CustomerPlan(
        plan.id,
        quantity=draw(st.integers(1, 5)) if priced else 1,
        quantities=draw(prepaid_units(plan, items)),
        start=draw(st.none() | DATES),
        trial_days=draw(st.none() | st.integers(0, 730)),
        price=price,
        items=items,
    )


MAX_UNITS = 10**9


@st.composite
def prepaid_units(
    draw: st.DrawFn, plan: Plan, custom: tuple[PlanItem, ...]
) -> tuple[tuple[str, int], ...]:
    """Units bought of some of the plan's prepaid features, at least the included ones."""
    own = {item.feature: item.included for item in custom if item.included is not None}
    prepaid = [
        item
        for item in plan.content.items
        if item.price is not None and item.price.billing is UsageModel.PREPAID
    ]
    chosen = draw(st.lists(st.sampled_from(prepaid), unique=True, max_size=2)) if prepaid else []
    units = []
    for item in sorted(chosen, key=lambda i: i.feature):
        included = own.get(item.feature, item.included) or Decimal(0)
        least = int(included.to_integral_value(rounding=ROUND_CEILING))
        if least <= MAX_UNITS:  # the file takes at most a billion units
            units.append((item.feature, draw(st.integers(least, min(least + 100, MAX_UNITS)))))
    return tuple(units)


@st.composite
def customer_plans(draw: st.DrawFn, catalog: State, places: int) -> tuple[CustomerPlan, ...]:
    """Some plans of the catalog, at most one of each group (add-ons aside)."""
    ids = sorted(catalog.plans)
    chosen = draw(st.lists(st.sampled_from(ids), unique=True, max_size=3)) if ids else []
    groups: set[str] = set()
    plans = []
    for pid in sorted(chosen):
        plan = catalog.plans[pid]
        if plan.group and not plan.add_on:
            if plan.group in groups:
                continue
            groups.add(plan.group)
        plans.append(draw(customer_plan(plan, catalog, places)))
    return tuple(plans)


@st.composite
def entities(draw: st.DrawFn, catalog: State, places: int) -> tuple[Entity, ...]:
    continuous = sorted(
        fid
        for fid, f in catalog.features.items()
        if f.type is FeatureType.METERED and not f.consumable
    )
    if not continuous:
        return ()
    ids = draw(st.lists(st.sampled_from(ENTITY_IDS), unique=True, max_size=2))
    return tuple(
        Entity(
            eid,
            draw(st.sampled_from(continuous)),
            name=draw(st.none() | st.sampled_from(("Team A", "Research"))),
            plans=draw(customer_plans(catalog, places)),
        )
        for eid in sorted(ids)
    )


@st.composite
def customer(
    draw: st.DrawFn, identity: tuple[str | None, str | None], catalog: State, places: int
) -> Customer:
    cid, email = identity
    invoice = draw(st.booleans())
    link = draw(st.sampled_from(("none", "link", "create")))
    metadata = draw(
        st.dictionaries(st.sampled_from(METADATA_KEYS), st.text("abc12 ", max_size=8), max_size=2)
    )
    return Customer(
        key=customer_key(cid, email),
        customer_id=cid,
        email=email,
        name=draw(st.none() | st.sampled_from(("Acme Corp", "Jane Doe", "Ünïcode Ltd"))),
        fingerprint=draw(st.none() | st.sampled_from(("fp-1", "fp-2"))),
        metadata=tuple(sorted(metadata.items())),
        stripe_customer="cus_Test123" if link == "link" else None,
        stripe_create=link == "create",
        collection=SEND_INVOICE if invoice else CHARGE_AUTOMATICALLY,
        days_until_due=draw(st.integers(1, 365)) if invoice else None,
        plans=draw(customer_plans(catalog, places)),
        entities=draw(entities(catalog, places)),
        rewards=draw(reward_ids(catalog)),
    )


def reward_ids(catalog: State) -> st.SearchStrategy[tuple[str, ...]]:
    if not catalog.rewards:
        return st.just(())
    return st.sets(st.sampled_from(sorted(catalog.rewards))).map(lambda ids: tuple(sorted(ids)))


@st.composite
def balance(draw: st.DrawFn, key: str, feature: str) -> Balance:
    """A declared balance: an allowance, a reset date or grants (at least one of them)."""
    grants = tuple(
        Grant(gid, draw(amounts(6, signed=True)), draw(st.none() | DATES))
        for gid in sorted(draw(st.sets(st.sampled_from(GRANT_IDS))))
    )
    allowance = draw(st.none() | amounts(6))
    reset_at = draw(st.none() | DATES)
    if allowance is None and reset_at is None and not grants:
        allowance = Decimal(100)
    return Balance(key, feature, allowance=allowance, reset_at=reset_at, grants=grants)


@st.composite
def with_customers(draw: st.DrawFn, catalog: State) -> State:
    """`catalog` with customers from the pool and their balances."""
    assert catalog.settings is not None
    places = exponent(catalog.settings.currency)
    chosen = draw(st.lists(st.sampled_from(IDENTITIES), unique=True, max_size=len(IDENTITIES)))
    customers = {c.key: c for c in (draw(customer(i, catalog, places)) for i in chosen)}
    features = sorted(fid for fid, f in catalog.features.items() if f.type in BALANCE_TYPES)
    balances: dict[str, Balance] = {}
    for key in sorted(customers):
        for fid in draw(st.sets(st.sampled_from(features), max_size=2)) if features else ():
            declared = draw(balance(key, fid))
            balances[declared.address] = declared
    return State(
        settings=catalog.settings,
        features=catalog.features,
        plans=catalog.plans,
        rewards=catalog.rewards,
        customers=customers,
        balances=balances,
    )


@st.composite
def kept_or_new(draw: st.DrawFn, before: State, catalog: State) -> State:
    """Customers for `catalog` after `before`: mostly `before`'s own (those still valid on
    the new catalog, some with their balances redrawn), else a fresh draw."""
    fresh = draw(with_customers(catalog))
    customers = dict(fresh.customers)
    balances = {a: b for a, b in fresh.balances.items()}
    for key, old in before.customers.items():
        if draw(st.booleans()):
            customers[key] = old
            balances = {a: b for a, b in balances.items() if b.customer != key}
            balances.update({a: b for a, b in before.balances.items() if b.customer == key})
    candidate = State(
        settings=catalog.settings,
        features=catalog.features,
        plans=catalog.plans,
        rewards=catalog.rewards,
        customers=dict(sorted(customers.items())),
        balances=dict(sorted(balances.items())),
    )
    return candidate if valid(candidate) else fresh


def valid(state: State) -> bool:
    try:
        load_text(dump_state(state))
    except ConfigError:
        return False
    return True
