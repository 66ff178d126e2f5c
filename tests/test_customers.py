"""Customers as code against real databases: grants given once, usage kept, versions with
file customers on them, destroys, adopting the application's customers, pre-provisioned
customers the application has bound an id to, and the application's own customers left alone.

Usage is written with SQL here, as the application's `track` would: apply must never touch it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from autumn_sync.config.load import load_text
from autumn_sync.database import schema as t
from autumn_sync.database.diff.catalog import diff
from autumn_sync.database.engine import connect
from autumn_sync.pipeline import apply_plan, make_plan, read_current
from autumn_sync.plan.changes import Change, Create, Delete, Update
from autumn_sync.render import render_text
from tests.conftest import run_cli
from tests.helpers import add_customers, customer_versions

CATALOG = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
  sso: {name: Single sign-on, type: boolean}
plans:
  free:
    name: Free
    group: main
    default: true
    items:
      - {feature: messages, included: 100, reset: month}
  pro:
    name: Pro
    group: main
    migrate_customers: MIGRATE
    price: {amount: PRICE, interval: month}
    items:
      - {feature: messages, included: 1000, reset: month}
      - {feature: seats, included: 3}
      - {feature: sso}
  business:
    name: Business
    group: main
    price: {amount: 200, interval: year}
    items:
      - {feature: messages, included: 20000, reset: month}
      - {feature: seats, included: 25}
"""

JANE = """\
  - id: user_1
    email: jane@example.com
    plans: [pro]
"""

ACME = """\
  - email: billing@acme.com
    name: Acme Corp
    plans:
      - plan: business
        price: {amount: 2000, interval: year}
        items: [{feature: messages, included: 1000000, reset: month}]
    entities:
      - {id: team_a, feature: seats, name: Team A, plans: [free]}
    balances:
      messages:
        allowance: ALLOWANCE
        grants: [{id: onboarding, amount: GRANT, expires: 2027-01-01}]
"""


def billing(
    *customers: str,
    price: int = 20,
    migrate: bool = False,
    allowance: int = 5000,
    grant: int = 50000,
) -> str:
    """The catalog with `customers` (YAML list entries) under `customers:`."""
    text = CATALOG.replace("PRICE", str(price)).replace("MIGRATE", str(migrate).lower())
    if customers:
        text += "customers:\n" + "".join(customers)
    return text.replace("ALLOWANCE", str(allowance)).replace("GRANT", str(grant))


def apply_text(engine: Engine, text: str, allow_destroy: bool = False) -> tuple[Change, ...]:
    """Plan and apply `text`; the plan must converge. Returns the changes made."""
    desired = load_text(text)
    plan = make_plan(engine, desired)
    apply_plan(engine, plan, allow_destroy=allow_destroy)
    assert make_plan(engine, desired).empty, render_text(make_plan(engine, desired))
    return plan.changes


def rows(engine: Engine, table: Any, *columns: Any) -> list[Any]:
    """The rows of `table` (the `columns` of them, or all), in a stable order."""
    with engine.connect() as conn:
        query = select(*columns) if columns else select(table)
        return sorted(conn.execute(query).all(), key=repr)


def internal_id(engine: Engine, **where: Any) -> int:
    c = t.customers
    query = select(c.c.internal_id).where(*(c.c[name] == value for name, value in where.items()))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def set_usage(engine: Engine, customer: int, feature: str, usage: Decimal) -> None:
    """What the application's `track` leaves: a source's row holds the usage (made if absent)."""
    u = t.balance_usage
    mine = (u.c.customer_internal_id == customer) & (u.c.feature_id == feature)
    with engine.begin() as conn:
        if conn.execute(select(u.c.feature_id).where(mine)).first() is None:
            row = {"customer_internal_id": customer, "feature_id": feature, "used": usage}
            conn.execute(insert(u).values(**row, source="allowance"))
        else:
            conn.execute(update(u).where(mine).values(used=usage))


