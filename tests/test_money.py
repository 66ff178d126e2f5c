"""What customers are charged, in cents, for what the file says: every test works the amount
out by hand and compares it with the emulator's invoices (what Stripe charged) and its
invoice preview (what Stripe will charge next).

The emulator's clock starts at 2026-12-01 00:00 UTC and moves only when a test moves it, so
a period is exactly December (31 days) and its middle is exactly half of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe
import yaml
from sqlalchemy import select

from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.emulator.store import Clock
from autumn_sync.model.stripe import StripeSubscription
from autumn_sync.pipeline import apply_plan
from autumn_sync.render import render_markdown, render_text
from autumn_sync.runtime.api import Billing
from tests.conftest import run_cli
from tests.test_stripe_customers import CATALOG, give_card, the
from tests.test_stripe_sync import Doc, Sync

START = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
DAY = 86400
HALF_DECEMBER = 31 * DAY // 2  # 15.5 days: the period's exact middle

# The catalog of `test_stripe_customers` (Free, Pro $20 a month with metered messages, Team
# $50 a month with a $10 seat, launch20: 20 % off Pro and Team for three months) and two
# plans of its own.
MORE_PLANS = """\
business:
  name: Business
  group: main
  price: {amount: 200, interval: year}
scale:
  name: Scale
  price: {amount: 100, interval: month}
  items:
    - {feature: seats, included: 10,
       price: {billing: prepaid, tiers: [{up_to: 20, amount: 10}, {up_to: inf, amount: 8}]}}
"""


@pytest.fixture
def sync(sqlite_url: str, tmp_path: Path) -> Iterator[Sync]:
    engine = connect(sqlite_url)
    with Emulator(seed=5, clock=Clock(lambda: float(START))) as emu:
        yield Sync(engine, emu, tmp_path)
    engine.dispose()


def billing(*plans: Any, upgrades: str | None = None, **customer: Any) -> Doc:
    """The catalog above with one customer, Jane, on `plans`."""
    doc: Doc = yaml.safe_load(CATALOG)
    doc["plans"].update(yaml.safe_load(MORE_PLANS))
    doc["customers"] = [{"id": "user_1", "email": "jane@example.com", "plans": list(plans)}]
    doc["customers"][0].update(customer)
    if upgrades is not None:
        doc["settings"] = {"billing": {"upgrades": upgrades}}
    return doc


def subscribed(sync: Sync, doc: Doc) -> str:
    """Apply `doc` with Jane paying by card (the first apply makes her Stripe customer, she
    checks out, the second makes her subscription); her Stripe customer id."""
    sync.apply(doc)
    customer = the(sync.emu, "customer", "stripe_customer.user_1")["id"]
    give_card(sync.emu, customer)
    sync.apply(doc)
    return str(customer)


def client(sync: Sync) -> stripe.StripeClient:
    made: stripe.StripeClient = sync.emu.client()
    return made


def charged(sync: Sync, customer: str) -> list[int]:
    """The totals of the customer's invoices, oldest first (what Stripe charged)."""
    found = client(sync).v1.invoices.list(params={"customer": customer, "limit": 100})
    return [invoice.total for invoice in reversed(found.data)]


def due(sync: Sync, customer: str) -> list[int]:
    """What the customer's invoices asked to be paid, after any credit balance."""
    found = client(sync).v1.invoices.list(params={"customer": customer, "limit": 100})
    return [invoice.amount_due for invoice in reversed(found.data)]


def next_invoice(sync: Sync, customer: str) -> int:
    """The total of the next invoice of the customer's one subscription (Stripe's preview
    of its renewal; of its schedule's, with the items of the phase in force then, when a
    schedule holds it)."""
    (sub,) = live_subscriptions(sync, customer)
    params = {"customer": customer, "subscription": sub["id"]}
    if sub["schedule"] is not None:
        params = {"customer": customer, "schedule": sub["schedule"]}
    preview = client(sync).v1.invoices.create_preview(params=params)  # type: ignore[arg-type]
    return int(preview.total)


