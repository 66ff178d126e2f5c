"""Saved plans: `plan --out PLANFILE` then `apply PLANFILE` applies exactly the reviewed
changes, in a fresh process, and refuses a stale plan (database, Stripe or billing file
changed since) with nothing applied. The file holds no secret and cannot be edited."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.model.stripe import OWNER_KEY
from autumn_sync.pipeline import apply_plan, load_desired, make_plan, read_current, save_plan
from autumn_sync.plan.changes import Create
from autumn_sync.plan.plan import ChangePlan, fingerprint
from autumn_sync.plan.saved import SavedPlanError, _canonical, _sha, dumps, encode, loads
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from tests.conftest import EXAMPLES, run_cli
from tests.test_golden import CASES, GOLDEN, _prepare

KEY = "sk_test_saved_plan_secret"
SCRIPT = str(Path(sys.executable).parent / "autumn-sync")


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def stripe_objects(emu: Emulator) -> dict[str, list[dict[str, Any]]]:
    return {kind: emu.state.all(kind) for kind in emu.state.tables}


def raised_price(tmp_path: Path) -> Path:
    """The example with Pro at $25 instead of $20 (a new plan version, a new Stripe price)."""
    path = tmp_path / "billing.yaml"
    example = (EXAMPLES / "billing.yaml").read_text(encoding="utf-8")
    changed = example.replace(
        "price: {amount: 20, interval: month}", "price: {amount: 25, interval: month}"
    )
    assert changed != example
    path.write_text(changed, encoding="utf-8")
    return path


# The encoding: every golden case, with Stripe connected, decodes into the same records (types
# included) and the decoded plan applies and converges like the original.


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_every_golden_plan_survives_saving(case: str, sqlite_url: str) -> None:
    folder = GOLDEN / case
    desired = load_desired(folder / "after.yaml")
    engine = connect(sqlite_url)
    with Emulator() as emu:
        gateway = Gateway(StripeConfig(KEY, emu.url))
        _prepare(engine, folder, gateway)
        plan = make_plan(engine, desired, gateway)
        saved = loads(dumps(save_plan(plan, folder / "after.yaml", "db")))
        assert encode(saved.plan) == encode(plan)
        assert saved.plan.checksum() == plan.checksum()
        apply_plan(engine, saved.plan, allow_destroy=True, gateway=gateway)
        assert make_plan(engine, desired, gateway).empty
    engine.dispose()


def test_edited_or_foreign_files_are_refused(tmp_path: Path, sqlite_url: str) -> None:
    engine = connect(sqlite_url)
    path = EXAMPLES / "billing.yaml"
    text_ = dumps(save_plan(make_plan(engine, load_desired(path)), path, "db"))
    body = json.loads(text_)
    body["plan"]["changes"]["@tuple"].pop()
    with pytest.raises(SavedPlanError, match="edited or is incomplete"):
        loads(json.dumps(body))
    with pytest.raises(SavedPlanError, match="not a saved plan"):
        loads("{}")
    with pytest.raises(SavedPlanError, match="not a saved plan"):
        loads(text_[: len(text_) // 2])
    body = json.loads(text_)
    body["autumn_sync_version"] = "0.0.1"
    body.pop("sha256")
    body["sha256"] = _sha(_canonical(body))
    with pytest.raises(SavedPlanError, match=r"saved by autumn-sync 0\.0\.1"):
        loads(json.dumps(body))
    engine.dispose()


# The command line, in fresh processes as CI runs it.


def cli(*args: str, cwd: Path, db: str, emu: Emulator) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTUMN_SYNC_DATABASE_URL": db, "NO_COLOR": "1"}
    env.update(STRIPE_API_KEY=KEY, STRIPE_API_BASE=emu.url)
    return subprocess.run(
        [SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_saved_plan_applies_exactly_its_changes_in_a_fresh_process(
    tmp_path: Path, db_url: str, emu: Emulator
) -> None:
    (tmp_path / "billing.yaml").write_text(
        (EXAMPLES / "billing.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    planned = cli("plan", "--out", "reviewed.plan", cwd=tmp_path, db=db_url, emu=emu)
    assert planned.returncode == 0, planned.stderr
    assert "Saved the plan to reviewed.plan" in planned.stderr
    saved = loads((tmp_path / "reviewed.plan").read_text(encoding="utf-8"))
    assert len(saved.plan.changes) > 20

    applied = cli("apply", "reviewed.plan", cwd=tmp_path, db=db_url, emu=emu)
    assert applied.returncode == 0, applied.stderr
    done = [line.split(": ")[0] for line in applied.stdout.splitlines() if _done_line(line)]
    assert sorted(done) == sorted(c.address for c in saved.plan.changes)
    assert "Apply complete!" in applied.stdout

    again = cli("plan", "--detailed-exitcode", cwd=tmp_path, db=db_url, emu=emu)
    assert again.returncode == 0, again.stdout + again.stderr
    twice = cli("apply", "reviewed.plan", cwd=tmp_path, db=db_url, emu=emu)
    assert twice.returncode == 1
    assert "saved plan is stale: the database changed since the plan was made" in twice.stderr


def _done_line(line: str) -> bool:
    verbs = ("created", "updated", "archived", "replaced", "destroyed")
    return any(line.endswith(f": {verb}") for verb in verbs)


class Stripe:
    def __init__(self, emu: Emulator, db: str) -> None:
        self.emu, self.db = emu, db

    def run(self, *args: str) -> Result:
        return run_cli(
            "--stripe-api-key", KEY, "--stripe-api-base", self.emu.url, *args, db=self.db
        )


def _edit_database(env: Stripe, _file: Path) -> None:
    engine = create_engine(env.db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE features SET name = 'SAML' WHERE id = 'sso'"))
    engine.dispose()


def _edit_stripe(env: Stripe, _file: Path) -> None:
    product = next(
        p
        for p in env.emu.state.all("product")
        if p["metadata"].get(OWNER_KEY) == "stripe_product.pro"
    )
    env.emu.state.modify("product", product["id"], name="Pro (dashboard)")


def _edit_file(_env: Stripe, file: Path) -> None:
    file.write_text(file.read_text(encoding="utf-8").replace("For small teams.", "For teams."))


STALE = {
    "database": (_edit_database, "the database changed since the plan was made"),
    "stripe": (_edit_stripe, "objects in Stripe changed since the plan was made"),
    "file": (_edit_file, "the billing file {file} changed since the plan was made"),
}


def reviewed(env: Stripe, file: Path) -> Path:
    """The example applied, then `file` planned and saved (`reviewed.plan` beside it)."""
    assert env.run("apply", "-f", str(EXAMPLES / "billing.yaml"), "--auto-approve").exit_code == 0
    planfile = file.with_name("reviewed.plan")
    assert env.run("plan", "-f", str(file), "--out", str(planfile)).exit_code == 0
    return planfile


@pytest.mark.parametrize("kind", sorted(STALE))
def test_stale_plans_are_refused_with_nothing_applied(
    kind: str, tmp_path: Path, sqlite_url: str, emu: Emulator
) -> None:
    env = Stripe(emu, sqlite_url)
    file = raised_price(tmp_path)
    planfile = reviewed(env, file)
    edit, message = STALE[kind]
    edit(env, file)
    engine = connect(sqlite_url)
    state_before, objects_before = fingerprint(read_current(engine)), stripe_objects(emu)

    result = env.run("apply", str(planfile))

    assert result.exit_code == 1
    assert f"Error: saved plan is stale: {message.format(file=file)}" in result.output
    assert "Nothing was applied; run plan again" in result.output
    assert fingerprint(read_current(engine)) == state_before
    assert stripe_objects(emu) == objects_before
    engine.dispose()


def test_saved_plan_holds_no_secret(tmp_path: Path, emu: Emulator) -> None:
    base = os.environ.get("AUTUMN_SYNC_TEST_POSTGRESQL_URL")
    if not base:
        pytest.skip("needs PostgreSQL (trust authentication takes any password)")
    from tests.conftest import server_url

    url = make_url(server_url("postgresql")).set(password="hunter2-db-password")
    db = url.render_as_string(hide_password=False)
    planfile = tmp_path / "reviewed.plan"
    result = Stripe(emu, db).run(
        "plan", "-f", str(EXAMPLES / "billing.yaml"), "--out", str(planfile)
    )
    assert result.exit_code == 0, result.output
    saved = planfile.read_text(encoding="utf-8")
    for secret in ("hunter2-db-password", KEY, db):
        assert secret not in saved


def test_a_plan_is_applied_only_to_the_database_it_was_made_against(
    tmp_path: Path, sqlite_url: str
) -> None:
    planfile = tmp_path / "reviewed.plan"
    example = str(EXAMPLES / "billing.yaml")
    assert run_cli("plan", "-f", example, "--out", str(planfile), db=sqlite_url).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = run_cli("apply", str(planfile), db=other)
    assert result.exit_code == 1
    assert "saved plan is stale: it was made against another database" in result.output
    assert read_current(connect(other)).features == {}


def test_planfile_and_file_together_are_refused(tmp_path: Path, sqlite_url: str) -> None:
    planfile = tmp_path / "reviewed.plan"
    example = str(EXAMPLES / "billing.yaml")
    assert run_cli("plan", "-f", example, "--out", str(planfile), db=sqlite_url).exit_code == 0
    result = run_cli("apply", str(planfile), "-f", example, db=sqlite_url)
    assert result.exit_code == 1
    assert "give PLANFILE or -f FILE" in result.output
    missing = run_cli("apply", str(tmp_path / "nope.plan"), db=sqlite_url)
    assert missing.exit_code == 1
    assert "cannot read the saved plan" in missing.output
    yaml_file = run_cli("apply", example, db=sqlite_url)
    assert yaml_file.exit_code == 1
    assert f"to plan and apply a billing file: autumn-sync apply -f {example}" in yaml_file.output


def test_the_rest_of_the_stripe_account_is_neither_saved_nor_a_reason_for_staleness(
    tmp_path: Path, sqlite_url: str, emu: Emulator
) -> None:
    """Customers the application signs up in Stripe between plan and apply (and those that
    were there before) are not the plan's business: not in the file, not making it stale."""
    emu.call("POST", "/v1/customers", {"email": "before@private.example", "name": "Before"})
    env = Stripe(emu, sqlite_url)
    assert env.run("apply", "-f", str(EXAMPLES / "billing.yaml"), "--auto-approve").exit_code == 0
    file = raised_price(tmp_path)
    planfile = tmp_path / "reviewed.plan"
    assert env.run("plan", "-f", str(file), "--out", str(planfile)).exit_code == 0
    saved = planfile.read_text(encoding="utf-8")
    assert "before@private.example" not in saved and "Before" not in saved
    emu.call("POST", "/v1/customers", {"email": "after@private.example", "name": "After"})

    result = env.run("apply", str(planfile))

    assert result.exit_code == 0, result.output
    assert "Apply complete! 1 added, 1 changed" in result.output
    assert env.run("plan", "-f", str(file), "--detailed-exitcode").exit_code == 0