def usage(engine: Engine, customer: int, feature: str) -> Decimal:
    u = t.balance_usage
    mine = (u.c.customer_internal_id == customer) & (u.c.feature_id == feature)
    with engine.connect() as conn:
        return Decimal(conn.execute(select(func.sum(u.c.used)).where(mine)).scalar_one() or 0)


def counts(engine: Engine) -> dict[str, int]:
    """Rows per customer table."""
    tables = (
        t.customers,
        t.customer_plans,
        t.customer_plan_items,
        t.entities,
        t.customer_rewards,
        t.balances,
        t.balance_grants,
    )
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in tables
        }


def kinds(changes: tuple[Change, ...]) -> list[tuple[str, str]]:
    return [(type(c).__name__, c.address) for c in changes]


# --- grants and usage -------------------------------------------------------------------------


def test_repeated_applies_give_a_grant_once(engine: Engine) -> None:
    text = billing(ACME)
    first = apply_text(engine, text)
    assert ("Create", "balance[billing@acme.com].messages") in kinds(first)
    granted = rows(engine, t.balance_grants)
    assert [(g.feature_id, g.grant_id, g.amount) for g in _grants(engine)] == [
        ("messages", "onboarding", Decimal(50000))
    ]
    for _ in range(2):
        assert apply_text(engine, text) == ()
    assert rows(engine, t.balance_grants) == granted

    # A changed amount updates the one grant (the balance moves by the difference), once.
    changes = apply_text(engine, billing(ACME, grant=60000))
    assert kinds(changes) == [("Update", "balance[billing@acme.com].messages")]
    assert [(g.grant_id, g.amount) for g in _grants(engine)] == [("onboarding", Decimal(60000))]
    assert [g.granted_at for g in _grants(engine)] == [granted[0][-1]]
    assert apply_text(engine, billing(ACME, grant=60000)) == ()
    assert len(_grants(engine)) == 1


def _grants(engine: Engine) -> list[Any]:
    g = t.balance_grants
    with engine.connect() as conn:
        return list(conn.execute(select(g).order_by(g.c.grant_id)))


def test_usage_survives_every_apply(engine: Engine) -> None:
    apply_text(engine, billing(JANE, ACME))
    acme = internal_id(engine, email="billing@acme.com")
    jane = internal_id(engine, id="user_1")
    set_usage(engine, acme, "messages", Decimal("1234.5"))
    set_usage(engine, jane, "messages", Decimal(42))  # a balance the file does not declare

    # Re-apply, a new allowance and grant, an upgrade, a version of pro: usage stays.
    assert apply_text(engine, billing(JANE, ACME)) == ()
    apply_text(engine, billing(JANE, ACME, allowance=9000, grant=1))
    upgraded = JANE.replace("[pro]", "[business]")
    apply_text(engine, billing(upgraded, ACME, price=25))
    assert usage(engine, acme, "messages") == Decimal("1234.5")
    assert usage(engine, jane, "messages") == 42

    # The declaration goes: the allowance and grants are emptied, the usage stays.
    no_balances = ACME.split("    balances:")[0]
    changes = apply_text(engine, billing(upgraded, no_balances, price=25))
    assert kinds(changes) == [("Update", "balance[billing@acme.com].messages")]
    b = t.balances
    kept = rows(engine, b, b.c.customer_internal_id, b.c.allowance)
    assert dict(kept) == {acme: None}
    assert (usage(engine, acme, "messages"), usage(engine, jane, "messages")) == (
        Decimal("1234.5"),
        Decimal(42),
    )
    assert rows(engine, t.balance_grants) == []


# --- plan versions ----------------------------------------------------------------------------