def live_subscriptions(sync: Sync, customer: str) -> list[dict[str, Any]]:
    subs = sync.emu.state.tables["subscription"].rows.values()
    return [s for s in subs if s["customer"] == customer and s["status"] != "canceled"]


@pytest.mark.parametrize(
    ("upgrades", "now", "then"),
    [
        # Half of Pro unused (-1000), half of Team (2500) and of its seat (500) now; then a
        # month of Team and its seat: 5000 + 1000.
        ("prorate_now", [2000, -1000 + 2500 + 500], 5000 + 1000),
        # The same difference waits for the next invoice, with the month of Team.
        ("prorate_next_invoice", [2000], -1000 + 2500 + 500 + 5000 + 1000),
        # No proration: Team's price from the next period.
        ("no_proration", [2000], 5000 + 1000),
    ],
)
def test_an_upgrade_mid_period_bills_the_difference_once(
    sync: Sync, upgrades: str, now: list[int], then: int
) -> None:
    customer = subscribed(sync, billing("pro", upgrades=upgrades))
    assert charged(sync, customer) == [2000]  # a month of Pro, in advance
    sync.emu.clock.advance(HALF_DECEMBER)

    sync.apply(billing("team", upgrades=upgrades))

    assert charged(sync, customer) == now
    assert next_invoice(sync, customer) == then
    assert len(live_subscriptions(sync, customer)) == 1  # never two of one group


def test_an_upgrade_to_a_yearly_plan_credits_the_unused_month(sync: Sync) -> None:
    """Pro (monthly) → Business (yearly) halfway through December: the monthly subscription
    ends now with half a month credited (-1000), the yearly one bills a year (20000), and
    the credit pays part of it: Jane pays half a month of Pro and a year of Business."""
    customer = subscribed(sync, billing("pro"))
    sync.emu.clock.advance(HALF_DECEMBER)

    sync.apply(billing("business"))

    assert charged(sync, customer) == [2000, -1000, 20000]
    assert sum(due(sync, customer)) == 1000 + 20000
    (sub,) = live_subscriptions(sync, customer)
    assert sub["metadata"]["autumn_sync_plan"] == "business"


def test_a_coupon_for_a_plan_discounts_its_seat_product_too(sync: Sync) -> None:
    """20 % off Team: its base price (5000) and its seat (1000), not only the base:
    (5000 + 1000) × 0.8 = 4800."""
    customer = subscribed(sync, billing("team", rewards=["launch20"]))

    assert charged(sync, customer) == [4800]
    assert next_invoice(sync, customer) == 4800  # the second of the coupon's three months


def raise_pro(doc: Doc, amount: int, migrate: bool = False) -> Doc:
    doc["plans"]["pro"]["price"]["amount"] = amount
    doc["plans"]["pro"]["migrate_customers"] = migrate
    return doc


@pytest.mark.parametrize(("migrate", "then"), [(False, 2000), (True, 2500)])
def test_a_price_raise_bills_grandfathered_customers_the_old_price_and_moved_ones_the_new(
    sync: Sync, migrate: bool, then: int
) -> None:
    """Pro goes from $20 to $25 halfway through December. Jane, grandfathered, keeps paying
    2000 a month; moved (`migrate_customers`), she pays 2500 from the next period, and
    nothing more for the month she already paid."""
    customer = subscribed(sync, billing("pro"))
    sync.emu.clock.advance(HALF_DECEMBER)

    sync.apply(raise_pro(billing("pro"), 25, migrate))

    assert charged(sync, customer) == [2000]
    assert next_invoice(sync, customer) == then


