"""Stripe sync end to end: the real `stripe` client over HTTP against the emulator (never
patched), the objects checked straight from the emulator's store.

`describe` writes the owned Stripe objects as one line each, ids replaced by addresses, so
an expectation reads like the mapping it checks (golden style, kept inline):

    stripe_price.pro.base v1: active on stripe_product.pro, usd unit_amount_decimal=2000, ...

Objects of one address are listed oldest first, so a replace shows as the archived old price
followed by the new one.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, event

from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.model.address import Target
from autumn_sync.model.stripe import OWNER_KEY
from autumn_sync.pipeline import apply_plan, load_desired, make_plan, read_current, utc_now
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.render import render_json, render_text
from autumn_sync.stripe.apply import StripeWriter
from autumn_sync.stripe.executor import run_stripe_changes
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from autumn_sync.stripe.journal import Journal
from benchmarks.catalog import make_catalog
from tests.conftest import EXAMPLES, count_statements, run_cli
from tests.helpers import add_customers, customer_versions

EXAMPLE = EXAMPLES / "billing.yaml"
KEY = "sk_test_x"
IN_SYNC = "No changes. The billing database and Stripe match the configuration.\n"
LISTS = (
    "/v1/billing/meters",
    "/v1/products",
    "/v1/prices",
    "/v1/coupons",
    "/v1/promotion_codes",
    "/v1/customers",
    "/v1/subscriptions",
    "/v1/subscription_schedules",  # those not begun
)
WAITING = (
    "Not changed yet (nothing to apply until then):\n"
    "  stripe_subscription.user_123.month: waiting for checkout: stripe_customer.user_123 has no"
    " payment method in Stripe yet\n\n"
)
Obj = dict[str, Any]
Doc = dict[str, Any]


# --- what the emulator holds -----------------------------------------------------------------

KINDS = (
    "billing.meter",
    "product",
    "price",
    "coupon",
    "promotion_code",
    "customer",
    "subscription",
    "subscription_schedule",
)


def stored(emu: Emulator, kind: str) -> list[Obj]:
    """Every object of `kind` in the emulator's store, oldest first."""
    return [dict(obj) for obj in emu.state.all(kind)]


def _addresses(emu: Emulator) -> dict[str, str]:
    """Stripe id → address of every owned object (meters by their event name)."""
    names = {
        m["id"]: "stripe_meter." + m["event_name"].removeprefix("autumn_sync.")
        for m in stored(emu, "billing.meter")
        if m["event_name"].startswith("autumn_sync.")
    }
    for kind in KINDS[1:]:
        for obj in stored(emu, kind):
            if OWNER_KEY in obj["metadata"]:
                names[obj["id"]] = obj["metadata"][OWNER_KEY]
    return names


def describe(emu: Emulator, *patterns: str) -> str:
    """The owned objects (those whose address matches one of `patterns`, shell-style; all
    without), one per line."""
    names = _addresses(emu)
    rows = []
    for rank, kind in enumerate(KINDS):
        for seq, obj in enumerate(stored(emu, kind)):
            address = names.get(obj["id"])
            if address and (not patterns or any(fnmatch(address, p) for p in patterns)):
                line = (
                    _subscription(obj, names, emu)
                    if kind == "subscription"
                    else LINES[kind](obj, names)
                )
                rows.append((rank, address, seq, line))
    return "\n".join(line for *_, line in sorted(rows)) + "\n"


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _meter(obj: Obj, names: dict[str, str]) -> str:
    return (
        f"{names[obj['id']]}: {obj['status']} {_quoted(obj['display_name'])} "
        f"event_name={obj['event_name']}"
    )


def _product(obj: Obj, names: dict[str, str]) -> str:
    default = obj["default_price"]
    line = f"{names[obj['id']]}: {_status(obj)} {_quoted(obj['name'])}"
    if default:
        line += f" default_price={names.get(default, default)}"
    if obj["description"]:
        line += f" description={_quoted(obj['description'])}"
    return line


def _price(obj: Obj, names: dict[str, str]) -> str:
    if obj["billing_scheme"] == "tiered":
        tiers = ", ".join(
            f"{'inf' if t['up_to'] is None else t['up_to']}: {t['unit_amount_decimal']}"
            for t in obj["tiers"]
        )
        amount = f"{obj['tiers_mode']} tiers=[{tiers}]"
    else:
        amount = f"unit_amount_decimal={obj['unit_amount_decimal']}"
    recurring = obj["recurring"]
    if recurring is None:
        billed = "one-time"
    else:
        billed = f"every {recurring['interval_count']} {recurring['interval']} "
        billed += recurring["usage_type"]
        if recurring["meter"]:
            billed += f" meter={names[recurring['meter']]}"
    return (
        f"{names[obj['id']]} v{obj['metadata']['autumn_sync_version']}: {_status(obj)} "
        f"on {names[obj['product']]}, {obj['currency']} {amount}, {billed}, "
        f"lookup_key={obj['lookup_key']}"
    )


def _coupon(obj: Obj, names: dict[str, str]) -> str:
    off = (
        f"{obj['percent_off']:g}% off"
        if obj["percent_off"] is not None
        else f"{obj['amount_off']} {obj['currency']} off"
    )
    duration = obj["duration"]
    if duration == "repeating":
        duration += f" {obj['duration_in_months']} months"
    applies = sorted(names[p] for p in (obj["applies_to"] or {}).get("products", []))
    archived = obj["metadata"].get("autumn_sync_archived") == "true"
    return (
        f"{names[obj['id']]} ({obj['id']}): {'archived' if archived else 'active'} "
        f"{_quoted(obj['name'])} {off} {duration} applies_to={applies}"
    )


def _promo(obj: Obj, names: dict[str, str]) -> str:
    coupon = obj["promotion"]["coupon"]
    return f"{names[obj['id']]}: {_status(obj)} {obj['code']} coupon={names.get(coupon, coupon)}"


