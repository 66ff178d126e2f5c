"""`autumn-sync show`: a customer (plans, versions, renewals, usage, limits, resets, Stripe
ids), the list of customers (two queries whatever their number), plans, features, rewards and
the summary; exact lines for small cases, JSON, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from autumn_sync import Billing
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.render.show import breakdown, text
from autumn_sync.runtime.queries import entitlements
from autumn_sync.show import ENTITY_BALANCES, list_customers, show_address
from tests.conftest import EXAMPLES, count_statements, reset_database, run_cli
from tests.test_runtime import CATALOG, Clock, apply_file, write
from tests.test_runtime_breakdown import FILE

TEAM = """\
  - id: team_co
    name: Team Co
    entities:
      - {id: team_a, feature: seats, name: Team A, plans: [pro]}
"""

ACME = """\
customer.acme_1
  id:              acme_1
  email:           billing@acme.com
  name:            Acme Corp
  fingerprint:     -
  in the file:     customer[billing@acme.com]
  created:         2026-01-10 12:00
  stripe customer: cus_123
  rewards:         -

Plans:
  PLAN         VERSION     STATUS  PRICE      NEXT RENEWAL      STRIPE SUBSCRIPTION
  credit_pack  1           active  -          -                 -
  pro          1 (custom)  active  2000/year  2027-01-10 12:00  sub_456

Features:
  FEATURE   USAGE  LIMIT      BALANCE  NEXT RESET        NOTES
  credits   20     1000       980      2026-02-10 12:00
    plan credit_pack: 20 of 1000 used, resets 2026-02-10 12:00 (month)
  messages  10     1050000    1049990  2026-02-10 12:00  overage allowed
    plan pro: 10 of 1000000 used, resets 2026-02-10 12:00 (month)
    grant onboarding: 0 of 50000 used (one-time, expires 2027-01-01)
  seats     0      unlimited  -        -
    plan pro: unlimited, 0 used
  sso       -      included   -        -

Recent usage:
  TIME                 FEATURE   VALUE  CHARGED     IDEMPOTENCY KEY
  2026-01-10 12:00:00  images    5      20 credits  req-1
  2026-01-10 12:00:00  messages  10                 -
"""

TEAM_CO = """\
customer.team_co
  id:              team_co
  email:           -
  name:            Team Co
  fingerprint:     -
  in the file:     customer.team_co
  created:         2026-01-10 12:00
  stripe customer: -
  rewards:         -

Plans:
  PLAN         VERSION  STATUS  PRICE     NEXT RENEWAL      STRIPE SUBSCRIPTION
  team_a: pro  1        active  20/month  2026-02-10 12:00  -

Features:
  (none)

Entities:
  ENTITY  FEATURE  NAME    PLANS
  team_a  seats    Team A  pro

Features of entity team_a:
  FEATURE   USAGE  LIMIT      BALANCE  NEXT RESET        NOTES
  messages  0      1000       1000     2026-02-10 12:00  overage allowed
    plan pro: 0 of 1000 used, resets 2026-02-10 12:00 (month)
  seats     0      unlimited  -        -
    plan pro: unlimited, 0 used
  sso       -      included   -        -

Recent usage:
  (none)
