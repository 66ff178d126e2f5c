"""The runtime API against real databases: get_or_create (idempotent, binding a
pre-provisioned customer, default plans, one trial per fingerprint), check and track (limits
from plans, custom items, allowances and grants; resets on an injected clock; credit
systems), and usage surviving re-apply. The other runtime test files reuse the helpers here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from autumn_sync import Billing, InvalidRequest, UnknownCustomer, UnknownFeature
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.pipeline import apply_plan, load_desired, make_plan
from tests.conftest import count_statements

T0 = datetime(2026, 1, 10, 12, 0)

CATALOG = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
  sso: {name: SSO, type: boolean}
  images: {name: Images, type: metered, consumable: true}
  credits: {name: Credits, type: credit_system, credit_costs: {images: 4}}
plans:
  free:
    name: Free
    group: main
    default: true
    items:
      - {feature: messages, included: 100, reset: month}
      - {feature: seats, included: 1}
  pro:
    name: Pro
    group: main
    price: {amount: 20, interval: month}
    items:
      - {feature: messages, included: 1000, reset: month,
         price: {amount: 5, per: 100, billing: pay_per_use}}
      - {feature: seats, unlimited: true}
      - {feature: sso}
  credit_pack:
    name: Credit pack
    add_on: true
    items:
      - {feature: credits, price: {amount: 10, per: 1000, billing: prepaid, interval: month}}
customers:
  - email: billing@acme.com
    name: Acme Corp
    plans:
      - plan: pro
        price: {amount: 2000, interval: year}
        items: [{feature: messages, included: 1000000, reset: month}]
      - credit_pack
    balances:
      messages:
        grants: [{id: onboarding, amount: 50000, expires: 2027-01-01}]
  - id: jane
    plans: [pro]
"""


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write(tmp_path: Path, text: str = CATALOG, name: str = "billing.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def apply_file(engine: Engine, path: Path, clock: Clock) -> None:
    """Plan and apply `path`, then check the plan after it is empty."""
    desired = load_desired(path)
    apply_plan(engine, make_plan(engine, desired, clock=clock), clock=clock)
    assert make_plan(engine, desired, clock=clock).empty


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return write(tmp_path)


@pytest.fixture
def billing(db_url: str, catalog: Path, clock: Clock) -> Iterator[Billing]:
    """The runtime API on a database where CATALOG was applied at T0."""
    engine = connect(db_url)
    apply_file(engine, catalog, clock)
    yield Billing(engine=engine, clock=clock)
    engine.dispose()


def customer_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.customers)).scalar_one())


def stored_usage(engine: Engine, customer_id: str, feature_id: str) -> Decimal:
    """What the customer's rows hold as used of the feature, over every source."""
    u, c = t.balance_usage, t.customers
    query = (
        select(func.sum(u.c.used))
        .join(c, c.c.internal_id == u.c.customer_internal_id)
        .where((c.c.id == customer_id) & (u.c.feature_id == feature_id))
    )
    with engine.connect() as conn:
        return Decimal(conn.execute(query).scalar_one() or 0)


# --- get_or_create -------------------------------------------------------------------------


def test_enterprise_flow_binds_the_id_and_the_next_plan_shows_no_change(
    billing: Billing, catalog: Path
) -> None:
    before = customer_count(billing.engine)
    acme = billing.get_or_create("acme_1", email="billing@acme.com", name="ACME (from the app)")
    assert acme.outcome == "claimed" and acme.managed and acme.id == "acme_1"
    assert acme.name == "Acme Corp"  # the file's fields stay the file's
    assert [(p.plan_id, p.version, p.custom) for p in acme.plans] == [
        ("credit_pack", 1, False),
        ("pro", 1, True),
    ]
    assert customer_count(billing.engine) == before
    assert make_plan(billing.engine, load_desired(catalog)).empty

    messages = billing.check("acme_1", "messages")
    assert messages.allowed and messages.balance.overage_allowed
    assert (messages.balance.included, messages.balance.granted) == (1_000_000, 50_000)
    assert messages.balance.limit == 1_050_000 and messages.balance.usage == 0

    again = billing.get_or_create("acme_1", email="billing@acme.com")
    assert again.outcome == "found" and again.plans == acme.plans
    assert customer_count(billing.engine) == before


