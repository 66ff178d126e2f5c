"""Plan versions in Stripe: every version that has customers has its prices in Stripe,
whenever Stripe was connected, and the customers on it are billed those prices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.pipeline import apply_plan, load_desired, make_plan
from autumn_sync.render import render_text
from tests.helpers import add_customers, customer_versions
from tests.test_stripe_sync import Doc, Sync, example, owned

AP = {
    "email": "ap@acme.example",
    "name": "Acme AP",
    "billing": {"collection": "send_invoice", "days_until_due": 30},
    "plans": ["business"],
}


@pytest.fixture
def sync(sqlite_url: str, tmp_path: Path) -> Iterator[Sync]:
    engine = connect(sqlite_url)
    with Emulator(seed=11) as emu:
        yield Sync(engine, emu, tmp_path)
    engine.dispose()


def business(amount: int) -> Doc:
    """The example's catalog, Business at `amount` a year, and one invoiced customer on it."""

    def edit(doc: Doc) -> None:
        doc["customers"] = [AP]
        doc["plans"]["business"]["price"]["amount"] = amount

    return example(edit)


def apply_database_only(sync: Sync, doc: Doc) -> None:
    path = sync.folder / "billing.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    apply_plan(sync.engine, make_plan(sync.engine, load_desired(path), None))


def unit_amounts(sync: Sync, address: str) -> dict[str, int]:
    """The active prices of `address` in Stripe: version → amount."""
    return {
        p["metadata"]["autumn_sync_version"]: p["unit_amount"]
        for p in owned(sync.emu, "price", address)
        if p["active"]
    }


def billed_amount(sync: Sync) -> int:
    """What AP's Business subscription bills a year (its base price), in cents."""
    (sub,) = [s for s in sync.emu.state.tables["subscription"].rows.values()]
    items = [sync.emu.state.find("subscription_item", i) for i in sub["items"]]
    prices = [sync.emu.state.find("price", str(item["price"])) for item in items if item]
    return sum(
        int(p["unit_amount"]) for p in prices if p and p["recurring"]["usage_type"] != "metered"
    )


def test_stripe_connected_after_a_version_was_made_gets_the_older_versions_prices(
    sync: Sync,
) -> None:
    """The database alone made Business v1 ($2,000 a year, AP on it) and v2 ($2,400, AP
    grandfathered on v1); connecting Stripe then makes v1's prices for AP, who is billed
    $2,000 (200000 cents), not v2's $2,400; the next plan is empty."""
    apply_database_only(sync, business(2000))
    apply_database_only(sync, business(2400))
    assert customer_versions(sync.engine, "business") == {1: 1}

    plan = sync.apply(business(2400))  # converges: the next plan is empty

    text = render_text(plan)
    assert "  + stripe_price.business.base.v1 (create)\n" in text
    assert unit_amounts(sync, "stripe_price.business.base") == {"1": 200000, "2": 240000}
    assert billed_amount(sync) == 200000  # 2,000 dollars a year, as AP's version says
    again = sync.plan(business(2400))
    assert again.empty


def test_an_app_customer_on_an_older_version_gets_its_prices_too(sync: Sync) -> None:
    apply_database_only(sync, business(2000))
    add_customers(sync.engine, "business", 2)
    apply_database_only(sync, business(2400))

    sync.apply(business(2400))

    assert unit_amounts(sync, "stripe_price.business.base") == {"1": 200000, "2": 240000}