"""

CUSTOMERS = """\
ID       EMAIL             NAME       IN FILE  PLANS
jane     -                 -          yes      pro v1
team_co  -                 Team Co    yes      team_a: pro v1
acme_1   billing@acme.com  Acme Corp  yes      credit_pack v1, pro v1 (custom)
user_1   u1@example.com    User One   no       free v1
4 customers.
"""


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> tuple[Engine, Clock]:
    """CATALOG (and Team Co) applied at T0; Acme claimed and using messages and credits;
    an application customer; Stripe ids recorded; the clock ten days later."""
    engine = connect(db_url)
    clock = Clock()
    apply_file(engine, write(tmp_path, CATALOG + TEAM), clock)
    billing = Billing(engine=engine, clock=clock)
    billing.get_or_create("acme_1", email="billing@acme.com")
    billing.track("acme_1", "messages", 10)
    billing.track("acme_1", "images", 5, idempotency_key="req-1")
    billing.get_or_create("user_1", email="u1@example.com", name="User One")
    c, cp = t.customers, t.customer_plans
    with engine.begin() as conn:
        conn.execute(update(c).where(c.c.id == "acme_1").values(stripe_id="cus_123"))
        conn.execute(update(cp).where(cp.c.plan_id == "pro").values(stripe_subscription_id=None))
        acme = conn.execute(c.select().where(c.c.id == "acme_1")).one()
        mine = (cp.c.customer_internal_id == acme.internal_id) & (cp.c.plan_id == "pro")
        conn.execute(update(cp).where(mine).values(stripe_subscription_id="sub_456"))
    clock.now = datetime(2026, 1, 20)
    return engine, clock


def shown_text(engine: Engine, address: str | None, now: datetime) -> str:
    with engine.connect() as conn:
        shown = show_address(conn, address, now)
    return text(shown.kind, shown.document)


def test_a_customer_by_id_or_by_the_email_the_file_knows_it_by(
    shop: tuple[Engine, Clock],
) -> None:
    engine, clock = shop
    assert shown_text(engine, "customer.acme_1", clock.now) == ACME
    assert shown_text(engine, "customer[billing@acme.com]", clock.now) == ACME
    assert shown_text(engine, "customer.team_co", clock.now) == TEAM_CO


def test_a_downgrade_and_a_future_start_show_their_dates(
    shop: tuple[Engine, Clock], tmp_path: Path
) -> None:
    """Jane, on Pro since 2026-01-10, moves to Free on 2026-01-20: she keeps Pro until the
    period she paid for ends (2026-02-10), and Free begins then; Team Co's team starts Pro on
    2026-03-01."""
    engine, clock = shop
    downgraded = CATALOG.replace(
        "  - id: jane\n    plans: [pro]", "  - id: jane\n    plans: [free]"
    )
    later = TEAM.replace("plans: [pro]", "plans: [{plan: pro, start: 2026-03-01}]")
    later = later.replace("team_a", "team_b")
    apply_file(engine, write(tmp_path, downgraded + later), clock)
    jane = shown_text(engine, "customer.jane", clock.now)
    assert "  free  1        scheduled from 2026-02-10  -" in jane
    assert "  pro   1        active until 2026-02-10    20/month" in jane
    team = shown_text(engine, "customer.team_co", clock.now)
    assert "  team_b: pro  1        scheduled from 2026-03-01  20/month" in team


def test_the_customer_list_and_its_filters(shop: tuple[Engine, Clock], db_url: str) -> None:
    assert run_cli("show", "customers", db=db_url).stdout == CUSTOMERS
    searched = run_cli("show", "customers", "--search", "ACME", db=db_url).stdout
    assert searched.splitlines()[1:] == [
        "acme_1  billing@acme.com  Acme Corp  yes      credit_pack v1, pro v1 (custom)",
        "1 customer.",
    ]
    by_name = run_cli("show", "customers", "--search", "user one", "--format", "json", db=db_url)
    assert [c["id"] for c in json.loads(by_name.stdout)["customers"]] == ["user_1"]
    on_pro = run_cli("show", "customers", "--plan", "pro", "--format", "json", db=db_url)
    assert [c["address"] for c in json.loads(on_pro.stdout)["customers"]] == [
        "customer.jane",
        "customer.team_co",  # through its entity
        "customer.acme_1",
    ]
    assert run_cli("show", "customers", "--search", "%", db=db_url).stdout == "0 customers.\n"
    underscore = run_cli("show", "customers", "--search", "_", "--format", "json", db=db_url)
    assert [c["id"] for c in json.loads(underscore.stdout)["customers"]] == [
        "team_co",
        "acme_1",
        "user_1",  # not jane: `_` is no wildcard
    ]


def test_a_customer_as_json(shop: tuple[Engine, Clock], db_url: str) -> None:
    result = run_cli("show", "customer.acme_1", "--format", "json", db=db_url)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert (doc["address"], doc["declared_as"], doc["stripe_id"]) == (
        "customer.acme_1",
        "customer[billing@acme.com]",
        "cus_123",
    )
    pro = next(p for p in doc["plans"] if p["plan_id"] == "pro")
    assert (pro["version"], pro["custom"], pro["price"]) == (
        1,
        True,
        {"amount": 2000, "interval": "year"},
    )
    assert pro["stripe_subscription_id"] == "sub_456"
    messages = next(f for f in doc["features"] if f["feature_id"] == "messages")
    # the command line's clock is the real one: the usage of January has been reset since
    assert messages["included"] == 1000000 and messages["overage_allowed"]
    assert datetime.fromisoformat(messages["next_reset"]) > datetime.now(UTC).replace(tzinfo=None)


def test_listing_customers_is_two_queries_whatever_their_number(
    shop: tuple[Engine, Clock],
) -> None:
    engine, clock = shop
    counts = []
    for more in (0, 30):
        billing = Billing(engine=engine, clock=clock)
        for n in range(more):
            billing.get_or_create(f"more_{n}")
        with engine.connect() as conn, count_statements(engine) as counter:
            listed = list_customers(conn, None, None, clock.now)
        assert len(listed) == 4 + more
        counts.append(counter.count)
    assert counts == [2, 2]


EXAMPLE_SHOWN = {
    None: """\