# A saved plan is applied only if its changes are exactly those the billing file makes against
# the database and Stripe it was made against: its digests are plain hashes, so anyone can edit
# a plan file and digest it again (as `_forge` does, with the project's own encoder).


def _forge(planfile: Path, edit: Any) -> None:
    saved = loads(planfile.read_text(encoding="utf-8"))
    forged = dataclasses.replace(saved, plan=edit(saved.plan))
    planfile.write_text(dumps(forged), encoding="utf-8")
    assert loads(planfile.read_text(encoding="utf-8")).plan == forged.plan


def _map_change(address: str, change_after: Any) -> Any:
    def edit(plan: ChangePlan) -> ChangePlan:
        changes = tuple(
            dataclasses.replace(c, after=change_after(c.after)) if c.address == address else c
            for c in plan.changes
        )
        assert changes != plan.changes, f"{address} is not in the plan"
        return dataclasses.replace(plan, changes=changes)

    return edit


def _cheaper_pro(after: Any) -> Any:
    content = after.content
    price = dataclasses.replace(content.price, amount=Decimal("0.5"))
    return dataclasses.replace(after, content=dataclasses.replace(content, price=price))


def _other_email(after: Any) -> Any:
    return dataclasses.replace(after, email="attacker@evil.example")


def _extra_customer(plan: ChangePlan) -> ChangePlan:
    model = next(c for c in plan.changes if c.address == "customer.user_123")
    record = dataclasses.replace(model.record, key=".intruder", customer_id="intruder")
    extra = Create(address="customer.intruder", before=None, after=record)
    return dataclasses.replace(plan, changes=(*plan.changes, extra))