def test_the_email_of_a_claim_matches_whatever_its_case(billing: Billing, catalog: Path) -> None:
    before = customer_count(billing.engine)
    acme = billing.get_or_create("acme_1", email="Billing@ACME.com")
    assert acme.outcome == "claimed" and acme.email == "billing@acme.com"
    assert customer_count(billing.engine) == before
    assert make_plan(billing.engine, load_desired(catalog)).empty


def test_get_or_create_is_idempotent(billing: Billing, clock: Clock, catalog: Path) -> None:
    first = billing.get_or_create("user_1", email="u1@example.com", name="U1", fingerprint="fp1")
    clock.now = datetime(2026, 2, 1)
    second = billing.get_or_create("user_1", email="other@example.com")
    assert (first.outcome, second.outcome) == ("created", "found")
    assert not first.managed and second.email == "u1@example.com"
    assert first.plans == second.plans
    assert [(p.plan_id, p.version, p.status) for p in first.plans] == [("free", 1, "active")]
    with billing.engine.connect() as conn:
        rows = conn.execute(select(t.customers).where(t.customers.c.id == "user_1")).all()
        plans = conn.execute(select(func.count()).select_from(t.customer_plans)).scalar_one()
    assert len(rows) == 1 and rows[0].created_at == T0 and not rows[0].managed
    assert plans == 2 + 1 + 1  # Acme's two, Jane's pro, user_1's free
    assert make_plan(billing.engine, load_desired(catalog)).empty  # the file ignores user_1


def test_an_application_customer_with_the_same_email_is_not_claimed(billing: Billing) -> None:
    first = billing.get_or_create("a", email="shared@example.com")
    second = billing.get_or_create("b", email="shared@example.com")
    assert (first.outcome, second.outcome) == ("created", "created")
    assert customer_count(billing.engine) == 4


def test_new_customers_get_the_current_version_of_the_default_plans(
    billing: Billing, tmp_path: Path, clock: Clock
) -> None:
    billing.get_or_create("early")
    changed = CATALOG.replace("included: 100, reset: month", "included: 150, reset: month")
    apply_file(billing.engine, write(tmp_path, changed, "v2.yaml"), clock)
    late = billing.get_or_create("late")
    assert [(p.plan_id, p.version) for p in late.plans] == [("free", 2)]
    assert billing.check("early", "messages").balance.limit == 100
    assert billing.check("late", "messages").balance.limit == 150


TRIALS = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  starter:
    name: Starter
    default: true
    price: {amount: 9, interval: month}
    free_trial: {days: 7, unique_fingerprint: %s}
    items:
      - {feature: messages, included: 10, reset: month}
"""


@pytest.mark.parametrize("unique", [True, False])
def test_one_free_trial_per_fingerprint(
    db_url: str, tmp_path: Path, clock: Clock, unique: bool
) -> None:
    engine = connect(db_url)
    apply_file(engine, write(tmp_path, TRIALS % ("true" if unique else "false")), clock)
    billing = Billing(engine=engine, clock=clock)
    first = billing.get_or_create("a", fingerprint="card_1").plans[0]
    again = billing.get_or_create("b", fingerprint="card_1").plans[0]
    other = billing.get_or_create("c", fingerprint="card_2").plans[0]
    unknown = billing.get_or_create("d").plans[0]
    assert (first.status, str(first.trial_ends_at)) == ("trialing", "2026-01-17")
    assert first.next_renewal == datetime(2026, 1, 17)
    assert (again.status, again.trial_ends_at) == (
        ("active", None) if unique else ("trialing", first.trial_ends_at)
    )
    assert other.status == unknown.status == "trialing"
    clock.now = datetime(2026, 1, 17)
    assert billing.customer("a").plans[0].status == "active"  # the trial has ended
    assert billing.customer("a").plans[0].next_renewal == datetime(2026, 2, 17)
    engine.dispose()


ANNUAL = """\
  annual:
    name: Annual
    price: {amount: 90, interval: year}
    free_trial: {days: 7, unique_fingerprint: true}