def _status(obj: Obj) -> str:
    return "active" if obj["active"] else "archived"


def _customer(obj: Obj, names: dict[str, str]) -> str:
    method = (obj["invoice_settings"] or {}).get("default_payment_method")
    archived = obj["metadata"].get("autumn_sync_archived") == "true"
    return (
        f"{names[obj['id']]}: {'archived' if archived else 'active'} {_quoted(obj['name'] or '')}"
        f" <{obj['email']}> payment_method={'yes' if method else 'none'}"
    )


def _subscription(obj: Obj, names: dict[str, str], emu: Emulator) -> str:
    items = []
    for item_id in obj["items"]:
        item = emu.state.get("subscription_item", item_id)
        price = names.get(item["price"], item["price"])
        version = emu.state.get("price", item["price"])["metadata"].get("autumn_sync_version")
        count = "metered" if item["quantity"] is None else f"x{item['quantity']}"
        items.append(f"{price} v{version} {count}")
    coupons = [
        names.get(c, c)
        for c in (emu.state.get("discount", d)["source"]["coupon"] for d in obj["discounts"])
    ]
    status = obj["status"] + (" (cancels at period end)" if obj["cancel_at_period_end"] else "")
    billing = obj["collection_method"]
    if obj["days_until_due"] is not None:
        billing += f" due in {obj['days_until_due']} days"
    trial = f", trial until {obj['trial_end']}" if obj["trial_end"] else ""
    return (
        f"{names[obj['id']]}: {status} for {names.get(obj['customer'], obj['customer'])}, "
        f"{billing}{trial}, items=[{', '.join(items)}], coupons={coupons}"
    )


LINES: dict[str, Callable[[Obj, dict[str, str]], str]] = {
    "billing.meter": _meter,
    "product": _product,
    "price": _price,
    "coupon": _coupon,
    "promotion_code": _promo,
    "customer": _customer,
}


def owned(emu: Emulator, kind: str, address: str) -> list[Obj]:
    """The objects of `kind` at `address`, oldest first."""
    return [o for o in stored(emu, kind) if o["metadata"].get(OWNER_KEY) == address]


def ids(emu: Emulator) -> set[str]:
    return {obj["id"] for kind in KINDS for obj in stored(emu, kind)}


# --- driving the tool ------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(seed=2026) as emulator:
        yield emulator


@dataclass
class Sync:
    """One database and one emulator, and the billing file written to `folder`; autumn-sync
    runs on the emulator's time (a test that moves it moves both)."""

    engine: Engine
    emu: Emulator
    folder: Path

    @property
    def gateway(self) -> Gateway:
        return Gateway(StripeConfig(KEY, self.emu.url))

    def clock(self) -> datetime:
        return datetime.fromtimestamp(self.emu.clock.now(), UTC).replace(tzinfo=None)

    def plan(self, doc: Doc) -> ChangePlan:
        path = self.folder / "billing.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return make_plan(self.engine, load_desired(path), self.gateway, clock=self.clock)

    def apply(self, doc: Doc) -> ChangePlan:
        """Plan, apply (destroys allowed), and check that the next plan is empty (it may
        still say which subscriptions wait for a checkout)."""
        plan = self.plan(doc)
        apply_plan(self.engine, plan, gateway=self.gateway, allow_destroy=True, clock=self.clock)
        again = self.plan(doc)
        assert again.empty and render_text(again).endswith(IN_SYNC), render_text(again)
        return plan


def sync_on(url: str, emu: Emulator, folder: Path) -> Iterator[Sync]:
    """A `Sync` on the database at `url` (the `sync` fixtures of the Stripe tests)."""
    engine = connect(url)
    yield Sync(engine, emu, folder)
    engine.dispose()


@pytest.fixture
def sync(sqlite_url: str, emu: Emulator, tmp_path: Path) -> Iterator[Sync]:
    yield from sync_on(sqlite_url, emu, tmp_path)


@pytest.fixture
def sync_every_db(db_url: str, emu: Emulator, tmp_path: Path) -> Iterator[Sync]:
    yield from sync_on(db_url, emu, tmp_path)


def example(*changes: Callable[[Doc], object]) -> Doc:
    """The example file (its catalog and its two customers), edited by `changes`."""
    doc: Doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for change in changes:
        change(doc)
    return doc


def catalog(*changes: Callable[[Doc], object]) -> Doc:
    """The example's catalog without its customers (the app's customers, added with
    `add_customers`, are the only ones on its plans), edited by `changes`."""
    return example(lambda doc: doc.pop("customers"), *changes)


def pro_price(amount: float, migrate: bool = False) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["plans"]["pro"]["price"]["amount"] = amount
        if migrate:
            doc["plans"]["pro"]["migrate_customers"] = True

    return change


def without_pro(doc: Doc) -> None:
    del doc["plans"]["pro"]
    doc["rewards"]["launch20"]["plans"] = ["business"]


def without_pro_messages_price(doc: Doc) -> None:
    del doc["plans"]["pro"]["items"][0]["price"]


def stripe_cli(emu: Emulator, *args: str, db: str) -> Any:
    return run_cli("--stripe-api-key", KEY, "--stripe-api-base", emu.url, *args, db=db)


# --- 1. convergence and the mapping --------------------------------------------------------