features (7):  credits, image_generations, messages, priority_support, seats, sso, storage_gb
plans (4):     business v1, extra_credits v1, free v1 (default), pro v1
rewards (2):   launch20, welcome5
customers (2): 2 in the file, 0 created by the application (autumn-sync show customers)
""",
    "plan.pro": """\
plan.pro: Pro
  description:     For small teams.
  group:           main
  default:         no
  add-on:          no
  archived:        no
  current version: 1
  customers:       v1: 1
  price:           20/month
  free trial:      14 days, card required, once per fingerprint

Items (version 1):
  FEATURE     INCLUDED  RESET  PRICE
  messages    1000      month  pay_per_use: 5 per 100 (whole 100s, rounded up)
  seats       3         -      prepaid per month: up to 10 at 10, then 8 (graduated)
  sso         -         -      -
  storage_gb  50        -      -
""",
    "feature.messages": """\
feature.messages: Messages
  type:                     metered (consumable)
  counted in:               credits (0.5 per unit)
  plans:                    business v1, free v1, pro v1
  customers with a balance: 1
""",
    "feature.credits": """\
feature.credits: AI credits
  type:                     credit_system
  credit costs:             image_generations (4 per unit), messages (0.5 per unit)
  plans:                    extra_credits v1
  customers with a balance: 0
""",
    "reward.launch20": """\
reward.launch20: Launch discount
  type:        percentage_discount
  off:         20%
  duration:    3 months
  plans:       business, pro
  promo codes: LAUNCH20
  customers:   1
""",
}


def test_catalog_objects_and_the_summary(sqlite_url: str) -> None:
    applied = run_cli(
        "apply", "-f", str(EXAMPLES / "billing.yaml"), "--auto-approve", db=sqlite_url
    )
    assert applied.exit_code == 0
    for address, expected in EXAMPLE_SHOWN.items():
        result = run_cli("show", *([address] if address else []), db=sqlite_url)
        assert (result.exit_code, result.stdout) == (0, expected)
    plan = json.loads(run_cli("show", "plan.pro.v1", "--format", "json", db=sqlite_url).stdout)
    assert plan["version"]["free_trial"] == {
        "days": 14,
        "card_required": True,
        "unique_fingerprint": True,
    }
    assert [v["customers"] for v in plan["versions"]] == [1]


PACKS = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
plans:
  pro:
    name: Pro
    items:
      - {feature: messages, included: 1000, reset: month,
         price: {billing: pay_per_use, per: 100,
                 tiers: [{up_to: 5000, amount: 1}, {up_to: inf, amount: 0.5}]}}
      - {feature: seats, price: {amount: 50, per: 5, billing: pay_per_use, interval: month}}
"""


def test_usage_billed_in_whole_packs_says_so(sqlite_url: str, tmp_path: Path) -> None:
    """Tiers per 100 messages say per 100, and that usage is billed in whole 100s; seats
    (continuous: billed as a quantity) stay per unit, and say nothing of packs."""
    path = tmp_path / "billing.yaml"
    path.write_text(PACKS, encoding="utf-8")
    assert run_cli("apply", "-f", str(path), "--auto-approve", db=sqlite_url).exit_code == 0

    shown = run_cli("show", "plan.pro", db=sqlite_url).stdout.splitlines()

    assert shown[-2:] == [
        "  messages  1000      month  pay_per_use: up to 5000 at 1, then 0.5 per 100 "
        "(graduated, whole 100s, rounded up)",
        "  seats     -         -      pay_per_use per month: 50 per 5",
    ]


ITEM_TERMS = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  calls: {name: Calls, type: metered, consumable: true}
plans:
  pro:
    name: Pro
    price: {amount: 20, interval: month}
    items:
      - {feature: messages, included: 100, reset: month,
         rollover: {max_percentage: 50, expires_after: {months: 3}}}
      - {feature: calls, included: 10, reset: hour, interval_count: 6}
  metered:
    name: Metered
    items:
      - {feature: calls, included: 0, max_purchase: 50,
         price: {amount: 1, billing: pay_per_use, interval: month}}