"""


def test_trials_are_one_per_plan_for_a_fingerprint_and_a_customer(
    db_url: str, tmp_path: Path, clock: Clock
) -> None:
    """The fingerprint of a file customer who trialed Annual still gets Starter's trial at
    sign-up (one trial per fingerprint *per plan*), once. The application's customer, taken
    over by the file, moved to Annual and back to Starter, gets no second trial of Starter:
    the trial `get_or_create` gave is recorded as the file's are."""
    engine = connect(db_url)
    catalog = TRIALS % "true" + ANNUAL + "customers:\n"
    x = "  - {id: x, fingerprint: card_1, plans: [annual]}\n"
    apply_file(engine, write(tmp_path, catalog + x), clock)
    billing = Billing(engine=engine, clock=clock)
    first = billing.get_or_create("a", fingerprint="card_1").plans[0]
    again = billing.get_or_create("b", fingerprint="card_1").plans[0]
    assert (first.plan_id, first.status, again.status) == ("starter", "trialing", "active")
    for plan_id in ("annual", "starter"):
        a = f"  - {{id: a, fingerprint: card_1, plans: [{plan_id}]}}\n"
        apply_file(engine, write(tmp_path, catalog + x + a), clock)
    (plan,) = billing.customer("a").plans
    assert (plan.plan_id, plan.status, plan.trial_ends_at) == ("starter", "active", None)
    engine.dispose()


# --- check and track -----------------------------------------------------------------------


def test_track_check_and_monthly_resets(billing: Billing, clock: Clock) -> None:
    billing.get_or_create("user_1")  # on free from T0: 100 messages a month, 1 seat
    tracked = billing.track("user_1", "messages", 30)
    assert (tracked.balance.usage, tracked.balance.balance) == (30, 70)
    assert tracked.balance.next_reset == datetime(2026, 2, 10, 12, 0)
    assert billing.check("user_1", "messages", 70).allowed
    refused = billing.check("user_1", "messages", 71)
    assert not refused.allowed and refused.balance.balance == 70

    clock.now = datetime(2026, 2, 10, 12, 0)  # the reset is due: check shows it, writes nothing
    due = billing.check("user_1", "messages")
    assert (due.balance.usage, due.balance.next_reset) == (0, datetime(2026, 3, 10, 12, 0))
    assert stored_usage(billing.engine, "user_1", "messages") == 30
    assert billing.track("user_1", "messages", 5).balance.usage == 5

    clock.now = datetime(2026, 5, 20)  # months later: by whole intervals past now
    after = billing.track("user_1", "messages", 1).balance
    assert (after.usage, after.next_reset) == (1, datetime(2026, 6, 10, 12, 0))


def test_continuous_features_never_reset_and_usage_never_goes_below_zero(
    billing: Billing, clock: Clock
) -> None:
    billing.get_or_create("user_1")
    assert billing.track("user_1", "seats", 1).balance.next_reset is None
    assert not billing.check("user_1", "seats").allowed  # 1 seat included, 1 used
    clock.now = datetime(2027, 1, 1)
    assert billing.check("user_1", "seats").balance.usage == 1
    assert billing.track("user_1", "seats", -3).balance.usage == 0
    assert billing.track("user_1", "seats", "0.5").balance.usage == Decimal("0.5")


def test_booleans_overage_and_unlimited_items(billing: Billing) -> None:
    billing.get_or_create("user_1")
    assert billing.check("jane", "sso").allowed and not billing.check("user_1", "sso").allowed
    assert billing.check("jane", "sso").as_dict()["type"] == "boolean"
    seats = billing.check("jane", "seats", 1_000_000).balance  # pro: seats unlimited: true
    assert seats.unlimited and seats.limit is None and seats.balance is None
    billing.track("jane", "messages", 1500)
    overage = billing.check("jane", "messages", 10)
    assert overage.allowed and overage.balance.overage_allowed
    assert overage.balance.balance == -500


def test_credit_systems_deduct_their_credit_cost(billing: Billing) -> None:
    billing.get_or_create("acme_1", email="billing@acme.com")
    tracked = billing.track("acme_1", "images", 10)
    assert (tracked.charged_feature, tracked.charged) == ("credits", 40)
    assert tracked.balance.limit == 1000 and tracked.balance.usage == 40  # 1 pack of 1,000
    images = billing.check("acme_1", "images", 240)
    assert images.allowed and images.credit_system == "credits" and images.needed == 960
    assert not billing.check("acme_1", "images", 241).allowed
    assert billing.check("acme_1", "credits").balance.usage == 40
    assert stored_usage(billing.engine, "acme_1", "credits") == 40
    billing.get_or_create("user_1")  # on free: no images, no credits
    nothing = billing.check("user_1", "images")
    assert not nothing.allowed and not nothing.balance.access and nothing.credit_system is None