EXAMPLE_IN_STRIPE = """\
stripe_meter.business.messages: active "Business \u2013 Messages" event_name=autumn_sync.business.messages
stripe_meter.pro.messages: active "Pro \u2013 Messages" event_name=autumn_sync.pro.messages
stripe_product.business: active "Business" default_price=stripe_price.business.base
stripe_product.business.messages: active "Business \u2013 Messages"
stripe_product.extra_credits: active "Extra credits" description="1,000 AI credits a month, on top of any plan."
stripe_product.extra_credits.credits: active "Extra credits \u2013 AI credits"
stripe_product.free: active "Free" description="For trying things out."
stripe_product.pro: active "Pro" default_price=stripe_price.pro.base description="For small teams."
stripe_product.pro.messages: active "Pro \u2013 Messages"
stripe_product.pro.seats: active "Pro \u2013 Seats"
stripe_price.business.base v1: active on stripe_product.business, usd unit_amount_decimal=20000, every 1 year licensed, lookup_key=autumn_sync.business.base
stripe_price.business.base[billing@acme.com] v1: active on stripe_product.business, usd unit_amount_decimal=200000, every 1 year licensed, lookup_key=None
stripe_price.business.messages v1: active on stripe_product.business.messages, usd graduated tiers=[20000: 0, 100000: 4, inf: 3], every 1 year metered meter=stripe_meter.business.messages, lookup_key=autumn_sync.business.messages
stripe_price.business.messages[billing@acme.com] v1: active on stripe_product.business.messages, usd graduated tiers=[1000000: 0, inf: 3], every 1 year metered meter=stripe_meter.business.messages, lookup_key=None
stripe_price.extra_credits.credits v1: active on stripe_product.extra_credits.credits, usd unit_amount_decimal=1, every 1 month licensed, lookup_key=autumn_sync.extra_credits.credits
stripe_price.pro.base v1: active on stripe_product.pro, usd unit_amount_decimal=2000, every 1 month licensed, lookup_key=autumn_sync.pro.base
stripe_price.pro.messages v1: active on stripe_product.pro.messages, usd graduated tiers=[1000: 0, inf: 5], every 1 month metered meter=stripe_meter.pro.messages, lookup_key=autumn_sync.pro.messages
stripe_price.pro.seats v1: active on stripe_product.pro.seats, usd graduated tiers=[3: 0, 10: 1000, inf: 800], every 1 month licensed, lookup_key=autumn_sync.pro.seats
stripe_coupon.launch20 (launch20): active "Launch discount" 20% off repeating 3 months applies_to=['stripe_product.business', 'stripe_product.business.messages', 'stripe_product.pro', 'stripe_product.pro.messages', 'stripe_product.pro.seats']
stripe_coupon.welcome5 (welcome5): active "welcome5" 500 usd off once applies_to=[]
stripe_promotion_code.launch20.LAUNCH20: active LAUNCH20 coupon=stripe_coupon.launch20
stripe_promotion_code.welcome5.WELCOME5: active WELCOME5 coupon=stripe_coupon.welcome5
stripe_customer.user_123: active "Jane Doe" <jane@example.com> payment_method=none
stripe_customer[billing@acme.com]: active "Acme Corp" <billing@acme.com> payment_method=none
stripe_subscription[billing@acme.com].month: active for stripe_customer[billing@acme.com], send_invoice due in 30 days, items=[stripe_price.extra_credits.credits v1 x1000], coupons=[]
stripe_subscription[billing@acme.com].year: active for stripe_customer[billing@acme.com], send_invoice due in 30 days, items=[stripe_price.business.base[billing@acme.com] v1 x1, stripe_price.business.messages[billing@acme.com] v1 metered], coupons=['stripe_coupon.launch20']
"""  # noqa: E501


def test_example_converges_on_every_database(db_url: str, emu: Emulator) -> None:
    first = stripe_cli(emu, "plan", "-f", str(EXAMPLE), "--detailed-exitcode", db=db_url)
    assert first.exit_code == 2
    assert first.stderr == ""
    # The database: settings, 7 features, 4 plans, 2 rewards, 2 customers and Acme's messages
    # balance (17); Stripe: 2 meters, 8 products, 6 prices and Acme's own 2 (its negotiated
    # base price and the messages price with its 1,000,000 included), 2 coupons, 2 codes, the
    # 2 customers and Acme's 2 subscriptions, invoiced (26). Jane's Pro subscription waits for
    # her checkout: she pays by card and has no payment method.
    assert first.stdout.endswith(
        WAITING + "Plan: 43 to add, 0 to change, 0 to archive, 0 to destroy.\n"
    )
    applied = stripe_cli(emu, "apply", "-f", str(EXAMPLE), "--auto-approve", db=db_url)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete! 43 added, 0 changed, 0 archived, 0 destroyed." in applied.stdout
    again = stripe_cli(emu, "plan", "-f", str(EXAMPLE), "--detailed-exitcode", db=db_url)
    assert (again.exit_code, again.stdout) == (0, WAITING + IN_SYNC)
    assert describe(emu) == EXAMPLE_IN_STRIPE


def test_example_objects_field_by_field(sync: Sync) -> None:
    """The same as the description above, on the raw fields Stripe itself would return."""
    sync.apply(example())
    emu = sync.emu
    (pro,) = owned(emu, "product", "stripe_product.pro")
    (base,) = owned(emu, "price", "stripe_price.pro.base")
    assert pro["metadata"] == {OWNER_KEY: "stripe_product.pro"}
    assert pro["default_price"] == base["id"]
    assert (base["unit_amount"], base["currency"], base["product"]) == (2000, "usd", pro["id"])
    assert base["recurring"]["interval"] == "month"
    assert base["recurring"]["usage_type"] == "licensed"
    assert base["lookup_key"] == "autumn_sync.pro.base"
    (meter,) = [m for m in stored(emu, "billing.meter") if "pro." in m["event_name"]]
    (messages,) = owned(emu, "price", "stripe_price.pro.messages")
    assert messages["recurring"]["meter"] == meter["id"]
    assert messages["recurring"]["usage_type"] == "metered"
    assert [(t["up_to"], t["unit_amount_decimal"]) for t in messages["tiers"]] == [
        (1000, "0"),
        (None, "5"),  # $5 per 100 messages: 5 cents a message
    ]
    (credits,) = owned(emu, "price", "stripe_price.extra_credits.credits")
    assert (credits["unit_amount_decimal"], credits["unit_amount"]) == ("1", 1)  # $10 / 1000
    (launch,) = owned(emu, "coupon", "stripe_coupon.launch20")
    # every product of the plans the reward names: base, usage and seat products
    plans = ("business", "business.messages", "pro", "pro.messages", "pro.seats")
    products = [owned(emu, "product", f"stripe_product.{p}")[0]["id"] for p in plans]
    assert sorted(launch["applies_to"]["products"]) == sorted(products)
    (code,) = owned(emu, "promotion_code", "stripe_promotion_code.launch20.LAUNCH20")
    assert code["promotion"] == {"type": "coupon", "coupon": launch["id"]}


