"""Reliability of the Stripe apply (DESIGN §8): the gateway's retries; faults, rate limits
and lost responses; applies killed (SIGKILL) at random points, while migrating, and right
after each write of changes of terms; a refused change stopping the apply with the database
changes kept, and a re-apply once its cause is gone.

Duplicates are counted straight from what the emulator holds, never through the reader
(which keeps one object per address and archives older prices, so it would hide one): for
a catalog and its customers applied from nothing, every address autumn-sync owns — customers
and subscriptions included — has exactly one object in Stripe, and it is active (a
subscription waiting for its customer's checkout has none).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe
import yaml
from sqlalchemy import select

from autumn_sync.config import load_text
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.emulator.faults import TokenBucket
from autumn_sync.emulator.store import Clock
from autumn_sync.model.stripe import OWNER_KEY, VERSION_KEY
from autumn_sync.pipeline import apply_plan, make_plan, read_current, utc_now
from autumn_sync.plan.changes import Replace
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.stripe.executor import StripeApplyFailed
from autumn_sync.stripe.gateway import Gateway, StripeConfig, StripeFailure, endpoint
from autumn_sync.stripe.journal import REJECTED
from autumn_sync.stripe.read.catalog import ARCHIVED_KEY, METER_PREFIX
from benchmarks.catalog import make_catalog
from tests.conftest import EXAMPLES, run_cli
from tests.helpers import add_customers, die_after

pytestmark = pytest.mark.slow  # see pyproject.toml: the fast loop leaves these out

KINDS = (
    "billing.meter",
    "product",
    "price",
    "coupon",
    "promotion_code",
    "customer",
    "subscription",
)
LIST_PATHS = {
    "billing.meter": "/v1/billing/meters",
    "product": "/v1/products",
    "price": "/v1/prices",
    "coupon": "/v1/coupons",
    "promotion_code": "/v1/promotion_codes",
    "customer": "/v1/customers",
    "subscription": "/v1/subscriptions",
}
MAX_RUNS = 5


def _address(kind: str, obj: Mapping[str, Any]) -> str | None:
    """The autumn-sync address an object is owned under, or None for an unmanaged one."""
    if kind == "billing.meter":
        event = str(obj.get("event_name") or "")
        return (
            "stripe_meter." + event.removeprefix(METER_PREFIX)
            if event.startswith(METER_PREFIX)
            else None
        )
    owner = (obj.get("metadata") or {}).get(OWNER_KEY)
    return str(owner) if owner else None


def _active(kind: str, obj: Mapping[str, Any]) -> bool:
    if kind == "billing.meter":
        return obj.get("status") == "active"
    if kind in ("coupon", "customer"):
        return (obj.get("metadata") or {}).get(ARCHIVED_KEY) != "true"
    if kind == "subscription":
        live = obj.get("status") in ("active", "trialing")
        return live and not obj.get("cancel_at_period_end")
    return bool(obj.get("active"))


def expected_addresses(plan: ChangePlan) -> set[str]:
    """The addresses of the Stripe objects `plan` (empty: the state is reached) wants, but
    the subscriptions waiting for a checkout."""
    assert plan.stripe is not None
    wanted = {address for kind in plan.stripe.desired.kinds() for address in kind}
    return wanted - {note.address for note in plan.notes}


def assert_one_object_per_address(
    objects: Mapping[str, Iterable[Mapping[str, Any]]], expected: set[str]
) -> None:
    """Every address in `expected` has exactly one object in Stripe, active; no other owned
    object exists (the catalog was applied from nothing, so nothing was replaced)."""
    total: Counter[str] = Counter()
    active: Counter[str] = Counter()
    for kind, objs in objects.items():
        for obj in objs:
            address = _address(kind, obj)
            if address is not None:
                total[address] += 1
                active[address] += _active(kind, obj)
    duplicates = sorted(address for address, count in total.items() if count > 1)
    assert duplicates == []
    assert set(total) == expected
    assert sorted(a for a in expected if active[a] != 1) == []


def emulator_objects(emu: Emulator) -> dict[str, list[dict[str, Any]]]:
    """Every stored object of the kinds autumn-sync writes, from the emulator's own state."""
    return {kind: emu.state.all(kind) for kind in KINDS}