def _cheaper_stripe_price(plan: ChangePlan) -> ChangePlan:
    assert plan.stripe is not None
    desired = plan.stripe.desired
    address = "stripe_price.pro.base"
    price = dataclasses.replace(desired.prices[address], unit_amount_decimal=Decimal("50"))
    stripe_desired = dataclasses.replace(desired, prices={**desired.prices, address: price})
    snapshot = dataclasses.replace(plan.stripe, desired=stripe_desired)
    return dataclasses.replace(plan, stripe=snapshot)


FORGERIES: dict[str, tuple[Any, str]] = {
    "plan price 25 -> 0.5": (_map_change("plan.pro", _cheaper_pro), "plan.pro"),
    "a customer's email": (_map_change("customer.user_123", _other_email), "customer.user_123"),
    "a customer added": (_extra_customer, "customer.intruder"),
    "a Stripe price's amount": (_cheaper_stripe_price, "the Stripe objects it writes"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_saved_plan_edited_by_hand_is_refused_with_nothing_applied(
    forgery: str, tmp_path: Path, sqlite_url: str, emu: Emulator
) -> None:
    env = Stripe(emu, sqlite_url)
    file = raised_price(tmp_path)
    file.write_text(
        file.read_text(encoding="utf-8").replace("Jane Doe", "Jane Roe"), encoding="utf-8"
    )
    planfile = reviewed(env, file)
    edit, named = FORGERIES[forgery]
    _forge(planfile, edit)
    engine = connect(sqlite_url)
    state_before, objects_before = fingerprint(read_current(engine)), stripe_objects(emu)

    result = env.run("apply", str(planfile))

    assert result.exit_code == 1, result.output
    assert "Error: the saved plan does not hold the changes its billing file makes" in (
        result.output
    )
    assert f"(differing: {named})" in result.output
    assert "Nothing was applied; run plan again" in result.output
    assert fingerprint(read_current(engine)) == state_before
    assert stripe_objects(emu) == objects_before
    engine.dispose()
    # The plan as saved, unedited, applies.
    assert env.run("plan", "-f", str(file), "--out", str(planfile)).exit_code == 0
    assert env.run("apply", str(planfile)).exit_code == 0