MINOR_UNITS_CATALOG = """\
version: 1
settings: {{currency: {currency}}}
features:
  messages: {{name: Messages, type: metered, consumable: true}}
plans:
  pro:
    name: Pro
    price: {{amount: {amount}, interval: month}}
    items:
      - feature: messages
        reset: month
        price: {{amount: {usage}, per: 1000, billing: pay_per_use}}
"""


@pytest.mark.parametrize(
    ("currency", "amount", "usage", "base", "per_message"),
    [
        ("jpy", "2000", "5", "2000", "0.005"),  # zero-decimal: ¥2000 is 2000 minor units
        ("kwd", "1.5", "0.25", "1500", "0.25"),  # three decimals: 1.5 KWD is 1500 fils
        ("usd", "20.50", "0.10", "2050", "0.01"),
    ],
)
def test_amounts_in_minor_units(
    sync: Sync, currency: str, amount: str, usage: str, base: str, per_message: str
) -> None:
    text = MINOR_UNITS_CATALOG.format(currency=currency, amount=amount, usage=usage)
    sync.apply(yaml.safe_load(text))
    assert describe(sync.emu, "stripe_price.*") == (
        f"stripe_price.pro.base v1: active on stripe_product.pro, {currency} "
        f"unit_amount_decimal={base}, every 1 month licensed, lookup_key=autumn_sync.pro.base\n"
        f"stripe_price.pro.messages v1: active on stripe_product.pro.messages, {currency} "
        f"unit_amount_decimal={per_message}, every 1 month metered "
        "meter=stripe_meter.pro.messages, lookup_key=autumn_sync.pro.messages\n"
    )
    (price,) = owned(sync.emu, "price", "stripe_price.pro.base")
    assert price["unit_amount"] == int(base)


# --- 2. a price change -----------------------------------------------------------------------


def test_price_change_without_customers_replaces_the_price(sync: Sync) -> None:
    sync.apply(catalog())
    plan = sync.apply(catalog(pro_price(25)))
    assert render_text(plan) == (
        "autumn-sync will perform the following actions:\n\n"
        "  ~ plan.pro (update in place)\n"
        "      price.amount: 20 → 25\n\n"
        "  -/+ stripe_price.pro.base (replace: price terms cannot change in Stripe; a new price"
        " takes over, the old one is archived)\n"
        "      unit_amount_decimal: 2000 → 2500\n\n"
        "Plan: 1 to add, 1 to change, 1 to archive, 0 to destroy.\n"
    )
    assert describe(sync.emu, "stripe_price.pro.base", "stripe_product.pro") == (
        'stripe_product.pro: active "Pro" default_price=stripe_price.pro.base'
        ' description="For small teams."\n'
        "stripe_price.pro.base v1: archived on stripe_product.pro, usd unit_amount_decimal=2000,"
        " every 1 month licensed, lookup_key=None\n"
        "stripe_price.pro.base v1: active on stripe_product.pro, usd unit_amount_decimal=2500,"
        " every 1 month licensed, lookup_key=autumn_sync.pro.base\n"
    )
    _, new = owned(sync.emu, "price", "stripe_price.pro.base")
    assert owned(sync.emu, "product", "stripe_product.pro")[0]["default_price"] == new["id"]


def test_price_change_with_customers_keeps_their_price(sync_every_db: Sync) -> None:
    sync = sync_every_db
    sync.apply(example())
    add_customers(sync.engine, "pro", 3)
    plan = sync.apply(example(pro_price(25)))
    assert render_text(plan).splitlines()[2:7] == [
        "  ~ plan.pro: new version 2 (4 customers stay on version 1)",  # and Jane, of the file
        "      price.amount: 20 → 25",
        "",
        "  -/+ stripe_price.pro.base (replace: price terms cannot change in Stripe; a new price"
        " takes over, the old one stays active for the customers on version 1)",
        "      unit_amount_decimal: 2000 → 2500",
    ]
    assert plan.summary().archive == 0
    assert describe(sync.emu, "stripe_price.pro.base", "stripe_product.pro") == (
        'stripe_product.pro: active "Pro" default_price=stripe_price.pro.base'
        ' description="For small teams."\n'
        "stripe_price.pro.base v1: active on stripe_product.pro, usd unit_amount_decimal=2000,"
        " every 1 month licensed, lookup_key=None\n"
        "stripe_price.pro.base v2: active on stripe_product.pro, usd unit_amount_decimal=2500,"
        " every 1 month licensed, lookup_key=autumn_sync.pro.base\n"
    )
    _, new = owned(sync.emu, "price", "stripe_price.pro.base")
    assert owned(sync.emu, "product", "stripe_product.pro")[0]["default_price"] == new["id"]


def test_price_change_with_migrate_customers_archives_the_old_price(sync: Sync) -> None:
    sync.apply(example())
    add_customers(sync.engine, "pro", 3)
    plan = sync.apply(example(pro_price(25, migrate=True)))
    assert "  ~ plan.pro: new version 2 (4 customers move to it)\n" in render_text(plan)
    assert describe(sync.emu, "stripe_price.pro.base") == (
        "stripe_price.pro.base v1: archived on stripe_product.pro, usd unit_amount_decimal=2000,"
        " every 1 month licensed, lookup_key=None\n"
        "stripe_price.pro.base v2: active on stripe_product.pro, usd unit_amount_decimal=2500,"
        " every 1 month licensed, lookup_key=autumn_sync.pro.base\n"
    )


