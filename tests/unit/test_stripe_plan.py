"""The database after a plan's changes (`database.project.project`) and Stripe planned from
it end to end (`stripe.plan.plan_stripe`, `with_stripe`): pure, against hand-built states and
catalogs loaded from YAML text."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from autumn_sync.config import load_text
from autumn_sync.database.diff import PlanConflict, diff
from autumn_sync.database.project import project
from autumn_sync.model.customers import Customer
from autumn_sync.model.state import State
from autumn_sync.model.stripe import (
    StripeState,
    StripeSubscription,
    SubscriptionItem,
    SubscriptionParts,
)
from autumn_sync.plan.changes import Archive, Change, Create, Delete, FieldChange, Replace, Update
from autumn_sync.plan.plan import Note
from autumn_sync.stripe.plan import StripeInputs, plan_stripe, with_stripe

TODAY = date(2026, 3, 1)
JANE = "- {id: user_1, email: jane@example.com, plans: [pro], rewards: [launch20]}"
ACME = (
    "- {email: billing@acme.com, plans: [pro],"
    " billing: {collection: send_invoice, days_until_due: 30}}"
)


def billing_file(
    amount: str = "20",
    customers: tuple[str, ...] = (JANE, ACME),
    migrate: bool = False,
    plans: str = "",
) -> State:
    """A small catalog: a free plan, `pro` ($amount a month, 14 days' trial, pay-per-use
    messages beyond 1,000), a reward with a code, and `customers` (YAML list entries)."""
    listed = "\n".join(f"  {c}" for c in customers) or "  []"
    return load_text(
        f"""
version: 1
settings: {{currency: usd}}
features:
  messages: {{name: Messages, type: metered, consumable: true}}
  sso: {{name: SSO, type: boolean}}
plans:
  free:
    name: Free
    items: [{{feature: messages, included: 100, reset: month}}]
  pro:
    name: Pro
    price: {{amount: {amount}, interval: month}}
    free_trial: {{days: 14, card_required: true}}
    migrate_customers: {str(migrate).lower()}
    items:
      - {{feature: messages, included: 1000, reset: month,
         price: {{amount: 5, per: 100, billing: pay_per_use}}}}
      - {{feature: sso}}
{plans}
rewards:
  launch20:
    {{type: percentage_discount, percent_off: 20, duration: {{months: 3}},
     plans: [pro], promo_codes: [LAUNCH20]}}
