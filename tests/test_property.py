"""Property tests: random valid catalogs round-trip through the file format, applying any
catalog after any other converges to exactly what a fresh apply gives (with or without
customers on the plans, the application's or the file's own with their balances), and
planning is deterministic.

The generator draws from small pools of ids (features f1..f6, plans p1..p6, rewards r1..r3),
so two random catalogs share most ids: the diff sees updates, not only creates and deletes.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select

from autumn_sync.config.export import dump_state
from autumn_sync.config.format import MAX_REDEMPTIONS
from autumn_sync.config.load import load_text
from autumn_sync.config.problems import ConfigError
from autumn_sync.database import schema as t
from autumn_sync.database.diff.catalog import PlanConflict, diff
from autumn_sync.database.diff.customers import dated
from autumn_sync.database.engine import connect
from autumn_sync.database.read.catalog import read_state
from autumn_sync.database.schema import metadata
from autumn_sync.model.attributes import CONTENT_FIELDS, attributes
from autumn_sync.model.customers import Customer, Lookup
from autumn_sync.model.money import canonical, exponent
from autumn_sync.model.records import (
    PRICE_INTERVALS,
    RECURRING_RESETS,
    RESET_INTERVALS,
    UNRESTRICTED,
    CodeRestrictions,
    Duration,
    Feature,
    FeatureType,
    FixedPrice,
    FreeTrial,
    Plan,
    PlanContent,
    PlanItem,
    Reward,
    RewardType,
    Rollover,
    Settings,
    Tier,
    TierMode,
    UsageModel,
    UsagePrice,
)
from autumn_sync.model.state import State
from autumn_sync.pipeline import apply_plan, make_plan, read_current, utc_now
from autumn_sync.render.json import render_json
from autumn_sync.render.markdown import render_markdown
from autumn_sync.render.text import render_text
from tests.conftest import reset_database, server_url
from tests.customer_strategies import IDENTITIES, kept_or_new, with_customers
from tests.helpers import add_customers, as_declared, customer_versions

pytestmark = pytest.mark.slow  # see pyproject.toml: the fast loop leaves these out

CURRENCIES = ("usd", "jpy", "kwd", "eur")
FEATURE_IDS = tuple(f"f{n}" for n in range(1, 7))
PLAN_IDS = tuple(f"p{n}" for n in range(1, 7))
REWARD_IDS = ("r1", "r2", "r3")
GROUPS = (None, "main", "extras")
# Case variants on purpose: codes are unique regardless of case.
PROMO_CODES = ("WELCOME", "launch", "LAUNCH", "spring-24", "VIP_1", "x", "LONG-" + "9" * 59)

# AUTUMN_SYNC_HYPOTHESIS_SCALE=20 runs twenty times the examples (a longer bug hunt).
SCALE = float(os.environ.get("AUTUMN_SYNC_HYPOTHESIS_SCALE", "1"))


def examples(count: int) -> settings:
    return settings(
        max_examples=max(1, round(count * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


FAST = examples(150)
DATABASE = examples(60)
SEQUENCES = examples(30)
SERVER = examples(12)


# --- Strategies -----------------------------------------------------------------------------

# Any text the file format accepts: no control characters but tab and newline.
CONTROL = "".join(chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F))
text_characters = st.characters(codec="utf-8", exclude_characters=CONTROL)
names = st.text(text_characters, min_size=1, max_size=200)
descriptions = st.none() | st.text(text_characters, max_size=1000)


# The file takes what the database's NUMERIC(30, 12) holds: 18 digits before the point, 12
# after. Money has at most the currency's decimals.
INTEGER_DIGITS = 18
QUANTITY_PLACES = 12


def exact(n: int, places: int) -> Decimal:
    """`n / 10**places`, exactly (Decimal arithmetic would round to 28 digits)."""
    return Decimal(f"{n}E-{places}")


def decimals(places: int, low: int = 0) -> st.SearchStrategy[Decimal]:
    """Decimals `n / 10**p`, `p <= places`, at least `low / 10**p`: mostly small, sometimes
    as long as the database holds."""

    def scaled(p: int) -> st.SearchStrategy[Decimal]:
        largest = 10 ** (INTEGER_DIGITS + p) - 1
        numerators = st.integers(low, 10**4) | st.integers(low, largest)
        return numerators.map(lambda n: exact(n, p))

    return st.integers(0, places).flatmap(scaled)


def percents() -> st.SearchStrategy[Decimal]:
    """(0, 100], with up to 12 decimals."""
    return st.integers(0, QUANTITY_PLACES).flatmap(
        lambda p: st.integers(1, 100 * 10**p).map(lambda n: exact(n, p))
    )


intervals = st.sampled_from(PRICE_INTERVALS)
BILLED_RESETS = tuple(r for r in RESET_INTERVALS if r not in ("hour", "one_off"))  # pay-per-use


@st.composite
def tiers(draw: st.DrawFn, places: int) -> tuple[Tier, ...]:
    bounds = sorted(draw(st.lists(decimals(QUANTITY_PLACES, 1), unique=True, max_size=3)))
    ups: list[Decimal | None] = [*bounds, None]
    return tuple(Tier(up_to, draw(decimals(places))) for up_to in ups)


@st.composite
def usage_prices(draw: st.DrawFn, places: int) -> UsagePrice:
    billing = draw(st.sampled_from(UsageModel))
    per = draw(st.one_of(st.just(1), st.integers(1, 1000)))
    interval = draw(st.none() | intervals)
    if draw(st.booleans()):
        return UsagePrice(billing, per, amount=draw(decimals(places)), interval=interval)
    return UsagePrice(
        billing,
        per,
        tiers=draw(tiers(places)),
        tier_mode=draw(st.sampled_from(TierMode)),
        interval=interval,
    )


@st.composite
def items(draw: st.DrawFn, feature: Feature, places: int) -> PlanItem:
    if feature.type is FeatureType.BOOLEAN:
        return PlanItem(feature.id)
    included = draw(st.none() | decimals(QUANTITY_PLACES))
    reset = draw(st.none() | st.sampled_from(RESET_INTERVALS))
    price = draw(st.none() | usage_prices(places))
    if price is not None and price.billing is UsageModel.PAY_PER_USE:
        if price.interval == "one_off":  # pay-per-use bills each period
            price = replace(price, interval=None)
        if price.tier_mode is TierMode.VOLUME:  # volume tiers are for prepaid items
            price = replace(price, tier_mode=TierMode.GRADUATED)
        if reset not in BILLED_RESETS:  # no price bills hourly, nor once
            reset = None
        if price.interval is not None and reset is not None:  # it resets when it is billed
            reset = price.interval
    first = price.tiers[0].up_to if price is not None and price.tiers else None
    if included and first is not None and first <= included:  # tiers start above included
        included = None
    unlimited = False
    if included is None and price is None:  # allowances are explicit
        unlimited = draw(st.booleans())
        included = None if unlimited else Decimal(0)
    has_interval = price is not None and price.interval is not None
    if feature.consumable and reset is None and not has_interval:
        billed = price is not None and price.billing is UsageModel.PAY_PER_USE
        reset = draw(st.sampled_from(BILLED_RESETS if billed else RESET_INTERVALS))
    item = PlanItem(feature.id, included=included, unlimited=unlimited, reset=reset, price=price)
    return draw(item_rules(item, feature))


@st.composite
def item_rules(draw: st.DrawFn, item: PlanItem, feature: Feature) -> PlanItem:
    """`item` with, where the rules allow them, a reset every N intervals, a rollover and a
    cap on the units billed per use."""
    recurring = item.reset in RECURRING_RESETS
    pay_per_use = item.price is not None and item.price.billing is UsageModel.PAY_PER_USE
    count = draw(st.integers(1, 12)) if recurring and not pay_per_use else 1
    rollover = None
    if feature.consumable and item.included and recurring:
        rollover = draw(st.none() | rollovers())
    cap = draw(st.none() | decimals(QUANTITY_PLACES, 1)) if pay_per_use else None
    return replace(item, interval_count=count, rollover=rollover, max_purchase=cap)


def rollovers() -> st.SearchStrategy[Rollover]:
    """A rollover capped in units, in % of the allowance or not at all, expiring or not."""
    months = st.none() | st.integers(1, 120)
    return (
        st.builds(Rollover, expires_months=months)
        | st.builds(Rollover, max=decimals(QUANTITY_PLACES, 1), expires_months=months)
        | st.builds(Rollover, max_percentage=percents(), expires_months=months)
    )


@st.composite
def features(draw: st.DrawFn) -> dict[str, Feature]:
    ids = draw(st.lists(st.sampled_from(FEATURE_IDS), unique=True, max_size=6))
    types = {fid: draw(st.sampled_from(FeatureType)) for fid in ids}
    used_up = {fid: types[fid] is FeatureType.METERED and draw(st.booleans()) for fid in ids}
    metered = sorted(fid for fid in ids if used_up[fid])  # credits pay for consumable features
    result = {}
    for fid in ids:
        kind = types[fid]
        if kind is FeatureType.CREDIT_SYSTEM and not metered:
            kind = FeatureType.BOOLEAN
        costs: tuple[tuple[str, Decimal], ...] = ()
        if kind is FeatureType.CREDIT_SYSTEM:
            targets = draw(st.lists(st.sampled_from(metered), unique=True, min_size=1))
            costs = tuple(
                sorted((target, draw(decimals(QUANTITY_PLACES, 1))) for target in targets)
            )
        consumable = kind is FeatureType.CREDIT_SYSTEM or used_up[fid]
        result[fid] = Feature(fid, draw(names), kind, consumable, costs)
    return result


@st.composite
def plans(draw: st.DrawFn, catalog: dict[str, Feature], places: int) -> dict[str, Plan]:
    ids = draw(st.lists(st.sampled_from(PLAN_IDS), unique=True, max_size=6))
    defaults: set[str | None] = set()
    result = {}
    for pid in ids:
        group = draw(st.sampled_from(GROUPS))
        add_on = draw(st.booleans())
        default = not add_on and group not in defaults and draw(st.booleans())
        if default:
            defaults.add(group)
        price = draw(st.none() | st.builds(FixedPrice, decimals(places), intervals))
        trial = draw(
            st.none() | st.builds(FreeTrial, st.integers(1, 730), st.booleans(), st.booleans())
        )
        chosen = draw(st.lists(st.sampled_from(sorted(catalog)), unique=True)) if catalog else []
        content = PlanContent(
            price=price,
            free_trial=trial,
            items=tuple(draw(items(catalog[fid], places)) for fid in sorted(chosen)),
        )
        result[pid] = Plan(
            id=pid,
            name=draw(names),
            content=content,
            description=draw(descriptions),
            group=group,
            add_on=add_on,
            default=default,
            migrate_customers=draw(st.booleans()),
        )
    return result


@st.composite
def rewards(draw: st.DrawFn, plan_ids: list[str], places: int) -> dict[str, Reward]:
    ids = draw(st.lists(st.sampled_from(REWARD_IDS), unique=True, max_size=3))
    used: set[str] = set()
    result = {}
    for rid in ids:
        kind = draw(st.sampled_from(RewardType))
        codes = []
        for code in draw(st.lists(st.sampled_from(PROMO_CODES), unique=True, max_size=3)):
            if code.upper() not in used:
                used.add(code.upper())
                codes.append(code)
        chosen = draw(st.lists(st.sampled_from(plan_ids), unique=True)) if plan_ids else []
        duration = draw(
            st.sampled_from([Duration("once"), Duration("forever")])
            | st.integers(1, 120).map(lambda m: Duration("repeating", m))
        )
        percentage = kind is RewardType.PERCENTAGE
        restricted = [(code, draw(code_restrictions())) for code in sorted(codes)]
        result[rid] = Reward(
            id=rid,
            type=kind,
            duration=duration,
            name=draw(st.none() | names),
            percent_off=draw(percents()) if percentage else None,
            amount_off=None if percentage else draw(decimals(places, 1)),
            plans=tuple(sorted(chosen)),
            promo_codes=tuple(sorted(codes)),
            code_restrictions=tuple(pair for pair in restricted if pair[1] != UNRESTRICTED),
        )
    return result


@st.composite
def code_restrictions(draw: st.DrawFn) -> CodeRestrictions:
    """A promotion code's restrictions (often none): an expiry in the future, at midnight
    (written as a date) or at any second (written as a time)."""
    if draw(st.booleans()):
        return UNRESTRICTED
    moments = st.datetimes(datetime(2030, 1, 1), datetime(2099, 12, 31))
    midnights = st.dates(date(2030, 1, 1), date(2099, 12, 31)).map(
        lambda d: datetime(d.year, d.month, d.day)
    )
    return CodeRestrictions(
        max_redemptions=draw(st.none() | st.integers(1, MAX_REDEMPTIONS)),
        expires_at=draw(st.none() | midnights | moments.map(lambda m: m.replace(microsecond=0))),
        first_time_transaction=draw(st.booleans()),
    )


@st.composite
def catalogs(draw: st.DrawFn) -> State:
    """A random valid catalog, as the file loader would produce it."""
    currency = draw(st.sampled_from(CURRENCIES))
    places = exponent(currency)
    feature_map = draw(features())
    plan_map = draw(plans(feature_map, places))
    return State(
        settings=Settings(currency),
        features=feature_map,
        plans=plan_map,
        rewards=draw(rewards(sorted(plan_map), places)),
    )


PLAN_EDITS = ("keep", "rename", "flags", "price", "items", "drop")


@st.composite
def edited(draw: st.DrawFn, base: State) -> State:
    """`base` with a few edits that keep it valid (renames, flags, a new fixed price, items
    dropped, plans and rewards dropped); the rest exactly as it was. Unchanged records and
    changes outside a plan's content are rare between two independent catalogs."""
    assert base.settings is not None
    places = exponent(base.settings.currency)
    features = {
        fid: replace(feature, name=draw(names)) if draw(st.booleans()) else feature
        for fid, feature in base.features.items()
    }
    plans = {}
    for pid, plan in base.plans.items():
        edit = draw(st.sampled_from(PLAN_EDITS))
        if edit == "drop":
            continue
        if edit == "rename":
            plan = replace(plan, name=draw(names))
        elif edit == "flags":
            plan = replace(plan, migrate_customers=not plan.migrate_customers, default=False)
        elif edit == "price":
            price = draw(st.none() | st.builds(FixedPrice, decimals(places), intervals))
            plan = replace(plan, content=replace(plan.content, price=price))
        elif edit == "items" and plan.content.items:
            kept = draw(st.lists(st.sampled_from(plan.content.items), unique=True))
            items = tuple(sorted(kept, key=lambda item: item.feature))
            plan = replace(plan, content=replace(plan.content, items=items))
        plans[pid] = plan
    rewards = {}
    for rid, reward in base.rewards.items():
        if draw(st.booleans()):
            name = draw(st.none() | names) if draw(st.booleans()) else reward.name
            offered = tuple(p for p in reward.plans if p in plans)
            rewards[rid] = replace(reward, name=name, plans=offered)
    return State(settings=base.settings, features=features, plans=plans, rewards=rewards)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[State, State]:
    """Two catalogs: independent ones, or the second an edit of the first."""
    first = draw(catalogs())
    return first, draw(st.one_of(edited(first), catalogs()))