@pytest.mark.parametrize(
    ("terms", "first", "limit"),
    [
        # 50 seats, 10 of them included: 10 × $0 + 10 × $10 + 30 × $8 = 34000, and the
        # base price, 10000.
        ({"quantities": {"seats": 50}}, 10000 + 10 * 0 + 10 * 1000 + 30 * 800, 50),
        # Nothing bought: the 10 included seats cost nothing.
        ({}, 10000, 10),
        # Two licences of the plan: the base price twice; the seats stay the included 10.
        ({"quantity": 2}, 2 * 10000, 10),
    ],
)
def test_prepaid_seats_bill_the_units_beyond_the_included_ones_and_check_grants_them_all(
    sync: Sync, terms: dict[str, Any], first: int, limit: int
) -> None:
    customer = subscribed(sync, billing({"plan": "scale", **terms}))

    assert charged(sync, customer) == [first]
    assert next_invoice(sync, customer) == first
    app = Billing(engine=sync.engine, clock=sync.clock)
    assert app.check("user_1", "seats", limit).allowed
    assert not app.check("user_1", "seats", limit + 1).allowed


def with_trial(card_required: bool, on_end: str) -> Doc:
    doc = billing("pro")
    doc["plans"]["pro"]["free_trial"] = {
        "days": 14,
        "card_required": card_required,
        "on_end": on_end,
    }
    return doc


@pytest.mark.parametrize(
    ("card_required", "on_end", "during", "after", "status"),
    [
        # No card asked: the subscription starts now, the trial costs 0; with no card at its
        # end, `bill` sends a month of Pro (2000) to pay, `cancel` ends it for nothing.
        (False, "bill", [0], [0, 2000], "active"),
        (False, "cancel", [0], [0], "canceled"),
        # A card asked: nothing is made until the customer checks out.
        (True, "cancel", [], [], None),
    ],
)
def test_a_trial_without_a_card_starts_at_once_and_ends_as_on_end_says(
    sync: Sync,
    card_required: bool,
    on_end: str,
    during: list[int],
    after: list[int],
    status: str | None,
) -> None:
    sync.apply(with_trial(card_required, on_end))
    customer = str(the(sync.emu, "customer", "stripe_customer.user_1")["id"])
    subs = [s for s in sync.emu.state.tables["subscription"].rows.values()]
    assert charged(sync, customer) == during
    if status is None:
        assert subs == []
        return
    (sub,) = subs
    assert sub["status"] == "trialing"
    sync.emu.clock.advance(int(sub["trial_end"]) - START + DAY)

    assert charged(sync, customer) == after
    assert client(sync).v1.subscriptions.retrieve(sub["id"]).status == status


# --- downgrades at the end of the period, future starts ---------------------------------------

JANUARY = 31 * DAY  # from the start: 2027-01-01 00:00, the end of December's period


def test_a_downgrade_keeps_the_plan_paid_for_until_the_period_ends(sync: Sync) -> None:
    """Team (5000, and its seat 1000) → Pro halfway through December: nothing is charged or
    credited now, Jane keeps Team (its seat) until 2027-01-01, and January bills Pro: 2000
    (its messages are pay-per-use: nothing used, nothing billed)."""
    customer = subscribed(sync, billing("team"))
    sync.emu.clock.advance(HALF_DECEMBER)

    plan = sync.apply(billing("pro"))

    assert "~ customer.user_1 (downgrade team → pro on 2027-01-01)" in render_text(plan)
    assert charged(sync, customer) == [6000]
    assert next_invoice(sync, customer) == 2000
    app = Billing(engine=sync.engine, clock=sync.clock)
    assert app.check("user_1", "seats", 1).allowed  # Team's, until January
    assert not app.check("user_1", "messages", 1).allowed  # Pro's, from January
    (info,) = [p for p in app.customer("user_1").plans if p.plan_id == "pro"]
    assert (info.status, info.begins_at) == ("scheduled", date(2027, 1, 1))

    sync.emu.clock.advance(JANUARY - HALF_DECEMBER + DAY)

    assert charged(sync, customer) == [6000, 2000]
    assert not app.check("user_1", "seats", 1).allowed
    assert app.check("user_1", "messages", 1000).allowed
    plan = sync.apply(billing("pro"))  # the row of Team, ended, goes
    assert "~ customer.user_1 (team ended on 2027-01-01)" in render_text(plan)
    (sub,) = live_subscriptions(sync, customer)
    assert sub["metadata"]["autumn_sync_plan"] == "pro"
    assert next_invoice(sync, customer) == 2000