def test_usage_survives_reapply_and_grants_are_given_once(
    billing: Billing, tmp_path: Path, clock: Clock, catalog: Path
) -> None:
    billing.get_or_create("acme_1", email="billing@acme.com")
    billing.track("acme_1", "messages", 123)
    billing.track("jane", "messages", 5)  # a balance row the file never declared
    assert make_plan(billing.engine, load_desired(catalog)).empty
    apply_file(billing.engine, catalog, clock)
    more = CATALOG.replace(
        "grants: [{id: onboarding, amount: 50000, expires: 2027-01-01}]",
        "grants: [{id: onboarding, amount: 50000, expires: 2027-01-01}, {id: bonus, amount: 7}]",
    )
    for _ in range(2):
        apply_file(billing.engine, write(tmp_path, more, "more.yaml"), clock)
    after = billing.check("acme_1", "messages").balance
    assert after.usage == 123 and after.granted == 50_007
    assert billing.check("jane", "messages").balance.usage == 5


def test_grants_count_until_they_expire(billing: Billing, clock: Clock) -> None:
    billing.get_or_create("acme_1", email="billing@acme.com")
    clock.now = datetime(2026, 12, 31, 23, 59)
    assert billing.check("acme_1", "messages").balance.limit == 1_050_000
    clock.now = datetime(2027, 1, 1)
    assert billing.check("acme_1", "messages").balance.limit == 1_000_000


ALLOWANCE = """\
  - id: bob
    plans: [free]
    balances:
      messages: {allowance: 500, reset_at: 2026-02-01}
"""


def test_a_declared_allowance_applies_until_its_reset_date(
    db_url: str, tmp_path: Path, clock: Clock
) -> None:
    engine = connect(db_url)
    apply_file(engine, write(tmp_path, CATALOG + ALLOWANCE), clock)
    billing = Billing(engine=engine, clock=clock)
    first = billing.track("bob", "messages", 450).balance
    assert (first.limit, first.next_reset) == (500, datetime(2026, 2, 1))
    clock.now = datetime(2026, 2, 1)
    after = billing.check("bob", "messages").balance
    # the plan's included usage again; resets go on monthly on the plan's cycle (the 10th)
    assert (after.limit, after.usage, after.next_reset) == (100, 0, datetime(2026, 2, 10, 12))
    engine.dispose()


def test_errors_are_clear(billing: Billing) -> None:
    with pytest.raises(UnknownCustomer, match="no customer with id 'nobody'"):
        billing.check("nobody", "messages")
    with pytest.raises(UnknownFeature, match="no feature 'nope' in the catalog"):
        billing.track("jane", "nope", 1)
    with pytest.raises(InvalidRequest, match="boolean"):
        billing.track("jane", "sso", 1)
    with pytest.raises(InvalidRequest, match="value must be a number"):
        billing.track("jane", "messages", "ten")
    with pytest.raises(InvalidRequest, match="finite"):
        billing.track("jane", "messages", "NaN")
    with pytest.raises(InvalidRequest, match="decimal places"):
        billing.check("jane", "messages", "0.0000000000001")
    with pytest.raises(InvalidRequest, match="must not be empty"):
        billing.get_or_create(" ")


def test_check_and_get_or_create_issue_a_fixed_number_of_statements(billing: Billing) -> None:
    billing.get_or_create("user_1")
    with count_statements(billing.engine) as checks:
        billing.check("jane", "messages")
    with count_statements(billing.engine) as found:
        billing.get_or_create("user_1")
    with count_statements(billing.engine) as tracks:
        billing.track("jane", "messages", 1)  # first use: the source's row is made
    # check: the customer, its declared allowances, grants and usage rows, the features and
    # their credit costs, the `past_due` setting, items and custom items, entities
    assert (checks.count, found.count) == (10, 2)
    assert tracks.count == 10 + 4  # read; event, lock, the feature's rows again, insert


# --- idempotency, events, validation -------------------------------------------------------


def events(engine: Engine) -> list[tuple[str, Decimal, str | None]]:
    e = t.usage_events
    query = select(e.c.feature_id, e.c.value, e.c.idempotency_key).order_by(e.c.internal_id)
    with engine.connect() as conn:
        return [
            (row.feature_id, Decimal(row.value), row.idempotency_key) for row in conn.execute(query)
        ]