def test_file_customers_stay_on_their_version(engine: Engine) -> None:
    apply_text(engine, billing(JANE, ACME.replace("plan: business", "plan: pro")))
    add_customers(engine, "pro", 3)  # and three of the application's own

    desired = load_text(billing(JANE, ACME.replace("plan: business", "plan: pro"), price=25))
    plan = make_plan(engine, desired)
    assert [(c.address, c.reason) for c in plan.changes] == [
        ("plan.pro", "new version 2 (5 customers stay on version 1)")
    ]
    apply_plan(engine, plan)
    assert make_plan(engine, desired).empty
    assert customer_versions(engine, "pro") == {1: 5}

    # A customer the file adds now gets the newest version; the others stay.
    kate = "  - {id: user_2, plans: [pro]}\n"
    text = billing(JANE, ACME.replace("plan: business", "plan: pro"), kate, price=25)
    assert kinds(apply_text(engine, text)) == [("Create", "customer.user_2")]
    assert customer_versions(engine, "pro") == {1: 5, 2: 1}
    c, cp = t.customers, t.customer_plans
    with engine.connect() as conn:
        query = select(c.c.id, cp.c.version).join(cp, cp.c.customer_internal_id == c.c.internal_id)
        on = dict(conn.execute(query.where(c.c.managed)).all())
    assert on == {"user_1": 1, None: 1, "user_2": 2}


def test_migrate_customers_moves_file_customers(engine: Engine) -> None:
    apply_text(engine, billing(JANE, migrate=True))
    add_customers(engine, "pro", 2)
    set_usage(engine, internal_id(engine, id="user_1"), "messages", Decimal(7))
    changes = apply_text(engine, billing(JANE, migrate=True, price=25))
    assert [(c.address, c.reason) for c in changes] == [
        ("plan.pro", "new version 2 (3 customers move to it)")
    ]
    assert customer_versions(engine, "pro") == {2: 3}
    assert usage(engine, internal_id(engine, id="user_1"), "messages") == 7


# --- destroys ---------------------------------------------------------------------------------