def test_a_price_stays_active_for_every_version_it_bills(sync: Sync) -> None:
    """The base price made for version 1 also bills version 2 (which changed only the
    messages price): once customers moved to version 2, a new base price keeps it active."""
    sync.apply(example())
    add_customers(sync.engine, "pro", 3)

    def messages_at_6(doc: Doc) -> None:
        doc["plans"]["pro"]["items"][0]["price"]["amount"] = 6

    sync.apply(example(messages_at_6, pro_price(20, migrate=True)))  # v2: the customers move
    plan = sync.apply(example(messages_at_6, pro_price(25)))  # v3: the customers stay on v2
    assert "the old one stays active for the customers on version 2)" in render_text(plan)
    assert describe(sync.emu, "stripe_price.pro.base") == (
        "stripe_price.pro.base v1: active on stripe_product.pro, usd unit_amount_decimal=2000,"
        " every 1 month licensed, lookup_key=None\n"
        "stripe_price.pro.base v3: active on stripe_product.pro, usd unit_amount_decimal=2500,"
        " every 1 month licensed, lookup_key=autumn_sync.pro.base\n"
    )
    assert [p["active"] for p in owned(sync.emu, "price", "stripe_price.pro.messages")] == [
        False,  # version 1's: nobody is on version 1 any more
        True,
    ]


# --- 3. removals -----------------------------------------------------------------------------

PRO_ARCHIVED = """\
stripe_product.pro: archived "Pro" description="For small teams."
stripe_product.pro.messages: archived "Pro \u2013 Messages"
stripe_product.pro.seats: archived "Pro \u2013 Seats"
stripe_price.pro.base v1: archived on stripe_product.pro, usd unit_amount_decimal=2000, every 1 month licensed, lookup_key=autumn_sync.pro.base
stripe_price.pro.messages v1: archived on stripe_product.pro.messages, usd graduated tiers=[1000: 0, inf: 5], every 1 month metered meter=stripe_meter.pro.messages, lookup_key=autumn_sync.pro.messages
stripe_price.pro.seats v1: archived on stripe_product.pro.seats, usd graduated tiers=[3: 0, 10: 1000, inf: 800], every 1 month licensed, lookup_key=autumn_sync.pro.seats
"""  # noqa: E501


def test_plan_removed_with_customers_is_archived_in_stripe(sync: Sync) -> None:
    sync.apply(catalog())
    add_customers(sync.engine, "pro", 2)
    before = ids(sync.emu)
    plan = sync.apply(catalog(without_pro))
    assert "  ~ plan.pro (archive: 2 customers stay on it)\n" in render_text(plan)
    assert read_current(sync.engine).plans["pro"].archived
    assert ids(sync.emu) >= before  # nothing deleted
    # The meter stays active: the customers kept on the archived plan still report usage,
    # and a deactivated meter rejects it.
    assert describe(sync.emu, "stripe_*.pro", "stripe_*.pro.*") == (
        'stripe_meter.pro.messages: active "Pro \u2013 Messages"'
        " event_name=autumn_sync.pro.messages\n" + PRO_ARCHIVED
    )


LAUNCH_APPLIES = (
    "applies_to=['stripe_product.business', 'stripe_product.business.messages',"
    " 'stripe_product.pro', 'stripe_product.pro.messages', 'stripe_product.pro.seats']"
)


def test_plan_removed_without_customers_is_archived_in_stripe(sync: Sync) -> None:
    sync.apply(catalog())
    before = ids(sync.emu)
    plan = sync.apply(catalog(without_pro))
    assert "  - plan.pro (destroy: no customers on any version)\n" in render_text(plan)
    assert "pro" not in read_current(sync.engine).plans
    assert ids(sync.emu) >= before
    assert describe(sync.emu, "stripe_*.pro", "stripe_*.pro.*") == (
        'stripe_meter.pro.messages: inactive "Pro \u2013 Messages"'
        " event_name=autumn_sync.pro.messages\n" + PRO_ARCHIVED
    )
    # the coupon is kept: the pro products it also names are archived (nothing to discount)
    assert describe(sync.emu, "stripe_coupon.launch20") == (
        'stripe_coupon.launch20 (launch20): active "Launch discount" 20% off repeating'
        f" 3 months {LAUNCH_APPLIES}\n"
    )


def test_an_archived_plan_offered_again_is_active_again_in_stripe(sync: Sync) -> None:
    sync.apply(catalog())
    add_customers(sync.engine, "pro", 2)
    sync.apply(catalog(without_pro))
    plan = sync.apply(catalog())  # its default price comes back too, in this one apply
    assert "  ~ plan.pro (unarchive)\n" in render_text(plan)
    assert describe(sync.emu, "stripe_*.pro", "stripe_*.pro.*") == (
        'stripe_meter.pro.messages: active "Pro \u2013 Messages"'
        " event_name=autumn_sync.pro.messages\n"
        + PRO_ARCHIVED.replace("archived", "active").replace(
            '"Pro" description', '"Pro" default_price=stripe_price.pro.base description'
        )
    )