def test_naming_the_higher_plan_again_calls_the_downgrade_off(sync: Sync) -> None:
    """Team → Pro (pending), then Team again before January: the schedule lets go, nothing
    changes hands, and January bills Team and its seat as before: 6000."""
    customer = subscribed(sync, billing("team"))
    sync.emu.clock.advance(HALF_DECEMBER)
    sync.apply(billing("pro"))

    plan = sync.apply(billing("team"))

    assert "calls off the downgrade to pro on 2027-01-01" in render_text(plan)
    assert charged(sync, customer) == [6000]
    assert next_invoice(sync, customer) == 6000
    (sub,) = live_subscriptions(sync, customer)
    assert sub["schedule"] is None


def test_a_downgrade_to_the_free_plan_ends_the_subscription_with_the_period(sync: Sync) -> None:
    """Pro → Free: December stays paid (2000), nothing more is billed, and Jane is on Free
    from January."""
    customer = subscribed(sync, billing("pro"))
    sync.emu.clock.advance(HALF_DECEMBER)

    sync.apply(billing("free"))
    sync.emu.clock.advance(JANUARY - HALF_DECEMBER + DAY)

    assert charged(sync, customer) == [2000]
    assert live_subscriptions(sync, customer) == []
    app = Billing(engine=sync.engine, clock=sync.clock)
    assert app.check("user_1", "messages", 100).allowed
    assert not app.check("user_1", "messages", 101).allowed  # Free's 100, not Pro's 1000


def test_a_future_start_bills_and_grants_from_that_day(sync: Sync) -> None:
    """Pro from 2027-01-01: December costs nothing and grants nothing; January bills 2000."""
    doc = billing({"plan": "pro", "start": "2027-01-01"})
    customer = subscribed(sync, doc)

    assert charged(sync, customer) == []
    assert live_subscriptions(sync, customer) == []
    app = Billing(engine=sync.engine, clock=sync.clock)
    assert not app.check("user_1", "messages", 1).allowed
    text = render_text(sync.plan(billing({"plan": "pro", "start": "2027-02-01"})))
    assert "stripe_subscription.user_1.month" in text  # the schedule is made again

    sync.emu.clock.advance(JANUARY + DAY)

    assert charged(sync, customer) == [2000]
    assert app.check("user_1", "messages", 1000).allowed
    sync.apply(doc)
    (sub,) = live_subscriptions(sync, customer)
    assert next_invoice(sync, customer) == 2000
    assert sub["metadata"]["autumn_sync_plan"] == "pro"


def test_a_plan_starting_ahead_takes_over_from_the_plan_held_on_that_day(sync: Sync) -> None:
    """Pro, then Team from 2027-01-01: December stays Pro (2000, its messages), January bills
    Team and its seat (5000 + 1000) and grants its seat."""
    customer = subscribed(sync, billing("pro"))
    sync.emu.clock.advance(HALF_DECEMBER)

    sync.apply(billing({"plan": "team", "start": "2027-01-01"}))

    assert charged(sync, customer) == [2000]
    assert next_invoice(sync, customer) == 6000
    app = Billing(engine=sync.engine, clock=sync.clock)
    assert app.check("user_1", "messages", 1000).allowed
    assert not app.check("user_1", "seats", 1).allowed
    sync.emu.clock.advance(JANUARY - HALF_DECEMBER + DAY)
    assert charged(sync, customer) == [2000, 6000]
    assert app.check("user_1", "seats", 1).allowed
    assert not app.check("user_1", "messages", 1).allowed


def trial_over(sync: Sync, doc: Doc, customer: str) -> None:
    """Jane leaves Pro for Free: her trialing subscription ends with the trial, which
    passes."""
    (sub,) = live_subscriptions(sync, customer)
    free = yaml.safe_load(yaml.safe_dump(doc))
    free["customers"][0]["plans"] = ["free"]
    sync.apply(free)
    sync.emu.clock.advance(int(sub["trial_end"]) - START + DAY)
    assert client(sync).v1.subscriptions.retrieve(sub["id"]).status == "canceled"