@st.composite
def customer_files(draw: st.DrawFn) -> State:
    """A random valid catalog with customers and their balances."""
    return draw(with_customers(draw(catalogs())))


@st.composite
def customer_pairs(draw: st.DrawFn) -> tuple[State, State]:
    """Two files with customers: the second's catalog an edit of the first's or another,
    its customers mostly the first's (where still valid) or new ones."""
    first = draw(customer_files())
    catalog = draw(st.one_of(edited(first), catalogs()))
    return first, draw(kept_or_new(first, catalog))


# How many customers join each plan of the pool (the plans a catalog offers, that is).
customer_counts = st.lists(st.integers(0, 3), min_size=len(PLAN_IDS), max_size=len(PLAN_IDS)).map(
    lambda counts: {pid: n for pid, n in zip(PLAN_IDS, counts, strict=True) if n}
)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[State, dict[str, int]]]:
    """2 to 4 catalogs, each independent or an edit of the one before, and who joins what
    after each is applied."""
    steps = [draw(catalogs())]
    for _ in range(draw(st.integers(1, 3))):
        steps.append(draw(st.one_of(edited(steps[-1]), catalogs())))
    return [(step, draw(customer_counts)) for step in steps]


# Regression: the longest numbers a file may hold (30 digits) were rounded to 28 on loading,
# 999999999999999999.999999999999 → 1E+18, which PostgreSQL and MariaDB then refused.
LONGEST = Decimal("999999999999999999.999999999999")
BELOW_LONGEST = Decimal("999999999999999999.999999999998")  # included: the first tier above it
EMPTY = State(settings=Settings("usd"))
LONG_NUMBERS = State(
    settings=Settings("kwd"),
    features={
        "f1": Feature("f1", "Messages", FeatureType.METERED, consumable=True),
        "f2": Feature("f2", "Credits", FeatureType.CREDIT_SYSTEM, True, (("f1", LONGEST),)),
    },
    plans={
        "p1": Plan(
            "p1",
            "Pro",
            PlanContent(
                price=FixedPrice(Decimal("999999999999999999.999"), "month"),
                items=(
                    PlanItem(
                        "f1",
                        included=BELOW_LONGEST,
                        reset="month",
                        price=UsagePrice(
                            UsageModel.PAY_PER_USE,
                            tiers=(Tier(LONGEST, Decimal("0.001")), Tier(None, Decimal(0))),
                            tier_mode=TierMode.GRADUATED,
                        ),
                        rollover=Rollover(max=BELOW_LONGEST, expires_months=120),
                        max_purchase=BELOW_LONGEST,
                    ),
                ),
            ),
        )
    },
    rewards={
        "r1": Reward(
            "r1", RewardType.PERCENTAGE, Duration("once"), percent_off=Decimal("99.999999999999")
        )
    },
)