def test_a_coupon_whose_terms_change_is_replaced_by_a_new_coupon(sync: Sync) -> None:
    sync.apply(example())
    for percent in (25, 30):

        def launch(doc: Doc, percent: int = percent) -> None:
            doc["rewards"]["launch20"]["percent_off"] = percent

        plan = sync.apply(example(launch))
    assert render_text(plan).splitlines()[2:10] == [
        "  ~ reward.launch20 (update in place)",
        "      percent_off: 25 → 30",
        "",
        "  -/+ stripe_coupon.launch20 (replace: coupon terms cannot change in Stripe; a new"
        " coupon takes over, the old one is archived)",
        '      coupon_id:   "launch20-v2" → "launch20-v3"',
        "      percent_off: 25 → 30",
        "",
        "  -/+ stripe_promotion_code.launch20.LAUNCH20 (replace: its coupon is replaced: the code"
        " moves to the new coupon)",
    ]
    applies = LAUNCH_APPLIES
    assert describe(sync.emu, "stripe_coupon.*", "stripe_promotion_code.launch20.*") == (
        f'stripe_coupon.launch20 (launch20): archived "Launch discount" 20% off repeating'
        f" 3 months {applies}\n"
        f'stripe_coupon.launch20 (launch20-v2): archived "Launch discount" 25% off repeating'
        f" 3 months {applies}\n"
        f'stripe_coupon.launch20 (launch20-v3): active "Launch discount" 30% off repeating'
        f" 3 months {applies}\n"
        'stripe_coupon.welcome5 (welcome5): active "welcome5" 500 usd off once applies_to=[]\n'
        "stripe_promotion_code.launch20.LAUNCH20: archived LAUNCH20 coupon=stripe_coupon.launch20\n"
        "stripe_promotion_code.launch20.LAUNCH20: archived LAUNCH20 coupon=stripe_coupon.launch20\n"
        "stripe_promotion_code.launch20.LAUNCH20: active LAUNCH20 coupon=stripe_coupon.launch20\n"
    )


PRO_MESSAGES = (
    'stripe_meter.pro.messages: {meter} "Pro \u2013 Messages" event_name=autumn_sync.pro.messages\n'
    'stripe_product.pro.messages: {status} "Pro \u2013 Messages"\n'
    "stripe_price.pro.messages v1: {status} on stripe_product.pro.messages, usd graduated"
    " tiers=[1000: 0, inf: 5], every 1 month metered meter=stripe_meter.pro.messages,"
    " lookup_key=autumn_sync.pro.messages\n"
)


def test_usage_price_removed_archives_price_meter_and_product(sync: Sync) -> None:
    sync.apply(catalog())
    plan = sync.apply(catalog(without_pro_messages_price))
    assert [c.address for c in plan.changes if c.kind.target is Target.STRIPE] == [
        "stripe_price.pro.messages",
        "stripe_product.pro.messages",
        "stripe_meter.pro.messages",
    ]
    assert describe(sync.emu, "stripe_*.pro.messages") == (
        PRO_MESSAGES.format(meter="inactive", status="archived")
    )


def test_usage_price_removed_stays_for_the_customers_on_older_versions(sync: Sync) -> None:
    sync.apply(example())
    add_customers(sync.engine, "pro", 3)
    plan = sync.apply(example(without_pro_messages_price))
    assert [c.address for c in plan.changes] == ["plan.pro"]  # version 2; Stripe keeps it all
    assert describe(sync.emu, "stripe_*.pro.messages") == (
        PRO_MESSAGES.format(meter="active", status="active")
    )


# --- 4. changes behind the tool's back ------------------------------------------------------


def test_a_dashboard_rename_is_cosmetic_until_the_file_renames(sync: Sync) -> None:
    sync.apply(example())
    (pro,) = owned(sync.emu, "product", "stripe_product.pro")
    sync.emu.state.modify("product", pro["id"], name="Pro (legacy)")
    assert render_text(sync.plan(example())) == WAITING + IN_SYNC  # drift's job, not the plan's

    def rename(doc: Doc) -> None:
        doc["plans"]["pro"]["name"] = "Pro Plus"

    plan = sync.apply(example(rename))
    assert [(c.address, [(f.path, f.before, f.after) for f in c.fields]) for c in plan.changes] == [
        ("plan.pro", [("name", "Pro", "Pro Plus")]),
        ("stripe_meter.pro.messages", [("display_name", "Pro – Messages", "Pro Plus – Messages")]),
        ("stripe_product.pro", [("name", "Pro (legacy)", "Pro Plus")]),
        ("stripe_product.pro.messages", [("name", "Pro – Messages", "Pro Plus – Messages")]),
        ("stripe_product.pro.seats", [("name", "Pro – Seats", "Pro Plus – Seats")]),
    ]
    assert describe(sync.emu, "stripe_product.pro") == (
        'stripe_product.pro: active "Pro Plus" default_price=stripe_price.pro.base'
        ' description="For small teams."\n'
    )


def test_ownership_metadata_removed_is_written_back_not_duplicated(sync: Sync) -> None:
    """An object that lost `autumn_sync_address` is still found by the Stripe id the database
    recorded: the plan writes the metadata back rather than making a second product (and new
    prices on it) while the old one stays live for the customers subscribed to it."""
    sync.apply(example())
    (pro,) = owned(sync.emu, "product", "stripe_product.pro")
    sync.emu.state.set_metadata("product", pro["id"], OWNER_KEY, None)
    count = sync.emu.state.count("product")
    plan = sync.apply(example())
    assert render_text(plan) == (
        "autumn-sync will perform the following actions:\n\n"
        "  ~ stripe_product.pro (update in place)\n"
        '      metadata.autumn_sync_address: (none) → "stripe_product.pro"\n\n'
        + WAITING
        + "Plan: 0 to add, 1 to change, 0 to archive, 0 to destroy.\n"
    )
    assert sync.emu.state.count("product") == count
    assert sync.emu.state.get("product", pro["id"])["metadata"] == {OWNER_KEY: "stripe_product.pro"}


def test_a_coupon_deleted_in_the_dashboard_is_made_again(sync: Sync) -> None:
    """The re-created coupon gets a new idempotency key (the database recorded the deleted
    one's id): the same key would make Stripe replay the deleted coupon for 24 hours."""
    sync.apply(example())
    sync.emu.call("DELETE", "/v1/coupons/welcome5")
    plan = sync.apply(example())
    assert [(c.address, c.action) for c in plan.changes] == [
        ("stripe_coupon.welcome5", "create"),
        ("stripe_promotion_code.welcome5.WELCOME5", "replace"),
    ]
    assert describe(sync.emu, "stripe_coupon.welcome5", "stripe_promotion_code.welcome5.*") == (
        'stripe_coupon.welcome5 (welcome5): active "welcome5" 500 usd off once applies_to=[]\n'
        "stripe_promotion_code.welcome5.WELCOME5: archived WELCOME5 coupon=stripe_coupon.welcome5\n"
        "stripe_promotion_code.welcome5.WELCOME5: active WELCOME5 coupon=stripe_coupon.welcome5\n"
    )