def pro_row(sync: Sync) -> tuple[Any, ...]:
    cp = t.customer_plans
    query = select(cp.c.status, cp.c.trial_ends_at).where(cp.c.plan_id == "pro")
    with sync.engine.connect() as conn:
        return tuple(conn.execute(query).one())


def test_a_plan_attached_again_gets_no_second_trial_and_bills_at_once(sync: Sync) -> None:
    """One trial per customer per plan: Jane trials Pro (14 days, nothing charged), leaves
    it, and when she comes back after the trial the new subscription has none: a month of
    Pro (2000) is charged at once, and so is the next month."""
    doc = with_trial(card_required=True, on_end="cancel")
    customer = subscribed(sync, doc)
    assert charged(sync, customer) == [0]  # the trial
    trial_over(sync, doc, customer)

    plan = sync.plan(doc)
    (made,) = [c.after for c in plan.changes if isinstance(c.after, StripeSubscription)]
    assert made.trial_end is None  # the plan shows the subscription Stripe gets
    sync.apply(doc)

    assert charged(sync, customer) == [0, 2000]
    assert next_invoice(sync, customer) == 2000
    (sub,) = live_subscriptions(sync, customer)
    assert (sub["status"], sub["trial_end"]) == ("active", None)
    assert pro_row(sync) == ("active", None)


def test_a_no_card_trial_is_not_given_twice_the_plan_waits_for_a_card(sync: Sync) -> None:
    """A trial without a card starts a subscription with no payment method; attached again,
    the plan has no trial, so Jane (still without a card) is asked for one: no subscription
    is made, nothing is charged."""
    doc = with_trial(card_required=False, on_end="cancel")
    sync.apply(doc)
    customer = str(the(sync.emu, "customer", "stripe_customer.user_1")["id"])
    trial_over(sync, doc, customer)

    sync.apply(doc)

    assert live_subscriptions(sync, customer) == []
    assert charged(sync, customer) == [0]
    assert pro_row(sync) == ("active", None)


# --- a subscription the customer cancelled in Stripe ------------------------------------------


def plan_row(sync: Sync) -> tuple[str, date | None, str | None]:
    """(status, ends_at, stripe subscription id) of Jane's one plan in the database."""
    cp = t.customer_plans
    query = select(cp.c.status, cp.c.ends_at, cp.c.stripe_subscription_id)
    with sync.engine.connect() as conn:
        (row,) = conn.execute(query).all()
    return row.status, row.ends_at, row.stripe_subscription_id


def app(sync: Sync) -> Billing:
    """The runtime API on the emulator's time."""
    return Billing(engine=sync.engine, clock=sync.clock)


def cancelled_in_stripe(sync: Sync, customer: str, now: bool = False) -> str:
    """Jane cancels her subscription in Stripe (the portal: at period end; the dashboard:
    now), with no comment of autumn-sync's; its id."""
    (sub,) = live_subscriptions(sync, customer)
    if now:
        client(sync).v1.subscriptions.cancel(sub["id"])
    else:
        params = {"cancel_at_period_end": True}
        client(sync).v1.subscriptions.update(sub["id"], params=params)  # type: ignore[arg-type]
    return str(sub["id"])


