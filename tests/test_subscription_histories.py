"""Random subscription histories of one customer (and one entity of it) against the emulator
(issue 11): the file moves them between the plans of a group at different prices and
intervals, adds and removes an add-on, changes quantities; time passes (the emulator renews
lazily); an apply is killed (SIGKILL) after its k-th journaled Stripe write and applied
again; the customer cancels in Stripe (now or at period end), and the next apply runs with
`--allow-resubscribe` or without.

What must hold, read from the emulator through the official `stripe` client (subscriptions
listed with `status=all`), never through autumn-sync's reader:

- **never two live subscriptions of one group** (nor of the add-on) for the customer or
  the entity: after every step, every apply and every killed apply;
- **convergence**: after an apply, planning again finds nothing to do but the
  re-subscriptions the apply was told to leave out;
- **no double charge**: a kill changes nothing of what the customer pays (each history runs
  side by side on a second emulator without kills, and every step ends with the same
  invoice totals and the same amount paid); and what the customer paid never exceeds a
  period in advance of everything the file held at each step, plus one period of it at each
  renewal the time that passed can hold.

The emulator's clock starts at 2026-12-01 00:00 UTC and only moves when a step says so; the
examples are derandomized: the same histories run every time.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy import Engine
from sqlalchemy import event as sql_event

from autumn_sync.config import load_text
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.emulator.store import Clock
from autumn_sync.model.stripe import ENTITY_KEY, OWNER_KEY, PLAN_KEY
from autumn_sync.pipeline import apply_plan, make_plan
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from tests.test_property import SCALE
from tests.test_stripe_customers import give_card

pytestmark = pytest.mark.slow  # see pyproject.toml: the fast loop leaves these out

START = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
DAY = 86400
JOURNALED = "INSERT INTO APPLY_JOURNAL"  # each Stripe write: `started`, then its outcome

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
  team:
    name: Team
    group: main
    price: {amount: 50, interval: month}
    items:
      - {feature: seats, price: {amount: 10, billing: prepaid}}
  business:
    name: Business
    group: main
    price: {amount: 400, interval: year}
  extra:
    name: Extra
    add_on: true
    price: {amount: 10, interval: month}
"""
GROUPS = {"free": "main", "pro": "main", "team": "main", "business": "main"}
# A subscription is live while it bills: Stripe's statuses of one that has not ended.
LIVE = frozenset({"active", "trialing", "past_due", "incomplete"})
# The shortest period of each interval, in days (a month renews on the 28th at the
# earliest, a year after 365 days).
SHORTEST = {"month": 28, "year": 365}
INTERVALS = {"pro": "month", "team": "month", "extra": "month", "business": "year"}

Doc = dict[str, Any]


def note(text: str) -> None:
    """Count `text` in Hypothesis's statistics (`--hypothesis-show-statistics`)."""
    if currently_in_test_context():
        event(text)


