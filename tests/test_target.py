"""`--target ADDRESS`: the plan limited to the targets, the parts that mirror them (Stripe
objects, a customer's balances) and, transitively, what they depend on; nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.pipeline import load_desired, make_plan, read_current
from autumn_sync.plan.order import dependency_graph
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.plan.target import TargetError, select
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from tests.conftest import EXAMPLES, run_cli

EXAMPLE = EXAMPLES / "billing.yaml"
KEY = "sk_test_target"

# What each target selects from the example's first plan (an empty database and Stripe).
EXPECTED = {
    ("plan.free",): {"plan.free", "feature.messages", "feature.seats", "stripe_product.free"},
    ("feature.credits",): {"feature.credits", "feature.messages", "feature.image_generations"},
    ("reward.welcome5",): {
        "reward.welcome5",
        "stripe_coupon.welcome5",
        "stripe_promotion_code.welcome5.WELCOME5",
    },
    # A Stripe price needs its product and the plan version it is made from.
    ("stripe_price.pro.base",): {
        "stripe_price.pro.base",
        "stripe_product.pro",
        "plan.pro",
        "feature.messages",
        "feature.seats",
        "feature.sso",
        "feature.storage_gb",
    },
    # A customer: its Stripe customer, and what its subscription to Pro (waiting for
    # checkout) is made of (its 3 included seats too); not the other plans, rewards or
    # customers.
    ("customer.user_123",): {
        "customer.user_123",
        "stripe_customer.user_123",
        "plan.pro",
        "feature.messages",
        "feature.seats",
        "feature.sso",
        "feature.storage_gb",
        "stripe_product.pro",
        "stripe_product.pro.messages",
        "stripe_product.pro.seats",
        "stripe_meter.pro.messages",
        "stripe_price.pro.base",
        "stripe_price.pro.messages",
        "stripe_price.pro.seats",
    },
    # A pre-provisioned customer with a custom version of Business: its balance, its custom
    # prices, its subscriptions, and the catalog they stand on (its launch20 discount applies
    # to every product of Pro too, so the coupon needs them).
    ("customer[billing@acme.com]", "reward.welcome5"): {
        "customer[billing@acme.com]",
        "balance[billing@acme.com].messages",
        "stripe_customer[billing@acme.com]",
        "stripe_subscription[billing@acme.com].year",
        "stripe_subscription[billing@acme.com].month",
        "stripe_price.business.base[billing@acme.com]",
        "stripe_price.business.messages[billing@acme.com]",
        "stripe_price.extra_credits.credits",
        "stripe_product.business",
        "stripe_product.business.messages",
        "stripe_product.extra_credits.credits",
        "stripe_meter.business.messages",
        "plan.business",
        "plan.extra_credits",
        "feature.credits",
        "feature.image_generations",
        "feature.messages",
        "feature.priority_support",
        "feature.seats",
        "feature.sso",
        "feature.storage_gb",
        "reward.launch20",
        "stripe_coupon.launch20",
        "plan.pro",
        "stripe_product.pro",
        "stripe_product.pro.messages",
        "stripe_product.pro.seats",
        "reward.welcome5",
        "stripe_coupon.welcome5",
        "stripe_promotion_code.welcome5.WELCOME5",
    },
}


@pytest.fixture(scope="module")
def full_plan() -> Iterator[ChangePlan]:
    with Emulator() as emu:
        engine = connect("sqlite://")
        yield make_plan(engine, load_desired(EXAMPLE), Gateway(StripeConfig(KEY, emu.url)))
        engine.dispose()


@pytest.mark.parametrize("targets", sorted(EXPECTED), ids=", ".join)
def test_selects_exactly_the_dependency_closure(
    full_plan: ChangePlan, targets: tuple[str, ...]
) -> None:
    limited = select(full_plan, targets)
    assert {c.address for c in limited.changes} == EXPECTED[targets]
    assert [c for c in full_plan.changes if c in limited.changes] == list(limited.changes)
    assert limited.warnings[-1].startswith(f"this plan is partial: it is limited to {targets[0]}")


def test_every_selection_is_closed_under_dependencies(full_plan: ChangePlan) -> None:
    """Whatever the target, a selected change never misses a change it must follow."""
    graph = dependency_graph(full_plan.changes)
    for change in full_plan.changes:
        selected = {c.address for c in select(full_plan, [change.address]).changes}
        assert change.address in selected
        for address in selected:
            missing = [d for d in graph[address] if d not in selected]
            assert not missing, (change.address, address, missing)


def test_unknown_target_is_an_error_with_a_suggestion(full_plan: ChangePlan) -> None:
    with pytest.raises(TargetError, match=r"--target plan\.por: .*did you mean plan\.pro\?"):
        select(full_plan, ["plan.por"])


def test_apply_with_target_applies_only_the_closure(tmp_path: Path, sqlite_url: str) -> None:
    example = str(EXAMPLE)
    planned = run_cli("plan", "-f", example, "--target", "plan.free", db=sqlite_url)
    assert planned.exit_code == 0
    assert "Warning: this plan is partial: it is limited to plan.free" in planned.output
    assert "Plan: 3 to add, 0 to change, 0 to archive, 0 to destroy." in planned.output

    applied = run_cli(
        "apply", "-f", example, "--target", "plan.free", "--auto-approve", db=sqlite_url
    )
    assert applied.exit_code == 0, applied.output
    state = load_desired(EXAMPLE)
    current = connect(sqlite_url)
    held = read_current(current)
    assert set(held.plans) == {"free"}
    assert set(held.features) == {"messages", "seats"}
    rest = make_plan(current, state)
    assert "plan.free" not in {c.address for c in rest.changes}
    assert len(rest.changes) == len(make_plan(connect("sqlite://"), state).changes) - 3

    bad = run_cli("plan", "-f", example, "--target", "plan.nope", db=sqlite_url)
    assert bad.exit_code == 1
    assert "Error: --target plan.nope: no such object in the file or the plan" in bad.output
    current.dispose()