def test_a_cancellation_at_period_end_in_stripe_ends_the_plan_then_and_charges_nothing_more(
    sync: Sync,
) -> None:
    """Jane cancels Pro at period end in the portal on December 1st. The plan marks her plan
    cancelled from January 1st and lists the resubscription in its CAUTION block; apply
    without consent writes the mark and leaves the resubscription out. `check` grants Pro
    until then and not after; Stripe charged the one month she paid, 2000, and nothing more.
    The next plans hold only the resubscription, while the file names Pro."""
    customer = subscribed(sync, billing("pro"))
    sub_id = cancelled_in_stripe(sync, customer)
    plan = sync.plan(billing("pro"))
    (resubscribe,) = plan.resubscribes
    marked = next(c for c in plan.changes if c.address == "customer.user_1")
    assert marked.reason == "pro ends 2027-01-01 (cancelled in Stripe)"
    review = render_markdown(plan)
    assert "> This plan charges again customers who cancelled in Stripe:" in review
    assert "| `customer.user_1` | pro ends 2027-01-01 (cancelled in Stripe) |" in review

    result = apply_plan(sync.engine, plan, gateway=sync.gateway, clock=sync.clock)

    assert result.refused == (resubscribe,)
    assert plan_row(sync) == ("canceled", date(2027, 1, 1), sub_id)
    assert [c.address for c in sync.plan(billing("pro")).changes] == [resubscribe.address]
    sync.emu.clock.advance(19 * DAY)  # December 20th
    assert app(sync).check("user_1", "messages", 1000).allowed
    sync.emu.clock.advance(13 * DAY)  # January 2nd: the subscription ended on the 1st
    assert not app(sync).check("user_1", "messages", 1).allowed
    assert charged(sync, customer) == [2000]
    assert live_subscriptions(sync, customer) == []
    again = sync.plan(billing("pro"))  # a subscription to make again: still only with consent
    assert [(c.address, c.action) for c in again.changes] == [(resubscribe.address, "create")]
    assert again.resubscribes == again.changes
    assert plan_row(sync) == ("canceled", date(2027, 1, 1), sub_id)


def test_with_consent_the_customer_cancelled_in_stripe_is_subscribed_again(sync: Sync) -> None:
    """The same cancellation, applied with `--allow-resubscribe`: Stripe resumes the
    subscription (January bills 2000 again) and the database holds Pro active, no end."""
    customer = subscribed(sync, billing("pro"))
    sub_id = cancelled_in_stripe(sync, customer)
    plan = sync.plan(billing("pro"))

    result = apply_plan(
        sync.engine, plan, gateway=sync.gateway, clock=sync.clock, allow_resubscribe=True
    )

    assert result.refused == ()
    assert plan_row(sync) == ("active", None, sub_id)
    (sub,) = live_subscriptions(sync, customer)
    assert not sub["cancel_at_period_end"]
    assert next_invoice(sync, customer) == 2000
    assert sync.plan(billing("pro")).empty
    sync.emu.clock.advance(32 * DAY)  # January 2nd
    assert app(sync).check("user_1", "messages", 1000).allowed
    assert charged(sync, customer) == [2000, 2000]


def test_a_subscription_cancelled_now_in_stripe_ends_the_plan_today(sync: Sync) -> None:
    """Jane's subscription is cancelled at once in the dashboard: her plan ends today
    (`check` denies at once) and nothing more is charged; with consent she is subscribed
    again (a new subscription, a new month: 2000) and the plan is active again."""
    customer = subscribed(sync, billing("pro"))
    sub_id = cancelled_in_stripe(sync, customer, now=True)
    plan = sync.plan(billing("pro"))
    marked = next(c for c in plan.changes if c.address == "customer.user_1")
    assert marked.reason == "pro ends 2026-12-01 (cancelled in Stripe)"

    result = apply_plan(sync.engine, plan, gateway=sync.gateway, clock=sync.clock)

    (refused,) = result.refused
    assert (refused.address, refused.action) == ("stripe_subscription.user_1.month", "create")
    assert plan_row(sync) == ("canceled", date(2026, 12, 1), sub_id)
    assert not app(sync).check("user_1", "messages", 1).allowed
    assert [c.address for c in sync.plan(billing("pro")).changes] == [refused.address]
    assert charged(sync, customer) == [2000]

    plan = sync.plan(billing("pro"))
    apply_plan(sync.engine, plan, gateway=sync.gateway, clock=sync.clock, allow_resubscribe=True)

    (sub,) = live_subscriptions(sync, customer)
    assert plan_row(sync) == ("active", None, sub["id"])
    assert app(sync).check("user_1", "messages", 1000).allowed
    assert charged(sync, customer) == [2000, 2000]
    assert sync.plan(billing("pro")).empty