# --- histories -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """What the file puts the customer (or the entity) on: a plan of the group, or none;
    licences of it and prepaid seats (Team); and the add-on."""

    plan: str | None
    quantity: int
    seats: int
    extra: bool

    def refs(self) -> list[Any]:
        refs: list[Any] = []
        if self.plan is not None:
            ref: Doc = {"plan": self.plan}
            if self.plan != "free":
                ref["quantity"] = self.quantity
            if self.plan == "team":
                ref["quantities"] = {"seats": self.seats}
            refs.append(ref if len(ref) > 1 else self.plan)
        if self.extra:
            refs.append("extra")
        return refs

    def billed(self) -> dict[str, int]:
        """Each paid plan held → what a whole period of it costs, in cents (for Team, an
        upper bound: its seats counted once per licence)."""
        costs: dict[str, int] = {}
        if self.plan == "pro":
            costs["pro"] = 2000 * self.quantity
        elif self.plan == "team":
            costs["team"] = (5000 + 1000 * self.seats) * self.quantity
        elif self.plan == "business":
            costs["business"] = 40000 * self.quantity
        if self.extra:
            costs["extra"] = 1000
        return costs


@dataclass(frozen=True)
class Cancel:
    """The customer cancels its `pick`-th live subscription (by address) in Stripe: `now`
    (deleted) or at period end."""

    pick: int
    now: bool


@dataclass(frozen=True)
class Step:
    customer: Holding
    entity: Holding | None  # None: the entity is not in the file
    days: int  # the clock moves forward first
    cancel: Cancel | None  # then the customer may cancel in Stripe
    allow_resubscribe: bool  # then the file is applied, with --allow-resubscribe or not
    kill_after: int | None  # killed after this many journal rows, then applied again


holdings = st.builds(
    Holding,
    plan=st.sampled_from([None, "free", "pro", "team", "business"]),
    quantity=st.sampled_from([1, 1, 2, 3]),
    seats=st.integers(1, 4),
    extra=st.booleans(),
)
steps = st.builds(
    Step,
    customer=holdings,
    entity=st.none() | holdings,
    days=st.sampled_from([0, 0, 0, 1, 10, 16, 31, 45, 366]),
    cancel=st.none() | st.none() | st.builds(Cancel, st.integers(0, 3), st.booleans()),
    allow_resubscribe=st.booleans(),
    kill_after=st.none() | st.integers(1, 8),
)
histories = st.lists(steps, min_size=1, max_size=6)


def billing_file(step: Step | None) -> Doc:
    """The catalog with customer C (pays by card; its Stripe customer made at once) and its
    entity as `step` holds them (on nothing before the first step)."""
    doc: Doc = yaml.safe_load(CATALOG)
    customer: Doc = {"id": "user_1", "email": "c@example.com", "stripe": {"create": True}}
    customer["plans"] = step.customer.refs() if step else []
    if step is not None and step.entity is not None:
        entity = {"id": "team-a", "feature": "seats", "plans": step.entity.refs()}
        customer["entities"] = [entity]
    doc["customers"] = [customer]
    return doc


# --- one emulator and one database -----------------------------------------------------------


@dataclass
class World:
    """One database and one emulator (its clock frozen at START but for the steps' moves)."""

    engine: Engine
    emu: Emulator
    customer: str = ""  # the Stripe customer's id

    def now(self) -> datetime:
        """The tool's clock: the emulator's."""
        return datetime.fromtimestamp(self.emu.clock.now(), UTC).replace(tzinfo=None)

    @property
    def gateway(self) -> Gateway:
        return Gateway(StripeConfig(DEFAULT_API_KEY, self.emu.url))

    def plan(self, doc: Doc) -> ChangePlan:
        return make_plan(self.engine, load_text(yaml.safe_dump(doc)), self.gateway, self.now)

    def apply(self, doc: Doc, allow_resubscribe: bool) -> None:
        """Apply `doc`, then plan again: nothing is left to do but the re-subscriptions the
        apply left out (without `allow_resubscribe`)."""
        result = apply_plan(
            self.engine,
            self.plan(doc),
            gateway=self.gateway,
            allow_destroy=True,
            allow_resubscribe=allow_resubscribe,
            clock=self.now,
            workers=1,  # one write at a time: the same order on every run
        )
        refused = sorted(c.address for c in result.refused)
        if refused:
            note("re-subscription left out")
        if any(c.reason and "cancelled now" in c.reason for c in result.applied):
            note("a subscription taken over by another")
        again = self.plan(doc)
        assert sorted(c.address for c in again.changes) == refused, again.changes
        assert again.notes == (), again.notes  # nobody waits for a checkout: C has a card
        assert [c.address for c in again.resubscribes] == refused

    def killed_apply(self, doc: Doc, allow_resubscribe: bool, limit: int) -> bool:
        """Apply `doc` in a forked process killed (SIGKILL) right after its `limit`-th
        journal row, before it commits; whether it was killed (or finished first)."""
        process = multiprocessing.get_context("fork").Process(
            target=_apply_and_die,
            args=(str(self.engine.url), self.emu.url, doc, allow_resubscribe, limit, self.now()),
        )
        process.start()
        process.join(timeout=120)
        assert process.exitcode in (0, -signal.SIGKILL), process.exitcode
        return process.exitcode != 0

    def subscriptions(self) -> list[Doc]:
        client = self.emu.client()
        found = client.v1.subscriptions.list(params={"status": "all", "limit": 100})
        return [sub.to_dict() for sub in found.auto_paging_iter()]

    def invoices(self) -> list[Doc]:
        client = self.emu.client()
        params = {"customer": self.customer, "limit": 100}
        found = client.v1.invoices.list(params=params)
        return [invoice.to_dict() for invoice in found.auto_paging_iter()]

    def cancel(self, cancel: Cancel) -> None:
        """The customer cancels one of its live subscriptions in Stripe (the portal)."""
        live = sorted(
            (s for s in self.subscriptions() if is_live(s)), key=lambda s: s["metadata"][OWNER_KEY]
        )
        if not live:
            return
        sub_id = live[cancel.pick % len(live)]["id"]
        client = self.emu.client()
        note(f"cancelled in Stripe {'now' if cancel.now else 'at period end'}")
        if cancel.now:
            client.v1.subscriptions.cancel(sub_id)
        else:
            client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})