"""


def test_a_plan_shows_its_items_resets_rollovers_and_caps(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "billing.yaml"
    path.write_text(ITEM_TERMS, encoding="utf-8")
    assert run_cli("apply", "-f", str(path), "--auto-approve", db=sqlite_url).exit_code == 0
    pro = run_cli("show", "plan.pro", db=sqlite_url).stdout.splitlines()
    assert pro[-3:] == [
        "  FEATURE   INCLUDED  RESET          PRICE  TERMS",
        "  calls     10        every 6 hours  -",
        "  messages  100       month          -      rollover up to 50%, expires after 3 months",
    ]
    metered = run_cli("show", "plan.metered", db=sqlite_url).stdout.splitlines()
    assert (
        metered[-1]
        == "  calls    0         -      pay_per_use per month: 1 per 1  overage up to 50"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "Error: 'nope' is not an address: use customer.ID, customer[EMAIL]"),
        (("customer.nobody",), "Error: no customer with id 'nobody'"),
        (("customer[who@x.io]",), "Error: no customer with email 'who@x.io'"),
        (("customerjane",), "Error: 'customerjane' is not an address"),
        (("plan.nope",), "Error: no plan 'nope' in the database"),
        (("plan.pro.v9",), "Error: plan 'pro' has no version 9"),
        (("feature.nope",), "Error: no feature 'nope' in the database"),
        (("reward.nope",), "Error: no reward 'nope' in the database"),
        (("plan.pro", "--plan", "pro"), "Error: --search and --plan go with `show customers`"),
    ],
)
def test_unknown_addresses_are_errors(
    sqlite_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    assert (
        run_cli("apply", "-f", str(write(tmp_path)), "--auto-approve", db=sqlite_url).exit_code == 0
    )
    result = run_cli("show", *args, db=sqlite_url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message)


# --- breakdowns and entities ---------------------------------------------------------------

ANN = """\
Features:
  FEATURE   USAGE  LIMIT  BALANCE  NEXT RESET  NOTES
  messages  125    180    55       2027-02-01
    plan free: 100 of 100 used, resets 2027-02-01 (month)
    grant spring: 25 of 30 used (one-time, expires 2027-03-01)
    grant welcome: 0 of 50 used (one-time)
  seats     2      3      1        -           counts 2 entities
    plan team: 2 of 3 used

Entities:
  ENTITY  FEATURE  NAME     PLANS
  eu      seats    Europe   seat
  us      seats    America  -

Features of entity eu:
  FEATURE   USAGE  LIMIT     BALANCE  NEXT RESET  NOTES
  messages  145    200       55       2027-02-01
    plan seat: 20 of 20 used, resets 2027-02-01 (month)
    then the customer's: 55 left
  sso       -      included  -        -

Recent usage:
  TIME                 FEATURE   ENTITY  VALUE  CHARGED  IDEMPOTENCY KEY
  2027-01-01 00:00:00  messages  eu      25              -
  2027-01-01 00:00:00  messages  -       120             -
"""


def test_a_customer_shows_each_balance_by_source_and_its_entities(
    db_url: str, tmp_path: Path
) -> None:
    """Ann: 100 messages a month (free), grants of 30 (until March) and 50; 3 seats (team),
    two taken by her entities; eu has 20 messages a month of its own (seat), used first.
    120 used by Ann: 100 of free, 20 of spring; 25 by eu: its 20, then 5 more of spring."""
    engine = connect(db_url)
    clock = Clock(datetime(2027, 1, 1))
    apply_file(engine, write(tmp_path, FILE), clock)
    billing = Billing(engine=engine, clock=clock)
    billing.track("ann", "messages", 120)
    billing.track("ann", "messages", 25, entity_id="eu")
    shown = shown_text(engine, "customer.ann", datetime(2027, 1, 15))
    assert shown[shown.index("Features:") :] == ANN
    with engine.connect() as conn:
        doc = show_address(conn, "customer.ann", datetime(2027, 1, 15)).document
    eu = doc["entities"][0]
    assert [p["plan_id"] for p in eu["plans"]] == ["seat"] and doc["entities"][1]["plans"] == []
    messages = eu["features"][0]
    assert (messages["feature_id"], messages["limit"], messages["usage"]) == ("messages", 200, 145)
    assert [(b["source"], b["entity_id"], b["used"]) for b in messages["breakdown"]] == [
        ("plan:seat", "eu", 20),
        ("plan:free", None, 100),
        ("grant:spring", None, 25),
        ("grant:welcome", None, 0),
    ]
    assert [e["entity_id"] for e in doc["usage_events"]] == ["eu", None]
    engine.dispose()


def test_overage_shows_under_the_item_that_bills_it(shop: tuple[Engine, Clock]) -> None:
    """Jane's Pro: 1000 messages a month, then 5 per 100 (pay-per-use)."""
    engine, clock = shop
    Billing(engine=engine, clock=clock).track("jane", "messages", 1030)
    shown = shown_text(engine, "customer.jane", clock.now)
    assert (
        "  messages  1030   1000       -30      2026-02-10 12:00  overage allowed\n"
        "    plan pro: 1000 of 1000 used, resets 2026-02-10 12:00 (month)\n"
        "    +30 overage (billed)\n"
    ) in shown


