"""Promotion codes with restrictions, from the file to Stripe and back, through the real
`stripe` client against the emulator: what Stripe holds field by field, convergence through
every database (`expires_at` goes file → database → Unix timestamp → back), a change of
restriction as a replace (Stripe fixes them when it makes a code), and what the restrictions
are for: the money a customer is refused."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from autumn_sync.config.export import dump_state
from autumn_sync.config.load import load_text
from autumn_sync.emulator import Emulator
from autumn_sync.pipeline import read_current
from autumn_sync.render import render_text
from tests.conftest import run_cli
from tests.emulator.helpers import make_paying_customer, seen, subscribe
from tests.test_stripe_sync import KEY, Doc, Sync, catalog, owned, sync_on

VIP50 = "stripe_promotion_code.launch20.VIP50"
# 2035-01-01T12:30:00Z, as Stripe keeps it
NOON_2035 = calendar.timegm(datetime(2035, 1, 1, 12, 30).utctimetuple())
PRO_MONTH = 2000  # the Pro plan's $20 a month, in cents
WITH_LAUNCH20 = 1600  # less launch20's 20 %


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(seed=50) as emulator:
        yield emulator


@pytest.fixture
def sync(sqlite_url: str, emu: Emulator, tmp_path: Path) -> Iterator[Sync]:
    yield from sync_on(sqlite_url, emu, tmp_path)


@pytest.fixture
def sync_every_db(db_url: str, emu: Emulator, tmp_path: Path) -> Iterator[Sync]:
    yield from sync_on(db_url, emu, tmp_path)


def launch_codes(*codes: str | dict[str, Any]) -> Callable[[Doc], None]:
    """The example's launch20 reward (20 % off Pro and Business) with these codes."""

    def edit(doc: Doc) -> None:
        doc["rewards"]["launch20"]["promo_codes"] = list(codes)

    return edit


def vip50(**restrictions: Any) -> dict[str, Any]:
    return {"code": "VIP50", **restrictions}


def promotion_codes(sync: Sync, address: str) -> list[tuple[bool, str, Any, Any, bool]]:
    """The codes Stripe holds at `address`, oldest first: (active, code, max_redemptions,
    expires_at, restrictions.first_time_transaction)."""
    return [
        (
            o["active"],
            o["code"],
            o["max_redemptions"],
            o["expires_at"],
            o["restrictions"]["first_time_transaction"],
        )
        for o in owned(sync.emu, "promotion_code", address)
    ]


# --- the file to Stripe, and back ----------------------------------------------------------


def test_restrictions_reach_stripe_exactly_and_converge(sync_every_db: Sync) -> None:
    sync = sync_every_db
    restricted = vip50(
        max_redemptions=50, expires_at="2035-01-01T12:30:00Z", first_time_transaction=True
    )
    sync.apply(catalog(launch_codes("LAUNCH20", restricted)))  # and plans to nothing again

    assert promotion_codes(sync, VIP50) == [(True, "VIP50", 50, NOON_2035, True)]
    plain = "stripe_promotion_code.launch20.LAUNCH20"
    assert promotion_codes(sync, plain) == [(True, "LAUNCH20", None, None, False)]
    (made,) = owned(sync.emu, "promotion_code", VIP50)
    coupon = owned(sync.emu, "coupon", "stripe_coupon.launch20")[0]["id"]
    assert made["promotion"] == {"coupon": coupon, "type": "coupon"}


def test_a_code_that_expired_is_not_made_and_the_file_stays_valid(sync: Sync) -> None:
    """A code whose `expires_at` has passed validates (a file does not go bad as time
    passes); Stripe makes no code that expires in the past, so none is made, and the plan
    after it is empty."""
    plan = sync.apply(catalog(launch_codes("LAUNCH20", vip50(expires_at="2020-01-01"))))

    assert VIP50 not in {c.address for c in plan.changes}
    assert promotion_codes(sync, VIP50) == []
    launch = promotion_codes(sync, "stripe_promotion_code.launch20.LAUNCH20")
    assert [code for _, code, *_ in launch] == ["LAUNCH20"]