def _apply_and_die(
    db: str, url: str, doc: Doc, allow_resubscribe: bool, limit: int, now: datetime
) -> None:
    """In a forked process: apply `doc` one Stripe write at a time, and die (SIGKILL) right
    after the `limit`-th journal row is inserted, before its transaction commits: after a
    write is journaled as started (before its request), or after it is done in Stripe but
    before the journal records it (the lost answer). Exits 0 when the apply ends first."""
    engine = connect(db)
    seen = 0

    @sql_event.listens_for(engine, "after_cursor_execute")
    def die(*args: Any) -> None:
        nonlocal seen
        if str(args[2]).lstrip().upper().startswith(JOURNALED):
            seen += 1
            if seen == limit:
                os.kill(os.getpid(), signal.SIGKILL)

    gateway = Gateway(StripeConfig(DEFAULT_API_KEY, url))
    desired = load_text(yaml.safe_dump(doc))
    plan = make_plan(engine, desired, gateway, lambda: now)
    apply_plan(
        engine,
        plan,
        gateway=gateway,
        allow_destroy=True,
        allow_resubscribe=allow_resubscribe,
        clock=lambda: now,
        workers=1,
    )
    os._exit(0)


@contextmanager
def world(folder: Path, name: str, seed: int) -> Iterator[World]:
    engine = connect(f"sqlite:///{folder / f'{name}.db'}")
    with Emulator(seed=seed, clock=Clock(lambda: float(START))) as emu:
        made = World(engine, emu)
        made.apply(billing_file(None), allow_resubscribe=False)  # C's Stripe customer
        (customer,) = emu.state.all("customer")
        made.customer = str(customer["id"])
        give_card(emu, made.customer)  # C checks out: every subscription is paid by card
        yield made
    engine.dispose()


# --- what must hold --------------------------------------------------------------------------


def is_live(sub: Doc) -> bool:
    return sub["status"] in LIVE and sub["ended_at"] is None


def plans_billed(sub: Doc) -> set[str]:
    """The plans a subscription bills: those its metadata names, and those whose prices
    its items bill (`stripe_price.<plan>.<part>`)."""
    plans = {p for p in (sub["metadata"].get(PLAN_KEY) or "").split(",") if p}
    for item in sub["items"]["data"]:
        owner = (item["price"]["metadata"] or {}).get(OWNER_KEY) or ""
        if owner.startswith("stripe_price."):
            plans.add(owner.split(".")[1].split("[")[0])
    return plans


def assert_one_live_subscription_per_group(w: World, when: str) -> None:
    """For the customer and for each entity: at most one live subscription bills a plan of
    the group (or the add-on)."""
    claims: Counter[tuple[str, str, str]] = Counter()
    for sub in w.subscriptions():
        if not is_live(sub):
            continue
        entity = sub["metadata"].get(ENTITY_KEY) or ""
        scopes = {f"group:{GROUPS[p]}" if p in GROUPS else f"plan:{p}" for p in plans_billed(sub)}
        for scope in scopes:
            claims[str(sub["customer"]), entity, scope] += 1
    doubled = {claim: n for claim, n in claims.items() if n > 1}
    assert doubled == {}, (when, describe(w))