# --- Helpers --------------------------------------------------------------------------------

Fresh = Callable[[], Engine]


@contextmanager
def opened(fresh: Fresh) -> Iterator[Engine]:
    engine = fresh()
    try:
        yield engine
    finally:
        engine.dispose()


def fresh_sqlite() -> Engine:
    """A new, migrated, in-memory SQLite database (one connection per thread keeps it)."""
    return connect("sqlite://")


def fresh_server(url: str) -> Fresh:
    """Empties the (migrated) server database: deleting rows is much faster than dropping
    and migrating again for every example, and leaves the same empty catalog."""

    def fresh() -> Engine:
        engine = connect(url)
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(delete(table))
        return engine

    return fresh


def apply(engine: Engine, desired: State) -> None:
    apply_plan(engine, make_plan(engine, desired), allow_destroy=True)


def view(state: State) -> dict[str, dict[str, Any]]:
    """Everything the file can say about the offered catalog (archived plans left out; the
    customers' plans as the file gives them, see `as_declared`)."""
    return {
        record.address: attributes(as_declared(record) if isinstance(record, Customer) else record)
        for record in state.records()
        if not (isinstance(record, Plan) and record.archived)
    }


def content(plan: Plan) -> dict[str, Any]:
    data = attributes(plan)
    return {key: data[key] for key in CONTENT_FIELDS}