def test_a_removed_customer_needs_allow_destroy_then_goes_entirely(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "billing.yaml"
    acme = ACME + "    rewards: [launch20]\n"
    path.write_text(billing(JANE, acme) + REWARD, encoding="utf-8")
    assert run_cli("apply", "-f", str(path), "--auto-approve", db=db_url).exit_code == 0
    engine = connect(db_url)
    try:
        gone = internal_id(engine, email="billing@acme.com")
        set_usage(engine, gone, "seats", Decimal(3))
        before = counts(engine)
        assert all(before.values()), before  # a row in every customer table
        path.write_text(billing(JANE) + REWARD, encoding="utf-8")

        refused = run_cli("apply", "-f", str(path), "--auto-approve", db=db_url)
        assert refused.exit_code == 1
        assert "  - customer[billing@acme.com] (destroy: removed from the file" in refused.stdout
        assert "customer[billing@acme.com]" in refused.stderr
        assert "--allow-destroy" in refused.stderr
        assert counts(engine) == before

        done = run_cli("apply", "-f", str(path), "--auto-approve", "--allow-destroy", db=db_url)
        assert done.exit_code == 0, done.output
        assert "customer[billing@acme.com]: destroyed" in done.stdout
        assert counts(engine) == {
            "customers": 1,
            "customer_plans": 1,
            "customer_plan_items": 0,
            "entities": 0,
            "customer_rewards": 0,
            "balances": 0,
            "balance_grants": 0,
        }
        assert rows(engine, t.customers, t.customers.c.id) == [("user_1",)]
        replan = run_cli("plan", "-f", str(path), "--detailed-exitcode", db=db_url)
        assert replan.exit_code == 0, replan.output
    finally:
        engine.dispose()


REWARD = """\
rewards:
  launch20: {type: percentage_discount, percent_off: 20, duration: once}
"""


# --- the application's customers ----------------------------------------------------------------


def add_app_customer(engine: Engine, plan_id: str, **values: Any) -> int:
    """A customer the application created (`managed` false) on `plan_id`'s current version."""
    with engine.begin() as conn:
        version = conn.execute(
            select(t.plans.c.current_version).where(t.plans.c.id == plan_id)
        ).scalar_one()
        result = conn.execute(
            insert(t.customers).values(created_at=datetime(2026, 1, 1), managed=False, **values)
        )
        iid = int(result.inserted_primary_key[0])  # type: ignore[index]
        conn.execute(
            insert(t.customer_plans).values(
                customer_internal_id=iid, plan_id=plan_id, version=version, status="active"
            )
        )
    return iid


def test_adopting_an_app_customer_is_an_update(engine: Engine) -> None:
    apply_text(engine, billing())
    iid = add_app_customer(engine, "free", id="user_1", email="jane@example.com")
    set_usage(engine, iid, "messages", Decimal(80))
    desired = load_text(billing(JANE))
    plan = make_plan(engine, desired)
    (change,) = plan.changes
    assert isinstance(change, Update) and change.address == "customer.user_1"
    assert change.reason is not None and change.reason.startswith("the application created it")
    assert "upgrade free → pro" in change.reason
    apply_plan(engine, plan)
    assert make_plan(engine, desired).empty
    c = t.customers
    assert rows(engine, c, c.c.internal_id, c.c.id, c.c.managed) == [(iid, "user_1", True)]
    assert customer_versions(engine, "pro") == {1: 1}
    assert customer_versions(engine, "free") == {}
    assert usage(engine, iid, "messages") == 80


def test_an_app_customer_found_by_email_is_adopted_and_keeps_its_id(engine: Engine) -> None:
    apply_text(engine, billing())
    iid = add_app_customer(engine, "free", id="app_77", email="billing@acme.com")
    changes = apply_text(engine, billing(ACME))
    assert [type(c) for c in changes if c.kind == "customer"] == [Update]
    c = t.customers
    assert rows(engine, c, c.c.internal_id, c.c.id, c.c.email) == [
        (iid, "app_77", "billing@acme.com")
    ]


def test_a_pre_provisioned_customer_the_app_bound_plans_no_change(engine: Engine) -> None:
    apply_text(engine, billing(ACME))
    iid = internal_id(engine, email="billing@acme.com")
    with engine.begin() as conn:  # the application's get_or_create(id, email)
        c = t.customers
        conn.execute(update(c).where(c.c.internal_id == iid).values(id="acme_1"))
    assert make_plan(engine, load_text(billing(ACME))).empty
    # A change to it is an update of that row.
    changes = apply_text(engine, billing(ACME, grant=7))
    assert kinds(changes) == [("Update", "balance[billing@acme.com].messages")]
    # The file may now name it by its id: the same customer, renamed, nothing else.
    with_id = ACME.replace("  - email:", "  - id: acme_1\n    email:")
    (renamed,) = apply_text(engine, billing(with_id, grant=7))
    assert isinstance(renamed, Update) and renamed.address == "customer.acme_1"
    assert renamed.fields == ()
    assert renamed.reason == "the file names it by its id acme_1 now (was billing@acme.com)"
    c = t.customers
    assert rows(engine, c, c.c.internal_id, c.c.id, c.c.file_key) == [(iid, "acme_1", ".acme_1")]
    assert len(_grants(engine)) == 1


def test_app_customers_are_never_touched_and_only_counted(engine: Engine) -> None:
    apply_text(engine, billing(JANE))
    add_customers(engine, "pro", 3)
    add_app_customer(engine, "free", id="app_1", email="someone@example.com")
    before = rows(engine, t.customers)
    plans_before = rows(engine, t.customer_plans)
    state = read_current(engine)
    assert state.app_customers == 4
    assert [c.address for c in state.customers.values()] == ["customer.user_1"]

    # Removing every customer from the file destroys only the file's own.
    changes = apply_text(engine, billing(), allow_destroy=True)
    assert kinds(changes) == [("Delete", "customer.user_1")]
    assert [r for r in before if r.id != "user_1"] == rows(engine, t.customers)
    jane = internal_id_of(before, "user_1")
    assert [r for r in plans_before if r.customer_internal_id != jane] == rows(
        engine, t.customer_plans
    )
    assert read_current(engine).app_customers == 4
    assert read_current(engine).customers == {}


def internal_id_of(customers: list[Any], customer_id: str) -> int:
    return int(next(r.internal_id for r in customers if r.id == customer_id))


def test_only_the_file_customers_are_read(engine: Engine) -> None:
    """The application's customers the file names are read (to be adopted), no others."""
    apply_text(engine, billing())
    add_app_customer(engine, "free", id="user_1")
    add_app_customer(engine, "free", id="app_2", email="billing@acme.com")
    add_app_customer(engine, "free", id="app_3")
    state = read_current(engine)
    assert state.customers == {} and state.app_customers == 3
    desired = load_text(billing(JANE, ACME))
    plan = make_plan(engine, desired)
    adopted = [c for c in plan.changes if isinstance(c, Update) and c.kind == "customer"]
    assert sorted(c.address for c in adopted) == ["customer.user_1", "customer[billing@acme.com]"]
    assert not [c for c in plan.changes if isinstance(c, Create | Delete) and c.kind == "customer"]


def test_valid_customer_files_pass() -> None:
    """Counterparts of the bad-input corpus: the checks are not over-eager."""
    state = load_text(
        billing(
            "  - {id: user_1, email: shared@example.com, plans: [pro]}\n"  # two ids, one email
            "  - {id: user_2, email: shared@example.com, plans: [free]}\n"
            "  - id: user_3\n"
            "    plans: [business]\n"
            "    entities:\n"  # an entity may be on a plan of its customer's group
            "      - {id: team_a, feature: seats, plans: [pro]}\n"
            "      - {id: team_b, feature: seats, plans: [pro]}\n"
            "    balances:\n"
            "      messages: {grants: [{id: a, amount: -5}, {id: b, amount: 0.5}]}\n"
        )
    )
    assert sorted(state.customers) == [".user_1", ".user_2", ".user_3"]
    assert list(state.balances) == ["balance.user_3.messages"]


def test_an_app_customer_sharing_an_email_is_not_taken_over(engine: Engine) -> None:
    """The application's customer with another id and the file customer's email is read (its
    email is the file's) but is not the file's customer: it and its balance stay as they are."""
    apply_text(engine, billing())
    iid = add_app_customer(engine, "free", id="app_9", email="jane@example.com")
    with engine.begin() as conn:  # the application's own allowance and grant
        mine = {"customer_internal_id": iid, "feature_id": "messages"}
        conn.execute(insert(t.balances), {**mine, "allowance": 70, "usage": 5})
        grant = {"grant_id": "app-bonus", "amount": 3, "granted_at": datetime(2026, 1, 2)}
        conn.execute(insert(t.balance_grants), {**mine, **grant})
    before = (rows(engine, t.balances), rows(engine, t.balance_grants))
    changes = apply_text(engine, billing(JANE))
    assert kinds(changes) == [("Create", "customer.user_1")]
    assert (rows(engine, t.balances), rows(engine, t.balance_grants)) == before
    c = t.customers
    assert rows(engine, c, c.c.id, c.c.managed) == [("app_9", False), ("user_1", True)]


def test_the_reason_of_an_update_says_what_happens_to_the_plans() -> None:
    """Planned against a state holding the first file (no database needed: the diff is
    pure)."""
    before = load_text(
        billing(
            "  - id: user_1\n"
            "    plans: [free]\n"
            "    entities:\n"
            "      - {id: team_a, feature: seats, plans: [pro]}\n"
            "      - {id: team_b, feature: seats, plans: [business]}\n",
            "  - id: user_2\n    plans: [{plan: pro, price: {amount: 15, interval: month}}]\n",
        )
    )
    after = load_text(
        billing(
            "  - id: user_1\n"
            "    plans: [pro]\n"
            "    entities:\n"
            "      - {id: team_a, feature: seats, plans: [free]}\n",
            "  - id: user_2\n    plans: [pro]\n",
        )
    )
    reasons = {c.address: c.reason for c in diff(before, after).changes}
    assert reasons == {
        "customer.user_1": "upgrade free → pro; team_a: downgrade pro → free; "
        "team_b: cancels business",
        "customer.user_2": "pro as in the catalog (custom version dropped)",
    }


# --- import -----------------------------------------------------------------------------------


def test_import_writes_the_managed_customers_and_plans_to_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """`import` → `plan` is empty: customers under their file identity (the pre-provisioned
    one by email, though the application bound an id), custom versions, terms, entities,
    rewards and declared balances; the application's customers only counted."""
    terms = (
        "  - id: user_2\n    plans: [{plan: pro, quantity: 4, start: 2026-02-01, trial_days: 0}]\n"
    )
    path = tmp_path / "billing.yaml"
    path.write_text(billing(JANE, ACME + "    rewards: [launch20]\n", terms) + REWARD, "utf-8")
    assert run_cli("apply", "-f", str(path), "--auto-approve", db=db_url).exit_code == 0
    engine = connect(db_url)
    try:
        acme = internal_id(engine, email="billing@acme.com")
        with engine.begin() as conn:  # the application signs Acme in, and makes its own
            conn.execute(
                update(t.customers).where(t.customers.c.internal_id == acme).values(id="acme_1")
            )
        add_app_customer(engine, "free", id="app_1")
        set_usage(engine, acme, "messages", Decimal(12))
    finally:
        engine.dispose()
    out = tmp_path / "imported.yaml"
    result = run_cli("import", "--out", str(out), db=db_url)
    assert result.exit_code == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "# 1 customer the application created not listed" in text
    assert "app_1" not in text and "acme_1" not in text
    assert "onboarding" in text and "1000000" in text and "team_a" in text
    imported = load_text(text)
    assert sorted(imported.customers) == [".user_1", ".user_2", "[billing@acme.com]"]
    assert imported.customers == load_text(path.read_text("utf-8")).customers
    assert imported.balances == load_text(path.read_text("utf-8")).balances
    replan = run_cli("plan", "-f", str(out), "--detailed-exitcode", db=db_url)
    assert replan.exit_code == 0, replan.output


def test_a_fingerprint_gets_one_trial_even_after_leaving_the_plan(engine: Engine) -> None:
    """The record of a trial outlives the plan it came with: leaving Pro and coming back, or
    a second customer with the same fingerprint, gets no second trial."""
    trial = CATALOG.replace(
        "    migrate_customers: MIGRATE\n",
        "    migrate_customers: false\n    free_trial: {days: 14, unique_fingerprint: true}\n",
    ).replace("PRICE", "20")

    def with_customers(*entries: str) -> str:
        return trial + "customers:\n" + "".join(entries)

    x_pro = "  - {id: x1, fingerprint: fp_z, plans: [pro]}\n"
    x_free = "  - {id: x1, fingerprint: fp_z, plans: [free]}\n"
    y_pro = "  - {id: y1, fingerprint: fp_z, plans: [pro]}\n"
    cp, c = t.customer_plans, t.customers
    apply_text(engine, with_customers(x_pro))
    statuses = rows(engine, cp, cp.c.plan_id, cp.c.status)
    assert statuses == [("pro", "trialing")]  # the first time, the trial is given
    apply_text(engine, with_customers(x_free))
    apply_text(engine, with_customers(x_pro, y_pro))
    query = (
        select(c.c.id, cp.c.plan_id, cp.c.status, cp.c.trial_ends_at)
        .join(c, c.c.internal_id == cp.c.customer_internal_id)
        .order_by(c.c.id)
    )
    with engine.connect() as conn:
        found = [tuple(row) for row in conn.execute(query)]
    assert found == [("x1", "pro", "active", None), ("y1", "pro", "active", None)]
    fingerprints = t.fingerprint_plan_trials
    found_fp = rows(engine, fingerprints, fingerprints.c.fingerprint, fingerprints.c.plan_id)
    assert found_fp == [("fp_z", "pro")]


def trials(unique: bool) -> str:
    """The catalog with a 14-day trial on Pro and on Business (one per fingerprint when
    `unique`)."""
    trial = f"    free_trial: {{days: 14, unique_fingerprint: {str(unique).lower()}}}\n"
    yearly = "    price: {amount: 200, interval: year}\n"
    text = CATALOG.replace("    migrate_customers: MIGRATE\n", trial).replace("PRICE", "20")
    return text.replace(yearly, yearly + trial) + "customers:\n"


def trial_rows(engine: Engine) -> list[tuple[Any, ...]]:
    """(customer id, entity, plan, status, trial end) of every plan customers are on."""
    c, cp = t.customers, t.customer_plans
    query = select(c.c.id, cp.c.entity_id, cp.c.plan_id, cp.c.status, cp.c.trial_ends_at)
    with engine.connect() as conn:
        found = conn.execute(query.join(c, c.c.internal_id == cp.c.customer_internal_id))
        return sorted(tuple(row) for row in found)


def test_a_customer_gets_one_trial_per_plan_ever(engine: Engine) -> None:
    """Pro → Business → Pro → Free → Business: each plan's trial is given the first time
    only; an entity is a subscriber of its own and has its own trial of Pro. The record
    stays when the plans are left."""

    def on(plan: str) -> str:
        team = "[{id: team_a, feature: seats, plans: [pro]}]"
        return trials(False) + f"  - {{id: x1, plans: [{plan}], entities: {team}}}\n"

    apply_text(engine, on("pro"))
    first = trial_rows(engine)
    ends = first[0][-1]
    assert first == [("x1", "", "pro", "trialing", ends), ("x1", "team_a", "pro", "trialing", ends)]
    apply_text(engine, on("business"))
    assert trial_rows(engine)[0] == ("x1", "", "business", "trialing", ends)
    for plan in ("pro", "free", "business"):
        apply_text(engine, on(plan))
        assert trial_rows(engine)[0] == ("x1", "", plan, "active", None)
    ct = t.customer_trials
    assert rows(engine, ct, ct.c.entity_id, ct.c.plan_id) == [
        ("", "business"),
        ("", "pro"),
        ("team_a", "pro"),
    ]


def test_a_fingerprint_gets_one_trial_of_each_plan(engine: Engine) -> None:
    """`unique_fingerprint` is per plan: the fingerprint that had Pro's trial still gets
    Business's; other customers with it get neither, another fingerprint gets Pro's."""
    x_pro = "  - {id: x1, fingerprint: fp_z, plans: [pro]}\n"
    x_business = "  - {id: x1, fingerprint: fp_z, plans: [business]}\n"
    others = (
        "  - {id: y1, fingerprint: fp_z, plans: [pro]}\n"
        "  - {id: z1, fingerprint: fp_z, plans: [business]}\n"
        "  - {id: w1, fingerprint: fp_w, plans: [pro]}\n"
    )
    apply_text(engine, trials(True) + x_pro)
    apply_text(engine, trials(True) + x_business)
    apply_text(engine, trials(True) + x_business + others)
    ends = trial_rows(engine)[0][-1]
    assert trial_rows(engine) == [
        ("w1", "", "pro", "trialing", ends),
        ("x1", "", "business", "trialing", ends),
        ("y1", "", "pro", "active", None),
        ("z1", "", "business", "active", None),
    ]
    fp = t.fingerprint_plan_trials
    assert rows(engine, fp, fp.c.fingerprint, fp.c.plan_id) == [
        ("fp_w", "pro"),
        ("fp_z", "business"),
        ("fp_z", "pro"),
    ]