def test_a_date_is_the_start_of_that_day_in_utc(sync: Sync) -> None:
    sync.apply(catalog(launch_codes(vip50(expires_at="2035-01-01"))))
    midnight = calendar.timegm(datetime(2035, 1, 1).utctimetuple())
    assert promotion_codes(sync, VIP50) == [(True, "VIP50", None, midnight, False)]


def test_a_changed_restriction_replaces_the_code(sync: Sync) -> None:
    sync.apply(catalog(launch_codes(vip50(max_redemptions=50))))
    plan = sync.apply(catalog(launch_codes(vip50(max_redemptions=100, expires_at="2035-01-01"))))

    text = render_text(plan)
    assert (
        "  ~ reward.launch20 (update in place)\n"
        "      code_restrictions[VIP50].max_redemptions: 50 → 100\n"
        "      code_restrictions[VIP50].expires_at:      (none) → 2035-01-01T00:00:00Z\n"
    ) in text
    assert (
        f"  -/+ {VIP50} (replace: promotion code restrictions cannot change in Stripe; a new"
        " code of the same text takes over (its redemptions count from zero), the old one is"
        " deactivated)\n"
        "      max_redemptions: 50 → 100\n"
        "      expires_at:      (none) → 2035-01-01T00:00:00Z\n"
    ) in text
    midnight = calendar.timegm(datetime(2035, 1, 1).utctimetuple())
    assert promotion_codes(sync, VIP50) == [
        (False, "VIP50", 50, None, False),
        (True, "VIP50", 100, midnight, False),
    ]


def test_a_restriction_set_back_makes_a_third_code(sync: Sync) -> None:
    """Back to the first restrictions: a new code again, not Stripe replaying the first
    request (the idempotency key names the code it replaces)."""
    for limit in (50, 100, 50):
        sync.apply(catalog(launch_codes(vip50(max_redemptions=limit))))
    assert promotion_codes(sync, VIP50) == [
        (False, "VIP50", 50, None, False),
        (False, "VIP50", 100, None, False),
        (True, "VIP50", 50, None, False),
    ]


def test_a_plain_code_becomes_restricted_and_plain_again(sync: Sync) -> None:
    sync.apply(catalog(launch_codes("VIP50")))
    sync.apply(catalog(launch_codes(vip50(first_time_transaction=True))))
    sync.apply(catalog(launch_codes("VIP50")))
    assert promotion_codes(sync, VIP50) == [
        (False, "VIP50", None, None, False),
        (False, "VIP50", None, None, True),
        (True, "VIP50", None, None, False),
    ]


def test_removing_a_restricted_code_deactivates_it(sync: Sync) -> None:
    sync.apply(catalog(launch_codes("LAUNCH20", vip50(max_redemptions=5))))
    sync.apply(catalog(launch_codes("LAUNCH20")))
    assert promotion_codes(sync, VIP50) == [(False, "VIP50", 5, None, False)]


def test_a_restriction_changed_outside_is_drift_and_plan_repairs_it(sync: Sync) -> None:
    doc = catalog(launch_codes(vip50(max_redemptions=50)))
    sync.apply(doc)
    (made,) = owned(sync.emu, "promotion_code", VIP50)
    sync.emu.state.modify("promotion_code", made["id"], max_redemptions=10)
    path = str(sync.folder / "billing.yaml")
    db = str(sync.engine.url)
    stripe_args = ("--stripe-api-key", KEY, "--stripe-api-base", sync.emu.url)
    drift = run_cli(*stripe_args, "drift", "-f", path, db=db)
    assert drift.exit_code == 2
    assert f"  ! {VIP50}: terms no longer match: max_redemptions: 10 → 50\n" in drift.stdout
    sync.apply(doc)
    assert promotion_codes(sync, VIP50)[-1] == (True, "VIP50", 50, None, False)
    assert run_cli(*stripe_args, "drift", "-f", path, db=db).exit_code == 0