def test_breakdown_lines() -> None:
    def entry(kind: str, source: str, **terms: object) -> dict[str, object]:
        found = {
            "source": source,
            "kind": kind,
            "entity_id": None,
            "plan_id": source.split(":")[1] if ":" in source else None,
            "granted": Decimal(100),
            "unlimited": False,
            "used": Decimal(0),
            "remaining": Decimal(100),
            "overage": Decimal(0),
            "reset": None,
            "interval_count": None,
            "next_reset": None,
            "expires": None,
        }
        return {**found, **terms}

    feature = {
        "overage_source": "plan:pro",
        "max_purchase": Decimal(50),
        "breakdown": [
            entry(
                "rollover",
                "rollover:pro:202701010000",
                remaining=Decimal(60),
                used=Decimal(40),
                expires=datetime(2027, 4, 1),
                reset="month",
                interval_count=1,
            ),
            entry("rollover", "rollover:pro:202702010000", reset="month", interval_count=1),
            entry(
                "plan",
                "plan:pro",
                used=Decimal(120),
                remaining=Decimal(0),
                overage=Decimal(20),
                reset="month",
                interval_count=3,
                next_reset=datetime(2027, 4, 1),
            ),
            entry("plan", "plan:old", used=Decimal(110), remaining=0, overage=Decimal(10)),
            entry("allowance", "allowance", used=Decimal(5)),
        ],
    }
    assert breakdown(feature) == [
        "rollover from pro: 60 of 100 left, expires 2027-04-01",
        "rollover from pro: 100 left",
        "plan pro: 100 of 100 used, resets 2027-04-01 (every 3 months)",
        "+20 overage (billed, cap 50)",
        "plan old: 100 of 100 used",
        "+10 overage (not billed)",
        "allowance: 5 of 100 used",
    ]


def many_entities(count: int) -> str:
    lines = [f"      - {{id: e{n}, feature: seats, plans: [seat]}}" for n in range(count)]
    return FILE.split("    entities:\n")[0] + "    entities:\n" + "\n".join(lines) + "\n"


def test_a_customer_is_a_bounded_number_of_queries_whatever_its_entities(
    sqlite_url: str, tmp_path: Path
) -> None:
    """One `entitlements` read more for each entity with plans, for the first ENTITY_BALANCES
    of them only."""
    counts, each = [], 0
    for number in (1, ENTITY_BALANCES, ENTITY_BALANCES + 5):
        reset_database(sqlite_url)
        engine = connect(sqlite_url)
        apply_file(engine, write(tmp_path, many_entities(number)), Clock(datetime(2027, 1, 1)))
        with engine.connect() as conn, count_statements(engine) as counter:
            doc = show_address(conn, "customer.ann", datetime(2027, 1, 2)).document
        counts.append(counter.count)
        read = [e["id"] for e in doc["entities"] if e["features"] is not None]
        assert len(read) == min(number, ENTITY_BALANCES)
        with engine.connect() as conn:
            row = conn.execute(select(t.customers).where(t.customers.c.id == "ann")).one()
            with count_statements(engine) as one:
                entitlements(conn, row, datetime(2027, 1, 2), "e0")
        each = one.count
        engine.dispose()
    assert counts[1] - counts[0] == each * (ENTITY_BALANCES - 1)
    assert counts[2] == counts[1]