def table_rows(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every row of every table, as multisets (creation times left out: they differ)."""
    rows = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            columns = [column for column in table.columns if column.name != "created_at"]
            result = connection.execute(select(*columns))
            rows[table.name] = Counter(tuple(row) for row in result)
    return rows


def customer_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(t.customer_plans)).scalar_one()
        )


def join(engine: Engine, desired: State, counts: dict[str, int]) -> dict[str, int]:
    """App customers join the offered plans among `counts`; returns who joined where."""
    joined = {pid: n for pid, n in sorted(counts.items()) if pid in desired.plans}
    for pid, n in joined.items():
        add_customers(engine, pid, n)
    return joined


def keep_used_features(current: State, desired: State) -> State:
    """`desired`, plus the features it drops that customers' plan versions still use (the
    plan refuses such removals) and what those features' credit costs need."""
    used = [f for f in sorted(current.features) if current.feature_users.get(f)]
    needed = [f for f in used if f not in desired.features]
    if needed:
        event("a removed feature is still used by customers' plan versions")
        with pytest.raises(PlanConflict) as conflict:
            diff(current, desired)
        assert len(conflict.value.conflicts) == sum(len(current.feature_users[f]) for f in needed)
    else:
        diff(current, desired)
        return desired
    kept = dict(desired.features)
    while needed:
        fid = needed.pop()
        if fid not in kept:
            kept[fid] = current.features[fid]
            needed.extend(target for target, _ in current.features[fid].credit_costs)
    augmented = replace(desired, features=kept)
    try:
        load_text(dump_state(augmented))
    except ConfigError:
        assume(False)  # a kept credit system needs a feature the file made non-metered
    return augmented