# --- the gateway's retries -----------------------------------------------------------------


def no_sleep(_seconds: float) -> None:
    pass


def test_a_lost_response_is_replayed_with_the_same_idempotency_key() -> None:
    with Emulator(seed=3) as emu:
        emu.configure(drop_rate=1.0)
        config = StripeConfig(DEFAULT_API_KEY, emu.url, max_retries=2)
        gateway = Gateway(config, sleep=no_sleep)
        with pytest.raises(StripeFailure, match="gave up after 3 attempts"):
            gateway.post("/v1/products", {"name": "Pro"}, "key-1")
        sent = [e for e in emu.requests.entries() if e.method == "POST"]
        assert [e.idempotency_key for e in sent] == ["key-1"] * 3
        assert [e.outcome for e in sent] == ["dropped"] * 3  # done once, then replayed: lost
        assert emu.state.count("product") == 1

        emu.configure(drop_rate=0.0)
        product = gateway.post("/v1/products", {"name": "Pro"}, "key-1")
        assert emu.requests.entries()[-1].outcome == "replayed"
        assert [p["id"] for p in emu.state.all("product")] == [product["id"]]


def test_server_errors_are_retried_and_a_refusal_is_not() -> None:
    with Emulator(seed=4) as emu:
        emu.configure(fault_rate=1.0)
        gateway = Gateway(StripeConfig(DEFAULT_API_KEY, emu.url, max_retries=3), sleep=no_sleep)
        with pytest.raises(StripeFailure) as failed:
            gateway.post("/v1/products", {"name": "Pro"}, "key-1")
        assert failed.value.status == 500 and failed.value.rejected
        assert (gateway.requests, gateway.retries) == (4, 3)

        emu.configure(fault_rate=0.0)
        before = gateway.requests
        with pytest.raises(StripeFailure) as refused:
            gateway.post("/v1/products", {"name": "Pro", "colour": "red"}, "key-2")
        assert refused.value.status == 400 and refused.value.rejected
        assert gateway.requests == before + 1
        assert emu.state.count("product") == 0


def test_rate_limits_are_waited_out_without_spending_the_retries() -> None:
    with Emulator(seed=5) as emu:
        emu.faults.bucket = TokenBucket(20, burst=1)
        gateway = Gateway(StripeConfig(DEFAULT_API_KEY, emu.url, max_retries=0))
        for index in range(8):
            gateway.post("/v1/products", {"name": f"P{index}"}, f"key-{index}")
        assert gateway.rate_limited > 0
        assert gateway.retries == 0
        assert emu.state.count("product") == 8


def test_endpoints_are_named_without_ids() -> None:
    assert endpoint("post", "/v1/prices/price_123") == "POST /v1/prices/{id}"
    assert endpoint("post", "/v1/coupons/launch20") == "POST /v1/coupons/{id}"
    assert endpoint("get", "/v1/billing/meters") == "GET /v1/billing/meters"
    assert (
        endpoint("post", "/v1/billing/meters/mtr_1/deactivate")
        == "POST /v1/billing/meters/{id}/deactivate"
    )


# --- faults, rate limit and lost responses -------------------------------------------------