# --- the database: show and import -----------------------------------------------------------


def test_show_and_import_keep_the_restrictions(sync: Sync) -> None:
    restricted = vip50(max_redemptions=1, expires_at="2035-01-01T12:30:00Z")
    doc = catalog(launch_codes("LAUNCH20", restricted, {"code": "NEW", "expires_at": "2036-03-01"}))
    sync.apply(doc)
    shown = run_cli("show", "reward.launch20", db=str(sync.engine.url)).stdout
    assert (
        "  promo codes: LAUNCH20, NEW (until 2036-03-01 UTC),"
        " VIP50 (1 redemption, until 2035-01-01 12:30 UTC)\n"
    ) in shown

    exported = dump_state(read_current(sync.engine))
    assert (
        "    promo_codes:\n"
        "    - LAUNCH20\n"
        "    - code: NEW\n"
        "      expires_at: 2036-03-01\n"
        "    - code: VIP50\n"
        "      max_redemptions: 1\n"
        "      expires_at: 2035-01-01T12:30:00Z\n"
    ) in exported
    assert load_text(exported).rewards == read_current(sync.engine).rewards


# --- what the restrictions are for: money --------------------------------------------------


def _pro_price(sync: Sync) -> str:
    (price,) = owned(sync.emu, "price", "stripe_price.pro.base")
    return str(price["id"])


def _code_id(sync: Sync, code: str) -> str:
    (promo,) = owned(sync.emu, "promotion_code", f"stripe_promotion_code.launch20.{code}")
    return str(promo["id"])


def _redeem(client: stripe.StripeClient, sync: Sync, email: str, code: str | None) -> Any:
    """A new subscription to Pro for the customer `email` (made if new) with `code`; the
    first invoice's total."""
    found = client.v1.customers.list(params={"email": email}).data
    customer = found[0] if found else make_paying_customer(client, email)
    discounts = [{"promotion_code": _code_id(sync, code)}] if code else []
    sub = subscribe(client, customer.id, {"price": _pro_price(sync)}, discounts=discounts)
    return sub.latest_invoice.total


def _refusal(client: stripe.StripeClient, sync: Sync, email: str, code: str) -> str:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        _redeem(client, sync, email, code)
    error = seen(caught.value)
    assert error.param == "discounts[0][promotion_code]"
    return error.message


def test_stripe_refuses_a_first_time_code_to_a_customer_who_already_paid(sync: Sync) -> None:
    sync.apply(catalog(launch_codes(vip50(first_time_transaction=True))))
    client = sync.emu.client()
    assert _redeem(client, sync, "returning@example.com", None) == PRO_MONTH  # paid once
    message = _refusal(client, sync, "returning@example.com", "VIP50")
    assert message == "The promotion code 'VIP50' is only for customers who have never paid."
    assert _redeem(client, sync, "new@example.com", "VIP50") == WITH_LAUNCH20


def test_stripe_refuses_a_code_redeemed_its_maximum_number_of_times(sync: Sync) -> None:
    sync.apply(catalog(launch_codes(vip50(max_redemptions=2))))
    client = sync.emu.client()
    assert _redeem(client, sync, "a@example.com", "VIP50") == WITH_LAUNCH20
    assert _redeem(client, sync, "b@example.com", "VIP50") == WITH_LAUNCH20
    message = _refusal(client, sync, "c@example.com", "VIP50")
    assert message == "The promotion code 'VIP50' has been redeemed its maximum number of times."
    assert _redeem(client, sync, "c@example.com", None) == PRO_MONTH  # full price, then
    (promo,) = owned(sync.emu, "promotion_code", VIP50)
    assert promo["times_redeemed"] == 2
