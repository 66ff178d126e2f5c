"""The file's customers in Stripe, end to end against the emulator (the real `stripe` client,
never patched): Stripe customers made when billing needs them, linked ones, subscriptions
(invoiced, waiting for checkout, with coupons, trials, entities, custom prices, versions),
plan changes and removals, drift, idempotency and the requests a plan makes.

Objects are checked straight from the emulator's store (`describe`, from
`tests.test_stripe_sync`), database ids straight from the tables.
"""

from __future__ import annotations

import glob
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.model.address import Target
from autumn_sync.model.stripe import OWNER_KEY
from autumn_sync.pipeline import apply_plan, load_desired, make_plan
from autumn_sync.plan.changes import Create
from autumn_sync.render import render_json, render_markdown, render_text
from autumn_sync.stripe.executor import StripeApplyFailed
from autumn_sync.stripe.gateway import StripeConfig
from benchmarks.catalog import make_catalog
from tests.conftest import run_cli
from tests.helpers import add_customers
from tests.test_stripe_faults import Died, DyingGateway
from tests.test_stripe_sync import IN_SYNC, KEY, Sync, describe, owned, stored, sync_on

Doc = dict[str, Any]
Edit = Callable[[Doc], object]

CATALOG = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
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
    price: {amount: 20, interval: month}
    items:
      - {feature: messages, included: 1000, reset: month,
         price: {amount: 5, per: 100, billing: pay_per_use}}
  team:
    name: Team
    group: main
    price: {amount: 50, interval: month}
    items:
      - {feature: seats, price: {amount: 10, billing: prepaid}}  # seats bought with the plan
rewards:
  launch20:
    name: Launch discount
    type: percentage_discount
    percent_off: 20
    duration: {months: 3}
    plans: [pro, team]