def test_apply_converges_through_faults_without_duplicates(tmp_path: Path) -> None:
    desired = load_text(make_catalog(features=10, plans=30, customers=40))
    engine = connect(f"sqlite:///{tmp_path / 'billing.db'}")
    with Emulator(seed=11, fault_rate=0.1, drop_rate=0.05) as emu:
        emu.faults.bucket = TokenBucket(50, burst=5)
        gateway = Gateway(StripeConfig(DEFAULT_API_KEY, emu.url))
        runs = 0
        while not (plan := make_plan(engine, desired, gateway)).empty:
            runs += 1
            assert runs <= MAX_RUNS, f"no convergence after {MAX_RUNS} applies"
            with suppress(StripeApplyFailed):
                apply_plan(engine, plan, gateway=gateway)

        entries = emu.requests.entries()
        outcomes = Counter(entry.outcome for entry in entries)
        assert outcomes["fault"] and outcomes["rate_limited"] and outcomes["dropped"]
        dropped = {
            e.idempotency_key for e in entries if e.outcome == "dropped" and e.method == "POST"
        }
        replayed = {e.idempotency_key for e in entries if e.outcome == "replayed"}
        assert dropped and dropped <= replayed  # every lost write came back as a replay
        expected = expected_addresses(plan)
        assert sum(a.startswith("stripe_subscription") for a in expected) >= 4  # invoiced
        assert sum(a.startswith("stripe_customer") for a in expected) >= 30
        assert_one_object_per_address(emulator_objects(emu), expected)
    engine.dispose()


# --- kill -9 at random points --------------------------------------------------------------


@contextmanager
def emulator_server(*options: str) -> Iterator[str]:
    """`python -m autumn_sync.emulator --port 0 OPTIONS` in its own process: its URL."""
    command = [sys.executable, "-m", "autumn_sync.emulator", "--port", "0", *options]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )  # stderr: the broken pipes of the clients killed mid-request
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), url
        yield url
    finally:
        process.kill()
        process.wait()


def stripe_options(url: str) -> tuple[str, ...]:
    return ("--stripe-api-key", DEFAULT_API_KEY, "--stripe-api-base", url)


def cli_command(db: str, url: str, *args: str) -> list[str]:
    """`autumn-sync` as a subprocess (the script installed next to this Python)."""
    script = Path(sys.executable).with_name("autumn-sync")
    return [str(script), "--no-color", "--database-url", db, *stripe_options(url), *args]