# --- 5. requests ----------------------------------------------------------------------------


def test_a_no_change_plan_reads_each_list_once(sync: Sync) -> None:
    """Eight requests: one page of each list, customers and subscriptions included (ended
    subscriptions too, with their discounts expanded, and schedules not begun), whatever
    the objects in them."""
    sync.apply(example())
    sync.emu.requests.clear()
    assert render_text(sync.plan(example())) == WAITING + IN_SYNC
    assert sync.emu.requests.counts() == Counter({("GET", path): 1 for path in LISTS})
    for entry in sync.emu.requests.entries():
        assert "limit=100" in entry.query
    (subscriptions,) = [e for e in sync.emu.requests.entries() if e.path == "/v1/subscriptions"]
    assert "status=all" in subscriptions.query
    assert "expand" in subscriptions.query and "data.discounts" in subscriptions.query


@pytest.mark.slow
def test_a_large_no_change_plan_reads_pages_not_objects(
    sqlite_url: str, emu: Emulator, tmp_path: Path
) -> None:
    doc = yaml.safe_load(make_catalog(features=12, plans=120))
    engine = _without_fsync(connect(sqlite_url))
    try:
        sync = Sync(engine, emu, tmp_path)
        sync.apply(doc)
        emu.requests.clear()
        with count_statements(engine) as statements:
            assert sync.plan(doc).empty
    finally:
        engine.dispose()
    sizes = {path: emu.state.count(kind) for path, kind in zip(LISTS, KINDS, strict=True)}
    assert sizes["/v1/products"] > 300 and sizes["/v1/prices"] > 300
    assert sizes["/v1/billing/meters"] > 100
    assert sizes["/v1/customers"] == sizes["/v1/subscriptions"] == 0  # a page, empty
    pages = {("GET", path): max(1, math.ceil(size / 100)) for path, size in sizes.items()}
    assert emu.requests.counts() == Counter(pages)
    small = _statements_of_a_small_plan(tmp_path / "small", emu)
    assert statements.count == small


def _without_fsync(engine: Engine) -> Engine:
    """SQLite without a sync per commit: setting up a large catalog writes three journal
    transactions per Stripe request, and durability is not what this test is about."""

    def unsynchronised(connection: Any, _record: object) -> None:
        connection.execute("PRAGMA synchronous=OFF")

    event.listen(engine, "connect", unsynchronised)
    engine.dispose()  # so that every connection from now on has it
    return engine


def _statements_of_a_small_plan(folder: Path, emu: Emulator) -> int:
    folder.mkdir()
    with Emulator() as other:
        engine = connect(f"sqlite:///{folder / 'small.db'}")
        try:
            sync = Sync(engine, other, folder)
            sync.apply(example())
            with count_statements(engine) as statements:
                assert sync.plan(example()).empty
        finally:
            engine.dispose()
    return statements.count


# --- 6. idempotency keys --------------------------------------------------------------------


def test_the_same_changes_sent_again_make_nothing_new(sync: Sync) -> None:
    sync.apply(catalog())
    plan = sync.plan(catalog(pro_price(25)))
    apply_plan(sync.engine, plan, gateway=sync.gateway)
    made = ids(sync.emu)
    sync.emu.requests.clear()
    assert plan.stripe is not None
    again = StripeWriter(
        sync.gateway, plan.stripe.existing, plan.stripe.desired, Journal(sync.engine, utc_now)
    )
    run_stripe_changes([c for c in plan.changes if c.kind.target is Target.STRIPE], again)
    writes = [e for e in sync.emu.requests.entries() if e.method == "POST"]
    assert len(writes) == 3  # create the price, make it the default, archive the old one
    # The create is replayed (no second price); the two updates, idempotent by nature, go out
    # again with keys that count the writes already done to the address.
    assert [e.outcome for e in writes] == ["replayed", "ok", "ok"]
    assert ids(sync.emu) == made
    assert render_text(sync.plan(catalog(pro_price(25)))) == IN_SYNC


def test_a_price_made_again_is_a_new_price(sync: Sync) -> None:
    """A → B → A → B: the fourth price has the same parameters as the second; only the
    generation in its idempotency key keeps Stripe from replaying the archived one."""
    sync.apply(catalog())
    for amount in (25, 20, 25):
        sync.apply(catalog(pro_price(amount)))
    prices = owned(sync.emu, "price", "stripe_price.pro.base")
    assert [(p["unit_amount"], p["active"]) for p in prices] == [
        (2000, False),
        (2500, False),
        (2000, False),
        (2500, True),
    ]
    assert len({p["id"] for p in prices}) == 4
    replayed = [e for e in sync.emu.requests.entries() if e.outcome == "replayed"]
    assert replayed == []


# --- 7. without Stripe ----------------------------------------------------------------------

NOT_CONNECTED = "Stripe is not connected (no STRIPE_API_KEY): planning the billing database only.\n"


def test_without_a_key_only_the_database_is_planned(sqlite_url: str) -> None:
    planned = run_cli("plan", "-f", str(EXAMPLE), db=sqlite_url)
    assert planned.exit_code == 0
    assert planned.stderr == NOT_CONNECTED
    assert "stripe_" not in planned.stdout
    assert planned.stdout.endswith("Plan: 17 to add, 0 to change, 0 to archive, 0 to destroy.\n")
    applied = run_cli("apply", "-f", str(EXAMPLE), "--auto-approve", db=sqlite_url)
    assert (applied.exit_code, applied.stderr) == (0, NOT_CONNECTED)
    again = run_cli("plan", "-f", str(EXAMPLE), db=sqlite_url)
    assert again.stdout == "No changes. The billing database matches the configuration.\n"


# --- 8. JSON ---------------------------------------------------------------------------------