"""

INVOICED = {"collection": "send_invoice", "days_until_due": 30}


def billing(*customers: Doc, settings: Doc | None = None) -> Doc:
    """The catalog above with `customers`."""
    doc: Doc = yaml.safe_load(CATALOG)
    doc["customers"] = list(customers)
    if settings:
        doc["settings"] = settings
    return doc


def jane(*plans: Any, **extra: Any) -> Doc:
    return {
        "id": "user_1",
        "email": "jane@example.com",
        "name": "Jane",
        "plans": list(plans),
        **extra,
    }


def acme(*plans: Any, **extra: Any) -> Doc:
    """Pre-provisioned by email, invoiced."""
    customer = {"email": "billing@acme.com", "name": "Acme", "billing": INVOICED}
    return {**customer, "plans": list(plans), **extra}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(seed=44) as emulator:
        yield emulator


@pytest.fixture
def sync(sqlite_url: str, emu: Emulator, tmp_path: Path) -> Iterator[Sync]:
    yield from sync_on(sqlite_url, emu, tmp_path)


@pytest.fixture
def sync_every_db(db_url: str, emu: Emulator, tmp_path: Path) -> Iterator[Sync]:
    yield from sync_on(db_url, emu, tmp_path)


def stripe_ids(sync: Sync) -> dict[str, str | None]:
    """What the database records: customer (id or email) → its Stripe customer id, and
    `customer/entity/plan` → the Stripe subscription id."""
    c, cp = t.customers, t.customer_plans
    with sync.engine.connect() as conn:
        rows = conn.execute(select(c.c.internal_id, c.c.id, c.c.email, c.c.stripe_id)).all()
        names = {row.internal_id: row.id or row.email for row in rows}
        found: dict[str, str | None] = {names[row.internal_id]: row.stripe_id for row in rows}
        plans = conn.execute(
            select(
                cp.c.customer_internal_id, cp.c.entity_id, cp.c.plan_id, cp.c.stripe_subscription_id
            )
        ).all()
    for row in plans:
        found[f"{names[row[0]]}/{row[1]}/{row[2]}"] = row[3]
        assert row[0] in names
    return found


def give_card(emu: Emulator, customer_id: str) -> None:
    """The customer completes a checkout: a card, made its default payment method."""
    method = emu.call("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer_id})
    settings = {"invoice_settings": {"default_payment_method": method["id"]}}
    emu.call("POST", f"/v1/customers/{customer_id}", settings)


def the(emu: Emulator, kind: str, address: str) -> dict[str, Any]:
    """The one object at `address` (a deleted customer, which Stripe keeps, left out)."""
    (obj,) = [o for o in owned(emu, kind, address) if not o.get("deleted")]
    return obj


def items_of(emu: Emulator, subscription: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    """(price address, version, quantity) of each item."""
    found = []
    for item_id in subscription["items"]:
        item = emu.state.get("subscription_item", item_id)
        price = emu.state.get("price", item["price"])["metadata"]
        found.append((price[OWNER_KEY], price["autumn_sync_version"], item["quantity"]))
    return sorted(found)


def waiting_note(customer: str, interval: str) -> str:
    return (
        f"  stripe_subscription.{customer}.{interval}: waiting for checkout: "
        f"stripe_customer.{customer} has no payment method in Stripe yet\n"
    )


# --- 1. when a Stripe customer is made ----------------------------------------------------


def test_a_stripe_customer_is_made_only_when_billing_needs_it(sync_every_db: Sync) -> None:
    sync = sync_every_db
    free = {"id": "free_1", "email": "free@example.com", "plans": ["free"]}
    made_now = {"id": "early_1", "plans": ["free"], "stripe": {"create": True}}
    plan = sync.apply(billing(free, made_now, acme("pro")))
    created = [c.address for c in plan.changes if isinstance(c, Create) and "stripe_" in c.kind]
    assert [a for a in created if a.startswith("stripe_customer")] == [
        "stripe_customer.early_1",  # `stripe: {create: true}`: at once
        "stripe_customer[billing@acme.com]",  # a paid plan: billing needs it
    ]
    ids = stripe_ids(sync)
    assert ids["free_1"] is None
    assert ids["early_1"] == the(sync.emu, "customer", "stripe_customer.early_1")["id"]
    acme_id = the(sync.emu, "customer", "stripe_customer[billing@acme.com]")["id"]
    assert ids["billing@acme.com"] == acme_id

    # `create_customers: always` makes the free customer's too, and nothing else changes.
    always = {"currency": "usd", "stripe": {"create_customers": "always"}}
    plan = sync.apply(billing(free, made_now, acme("pro"), settings=always))
    assert [(c.address, c.action) for c in plan.changes] == [
        ("settings", "update"),
        ("stripe_customer.free_1", "create"),
    ]
    assert stripe_ids(sync)["free_1"] == the(sync.emu, "customer", "stripe_customer.free_1")["id"]
    assert sync.emu.state.count("customer") == 3


def test_a_customer_stays_in_stripe_after_downgrading_to_a_free_plan(sync: Sync) -> None:
    sync.apply(billing(acme("pro")))
    plan = sync.apply(billing(acme("free")))
    # a downgrade: the customer keeps the month paid for, the subscription ends with it
    assert [(c.address, c.action) for c in plan.changes if c.kind.target is Target.STRIPE] == [
        ("stripe_subscription[billing@acme.com].month", "update"),
    ]
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert (sub["status"], sub["cancel_at_period_end"]) == ("active", True)
    assert the(sync.emu, "customer", "stripe_customer[billing@acme.com]")["metadata"] == {
        OWNER_KEY: "stripe_customer[billing@acme.com]"
    }


# --- 2. linking --------------------------------------------------------------------------


def test_a_link_writes_the_ownership_metadata_and_stores_the_id(sync_every_db: Sync) -> None:
    sync = sync_every_db
    sync.emu.add_customer("cus_ABC123", email="ap@acme.com", name="Acme Corp")
    linked = acme("free", stripe={"customer": "cus_ABC123"})
    plan = sync.plan(billing(linked))
    text = render_text(plan)
    assert (
        "  ~ stripe_customer[billing@acme.com] (update in place)\n"
        '      email:                        "ap@acme.com" → "billing@acme.com"\n'
        '      name:                         "Acme Corp" → "Acme"\n'
        '      metadata.autumn_sync_address: (none) → "stripe_customer[billing@acme.com]"\n'
        '      database.stripe_id:           (none) → "cus_ABC123"\n'
    ) in text
    sync.apply(billing(linked))
    assert sync.emu.state.count("customer") == 1  # linked, not made
    customer = sync.emu.state.get("customer", "cus_ABC123")
    assert customer["metadata"] == {OWNER_KEY: "stripe_customer[billing@acme.com]"}
    assert (customer["email"], customer["name"]) == ("billing@acme.com", "Acme")
    assert stripe_ids(sync)["billing@acme.com"] == "cus_ABC123"


def test_a_link_to_a_customer_stripe_does_not_have_is_a_clear_error(
    sqlite_url: str, emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "billing.yaml"
    linked = acme("pro", stripe={"customer": "cus_MISSING1"})
    path.write_text(yaml.safe_dump(billing(linked)), encoding="utf-8")
    options = ("--stripe-api-key", KEY, "--stripe-api-base", emu.url)
    result = run_cli(*options, "plan", "-f", str(path), db=sqlite_url)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: stripe_customer[billing@acme.com]: the Stripe customer cus_MISSING1 it links "
        "does not exist (or was deleted); fix `stripe.customer` in the file\n"
    )
    applied = run_cli(*options, "apply", "-f", str(path), "--auto-approve", db=sqlite_url)
    assert applied.exit_code == 1
    assert emu.state.count("customer") == 0 and "Traceback" not in applied.output


# --- 3. identity ---------------------------------------------------------------------------


def test_a_pre_provisioned_customer_binding_an_id_is_never_duplicated(sync_every_db: Sync) -> None:
    sync = sync_every_db
    sync.apply(billing(acme("pro")))
    before = {
        kind: sorted(o["id"] for o in stored(sync.emu, kind))
        for kind in ("customer", "subscription")
    }
    c = t.customers
    with sync.engine.begin() as conn:  # the application's get_or_create binds its id
        conn.execute(update(c).where(c.c.email == "billing@acme.com").values(id="acme_1"))
    assert render_text(sync.plan(billing(acme("pro")))) == IN_SYNC

    # The file now names Acme by its id: new addresses, the same Stripe objects.
    renamed = billing(acme("pro", id="acme_1"))
    plan = sync.apply(renamed)
    stripe_changes = [c for c in plan.changes if c.kind.target is Target.STRIPE]
    assert [(c.address, [f.path for f in c.fields]) for c in stripe_changes] == [
        ("stripe_customer.acme_1", ["metadata.autumn_sync_address"]),
        ("stripe_subscription.acme_1.month", ["metadata.autumn_sync_address"]),
    ]
    after = {
        kind: sorted(o["id"] for o in stored(sync.emu, kind))
        for kind in ("customer", "subscription")
    }
    assert after == before
    assert the(sync.emu, "customer", "stripe_customer.acme_1")["id"] == before["customer"][0]
    assert stripe_ids(sync)["acme_1/ /pro".replace(" ", "")] == before["subscription"][0]


# --- 4. subscriptions ----------------------------------------------------------------------


def test_seats_the_plan_includes_are_on_the_subscription_free(sync: Sync) -> None:
    """A prepaid price with included units (5 seats included, $10 a seat beyond) is on the
    subscription at the included units, which its free first tier bills nothing (buying
    more is a quantity change); `quantity` (2 licences) multiplies the base price only."""
    doc = billing(acme({"plan": "team", "quantity": 2}))
    team = doc["plans"]["team"]
    team["items"] = [{**team["items"][0], "included": 5}]
    sync.apply(doc)
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert items_of(sync.emu, sub) == [
        ("stripe_price.team.base", "1", 2),
        ("stripe_price.team.seats", "1", 5),
    ]
    assert sync.plan(doc).empty


def test_an_invoiced_customer_gets_a_subscription_with_days_until_due(sync: Sync) -> None:
    sync.apply(billing(acme({"plan": "team", "quantity": 3})))
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert (sub["collection_method"], sub["days_until_due"], sub["status"]) == (
        "send_invoice",
        30,
        "active",
    )
    customer = the(sync.emu, "customer", "stripe_customer[billing@acme.com]")
    assert sub["customer"] == customer["id"]
    # Three of the plan; the prepaid seats price bills its units (one per plan, as per=1).
    assert items_of(sync.emu, sub) == [
        ("stripe_price.team.base", "1", 3),
        ("stripe_price.team.seats", "1", 3),
    ]
    assert sub["metadata"] == {
        OWNER_KEY: "stripe_subscription[billing@acme.com].month",
        "autumn_sync_plan": "team",
    }
    assert stripe_ids(sync)["billing@acme.com//team"] == sub["id"]

    plan = sync.apply(billing(acme({"plan": "team", "quantity": 5})))
    assert [(c.address, [(f.path, f.before, f.after) for f in c.fields]) for c in plan.changes][
        1:
    ] == [
        (
            "stripe_subscription[billing@acme.com].month",
            [
                ("items[stripe_price.team.base].quantity", 3, 5),
                ("items[stripe_price.team.seats].quantity", 3, 5),
            ],
        )
    ]
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert [q for _, _, q in items_of(sync.emu, sub)] == [5, 5]


def test_a_card_customer_waits_for_checkout_and_is_subscribed_once_it_has_a_card(
    sync: Sync,
) -> None:
    doc = billing(jane("pro"))
    plan = sync.apply(doc)
    note = "Not changed yet (nothing to apply until then):\n" + waiting_note("user_1", "month")
    assert note + "\n" in render_text(plan)
    assert [(n.address) for n in plan.notes] == ["stripe_subscription.user_1.month"]
    for _ in range(2):  # stable: the same note, no change, exit code 0
        again = sync.plan(doc)
        assert again.empty and render_text(again) == note + "\n" + IN_SYNC
    assert json.loads(render_json(again))["notes"] == [
        {
            "address": "stripe_subscription.user_1.month",
            "message": "waiting for checkout: stripe_customer.user_1 has no payment method in "
            "Stripe yet",
        }
    ]
    assert "- `stripe_subscription.user_1.month`: waiting for checkout" in render_markdown(again)
    assert sync.emu.state.count("subscription") == 0

    give_card(sync.emu, the(sync.emu, "customer", "stripe_customer.user_1")["id"])
    plan = sync.apply(doc)
    assert [(c.address, c.action) for c in plan.changes] == [
        ("stripe_subscription.user_1.month", "create")
    ]
    sub = the(sync.emu, "subscription", "stripe_subscription.user_1.month")
    assert sub["collection_method"] == "charge_automatically"
    assert items_of(sync.emu, sub) == [
        ("stripe_price.pro.base", "1", 1),
        ("stripe_price.pro.messages", "1", None),  # metered: billed on usage
    ]


def test_a_free_trial_ends_when_the_database_says(sync: Sync) -> None:
    today = datetime.now(UTC).date()
    trial = {"plan": "pro", "trial_days": 14}
    sync.apply(billing(acme(trial)))
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    ends = today + timedelta(days=14)
    assert sub["status"] == "trialing"
    assert sub["trial_end"] == int(
        datetime(ends.year, ends.month, ends.day, tzinfo=UTC).timestamp()
    )
    cp = t.customer_plans
    with sync.engine.connect() as conn:
        assert conn.execute(select(cp.c.trial_ends_at)).scalar_one() == ends


def test_a_rewards_coupon_is_applied_and_taken_off(sync: Sync) -> None:
    sync.apply(billing(acme("pro", rewards=["launch20"])))
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    (discount,) = [sync.emu.state.get("discount", d) for d in sub["discounts"]]
    assert discount["source"] == {"coupon": "launch20", "type": "coupon"}
    assert sub["metadata"]["autumn_sync_rewards"] == "launch20"

    plan = sync.apply(billing(acme("pro")))
    assert [(c.address, [(f.path, f.before, f.after) for f in c.fields]) for c in plan.changes][
        -1
    ] == (
        "stripe_subscription[billing@acme.com].month",
        [("coupons[0]", "stripe_coupon.launch20", None)],
    )
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert sub["discounts"] == [] and "autumn_sync_rewards" not in sub["metadata"]


def test_a_plan_change_in_a_group_swaps_the_items_of_the_one_subscription(sync: Sync) -> None:
    """Pro → Team (both monthly, one group): the customer's one monthly subscription swaps
    Pro's items for Team's, prorated now (`settings.billing.upgrades` by default); no second
    subscription. What that bills is in `test_money`."""
    doc = billing(jane("pro"))
    sync.apply(doc)
    give_card(sync.emu, the(sync.emu, "customer", "stripe_customer.user_1")["id"])
    sync.apply(doc)
    plan = sync.apply(billing(jane("team")))
    stripe_changes = [(c.address, c.action, c.reason) for c in plan.changes if "stripe_" in c.kind]
    assert stripe_changes == [
        (
            "stripe_subscription.user_1.month",
            "update",
            "plans pro → team: the difference for the rest of the period invoiced now",
        )
    ]
    assert describe(sync.emu, "stripe_subscription.*").replace(
        the(sync.emu, "customer", "stripe_customer.user_1")["id"], "cus"
    ) == (
        "stripe_subscription.user_1.month: active for stripe_customer.user_1, "
        "charge_automatically, items=[stripe_price.team.base v1 x1, stripe_price.team.seats v1"
        " x1], coupons=[]\n"
    )
    ids = stripe_ids(sync)
    sub = the(sync.emu, "subscription", "stripe_subscription.user_1.month")
    assert ids["user_1//team"] == sub["id"]
    assert sub["metadata"]["autumn_sync_plan"] == "team"
    assert "user_1//pro" not in ids


def test_a_removed_customer_keeps_its_stripe_customer_and_its_plans_cancel(sync: Sync) -> None:
    sync.apply(billing(acme("pro"), jane("free")))
    plan = sync.apply(billing(jane("free")))
    assert [(c.address, c.action) for c in plan.changes] == [
        ("stripe_subscription[billing@acme.com].month", "archive"),
        ("stripe_customer[billing@acme.com]", "archive"),
        ("customer[billing@acme.com]", "destroy"),
    ]
    customer = the(sync.emu, "customer", "stripe_customer[billing@acme.com]")
    assert customer["metadata"]["autumn_sync_archived"] == "true"
    assert not customer.get("deleted")
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert (sub["status"], sub["cancel_at_period_end"]) == ("active", True)

    # Back in the file: the same Stripe customer, its subscription resumed.
    plan = sync.apply(billing(acme("pro"), jane("free")))
    assert [(c.address, c.action) for c in plan.changes if "stripe_" in c.kind] == [
        ("stripe_customer[billing@acme.com]", "update"),
        ("stripe_subscription[billing@acme.com].month", "update"),
    ]
    assert sync.emu.state.count("customer") == sync.emu.state.count("subscription") == 1
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert sub["cancel_at_period_end"] is False
    assert stripe_ids(sync)["billing@acme.com"] == customer["id"]


def test_an_entitys_plan_is_a_subscription_of_its_own(sync: Sync) -> None:
    team = {"id": "team-a", "feature": "seats", "plans": ["pro"]}
    sync.apply(billing(acme("free", entities=[team])))
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month[team-a]")
    assert sub["metadata"]["autumn_sync_entity"] == "team-a"
    assert stripe_ids(sync)["billing@acme.com/team-a/pro"] == sub["id"]


# --- 5. custom prices and versions ---------------------------------------------------------


def test_a_negotiated_price_is_the_customers_own_price(sync: Sync) -> None:
    negotiated = {"plan": "pro", "price": {"amount": 200, "interval": "month"}}
    sync.apply(billing(acme(negotiated)))
    address = "stripe_price.pro.base[billing@acme.com]"
    assert describe(sync.emu, glob.escape(address)) == (
        f"{address} v1: active on stripe_product.pro, usd unit_amount_decimal=20000, every 1 "
        "month licensed, lookup_key=None\n"
    )
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert items_of(sync.emu, sub) == [(address, "1", 1), ("stripe_price.pro.messages", "1", None)]

    negotiated["price"]["amount"] = 180  # type: ignore[index]
    plan = sync.apply(billing(acme(negotiated)))
    assert [(c.address, c.action) for c in plan.changes] == [
        ("customer[billing@acme.com]", "update"),
        (address, "replace"),
        ("stripe_subscription[billing@acme.com].month", "update"),
    ]
    prices = owned(sync.emu, "price", address)
    assert [(p["unit_amount"], p["active"]) for p in prices] == [(20000, False), (18000, True)]
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    (item,) = [sync.emu.state.get("subscription_item", i) for i in sub["items"]][:1]
    assert item["price"] == prices[1]["id"]

    plan = sync.apply(billing(acme("pro")))  # the list price again: its own price archived
    assert [(c.address, c.action) for c in plan.changes if "stripe_" in c.kind] == [
        ("stripe_subscription[billing@acme.com].month", "update"),
        (address, "archive"),
    ]
    sub = the(sync.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert items_of(sync.emu, sub)[0] == ("stripe_price.pro.base", "1", 1)
    assert [p["active"] for p in owned(sync.emu, "price", address)] == [False, False]


def test_grandfathered_customers_keep_their_prices_until_migrate_moves_them_all(
    sync: Sync,
) -> None:
    """Acme is on Pro version 1 and stays there when the price goes up (version 2); Globex,
    attached then, is on version 2; with `migrate_customers` both move to version 3 (every
    older version's customers), and the older prices are archived."""
    globex = {"email": "billing@globex.com", "billing": INVOICED, "plans": ["pro"]}

    def pro(amount: int, migrate: bool = False) -> Edit:
        def change(doc: Doc) -> None:
            doc["plans"]["pro"]["price"]["amount"] = amount
            doc["plans"]["pro"]["migrate_customers"] = migrate

        return change

    def file(*customers: Doc, edit: Edit) -> Doc:
        doc = billing(*customers)
        edit(doc)
        return doc

    sync.apply(file(acme("pro"), edit=pro(20)))
    plan = sync.apply(file(acme("pro"), globex, edit=pro(25)))
    assert "  ~ plan.pro: new version 2 (1 customer st" in render_text(plan)  # Acme stays
    acme_sub = "stripe_subscription[billing@acme.com].month"
    assert [c.address for c in plan.changes if c.address == acme_sub] == []
    plan = sync.apply(file(acme("pro"), globex, edit=pro(30, migrate=True)))
    moved = [c for c in plan.changes if c.kind == "stripe_subscription"]
    assert [(c.address, [(f.path, f.before, f.after) for f in c.fields]) for c in moved] == [
        (acme_sub, [("items[stripe_price.pro.base].version", 1, 3)]),
        (
            "stripe_subscription[billing@globex.com].month",
            [("items[stripe_price.pro.base].version", 2, 3)],
        ),
    ]
    acme_items = items_of(sync.emu, the(sync.emu, "subscription", acme_sub))
    globex_sub = the(sync.emu, "subscription", "stripe_subscription[billing@globex.com].month")
    assert acme_items[0] == ("stripe_price.pro.base", "3", 1)
    assert items_of(sync.emu, globex_sub)[0] == ("stripe_price.pro.base", "3", 1)
    active = [
        (p["unit_amount"], p["active"]) for p in owned(sync.emu, "price", "stripe_price.pro.base")
    ]
    assert active == [(2000, False), (2500, False), (3000, True)]  # nobody pays them now


# --- 6. drift ------------------------------------------------------------------------------


@pytest.fixture
def drifting(sync: Sync) -> Sync:
    sync.apply(
        billing(acme({"plan": "team", "quantity": 4}), jane("free", stripe={"create": True}))
    )
    return sync


def drift(sync: Sync) -> Any:
    path = sync.folder / "billing.yaml"
    options = ("--stripe-api-key", KEY, "--stripe-api-base", sync.emu.url)
    return run_cli(*options, "drift", "-f", str(path), db=str(sync.engine.url))


def cli(sync: Sync, *args: str) -> Any:
    options = ("--stripe-api-key", KEY, "--stripe-api-base", sync.emu.url)
    return run_cli(*options, *args, db=str(sync.engine.url))


def test_a_subscription_cancelled_in_the_dashboard_is_subscribed_again_only_when_allowed(
    drifting: Sync,
) -> None:
    """Acme cancels in Stripe: drift reports it; the plan lists the new subscription as one
    that charges Acme again (in the review's CAUTION block); `apply` leaves it out without
    `--allow-resubscribe` (the rest is applied, exit 1) and makes it with the flag."""
    sub = the(drifting.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert drift(drifting).exit_code == 0
    drifting.emu.call("DELETE", f"/v1/subscriptions/{sub['id']}")
    result = drift(drifting)
    assert result.exit_code == 2
    assert (
        f"  ! stripe_subscription[billing@acme.com].month: {sub['id']} was cancelled in Stripe\n"
    ) in result.stdout
    doc = billing(acme({"plan": "team", "quantity": 4}), jane("free", stripe={"create": True}))
    doc["customers"][1]["name"] = "Jane D."  # another change, applied either way
    plan = drifting.plan(doc)
    (made,) = plan.resubscribes
    assert made.reason == (
        f"{sub['id']} was cancelled in Stripe (by the customer or in the dashboard): "
        "subscribing again charges them (apply needs --allow-resubscribe)"
    )
    review = cli(
        drifting, "plan", "-f", str(drifting.folder / "billing.yaml"), "--format", "markdown"
    )
    assert "> This plan charges again customers who cancelled in Stripe:\n" in review.stdout

    refused = cli(drifting, "apply", "-f", str(drifting.folder / "billing.yaml"), "--auto-approve")
    assert refused.exit_code == 1
    assert "Not applied: stripe_subscription[billing@acme.com].month: " in refused.stderr
    assert "--allow-resubscribe" in refused.stderr
    assert [s["status"] for s in stored(drifting.emu, "subscription")] == ["canceled"]
    assert the(drifting.emu, "customer", "stripe_customer.user_1")["name"] == "Jane D."

    allowed = cli(
        drifting,
        "apply",
        "-f",
        str(drifting.folder / "billing.yaml"),
        "--auto-approve",
        "--allow-resubscribe",
    )
    assert allowed.exit_code == 0, allowed.output
    live = [s for s in stored(drifting.emu, "subscription") if s["status"] == "active"]
    assert len(live) == 1 and stripe_ids(drifting)["billing@acme.com//team"] == live[0]["id"]
    assert drifting.plan(doc).empty
    assert drift(drifting).exit_code == 0


def test_a_cancellation_at_period_end_set_in_stripe_is_not_undone_unless_allowed(
    drifting: Sync,
) -> None:
    """Acme cancels at period end in the portal: resuming it would charge Acme again; one
    autumn-sync set itself (the plan left the file, then came back) is resumed freely."""
    sub = the(drifting.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    drifting.emu.call("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "true"})
    doc = billing(acme({"plan": "team", "quantity": 4}), jane("free", stripe={"create": True}))
    (resumed,) = drifting.plan(doc).resubscribes
    assert resumed.address == "stripe_subscription[billing@acme.com].month"

    drifting.emu.call("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": "false"})
    drifting.apply(billing(acme(), jane("free", stripe={"create": True})))  # autumn-sync cancels
    cancelled = the(drifting.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    assert cancelled["cancel_at_period_end"]
    plan = drifting.apply(doc)  # the plan is back: resumed, no flag needed
    assert [c.address for c in plan.changes if c.kind == "stripe_subscription"] == [
        "stripe_subscription[billing@acme.com].month"
    ]
    assert plan.resubscribes == ()


def test_drift_reports_an_item_changed_in_the_dashboard(drifting: Sync) -> None:
    sub = the(drifting.emu, "subscription", "stripe_subscription[billing@acme.com].month")
    seats = drifting.emu.state.get("subscription_item", sub["items"][1])
    drifting.emu.state.modify("subscription_item", seats["id"], quantity=1)
    drifting.emu.call("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": True})
    result = drift(drifting)
    assert result.exit_code == 2
    assert (
        f"  ! stripe_subscription[billing@acme.com].month: {sub['id']} was set to cancel at "
        "period end in Stripe\n"
    ) in result.stdout
    drifting.emu.call("POST", f"/v1/subscriptions/{sub['id']}", {"cancel_at_period_end": False})
    assert (
        "  ! stripe_subscription[billing@acme.com].month: changed outside autumn-sync: "
        "items[stripe_price.team.seats].quantity: 1 → 4\n"
    ) in drift(drifting).stdout


def test_drift_reports_a_customer_deleted_in_the_dashboard(drifting: Sync) -> None:
    customer = the(drifting.emu, "customer", "stripe_customer.user_1")
    drifting.emu.call("DELETE", f"/v1/customers/{customer['id']}")
    result = drift(drifting)
    assert result.exit_code == 2
    assert f"  ! stripe_customer.user_1: {customer['id']} was deleted in Stripe\n" in result.stdout
    plan = drifting.apply(
        billing(acme({"plan": "team", "quantity": 4}), jane("free", stripe={"create": True}))
    )
    assert [(c.address, c.action) for c in plan.changes] == [("stripe_customer.user_1", "create")]
    assert (
        stripe_ids(drifting)["user_1"]
        == the(drifting.emu, "customer", "stripe_customer.user_1")["id"]
    )


def test_drift_counts_the_applications_customers_without_listing_them(drifting: Sync) -> None:
    for number in range(3):
        drifting.emu.call("POST", "/v1/customers", {"email": f"app{number}@example.com"})
    result = drift(drifting)
    assert result.exit_code == 0
    assert "Left alone in Stripe (not the file's): 3 customers, 0 subscriptions.\n" in result.stdout
    assert "app0@example.com" not in result.stdout


# --- 7. idempotency and requests -----------------------------------------------------------


@pytest.mark.slow
def test_a_run_dying_after_any_write_converges_without_duplicates(tmp_path: Path) -> None:
    """Customers, a customer's own price and subscriptions are made; the run dies right after
    each write in turn (the write done in Stripe, its id not recorded); one more apply
    converges, with one Stripe object per address and the ids in the database."""
    desired = billing(
        acme({"plan": "pro", "price": {"amount": 100, "interval": "month"}}, rewards=["launch20"]),
        {"email": "ops@globex.com", "billing": INVOICED, "plans": ["team"]},
    )
    path = tmp_path / "billing.yaml"
    path.write_text(yaml.safe_dump(desired), encoding="utf-8")
    state = load_desired(path)
    die_after = 1
    while True:
        engine = connect(f"sqlite:///{tmp_path / f'billing-{die_after}.db'}")
        with Emulator(seed=die_after) as emu:
            gateway = DyingGateway(StripeConfig(DEFAULT_API_KEY, emu.url))
            gateway.die_after = die_after
            try:
                apply_plan(engine, make_plan(engine, state, gateway), gateway=gateway, workers=1)
                finished = True
            except StripeApplyFailed as exc:
                assert isinstance(exc.error, Died)
                finished = False
            gateway.die_after = 0
            apply_plan(engine, make_plan(engine, state, gateway), gateway=gateway)
            assert make_plan(engine, state, gateway).empty, die_after
            for kind in ("customer", "subscription"):
                owners = Counter(o["metadata"].get(OWNER_KEY) for o in emu.state.all(kind))
                assert owners == Counter({a: 1 for a in owners}), (die_after, owners)
                assert len(owners) == 2
            own = [p for p in emu.state.all("price") if "[" in p["metadata"][OWNER_KEY]]
            assert len(own) == 1
            sync = Sync(engine, emu, tmp_path)
            ids = stripe_ids(sync)
            assert (
                ids["billing@acme.com"]
                == the(emu, "customer", "stripe_customer[billing@acme.com]")["id"]
            )
            assert (
                ids["ops@globex.com//team"]
                == the(emu, "subscription", "stripe_subscription[ops@globex.com].month")["id"]
            )
        engine.dispose()
        if finished:
            break
        die_after += 1
    assert die_after >= 14  # every write was a point to die at


@pytest.mark.slow
def test_a_no_change_plan_with_many_customers_reads_pages(
    sqlite_url: str, emu: Emulator, tmp_path: Path
) -> None:
    """150 customers (15 invoiced with subscriptions and their own prices): a no-change plan
    reads each list page by page, customers in two pages, never one object at a time."""
    doc = yaml.safe_load(make_catalog(features=6, plans=10, customers=150))
    engine = connect(sqlite_url)
    sync = Sync(engine, emu, tmp_path)
    sync.apply(doc)
    emu.requests.clear()
    assert sync.plan(doc).empty
    engine.dispose()
    counts = emu.requests.counts()
    customers = emu.state.count("customer")
    assert customers > 100
    assert counts[("GET", "/v1/customers")] == math.ceil(customers / 100) == 2
    assert counts[("GET", "/v1/subscriptions")] == math.ceil(emu.state.count("subscription") / 100)
    assert sum(counts.values()) == sum(
        max(1, math.ceil(emu.state.count(kind) / 100))
        for kind in (
            "billing.meter",
            "product",
            "price",
            "coupon",
            "promotion_code",
            "customer",
            "subscription",
            "subscription_schedule",
        )
    )
    assert all(method == "GET" for method, _ in counts)


def test_nothing_is_made_for_the_applications_customers(sync: Sync) -> None:
    sync.apply(billing(acme("pro")))
    add_customers(sync.engine, "pro", 3)  # the application's own, on Pro too
    assert sync.plan(billing(acme("pro"))).empty
    assert sync.emu.state.count("customer") == sync.emu.state.count("subscription") == 1
