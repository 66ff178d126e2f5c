"""Plan versions against real databases: who stays where when a plan's content changes, and
when a feature may go."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from autumn_sync.config.load import load_text
from autumn_sync.database import schema as t
from autumn_sync.database.diff.catalog import PlanConflict
from autumn_sync.model.state import State
from autumn_sync.pipeline import apply_plan, make_plan, read_current
from autumn_sync.plan.changes import Delete, Update
from tests.helpers import add_customers, customer_versions


def catalog(
    price: int = 20,
    *,
    name: str = "Pro",
    sso: bool = True,
    migrate: bool = False,
    sso_feature: bool = True,
) -> State:
    """A small catalog: pro at `price`, with or without its sso item, moving its customers on
    a new version when `migrate`; `sso_feature=False` drops the feature itself."""
    feature = "  sso: {name: Single sign-on, type: boolean}\n" if sso_feature else ""
    item = "      - {feature: sso}\n" if sso else ""
    return load_text(
        "version: 1\n"
        "features:\n"
        "  messages: {name: Messages, type: metered, consumable: true}\n"
        f"{feature}"
        "plans:\n"
        "  pro:\n"
        f"    name: {name}\n"
        f"    migrate_customers: {'true' if migrate else 'false'}\n"
        f"    price: {{amount: {price}, interval: month}}\n"
        "    items:\n"
        "      - {feature: messages, included: 1000, reset: month}\n"
        f"{item}"
    )


def apply(engine: Engine, desired: State) -> tuple[Update | Delete, ...]:
    """Plan and apply `desired`; the plan's updates and destroys."""
    plan = make_plan(engine, desired)
    apply_plan(engine, plan, allow_destroy=True)
    assert make_plan(engine, desired).empty
    return tuple(c for c in plan.changes if isinstance(c, Update | Delete))


def current_version(engine: Engine, plan_id: str = "pro") -> int | None:
    return read_current(engine).plans[plan_id].version


def version_prices(engine: Engine, plan_id: str = "pro") -> dict[int, Decimal]:
    versions = t.plan_versions
    query = select(versions.c.version, versions.c.price_amount).where(versions.c.plan_id == plan_id)
    with engine.connect() as connection:
        return {version: price for version, price in connection.execute(query)}


def test_customers_stay_on_the_old_version_and_later_changes_update_the_new_one(
    engine: Engine,
) -> None:
    apply(engine, catalog(price=20))
    add_customers(engine, "pro", 12)

    (change,) = apply(engine, catalog(price=25))
    assert isinstance(change, Update) and change.new_version == 2 and not change.moving
    assert current_version(engine) == 2
    assert customer_versions(engine, "pro") == {1: 12}
    assert version_prices(engine) == {1: Decimal(20), 2: Decimal(25)}

    # Nobody is on version 2 yet: the next change updates it in place, version 1 untouched.
    (change,) = apply(engine, catalog(price=30))
    assert isinstance(change, Update) and change.new_version is None
    assert current_version(engine) == 2
    assert customer_versions(engine, "pro") == {1: 12}
    assert version_prices(engine) == {1: Decimal(20), 2: Decimal(30)}

    # Once customers join version 2, the next change makes version 3.
    add_customers(engine, "pro", 2)
    (change,) = apply(engine, catalog(price=35))
    assert isinstance(change, Update) and change.new_version == 3
    assert customer_versions(engine, "pro") == {1: 12, 2: 2}
    assert current_version(engine) == 3


def test_migrate_customers_moves_them_to_the_new_version(engine: Engine) -> None:
    apply(engine, catalog(price=20, migrate=True))
    add_customers(engine, "pro", 12)

    (change,) = apply(engine, catalog(price=25, migrate=True))
    assert isinstance(change, Update) and change.new_version == 2 and change.moving
    assert change.reason == "new version 2 (12 customers move to it)"
    assert current_version(engine) == 2
    assert customer_versions(engine, "pro") == {2: 12}
    state = read_current(engine)
    assert state.plans["pro"].customers == 12
    assert state.plans["pro"].versions_in_use == ((2, 12),)


def test_metadata_changes_never_make_a_version(engine: Engine) -> None:
    apply(engine, catalog())
    add_customers(engine, "pro", 3)
    (change,) = apply(engine, catalog(name="Pro (monthly)"))
    assert isinstance(change, Update) and change.new_version is None
    assert current_version(engine) == 1
    assert customer_versions(engine, "pro") == {1: 3}


def test_a_feature_used_by_a_version_customers_are_on_cannot_go(engine: Engine) -> None:
    apply(engine, catalog(sso=True))
    add_customers(engine, "pro", 12)
    # Version 2 drops sso; the 12 customers stay on version 1, which still has it.
    apply(engine, catalog(sso=False))
    assert customer_versions(engine, "pro") == {1: 12}

    with pytest.raises(PlanConflict) as conflict:
        make_plan(engine, catalog(sso=False, sso_feature=False))
    assert conflict.value.conflicts == [
        "feature.sso cannot be removed: plan.pro version 1 uses it"
        " and 12 customers are on that version"
    ]
    assert "sso" in read_current(engine).features


def test_a_feature_only_customerless_old_versions_use_can_go(engine: Engine) -> None:
    apply(engine, catalog(sso=True, migrate=True))
    add_customers(engine, "pro", 12)
    # Version 2 drops sso and the customers move to it: nobody is left on version 1.
    apply(engine, catalog(sso=False, migrate=True))
    assert customer_versions(engine, "pro") == {2: 12}

    changes = apply(engine, catalog(sso=False, migrate=True, sso_feature=False))
    assert [(type(c), c.address) for c in changes] == [(Delete, "feature.sso")]
    state = read_current(engine)
    assert "sso" not in state.features
    assert customer_versions(engine, "pro") == {2: 12}
    items = t.plan_items
    with engine.connect() as connection:
        used = connection.execute(select(items.c.version).where(items.c.feature_id == "sso"))
        assert used.all() == []