def test_a_track_with_an_idempotency_key_is_recorded_once(billing: Billing) -> None:
    first = billing.track("jane", "messages", 5, idempotency_key="req-1")
    assert (first.balance.usage, first.replayed) == (5, False)
    again = billing.track("jane", "messages", "5.0", idempotency_key="req-1")
    assert (again.value, again.balance.usage, again.replayed) == (5, 5, True)
    assert again.as_dict()["idempotency_key"] == "req-1"
    billing.track("jane", "messages", 1)  # no key: an event each time
    billing.track("jane", "messages", 1)
    assert stored_usage(billing.engine, "jane", "messages") == 7
    assert events(billing.engine) == [
        ("messages", 5, "req-1"),
        ("messages", 1, None),
        ("messages", 1, None),
    ]
    # keys are per customer
    acme = billing.get_or_create("acme_1", email="billing@acme.com")
    assert not billing.track(acme.id or "", "images", 2, idempotency_key="req-1").replayed
    assert billing.track("acme_1", "images", 2, idempotency_key="req-1").charged == 8
    assert stored_usage(billing.engine, "acme_1", "credits") == 8


def test_an_idempotency_key_used_for_another_event_is_refused(billing: Billing) -> None:
    billing.track("jane", "messages", 5, idempotency_key="req-1")
    with pytest.raises(InvalidRequest, match="idempotency key 'req-1' was used for another"):
        billing.track("jane", "messages", 6, idempotency_key="req-1")
    with pytest.raises(InvalidRequest, match="another event"):
        billing.track("jane", "images", 5, idempotency_key="req-1")
    with pytest.raises(InvalidRequest, match="must not be empty"):
        billing.track("jane", "messages", 5, idempotency_key=" ")
    with pytest.raises(InvalidRequest, match="at most 255"):
        billing.track("jane", "messages", 5, idempotency_key="k" * 256)
    assert stored_usage(billing.engine, "jane", "messages") == 5


def test_ids_and_emails_follow_the_files_rules(billing: Billing) -> None:
    with pytest.raises(InvalidRequest, match="invalid customer id 'jane doe': use up to 255"):
        billing.get_or_create("jane doe")
    with pytest.raises(InvalidRequest, match="invalid customer id '-x'"):
        billing.get_or_create("-x")
    with pytest.raises(InvalidRequest, match="invalid email 'jane': write it as name@example"):
        billing.get_or_create("jane_2", email="jane")
    with pytest.raises(InvalidRequest, match="invalid email"):
        billing.get_or_create("jane_2", email="jane@example.com\n")
    assert billing.get_or_create("org:1|user.2@x+y", email="a.b@c.io").outcome == "created"


def test_required_is_never_negative(billing: Billing) -> None:
    with pytest.raises(InvalidRequest, match="required must be 0 or more, not -5"):
        billing.check("jane", "messages", -5)
    assert billing.check("jane", "messages", 0).allowed


def test_unknown_features_and_customers_get_a_did_you_mean(billing: Billing) -> None:
    with pytest.raises(UnknownFeature, match=r"'mesages' in the catalog \(did you mean 'messages'"):
        billing.check("jane", "mesages")
    with pytest.raises(UnknownFeature, match=r"no feature 'zzz' in the catalog$"):
        billing.track("jane", "zzz", 1)
    with pytest.raises(UnknownCustomer, match=r"no customer with id 'jnae' \(did you mean 'jane'"):
        billing.track("jnae", "messages", 1)
    with pytest.raises(UnknownCustomer, match=r"did you mean 'jane'"):
        billing.balances("janes")


def test_an_aware_clock_is_converted_to_utc(db_url: str, catalog: Path, clock: Clock) -> None:
    engine = connect(db_url)
    apply_file(engine, catalog, clock)
    paris = timezone(timedelta(hours=1))
    aware = Billing(engine=engine, clock=lambda: datetime(2026, 1, 31, 23, 30, tzinfo=paris))
    tracked = aware.track("jane", "messages", 3)
    assert tracked.balance.next_reset == datetime(2026, 2, 10, 12, 0)
    assert aware.now() == datetime(2026, 1, 31, 22, 30)
    # 12:30 in Paris is 11:30 UTC: before the reset at 12:00 UTC
    later = Billing(engine=engine, clock=lambda: datetime(2026, 2, 10, 12, 30, tzinfo=paris))
    assert later.check("jane", "messages").balance.usage == 3
    e = t.usage_events
    with engine.connect() as conn:
        assert conn.execute(select(e.c.created_at)).scalar_one() == datetime(2026, 1, 31, 22, 30)
    engine.dispose()