def reversed_state(state: State) -> State:
    """The same state with every mapping in reverse insertion order."""

    def rev(mapping: dict[str, Any]) -> dict[str, Any]:
        return dict(reversed(mapping.items()))

    return State(
        settings=state.settings,
        features=rev(state.features),
        plans=rev(state.plans),
        rewards=rev(state.rewards),
        feature_users=rev(state.feature_users),
        customers=rev(state.customers),
        balances=rev(state.balances),
        app_customers=state.app_customers,
    )


# --- Checks shared by the SQLite and server tests --------------------------------------------


def check_convergence(fresh: Fresh, a: State, b: State) -> None:
    with opened(fresh) as engine:
        apply(engine, a)
        assert view(read_current(engine)) == view(a)
        apply(engine, b)
        assert make_plan(engine, b).empty
        after, after_rows = read_current(engine), table_rows(engine)
    with opened(fresh) as engine:
        apply(engine, b)
        direct, direct_rows = read_current(engine), table_rows(engine)
    assert view(after) == view(direct) == view(b)
    assert not any(plan.archived for plan in after.plans.values())
    # Without customers nothing is versioned or archived: the very rows are the same.
    assert after_rows == direct_rows


def check_convergence_with_customers(
    fresh: Fresh, a: State, b: State, counts: dict[str, int]
) -> None:
    with opened(fresh) as engine:
        apply(engine, a)
        joined = join(engine, a, counts)
        rows = customer_rows(engine)
        current = read_current(engine)
        b = keep_used_features(current, b)
        apply(engine, b)
        assert make_plan(engine, b).empty
        after = read_current(engine)
        assert customer_rows(engine) == rows
        for pid in sorted(a.plans):
            if pid in b.plans:
                assert not after.plans[pid].archived
            elif pid in joined:
                assert after.plans[pid].archived, f"{pid} has customers: archived, not deleted"
            else:
                assert pid not in after.plans, f"{pid} has no customers: deleted"
        for pid, n in joined.items():
            if pid not in b.plans:
                event("a plan with customers is archived")
                assert customer_versions(engine, pid) == {1: n}
                continue
            changed = content(a.plans[pid]) != content(b.plans[pid])
            moving = changed and b.plans[pid].migrate_customers
            if changed:
                who = "customers move" if moving else "customers stay"
                event(f"a plan with customers gets a new version ({who})")
            assert after.plans[pid].version == (2 if changed else 1)
            assert customer_versions(engine, pid) == {2 if moving else 1: n}
    with opened(fresh) as engine:
        apply(engine, b)
        direct = read_current(engine)
    assert view(after) == view(direct) == view(b)