def _json_changes(plan: ChangePlan) -> dict[str, Any]:
    document = json.loads(render_json(plan))
    return {r["address"]: r for r in document["resource_changes"]}


def test_json_replace_is_create_then_delete(sync: Sync) -> None:
    sync.apply(catalog())
    changes = _json_changes(sync.plan(catalog(pro_price(25))))
    replace = changes["stripe_price.pro.base"]
    assert replace["type"] == "stripe_price" and replace["name"] == "pro.base"
    assert replace["action_reason"] == "replace_because_cannot_update"
    change = replace["change"]
    assert change["actions"] == ["create", "delete"]
    assert change["replace_paths"] == [["unit_amount_decimal"]]
    assert change["before"]["unit_amount_decimal"] == 2000
    assert change["after"]["unit_amount_decimal"] == 2500
    assert change["before"]["lookup_key"] == change["after"]["lookup_key"]
    assert change["after"]["recurring"] == {
        "interval": "month",
        "interval_count": 1,
        "usage_type": "licensed",
        "meter": None,
    }
    assert replace["autumn_sync"] == {
        "action": "replace",
        "destructive": False,
        "reason": "price terms cannot change in Stripe; a new price takes over, the old one"
        " is archived",
        "fields": [{"path": "unit_amount_decimal", "before": 2000, "after": 2500}],
        "old_kept_for": None,
    }


def test_json_of_a_price_kept_for_customers(sync: Sync) -> None:
    sync.apply(example())
    add_customers(sync.engine, "pro", 1)
    kept = _json_changes(sync.plan(example(pro_price(25))))["stripe_price.pro.base"]
    assert kept["change"]["actions"] == ["create", "delete"]
    assert kept["autumn_sync"]["old_kept_for"] == "the customers on version 1"
    assert kept["autumn_sync"]["reason"].endswith("stays active for the customers on version 1")


def test_json_of_stripe_archives(sync: Sync) -> None:
    sync.apply(catalog())
    changes = _json_changes(sync.plan(catalog(without_pro)))
    product = changes["stripe_product.pro"]
    assert product["change"]["actions"] == ["update"]
    assert product["action_reason"] == "archive"
    assert product["change"]["before"]["active"] is True
    assert product["change"]["after"]["active"] is False  # kept, inactive
    assert changes["plan.pro"]["change"]["actions"] == ["delete"]
    tiers = changes["stripe_price.pro.messages"]["change"]["before"]["tiers"]
    assert tiers == [
        {"up_to": 1000, "unit_amount_decimal": 0},
        {"up_to": "inf", "unit_amount_decimal": 5},
    ]


# --- regressions found in review ------------------------------------------------------------


def _without_launch20(doc: Doc) -> None:
    del doc["rewards"]["launch20"]


def test_archive_reactivate_archive_really_archives(sync: Sync) -> None:
    """Three writes to one address with the same parameters are three requests: the third
    is not a replay of the first (which Stripe would answer without deactivating anything)."""
    sync.apply(catalog())
    for doc in (catalog(_without_launch20), catalog(), catalog(_without_launch20)):
        sync.apply(doc)
    (code,) = owned(sync.emu, "promotion_code", "stripe_promotion_code.launch20.LAUNCH20")
    assert code["active"] is False


def test_migrate_moves_the_customers_of_every_older_version(sync: Sync) -> None:
    """v1's and v2's customers all move to v3: nobody pays the older prices any more, and
    they are archived."""
    sync.apply(example())
    add_customers(sync.engine, "pro", 3)
    sync.apply(example(pro_price(25)))
    add_customers(sync.engine, "pro", 2)
    plan = sync.apply(example(pro_price(30, migrate=True)))
    # the 5 app customers and the file's user_123
    assert "  ~ plan.pro: new version 3 (6 customers move to it)\n" in render_text(plan)
    assert customer_versions(sync.engine, "pro") == {3: 6}
    active = sorted(
        p["unit_amount"] for p in owned(sync.emu, "price", "stripe_price.pro.base") if p["active"]
    )
    assert active == [3000]


def test_migrate_set_later_moves_the_older_versions_customers(sync: Sync) -> None:
    """`migrate_customers: true` set on a plan whose content stays: the customers left on
    older versions move to the current one, and the older price is archived."""
    sync.apply(example())
    add_customers(sync.engine, "pro", 3)
    sync.apply(example(pro_price(25)))  # the 3 and user_123 stay on version 1
    plan = sync.apply(example(pro_price(25, migrate=True)))
    assert "  ~ plan.pro (4 customers on version 1 move to version 2)\n" in render_text(plan)
    assert customer_versions(sync.engine, "pro") == {2: 4}
    active = sorted(
        p["unit_amount"] for p in owned(sync.emu, "price", "stripe_price.pro.base") if p["active"]
    )
    assert active == [2500]


def test_a_current_price_archived_in_the_dashboard_is_reactivated(sync: Sync) -> None:
    sync.apply(example())
    add_customers(sync.engine, "pro", 1)
    sync.apply(example(pro_price(25)))
    (current,) = [
        p for p in owned(sync.emu, "price", "stripe_price.pro.base") if p["unit_amount"] == 2500
    ]
    sync.emu.state.modify("price", current["id"], active=False)
    text = render_text(sync.plan(example(pro_price(25))))
    assert "  ~ stripe_price.pro.base (update in place)\n      active: false → true\n" in text
    sync.apply(example(pro_price(25)))
    assert len(owned(sync.emu, "price", "stripe_price.pro.base")) == 2


def test_an_amount_per_units_that_does_not_divide_is_rounded_to_stripes_precision(
    sync: Sync,
) -> None:
    def per_three(doc: Doc) -> None:
        doc["plans"]["extra_credits"]["items"][0]["price"].update(amount=10, per=3)

    sync.apply(example(per_three))
    (price,) = owned(sync.emu, "price", "stripe_price.extra_credits.credits")
    assert price["unit_amount_decimal"] == "333.333333333333"