def describe(w: World) -> list[tuple[str, str, bool, list[str]]]:
    """Each subscription: its address, status, whether it cancels at period end, its plans."""
    subs = w.subscriptions()
    return [
        (
            s["metadata"].get(OWNER_KEY),
            s["status"],
            s["cancel_at_period_end"],
            sorted(plans_billed(s)),
        )
        for s in subs
    ]


def paid(w: World) -> int:
    return sum(int(invoice["amount_paid"]) for invoice in w.invoices())


def totals(w: World) -> list[int]:
    return sorted(int(invoice["total"]) for invoice in w.invoices())


def renewals(held: list[Holding], days: int) -> int:
    """What renewals within `days` may charge for what the file held: a period of each paid
    plan at each period boundary the time can hold."""
    cost = 0
    for holding in held:
        for plan, amount in holding.billed().items():
            cost += amount * math.ceil(days / SHORTEST[INTERVALS[plan]])
    return cost


def held(step: Step) -> list[Holding]:
    return [step.customer] + ([step.entity] if step.entity is not None else [])


# --- the property ----------------------------------------------------------------------------


def run_step(w: World, step: Step, kills: bool) -> None:
    """One step of the history on `w` (with its kill when `kills`), checking the invariant
    after everything that changes Stripe."""
    if step.days:
        w.emu.clock.advance(step.days * DAY)
        assert_one_live_subscription_per_group(w, f"after {step.days} days")
    if step.cancel is not None:
        w.cancel(step.cancel)
    doc = billing_file(step)
    if kills and step.kill_after is not None:
        killed = w.killed_apply(doc, step.allow_resubscribe, step.kill_after)
        note(f"apply killed: {killed}")
        assert_one_live_subscription_per_group(w, f"killed: {killed}")
    w.apply(doc, step.allow_resubscribe)
    assert_one_live_subscription_per_group(w, "applied")


@given(history=histories)
@settings(
    max_examples=max(1, round(30 * SCALE)),
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no slow `explain` phase
    suppress_health_check=[HealthCheck.too_slow],
)
def test_a_history_of_plan_changes_kills_and_cancellations_never_doubles_a_subscription(
    history: list[Step],
) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        world(Path(tmp), "killed", seed=1) as w,
        world(Path(tmp), "reference", seed=2) as reference,
    ):
        bound = 0
        before: list[Holding] = []
        for number, step in enumerate(history):
            run_step(w, step, kills=True)
            run_step(reference, step, kills=False)
            bound += renewals(before, step.days) + sum(sum(h.billed().values()) for h in held(step))
            before = held(step)
            assert totals(w) == totals(reference), number
            assert paid(w) <= bound, (number, describe(w))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Holding("pro", 1, 1, True), Holding("business", 1, 1, True)),
        (Holding("business", 2, 1, False), Holding("team", 1, 3, True)),
    ],
    ids=["month-to-year", "year-to-month"],
)
def test_a_change_of_interval_killed_after_every_journaled_write_never_doubles(
    before: Holding, after: Holding
) -> None:
    """C and its entity move between a monthly and a yearly plan of the group halfway
    through December (one subscription ends now, another starts); the apply is killed after
    each journal row in turn: right after the kill, after the apply again and in what C
    pays, it is as if nothing was killed."""
    first = Step(before, before, 0, None, False, None)
    doc = billing_file(Step(after, after, 0, None, False, None))
    limit = 0
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp), "reference", seed=0) as reference:
        run_step(reference, first, kills=False)
        reference.emu.clock.advance(15 * DAY)
        reference.apply(doc, allow_resubscribe=False)
        while True:
            limit += 1
            with world(Path(tmp), f"killed-{limit}", seed=limit) as w:
                run_step(w, first, kills=False)
                w.emu.clock.advance(15 * DAY)
                killed = w.killed_apply(doc, allow_resubscribe=False, limit=limit)
                assert_one_live_subscription_per_group(w, f"killed after {limit} journal rows")
                w.apply(doc, allow_resubscribe=False)
                assert_one_live_subscription_per_group(w, "applied")
                assert totals(w) == totals(reference), limit
                if not killed:
                    break
    assert limit > 4  # every write of the change was a point to die at