USAGE = Decimal("7.5")


def use_balances(engine: Engine, state: State) -> None:
    """What the application's `track` does: every declared balance gets usage, and every
    managed customer uses a metered feature it declares nothing for (usage alone)."""
    metered = sorted(f for f, feature in state.features.items() if feature.type.value != "boolean")
    b, c, u = t.balances, t.customers, t.balance_usage
    with engine.begin() as connection:
        have = {(row.customer_internal_id, row.feature_id) for row in connection.execute(select(b))}
        if metered:
            for (iid,) in connection.execute(select(c.c.internal_id).where(c.c.managed)):
                have.add((iid, metered[0]))
        used = select(u.c.customer_internal_id, u.c.feature_id)
        have -= {(row.customer_internal_id, row.feature_id) for row in connection.execute(used)}
        rows = [
            {"customer_internal_id": iid, "feature_id": fid, "source": "allowance", "used": USAGE}
            for iid, fid in sorted(have)
        ]
        if rows:
            connection.execute(insert(u), rows)


def usage_rows(engine: Engine) -> dict[tuple[str, str], Decimal]:
    """(customer key, feature) → usage, for the managed customers."""
    u, c = t.balance_usage, t.customers
    query = (
        select(c.c.file_key, u.c.feature_id, u.c.used)
        .join(c, c.c.internal_id == u.c.customer_internal_id)
        .where(c.c.managed)
    )
    with engine.connect() as connection:
        return {(key, fid): Decimal(used) for key, fid, used in connection.execute(query)}