customers:
{listed}
"""
    )


def projected(current: State, desired: State) -> State:
    return project(current, desired, diff(current, desired).changes, TODAY)


def inputs(contents: State | None = None) -> StripeInputs:
    """What the database records of Stripe; `contents` gives the plans' content per version
    (as the database holds the versions its customers are on)."""
    held = contents.plans.values() if contents is not None else ()
    versions = {(p.id, p.version or 1): p.content for p in held}
    return StripeInputs(recorded={}, written_names={}, contents=versions, today=TODAY)


def summary(changes: list[Change] | tuple[Change, ...]) -> list[tuple[str, str]]:
    return [(type(c).__name__, c.address) for c in changes]


# --- the database once applied, as a current state -----------------------------------------------


def in_database(state: State) -> State:
    """`state` (a projection) as the database reads it back after apply: customers managed,
    with rows, and the plans with the customers counted on each version."""
    customers = {
        key: replace(c, internal_id=n, managed=True)
        for n, (key, c) in enumerate(sorted(state.customers.items()), start=1)
    }
    on = Counter((p.plan, p.version) for c in customers.values() for _, p in c.all_plans())
    plans = {
        pid: replace(
            plan,
            versions_in_use=tuple(sorted((v, n) for (q, v), n in on.items() if q == pid)),
            customers=on[(pid, plan.version)],
        )
        for pid, plan in state.plans.items()
    }
    return replace(state, plans=plans, customers=customers)


def held(
    state: State, plan: str = "pro", version: int = 1, on: tuple[tuple[int, int], ...] = ()
) -> State:
    """`state` with `plan` at `version` and `on` (version, customers) in the database."""
    found = state.plans[plan]
    counts = dict(on)
    updated = replace(found, version=version, versions_in_use=on, customers=counts.get(version, 0))
    return replace(state, plans={**state.plans, plan: updated})


# --- project(): plans -------------------------------------------------------------------------


def test_a_new_catalog_is_projected_at_version_1() -> None:
    after = projected(State(), billing_file(customers=()))

    assert {pid: (p.version, p.versions_in_use, p.customers) for pid, p in after.plans.items()} == {
        "free": (1, (), 0),
        "pro": (1, (), 0),
    }


def test_a_price_change_with_customers_on_the_version_makes_a_version_they_stay_behind() -> None:
    current = in_database(projected(State(), billing_file()))
    assert current.plans["pro"].versions_in_use == ((1, 2),)

    after = projected(current, billing_file(amount="25"))

    pro = after.plans["pro"]
    assert (pro.version, pro.versions_in_use, pro.customers) == (2, ((1, 2),), 0)
    assert pro.content.price is not None and pro.content.price.amount == Decimal(25)
    assert [c.plans[0].version for c in after.customers.values()] == [1, 1]


def test_with_migrate_customers_the_customers_move_to_the_new_version() -> None:
    current = in_database(projected(State(), billing_file()))

    after = projected(current, billing_file(amount="25", migrate=True))

    pro = after.plans["pro"]
    assert (pro.version, pro.versions_in_use, pro.customers) == (2, ((2, 2),), 2)
    assert [c.plans[0].version for c in after.customers.values()] == [2, 2]


def test_a_change_with_nobody_on_the_current_version_keeps_the_version() -> None:
    current = held(billing_file(customers=()), version=2, on=((1, 4),))

    after = projected(current, billing_file(amount="25", customers=()))

    pro = after.plans["pro"]
    assert (pro.version, pro.versions_in_use, pro.customers) == (2, ((1, 4),), 0)


def test_the_customers_of_every_older_version_move() -> None:
    current = held(billing_file(customers=()), version=2, on=((1, 4), (2, 3)))

    after = projected(current, billing_file(amount="25", customers=(), migrate=True))

    pro = after.plans["pro"]
    assert (pro.version, pro.versions_in_use, pro.customers) == (3, ((3, 7),), 7)


def test_migrate_set_on_an_unchanged_plan_moves_the_older_versions_customers() -> None:
    current = held(billing_file(customers=()), version=2, on=((1, 4), (2, 3)))
    desired = billing_file(customers=(), migrate=True)

    changes = [c for c in diff(current, desired).changes if c.address == "plan.pro"]
    after = project(current, desired, changes, TODAY)

    (change,) = changes
    assert isinstance(change, Update) and change.moving and change.new_version is None
    assert change.reason == "4 customers on version 1 move to version 2"
    pro = after.plans["pro"]
    assert (pro.version, pro.versions_in_use, pro.customers) == (2, ((2, 7),), 7)


@pytest.mark.parametrize(
    ("on", "change", "kept"),
    [(((1, 3),), Archive, True), ((), Delete, False)],
)
def test_a_plan_removed_is_archived_with_customers_and_gone_without(
    on: tuple[tuple[int, int], ...], change: type[Change], kept: bool
) -> None:
    extra = "  team:\n    name: Team\n    price: {amount: 50, interval: month}"
    current = held(billing_file(customers=(), plans=extra), "team", 1, on)
    desired = billing_file(customers=())

    changes = diff(current, desired).changes
    after = project(current, desired, changes, TODAY)

    assert [type(c) for c in changes if c.address == "plan.team"] == [change]
    if kept:
        team = after.plans["team"]
        assert (team.archived, team.version, team.versions_in_use) == (True, 1, on)
    else:
        assert "team" not in after.plans


def test_settings_left_out_of_the_file_are_the_databases() -> None:
    current = billing_file(customers=())

    after = project(current, replace(current, settings=None), [], TODAY)

    assert after.settings == current.settings


# --- project(): customers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "trial_end"),
    [
        ("{id: user_1, plans: [pro]}", TODAY + timedelta(days=14)),
        ("{id: user_1, plans: [{plan: pro, trial_days: 7}]}", TODAY + timedelta(days=7)),
        ("{id: user_1, plans: [{plan: pro, trial_days: 0}]}", None),
        ("{id: user_1, plans: [{plan: pro, start: 2026-04-01}]}", date(2026, 4, 15)),
        ("{id: user_1, plans: [free]}", None),
    ],
)
def test_a_new_customers_plan_is_attached_with_its_trial(
    entry: str, trial_end: date | None
) -> None:
    after = projected(State(), billing_file(customers=(f"- {entry}",)))

    (plan,) = after.customers[".user_1"].plans
    assert (plan.version, plan.trial_ends_at) == (1, trial_end)


def test_a_plan_attached_to_a_customer_is_at_the_plans_version_after_apply() -> None:
    current = in_database(projected(State(), billing_file(customers=(JANE,))))
    joining = "- {id: user_2, plans: [pro]}"

    after = projected(current, billing_file(amount="25", customers=(JANE, joining)))

    assert after.customers[".user_1"].plans[0].version == 1  # stays
    assert after.customers[".user_2"].plans[0].version == 2  # attached now
    assert after.customers[".user_2"].plans[0].trial_ends_at == TODAY + timedelta(days=14)


def test_a_customer_keeps_what_the_database_knows_of_it() -> None:
    first = projected(State(), billing_file(customers=(ACME,)))
    acme = first.customers["[billing@acme.com]"]
    bound = replace(
        acme,
        customer_id="acme_1",  # the application bound an id to the pre-provisioned customer
        stripe_id="cus_9",
        plans=(
            replace(
                acme.plans[0],
                status="trialing",
                trial_ends_at=date(2026, 3, 5),
                stripe_subscription_id="sub_9",
            ),
        ),
    )
    current = in_database(replace(first, customers={acme.key: bound}))

    after = projected(current, billing_file(customers=(ACME,)))

    projected_acme = after.customers["[billing@acme.com]"]
    assert (projected_acme.customer_id, projected_acme.internal_id) == ("acme_1", 1)
    assert projected_acme.stripe_id == "cus_9"
    (plan,) = projected_acme.plans
    assert (plan.version, plan.status, plan.trial_ends_at, plan.stripe_subscription_id) == (
        1,
        "trialing",
        date(2026, 3, 5),
        "sub_9",
    )


# --- plan_stripe end to end -----------------------------------------------------------------------


def stored(wanted: StripeState) -> StripeState:
    """Stripe holding exactly `wanted`, as read: every object with an id, the customers with
    a payment method, the subscriptions live and listed with their customer."""

    def ids(records: dict[str, object], prefix: str) -> dict[str, object]:
        return {
            a: replace(r, stripe_id=f"{prefix}_{n}")  # type: ignore[type-var]
            for n, (a, r) in enumerate(sorted(records.items()), start=1)
        }

    customers = {
        a: replace(c, has_payment_method=True)
        for a, c in ids(wanted.customers, "cus").items()  # type: ignore[arg-type]
    }
    subscriptions = {
        a: replace(s, status="active")
        for a, s in ids(wanted.subscriptions, "sub").items()  # type: ignore[arg-type]
    }
    return StripeState(
        products=ids(wanted.products, "prod"),  # type: ignore[arg-type]
        prices=ids(wanted.prices, "price"),  # type: ignore[arg-type]
        meters=ids(wanted.meters, "mtr"),  # type: ignore[arg-type]
        coupons=ids(wanted.coupons, "coupon"),  # type: ignore[arg-type]
        promotion_codes=ids(wanted.promotion_codes, "promo"),  # type: ignore[arg-type]
        found_customers=tuple(customers.values()),
        found_subscriptions=tuple(subscriptions.values()),
        parts={
            s.stripe_id: SubscriptionParts(customers[s.customer].stripe_id)  # type: ignore[misc]
            for s in subscriptions.values()
        },
    )


def recorded(state: State, stripe: StripeState) -> State:
    """`state` with the Stripe ids the database records once Stripe is applied."""
    customers = {c.address: c.stripe_id for c in stripe.found_customers}
    subs = {  # (the subscription's address without its interval, plan) → its id
        (s.address.rsplit(".", 1)[0], plan): s.stripe_id
        for s in stripe.found_subscriptions
        for plan in s.plans
    }

    def record(customer: Customer) -> Customer:
        address = f"stripe_customer{customer.key}"
        plans = tuple(
            replace(
                p, stripe_subscription_id=subs.get((f"stripe_subscription{customer.key}", p.plan))
            )
            for p in customer.plans
        )
        return replace(customer, stripe_id=customers.get(address), plans=plans)

    return replace(state, customers={k: record(c) for k, c in state.customers.items()})


def first_apply(desired: State) -> tuple[State, StripeState]:
    """The database and Stripe once `desired` is applied to empty ones."""
    after = projected(State(), desired)
    stripe = stored(plan_stripe(after, {}, StripeState(), inputs()).wanted)
    return in_database(recorded(after, stripe)), stripe


def test_an_empty_stripe_gets_the_catalog_and_the_billed_customers() -> None:
    after = projected(State(), billing_file())

    planned = plan_stripe(after, {}, StripeState(), inputs())

    assert sorted(summary(planned.changes)) == [
        ("Create", "stripe_coupon.launch20"),
        ("Create", "stripe_customer.user_1"),
        ("Create", "stripe_customer[billing@acme.com]"),
        ("Create", "stripe_meter.pro.messages"),
        ("Create", "stripe_price.pro.base"),
        ("Create", "stripe_price.pro.messages"),
        ("Create", "stripe_product.free"),
        ("Create", "stripe_product.pro"),
        ("Create", "stripe_product.pro.messages"),
        ("Create", "stripe_promotion_code.launch20.LAUNCH20"),
        ("Create", "stripe_subscription[billing@acme.com].month"),
    ]
    # Jane pays by card and has no payment method yet: her subscription waits.
    assert [(w.address, w.customer) for w in planned.waiting] == [
        ("stripe_subscription.user_1.month", "stripe_customer.user_1")
    ]
    assert planned.missing_links == []


def test_the_subscriptions_wanted_bill_the_plan_and_carry_the_customers_terms() -> None:
    after = projected(State(), billing_file())

    wanted = plan_stripe(after, {}, StripeState(), inputs()).wanted.subscriptions

    assert wanted == {
        "stripe_subscription.user_1.month": StripeSubscription(
            address="stripe_subscription.user_1.month",
            customer="stripe_customer.user_1",
            plans=("pro",),
            items=(
                ("stripe_price.pro.base", SubscriptionItem(1, 1)),
                ("stripe_price.pro.messages", SubscriptionItem(1, None)),
            ),
            coupons=("stripe_coupon.launch20",),
            trial_end=date(2026, 3, 15),
            owner="stripe_subscription.user_1.month",
            scope=("plan:pro",),
            records=("pro",),
        ),
        "stripe_subscription[billing@acme.com].month": StripeSubscription(
            address="stripe_subscription[billing@acme.com].month",
            customer="stripe_customer[billing@acme.com]",
            plans=("pro",),
            items=(
                ("stripe_price.pro.base", SubscriptionItem(1, 1)),
                ("stripe_price.pro.messages", SubscriptionItem(1, None)),
            ),
            collection_method="send_invoice",
            days_until_due=30,
            trial_end=date(2026, 3, 15),
            owner="stripe_subscription[billing@acme.com].month",
            scope=("plan:pro",),
            records=("pro",),
        ),
    }


def test_planning_again_against_what_was_made_changes_nothing() -> None:
    database, stripe = first_apply(billing_file())

    again = plan_stripe(projected(database, billing_file()), {}, stripe, inputs(database))

    assert again.changes == []
    assert again.waiting == []


def test_until_the_database_records_the_stripe_ids_they_are_the_only_change() -> None:
    after = projected(State(), billing_file())
    stripe = stored(plan_stripe(after, {}, StripeState(), inputs()).wanted)

    again = plan_stripe(after, {}, stripe, inputs())

    assert {(c.address, c.fields) for c in again.changes} == {
        ("stripe_customer.user_1", (FieldChange("database.stripe_id", None, "cus_1"),)),
        ("stripe_customer[billing@acme.com]", (FieldChange("database.stripe_id", None, "cus_2"),)),
        ("stripe_subscription.user_1.month", (FieldChange("database.stripe_id", None, "sub_1"),)),
        (
            "stripe_subscription[billing@acme.com].month",
            (FieldChange("database.stripe_id", None, "sub_2"),),
        ),
    }


def test_a_new_price_for_a_new_version_keeps_the_old_one_for_its_customers() -> None:
    database, stripe = first_apply(billing_file())

    after = projected(database, billing_file(amount="25"))
    planned = plan_stripe(after, {}, stripe, inputs(database))

    (change,) = planned.changes  # the subscriptions stay on version 1's price
    assert isinstance(change, Replace)
    assert change.address == "stripe_price.pro.base"
    assert change.keep_old == "the customers on version 1"
    assert change.after is not None and change.after.version == 2  # type: ignore[union-attr]
    assert change.fields == (FieldChange("unit_amount_decimal", Decimal(2000), Decimal(2500)),)


def test_customers_moving_to_a_new_version_move_to_its_new_price() -> None:
    database, stripe = first_apply(billing_file())

    after = projected(database, billing_file(amount="25", migrate=True))
    planned = plan_stripe(after, {}, stripe, inputs(database))

    assert sorted(summary(planned.changes)) == [
        ("Replace", "stripe_price.pro.base"),
        ("Update", "stripe_subscription.user_1.month"),
        ("Update", "stripe_subscription[billing@acme.com].month"),
    ]
    replaced = next(c for c in planned.changes if isinstance(c, Replace))
    assert replaced.keep_old is None  # nobody stays on version 1
    for change in planned.changes:
        if isinstance(change, Update):
            # The messages price did not change: version 1's price still bills version 2.
            assert change.fields == (FieldChange("items[stripe_price.pro.base].version", 1, 2),)


def test_a_customer_leaving_the_file_cancels_its_subscription_keeps_its_customer() -> None:
    database, stripe = first_apply(billing_file())

    after = projected(database, billing_file(customers=(JANE,)))
    planned = plan_stripe(after, {}, stripe, inputs(database))

    assert sorted(summary(planned.changes)) == [
        ("Archive", "stripe_customer[billing@acme.com]"),
        ("Archive", "stripe_subscription[billing@acme.com].month"),
    ]


CUSTOM = (
    "- {id: user_1, plans: [{plan: pro, price: {amount: 15, interval: month}}],"
    " billing: {collection: send_invoice, days_until_due: 30}}"
)


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a customer's own price is billed at its plan version (`with_items`: "
    "`item.custom` → `item.plan_version`) but is never remade when only the version moves "
    "(its terms are equal; the diff ignores `version`), and Stripe keeps the version it was "
    "made with in its metadata, which is what the reader reads as the item's version: a "
    "customer with a custom price whose plan moves its customers (migrate_customers) gets "
    "`~ items[stripe_price.pro.base[user_1]].version: 1 → 2` on every plan, never converging",
)
def test_a_custom_price_customer_moved_to_a_new_version_converges() -> None:
    database, stripe = first_apply(billing_file(customers=(CUSTOM,)))
    desired = billing_file(amount="25", migrate=True, customers=(CUSTOM,))
    after = projected(database, desired)

    first = plan_stripe(after, {}, stripe, inputs(database))

    assert summary(first.changes) == [
        ("Replace", "stripe_price.pro.base"),
        ("Update", "stripe_subscription.user_1.month"),  # items[…base[user_1]].version: 1 → 2
    ]
    replaced = first.changes[0]
    # Applying it makes the plan's new base price; the customer's subscription bills its own
    # price and version 1's messages price, the same objects as before: read back, its items
    # are what they were (an item's version is its price's `autumn_sync_version`).
    new_base = replace(replaced.after, stripe_id="price_new")  # type: ignore[type-var]
    old_base = replace(stripe.prices["stripe_price.pro.base"], active=False)
    applied = replace(
        stripe, prices={**stripe.prices, "stripe_price.pro.base": new_base}, superseded=(old_base,)
    )
    database = in_database(recorded(after, applied))

    again = plan_stripe(projected(database, desired), {}, applied, inputs(database))

    assert again.changes == []


# --- with_stripe ----------------------------------------------------------------------------------


def test_with_stripe_adds_the_ordered_stripe_changes_and_the_waiting_notes() -> None:
    desired = billing_file()
    database_plan = diff(State(), desired)
    after = project(State(), desired, database_plan.changes, TODAY)

    plan = with_stripe(database_plan, after, StripeState(), inputs())

    addresses = [c.address for c in plan.changes]
    assert addresses[: len(database_plan.changes)] == [c.address for c in database_plan.changes]
    assert addresses.index("stripe_product.pro") < addresses.index("stripe_price.pro.base")
    assert addresses.index("stripe_meter.pro.messages") < addresses.index(
        "stripe_price.pro.messages"
    )
    assert plan.notes == (
        Note(
            "stripe_subscription.user_1.month",
            "waiting for checkout: stripe_customer.user_1 has no payment method in Stripe yet",
        ),
    )
    assert plan.stripe is not None
    assert plan.stripe.existing == StripeState()
    assert set(plan.stripe.desired.subscriptions) == {
        "stripe_subscription.user_1.month",
        "stripe_subscription[billing@acme.com].month",
    }


def test_with_stripe_refuses_a_link_to_a_stripe_customer_that_does_not_exist() -> None:
    linked = "- {id: user_1, stripe: {customer: cus_missing}}"
    desired = billing_file(customers=(linked,))
    database_plan = diff(State(), desired)
    after = project(State(), desired, database_plan.changes, TODAY)

    with pytest.raises(PlanConflict) as raised:
        with_stripe(database_plan, after, StripeState(), inputs())

    assert raised.value.conflicts == [
        "stripe_customer.user_1: the Stripe customer cus_missing it links does not exist "
        "(or was deleted); fix `stripe.customer` in the file"
    ]


def test_a_customer_the_file_renames_keeps_its_stripe_objects() -> None:
    # Acme was pre-provisioned by email; the file now names it by the id the app bound.
    database, stripe = first_apply(billing_file(customers=(ACME,)))
    by_id = ACME.replace("{email:", "{id: acme_1, email:")
    desired = billing_file(customers=(by_id,))
    database_plan = diff(database, desired)
    after = project(database, desired, database_plan.changes, TODAY)

    plan = with_stripe(database_plan, after, stripe, inputs(database))

    stripe_changes = [c for c in plan.changes if c.kind.target == "stripe"]
    assert [(type(c), c.address, c.fields) for c in stripe_changes] == [
        (
            Update,
            "stripe_customer.acme_1",
            (
                FieldChange(
                    "metadata.autumn_sync_address",
                    "stripe_customer[billing@acme.com]",
                    "stripe_customer.acme_1",
                ),
            ),
        ),
        (
            Update,
            "stripe_subscription.acme_1.month",
            (
                FieldChange(
                    "metadata.autumn_sync_address",
                    "stripe_subscription[billing@acme.com].month",
                    "stripe_subscription.acme_1.month",
                ),
            ),
        ),
    ]
    assert not any(isinstance(c, Create) for c in stripe_changes)