def test_apply_without_consent_says_what_stripe_cancelled_and_exits_1(sync: Sync) -> None:
    customer = subscribed(sync, billing("pro"))
    sub_id = cancelled_in_stripe(sync, customer)
    options = ("--stripe-api-key", DEFAULT_API_KEY, "--stripe-api-base", sync.emu.url)
    path = str(sync.folder / "billing.yaml")

    result = run_cli(*options, "apply", "-f", path, "--auto-approve", db=str(sync.engine.url))

    assert result.exit_code == 1
    assert "  ~ customer.user_1 (pro ends 2027-01-01 (cancelled in Stripe))\n" in result.stdout
    assert "Not applied: stripe_subscription.user_1.month: " in result.stderr
    assert "--allow-resubscribe" in result.stderr
    assert plan_row(sync) == ("canceled", date(2027, 1, 1), sub_id)


def test_dropping_a_plan_cancelled_in_stripe_keeps_it_until_it_ends(sync: Sync) -> None:
    """Jane cancels Pro at period end in the portal, and the file drops her plan (she is on
    Free): no resubscription, no change in Stripe; she keeps the December she paid for
    (Pro's 1000 messages, not Free's on top) and is on Free's 100 from January; Stripe
    charged 2000 in all."""
    customer = subscribed(sync, billing("pro"))
    cancelled_in_stripe(sync, customer)

    plan = sync.apply(billing("free"))

    assert plan.resubscribes == ()
    assert [c.address for c in plan.changes] == ["customer.user_1"]
    sync.emu.clock.advance(19 * DAY)  # December 20th
    december = app(sync).check("user_1", "messages", 1000)
    assert december.allowed and december.balance.included == 1000
    sync.emu.clock.advance(13 * DAY)  # January 2nd
    assert app(sync).check("user_1", "messages", 100).allowed
    assert not app(sync).check("user_1", "messages", 101).allowed
    assert charged(sync, customer) == [2000]
    assert live_subscriptions(sync, customer) == []


def test_a_future_start_with_a_trial_bills_when_the_trial_after_it_ends(sync: Sync) -> None:
    """Pro from 2027-01-01 with a 14-day trial: January 1st begins the trial (an invoice of
    0), January 15th bills the month of Pro, 2000."""
    doc = billing({"plan": "pro", "start": "2027-01-01"})
    doc["plans"]["pro"]["free_trial"] = {"days": 14}
    customer = subscribed(sync, doc)

    sync.emu.clock.advance(JANUARY + DAY)
    assert charged(sync, customer) == [0]  # (a request: the emulator catches up on time)
    (sub,) = live_subscriptions(sync, customer)
    assert sub["status"] == "trialing"
    sync.emu.clock.advance(14 * DAY)

    assert charged(sync, customer) == [0, 2000]
    sync.apply(doc)


def test_a_downgrade_keeps_the_customers_discount_running(sync: Sync) -> None:
    """Team with launch20 (20 % off Pro and Team for three months): December 6000 × 0.8 =
    4800; down to Pro halfway through: January bills Pro at the coupon's second month,
    2000 × 0.8 = 1600."""
    customer = subscribed(sync, billing("team", rewards=["launch20"]))
    sync.emu.clock.advance(HALF_DECEMBER)

    sync.apply(billing("pro", rewards=["launch20"]))

    assert charged(sync, customer) == [4800]
    assert next_invoice(sync, customer) == 1600
    sync.emu.clock.advance(JANUARY - HALF_DECEMBER + DAY)
    assert charged(sync, customer) == [4800, 1600]


def test_an_invoiced_customer_starting_ahead_gets_an_invoice_then(sync: Sync) -> None:
    """Invoiced (30 days to pay), Pro from 2027-01-01: nothing in December, an invoice of
    2000 due in 30 days in January."""
    doc = billing({"plan": "pro", "start": "2027-01-01"})
    doc["customers"][0]["billing"] = {"collection": "send_invoice", "days_until_due": 30}
    sync.apply(doc)
    customer = str(the(sync.emu, "customer", "stripe_customer.user_1")["id"])

    assert charged(sync, customer) == []
    sync.emu.clock.advance(JANUARY + DAY)
    assert charged(sync, customer) == [2000]
    (invoice,) = client(sync).v1.invoices.list(params={"customer": customer}).data
    assert invoice.collection_method == "send_invoice"