def app_balances(engine: Engine) -> list[tuple[tuple[str | None, str | None], Decimal, Decimal]]:
    """((id, email), usage, allowance) of the application's customers' balances."""
    b, c, u = t.balances, t.customers, t.balance_usage
    same = (u.c.customer_internal_id == b.c.customer_internal_id) & (
        u.c.feature_id == b.c.feature_id
    )
    query = (
        select(c.c.id, c.c.email, u.c.used, b.c.allowance)
        .join(b, c.c.internal_id == b.c.customer_internal_id)
        .join(u, same)
        .where(~c.c.managed)
    )
    with engine.connect() as connection:
        found = [((i, e), Decimal(u), Decimal(a)) for i, e, u, a in connection.execute(query)]
    return sorted(found, key=repr)


def grant_count(engine: Engine) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(t.balance_grants)
        return int(connection.execute(query).scalar_one())


def add_app_customers(engine: Engine, identities: list[tuple[str | None, str | None]]) -> None:
    """Customers the application created (not managed), each with usage and an allowance
    of its own on f1."""
    with engine.begin() as connection:
        for cid, email in identities:
            row = {"id": cid, "email": email, "created_at": datetime(2026, 1, 1), "managed": False}
            iid = connection.execute(insert(t.customers).values(**row)).inserted_primary_key[0]  # type: ignore[index]
            mine = {"customer_internal_id": iid, "feature_id": "f1"}
            # an allowance declared by the application itself, and usage
            connection.execute(insert(t.balances).values(**mine, allowance=Decimal(50)))
            used = {"source": "allowance", "used": USAGE}
            connection.execute(insert(t.balance_usage).values(**mine, **used))


def read_state_for(engine: Engine, desired: State) -> State:
    """The current state as planning `desired` reads it (with the application's customers the
    file names)."""
    with engine.connect() as connection:
        return read_state(connection, Lookup.of(desired.customers.values()))


def check_customer_convergence(
    fresh: Fresh, a: State, b: State, apps: Sequence[tuple[str | None, str | None]] = ()
) -> None:
    """The application made `apps`; apply `a` (adopting those it lists), use the balances,
    apply `b` (twice: the second is a no-op): the customers and balances equal a fresh apply
    of `b`'s, grants are given once, the usage of every customer that stays is kept, and the
    application's customers neither file lists are left alone."""
    with opened(fresh) as engine:
        add_app_customers(engine, list(apps))
        apply(engine, a)
        assert make_plan(engine, a).empty
        use_balances(engine, a)
        used = usage_rows(engine)
        current = read_state_for(engine, b)
        b = keep_used_features(current, b)
        plan = make_plan(engine, b)
        backwards = reversed_state(current)  # planning is deterministic
        shuffled = diff(backwards, dated(backwards, reversed_state(b), utc_now().date()))
        assert render_json(shuffled) == render_json(plan) and shuffled.checksum() == plan.checksum()
        for change in plan.changes:
            if change.kind in ("customer", "balance"):
                event(
                    f"{change.kind} {change.action}{': ' if change.reason else ''}"
                    f"{(change.reason or '').split(' ')[0]}"
                )
        apply_plan(engine, plan, allow_destroy=True)
        assert make_plan(engine, b).empty
        after = read_current(engine)
        kept = {k for k in b.customers if k in a.customers}
        for (key, fid), value in usage_rows(engine).items():
            assert key in b.customers
            if key in kept and (key, fid) in used:
                assert value == used[(key, fid)], (key, fid)
        assert grant_count(engine) == sum(len(x.grants) for x in b.balances.values())
        listed = {(c.customer_id, c.email) for c in (*a.customers.values(), *b.customers.values())}
        assert after.app_customers == len([i for i in apps if i not in listed])
        assert app_balances(engine) == [
            (i, USAGE, Decimal(50)) for i in sorted(apps, key=repr) if i not in listed
        ]
    with opened(fresh) as engine:
        apply(engine, b)
        direct = read_current(engine)
    assert view(after) == view(direct) == view(b)


# --- The properties ---------------------------------------------------------------------------


def test_canonical_keeps_every_digit_the_file_may_have() -> None:
    assert canonical(LONGEST) == LONGEST
    assert format(canonical(Decimal("1E+2")), "f") == "100"
    assert load_text(dump_state(LONG_NUMBERS)) == LONG_NUMBERS