def listed_objects(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every object of the kinds autumn-sync writes, through the list endpoints."""
    client = stripe.StripeClient(DEFAULT_API_KEY, base_addresses={"api": url})
    objects: dict[str, list[dict[str, Any]]] = {}
    for kind, path in LIST_PATHS.items():
        found, after = [], None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"starting_after": after} if after else {})}
            if kind == "subscription":
                params["status"] = "all"  # ended ones too
            page = client.raw_request("get", path, **params)
            body = client.deserialize(page, api_mode="V1").to_dict()
            found.extend(body["data"])
            if not body["has_more"]:
                break
            after = body["data"][-1]["id"]
        objects[kind] = found
    return objects


def _apply_and_die(
    db: str, url: str, file: str, statement: str, limit: int, now: float | None = None
) -> None:
    """In a forked process: apply `file`, one Stripe write at a time, and kill this process
    (SIGKILL) right after its `limit`-th SQL statement starting with `statement` has run,
    before its transaction commits. Exits 0 when the apply ends first. `now`: the time the
    apply runs at (the emulator's), else the wall clock."""
    engine = connect(db)
    die_after(engine, statement, limit)
    gateway = Gateway(StripeConfig(DEFAULT_API_KEY, url))
    desired = load_text(Path(file).read_text(encoding="utf-8"))
    clock = utc_now
    if now is not None:
        at = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
        clock = lambda: at  # noqa: E731
    plan = make_plan(engine, desired, gateway, clock=clock)
    apply_plan(engine, plan, gateway=gateway, workers=1, clock=clock)
    os._exit(0)


JOURNALED = "INSERT INTO APPLY_JOURNAL"  # each Stripe write: `started`, then its outcome


def test_apply_killed_after_every_journaled_write_converges(tmp_path: Path) -> None:
    """The example applied from nothing, killed (SIGKILL) once in the database transaction,
    then after each journal row in turn: after a write is journaled as started (before the
    request), and after it is done in Stripe but before the journal records it (the lost
    answer). Each time one more apply converges: the plan after it is empty and every
    address has exactly one object in Stripe. Deterministic: the killed apply writes one
    change at a time, so the N-th journal row is the same write on every run."""
    file = tmp_path / "billing.yaml"
    file.write_text((EXAMPLES / "billing.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    desired = load_text(file.read_text(encoding="utf-8"))
    forking = multiprocessing.get_context("fork")
    kills = [("INSERT INTO FEATURES", 2)] + [(JOURNALED, n) for n in range(1, 1000)]
    killed_at: list[int] = []
    for trial, (statement, limit) in enumerate(kills):
        db = f"sqlite:///{tmp_path / f'killed-{trial}.db'}"
        with Emulator(seed=trial) as emu:
            args = (db, emu.url, str(file), statement, limit)
            process = forking.Process(target=_apply_and_die, args=args)
            process.start()
            process.join(timeout=120)
            if process.exitcode == 0:
                break  # the apply ended before its `limit`-th journal row: every row done
            assert process.exitcode == -signal.SIGKILL, (statement, limit, process.exitcode)
            killed_at.append(limit)
            engine = connect(db)
            gateway = Gateway(StripeConfig(DEFAULT_API_KEY, emu.url))
            apply_plan(engine, make_plan(engine, desired, gateway), gateway=gateway)
            plan = make_plan(engine, desired, gateway)
            assert plan.empty, (statement, limit, [c.address for c in plan.changes])
            assert_one_object_per_address(listed_objects(emu.url), expected_addresses(plan))
            engine.dispose()
    writes = len(killed_at) // 2
    assert writes >= 20, killed_at  # every write of the example was a point to die at


@pytest.mark.parametrize(
    ("start", "to", "paid"),
    [
        ("pro", "team", 2000 + 2000),
        ("pro", "business", 2000 + 19000),
        # a downgrade: nothing now, a schedule bills Pro from January
        ("team", "pro", 6000),
        # a downgrade to Free: the subscription ends with the period paid
        ("pro", "free", 2000),
        # Team from January: Pro until then, a schedule bills Team from then
        ("pro", {"plan": "team", "start": "2027-01-01"}, 2000),
    ],
)
def test_a_plan_change_killed_after_every_journaled_write_bills_once(
    tmp_path: Path, start: str, to: str | dict[str, str], paid: int
) -> None:
    """Jane (by card) moves from her plan halfway through December: Pro to Team (same
    interval, an item swap prorated now: -1000 + 2500 + 500), Pro to Business (yearly: the
    monthly subscription ends now with -1000 credited, the yearly one asks 20000 - 1000),
    Team down to Pro or Pro down to Free (at the end of the period: nothing now), Pro to Team
    from January (nothing now). The change is killed after each journal row in turn, then
    applied again: each time the plan after it is empty, one subscription of the group is
    live, and Jane paid exactly what she would have without the kill."""
    # here, not at the top: `test_stripe_customers` imports this module
    from tests.test_money import HALF_DECEMBER, START, billing, due, live_subscriptions
    from tests.test_stripe_customers import give_card, the
    from tests.test_stripe_sync import Sync

    after = tmp_path / "after.yaml"
    after.write_text(yaml.safe_dump(billing(to)), encoding="utf-8")
    forking = multiprocessing.get_context("fork")
    killed = 0
    for limit in range(1, 100):
        db = f"sqlite:///{tmp_path / f'killed-{limit}.db'}"
        with Emulator(seed=limit, clock=Clock(lambda: float(START))) as emu:
            sync = Sync(connect(db), emu, tmp_path)
            sync.apply(billing(start))
            customer = the(emu, "customer", "stripe_customer.user_1")["id"]
            give_card(emu, customer)
            sync.apply(billing(start))
            emu.clock.advance(HALF_DECEMBER)
            args = (db, emu.url, str(after), JOURNALED, limit, float(emu.clock.now()))
            process = forking.Process(target=_apply_and_die, args=args)
            process.start()
            process.join(timeout=120)
            if process.exitcode == 0:
                break  # the change ended before its `limit`-th journal row
            assert process.exitcode == -signal.SIGKILL, (limit, process.exitcode)
            killed += 1
            sync.apply(billing(to))  # converges: the plan after it is empty
            assert len(live_subscriptions(sync, customer)) == 1, limit
            assert sum(due(sync, customer)) == paid, limit
            assert len(sync.emu.state.all("subscription_schedule")) <= 1, limit
            sync.engine.dispose()
    assert killed >= 2  # every write of the change was a point to die at


DIE_WHILE_MIGRATING = """
import os, signal, sys
from sqlalchemy import Engine, event
from autumn_sync.database.engine import connect

created = 0

@event.listens_for(Engine, "after_cursor_execute")
def die(conn, cursor, statement, *args):
    global created
    if statement.lstrip().upper().startswith("CREATE TABLE"):
        created += 1
        if created == 3:
            os.kill(os.getpid(), signal.SIGKILL)

connect(sys.argv[1])
"""


def test_a_run_killed_while_migrating_leaves_no_half_made_schema(tmp_path: Path) -> None:
    """A kill between two CREATE TABLEs of the first migration (the start of every first
    apply); the next run migrates from scratch."""
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    died = subprocess.run([sys.executable, "-c", DIE_WHILE_MIGRATING, url])
    assert died.returncode == -signal.SIGKILL
    engine = connect(url)
    assert read_current(engine).plans == {}
    engine.dispose()


# --- a run dying right after each write of changes of terms ------------------------------


class Died(Exception):
    """The run dies: the write was done in Stripe, its answer never reaches the tool."""


class DyingGateway(Gateway):
    """A gateway whose run dies right after its `die_after`-th write (0: never)."""

    die_after = 0
    writes = 0

    def post(self, path: str, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        obj = super().post(path, params, idempotency_key)
        self.writes += 1
        if self.writes == self.die_after:
            raise Died(path)
        return obj


def assert_converged(objects: Mapping[str, list[dict[str, Any]]], wanted: Any) -> None:
    """After changes of terms: no address has more than its old and its new object; every
    wanted product and meter exists once, every coupon and promotion code is active once, a
    price is active once, or twice with different versions (the old one for the customers
    on its version), and a product's default price is the newest one."""
    total: Counter[str] = Counter()
    active: Counter[tuple[str, str]] = Counter()
    for kind, objs in objects.items():
        for obj in objs:
            address = _address(kind, obj)
            if address is not None:
                total[address] += 1
                version = (obj.get("metadata") or {}).get(VERSION_KEY, "")
                active[address, version] += _active(kind, obj)
    for kind in wanted.kinds():
        for address in kind:
            versions = [n for (a, _), n in active.items() if a == address]
            assert total[address] <= 2 and max(versions) == 1, address
            if address.startswith("stripe_price."):
                assert 1 <= sum(versions) <= 2, address
            else:
                assert sum(versions) == 1, address
            if address.startswith(("stripe_product.", "stripe_meter.")):
                assert total[address] == 1, address
    prices = {str(price["id"]): price for price in objects["price"]}
    for product in objects["product"]:
        default = wanted.products[_address("product", product)].default_price
        if default is not None:  # the newest active price of its address
            price = prices[str(product["default_price"])]
            newest = max(int(v or 0) for (a, v), n in active.items() if a == default and n)
            assert _address("price", price) == default and price["active"], product["id"]
            assert int(price["metadata"][VERSION_KEY]) == newest, product["id"]


CATALOG = """
version: 1
features:
  messages: {{name: Messages, type: metered, consumable: true}}
plans:
  pro:
    name: Pro
    price: {{amount: {pro}, interval: month}}
    items:
      - {{feature: messages, included: 100, reset: month,
         price: {{amount: {per_message}, per: 100, billing: pay_per_use}}}}
  team:
    name: Team
    price: {{amount: {team}, interval: month}}
rewards:
  launch:
    type: percentage_discount
    percent_off: {percent_off}
    duration: once
    plans: [pro]
    promo_codes: [LAUNCH]
"""


def test_a_run_dying_after_any_write_of_a_change_of_terms_converges(tmp_path: Path) -> None:
    """Prices of a plan with customers (the old one stays for them) and of one without (the
    old one is archived), and a coupon, all change terms; the run dies right after each of
    the writes in turn, and one more apply converges."""
    before = load_text(CATALOG.format(pro=20, per_message=1, team=50, percent_off=10))
    after = load_text(CATALOG.format(pro=25, per_message=2, team=60, percent_off=15))
    die_after = 1
    while True:
        engine = connect(f"sqlite:///{tmp_path / f'billing-{die_after}.db'}")
        with Emulator(seed=die_after) as emu:
            gateway = DyingGateway(StripeConfig(DEFAULT_API_KEY, emu.url))
            apply_plan(engine, make_plan(engine, before, gateway), gateway=gateway)
            add_customers(engine, "pro", 2)
            plan = make_plan(engine, after, gateway)
            replaced = sorted(c.address for c in plan.changes if isinstance(c, Replace))
            assert replaced == [
                "stripe_coupon.launch",
                "stripe_price.pro.base",
                "stripe_price.pro.messages",
                "stripe_price.team.base",
                "stripe_promotion_code.launch.LAUNCH",
            ]
            gateway.writes, gateway.die_after = 0, die_after
            try:
                apply_plan(engine, plan, gateway=gateway, workers=1)
                finished = True
            except StripeApplyFailed as exc:
                assert isinstance(exc.error, Died)
                finished = False

            apply_plan(engine, make_plan(engine, after, gateway), gateway=gateway)
            final = make_plan(engine, after, gateway)
            assert final.empty, (die_after, [c.address for c in final.changes])
            assert final.stripe is not None
            assert_converged(emulator_objects(emu), final.stripe.desired)
        engine.dispose()
        if finished:
            break
        die_after += 1
    assert die_after > 10  # every write of the changes was a point to die at


# --- a refused change: two phases ----------------------------------------------------------


def test_a_refused_change_stops_the_apply_and_keeps_the_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'billing.db'}"
    path = str(EXAMPLES / "billing.yaml")
    with Emulator(seed=8) as emu:
        # Someone made a coupon by hand with the id the reward maps to.
        client = emu.client()
        client.v1.coupons.create(params={"id": "launch20", "percent_off": 10, "duration": "once"})

        result = run_cli(*stripe_options(emu.url), "apply", "-f", path, "--auto-approve", db=db)
        assert result.exit_code == 1
        assert (
            "Error: Stripe change stripe_coupon.launch20 failed: Coupon already exists."
            in result.stderr
        )
        assert "the database changes were applied" in result.stderr
        journal = t.apply_journal
        query = select(journal.c.address).where(journal.c.status == REJECTED)
        engine = connect(db)
        with engine.connect() as conn:
            assert conn.execute(query).scalars().all() == ["stripe_coupon.launch20"]
        assert "launch20" in read_current(engine).rewards
        assert set(read_current(engine).plans) >= {"free", "pro", "business"}
        engine.dispose()

        client.v1.coupons.delete("launch20")
        result = run_cli(*stripe_options(emu.url), "apply", "-f", path, "--auto-approve", db=db)
        assert result.exit_code == 0, result.output
        plan = run_cli(*stripe_options(emu.url), "plan", "-f", path, "--detailed-exitcode", db=db)
        assert plan.exit_code == 0, plan.output
        coupon = emu.state.get("coupon", "launch20")
        assert coupon["metadata"] == {OWNER_KEY: "stripe_coupon.launch20"}