def test_export_writes_no_yaml_aliases() -> None:
    """Regression: one `Decimal` object in two places was written `&id001` ... `*id001`."""
    text = dump_state(LONG_NUMBERS)  # LONGEST is shared by two fields
    assert "&id" not in text and "*id" not in text
    assert text.count("999999999999999999.999999999999") == 2


@FAST
@given(catalogs())
@example(LONG_NUMBERS)
def test_every_catalog_round_trips_through_the_file(state: State) -> None:
    text = dump_state(state)
    assert load_text(text) == state
    assert dump_state(load_text(text)) == text


@DATABASE
@given(ab=pairs())
@example(ab=(EMPTY, LONG_NUMBERS))
def test_apply_converges_to_what_a_fresh_apply_gives(ab: tuple[State, State]) -> None:
    check_convergence(fresh_sqlite, *ab)


@FAST
@given(customer_files())
def test_every_file_with_customers_round_trips(state: State) -> None:
    text = dump_state(state)
    assert load_text(text) == state
    assert dump_state(load_text(text)) == text


app_identities = st.lists(st.sampled_from(IDENTITIES), unique=True, max_size=3)


@DATABASE
@given(ab=customer_pairs(), apps=app_identities)
def test_file_customers_converge_to_what_a_fresh_apply_gives(
    ab: tuple[State, State], apps: list[tuple[str | None, str | None]]
) -> None:
    check_customer_convergence(fresh_sqlite, *ab, apps)


@DATABASE
@given(ab=pairs(), counts=customer_counts)
def test_apply_with_customers_converges_and_keeps_them(
    ab: tuple[State, State], counts: dict[str, int]
) -> None:
    check_convergence_with_customers(fresh_sqlite, *ab, counts)


@SEQUENCES
@given(steps=histories())
def test_a_sequence_of_applies_converges_at_every_step(
    steps: list[tuple[State, dict[str, int]]],
) -> None:
    """Plans archived by one step may come back in a later one; customers are never lost."""
    with opened(fresh_sqlite) as engine:
        for desired, counts in steps:
            current = read_current(engine)
            desired = keep_used_features(current, desired)
            rows = customer_rows(engine)
            apply(engine, desired)
            assert make_plan(engine, desired).empty
            after = read_current(engine)
            assert view(after) == view(desired)
            # `autumn-sync import` writes a file that plans to nothing against the database.
            assert diff(after, load_text(dump_state(after))).empty
            assert customer_rows(engine) == rows
            for pid, plan in current.plans.items():
                if pid in desired.plans:
                    continue
                if plan.customers_total:
                    assert after.plans[pid].archived
                else:
                    assert pid not in after.plans
            join(engine, desired, counts)


@DATABASE
@given(ab=pairs(), counts=customer_counts)
def test_planning_is_deterministic(ab: tuple[State, State], counts: dict[str, int]) -> None:
    a, b = ab
    with opened(fresh_sqlite) as engine:
        apply(engine, a)
        join(engine, a, counts)
        current = read_current(engine)
    try:
        first = diff(current, b)
    except PlanConflict as conflict:
        with pytest.raises(PlanConflict) as again:
            diff(reversed_state(current), reversed_state(b))
        assert again.value.conflicts == conflict.conflicts
        return
    second = diff(current, b)
    shuffled = diff(reversed_state(current), reversed_state(b))
    for other in (second, shuffled):
        assert other.checksum() == first.checksum()
        assert render_text(other) == render_text(first)
        assert render_json(other) == render_json(first)
        assert render_markdown(other) == render_markdown(first)


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    url = server_url(request.param)
    reset_database(url)
    yield url
    reset_database(url)


@SERVER
@given(ab=pairs(), counts=customer_counts)
@example(ab=(EMPTY, LONG_NUMBERS), counts={})
def test_apply_converges_on_servers(
    server: str, ab: tuple[State, State], counts: dict[str, int]
) -> None:
    fresh = fresh_server(server)
    check_convergence(fresh, *ab)
    check_convergence_with_customers(fresh, *ab, counts)


@SERVER
@given(ab=customer_pairs(), apps=app_identities)
def test_file_customers_converge_on_servers(
    server: str, ab: tuple[State, State], apps: list[tuple[str | None, str | None]]
) -> None:
    check_customer_convergence(fresh_server(server), *ab, apps)
