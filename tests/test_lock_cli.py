"""The lock on the command line, each run a process of its own (the installed `autumn-sync`):
two applies at once on PostgreSQL, one waiting for the other; a run refused at once by
`--lock-timeout 0`, with nothing done; `force-unlock`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from autumn_sync.cli.common import Options
from autumn_sync.cli.lock import force_unlock
from autumn_sync.config import load_text
from autumn_sync.database import schema as t
from autumn_sync.database.lock import LockHeld, current_lock, locked
from autumn_sync.emulator import DEFAULT_API_KEY
from autumn_sync.pipeline import make_plan, read_current
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from tests.conftest import EXAMPLES
from tests.test_lock import holding
from tests.test_stripe_faults import (
    assert_one_object_per_address,
    cli_command,
    emulator_server,
    expected_addresses,
    listed_objects,
)

EXAMPLE = EXAMPLES / "billing.yaml"
SCRIPT = Path(sys.executable).parent / "autumn-sync"


def environment() -> dict[str, str]:
    """The shell's environment without Stripe settings, output unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def autumn_sync(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`autumn-sync --no-color --database-url DB ARGS` in a process of its own."""
    command = [str(SCRIPT), "--no-color", "--database-url", db, *args]
    return subprocess.run(
        command, env=environment(), capture_output=True, text=True, timeout=120, check=False
    )


def catalog_rows(engine: Engine) -> dict[str, int]:
    counts = {}
    with engine.connect() as conn:
        for table in (
            t.features,
            t.plans,
            t.plan_versions,
            t.rewards,
            t.customers,
            t.customer_plans,
        ):
            counts[table.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
    return counts


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.slow
def test_two_applies_at_once_apply_everything_once(db_url: str, engine: Engine) -> None:
    """Both start together against the same database and Stripe (slowed down, so that the
    first is still applying when the second asks for the lock): the second waits, plans
    against the first's result and finds nothing to do."""
    desired = load_text(EXAMPLE.read_text(encoding="utf-8"))
    apply_args = ("apply", "-f", str(EXAMPLE), "--auto-approve", "--lock-timeout", "120")
    with emulator_server("--latency-ms", "40") as url:
        runs = [
            subprocess.Popen(
                cli_command(db_url, url, *apply_args),
                env=environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=180) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        applied = [out for out, _ in outputs if "Apply complete!" in out]
        unchanged = [(out, err) for out, err in outputs if "No changes." in out]
        assert len(applied) == 1 and len(unchanged) == 1, outputs
        assert "Apply complete! 0 added" not in applied[0]
        waited_err = unchanged[0][1]
        assert "for the lock held by" in waited_err, waited_err  # it did wait
        assert "(apply) since" in waited_err
        assert [err for _, err in outputs if "for the lock held by" in err] == [waited_err]

        gateway = Gateway(StripeConfig(DEFAULT_API_KEY, url))
        after = make_plan(engine, desired, gateway)
        assert after.empty
        assert_one_object_per_address(listed_objects(url), expected_addresses(after))
    assert catalog_rows(engine) == {
        "features": len(desired.features),
        "plans": len(desired.plans),
        "plan_versions": len(desired.plans),
        "rewards": len(desired.rewards),
        "customers": len(desired.customers),
        "customer_plans": 3,  # Jane on pro; Acme on business (its own price), extra_credits
    }
    assert current_lock(engine) is None


@pytest.mark.slow
def test_a_run_refused_by_the_lock_names_the_holder_and_does_nothing(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    with holding(db_url, "plan") as holder:
        info = current_lock(engine)
        assert info is not None and info.lock_id == holder.lock_id
        message = f"Error: {LockHeld(info)}"
        applied = autumn_sync(db_url, "apply", "-f", str(EXAMPLE), "--auto-approve")
        planned = autumn_sync(
            db_url, "plan", "-f", str(EXAMPLE), "--out", str(saved), "--lock-timeout", "0"
        )
    for refused in (applied, planned):
        assert refused.returncode == 1, refused
        assert message in refused.stderr.splitlines(), refused.stderr
        assert f"since {info.since:%Y-%m-%d %H:%M:%S} UTC, lock id {info.lock_id}" in message
        assert f"force-unlock {info.lock_id}" in message
        assert "Traceback" not in refused.stderr
    assert "Apply complete" not in applied.stdout
    assert not saved.exists()
    current = read_current(engine)
    assert (current.features, current.plans, current.rewards) == ({}, {}, {})


@pytest.mark.slow
def test_force_unlock_on_the_command_line(db_url: str, engine: Engine) -> None:
    with holding(db_url) as holder:
        info = current_lock(engine)
        assert info is not None
        wrong = autumn_sync(db_url, "force-unlock", "0badc0de")
        assert wrong.returncode == 1
        assert wrong.stderr == (
            f"Error: no lock with id 0badc0de; the current lock is {info.lock_id} held by "
            f"{info.describe()}\n"
        )
        right = autumn_sync(db_url, "force-unlock", holder.lock_id, "--force")
        assert right.returncode == 0, right.stderr
        assert right.stdout == f"Lock {info.lock_id} (held by {info.describe()}) released.\n"
        applied = autumn_sync(db_url, "apply", "-f", str(EXAMPLE), "--auto-approve")
        assert applied.returncode == 0, applied.stderr
        assert "Apply complete!" in applied.stdout
    again = autumn_sync(db_url, "force-unlock", holder.lock_id)
    assert (again.returncode, again.stderr) == (1, "Error: the billing database is not locked\n")


# --- the command itself, in process ------------------------------------------------------


@click.group()
@click.option("--database-url")
@click.pass_context
def group(ctx: click.Context, database_url: str) -> None:
    """Just enough of the main command to run `force-unlock`."""
    ctx.obj = Options(database_url=database_url, color=False, stripe=None)


group.add_command(force_unlock)


def test_force_unlock_command(db_url: str, engine: Engine) -> None:
    runner = CliRunner()
    with locked(engine, "apply") as info:
        wrong = runner.invoke(group, ["--database-url", db_url, "force-unlock", "nope"])
        assert (wrong.exit_code, wrong.output) == (
            1,
            f"Error: no lock with id nope; the current lock is {info.lock_id} held by "
            f"{info.describe()}\n",
        )
        right = runner.invoke(
            group, ["--database-url", db_url, "force-unlock", info.lock_id, "--force"]
        )
        assert (right.exit_code, right.output) == (
            0,
            f"Lock {info.lock_id} (held by {info.describe()}) released.\n",
        )
        assert current_lock(engine) is None
    gone = runner.invoke(group, ["--database-url", db_url, "force-unlock", info.lock_id])
    assert (gone.exit_code, gone.output) == (1, "Error: the billing database is not locked\n")


def test_force_unlock_without_a_terminal_needs_force(db_url: str, engine: Engine) -> None:
    with locked(engine, "apply") as info:
        refused = CliRunner().invoke(
            group, ["--database-url", db_url, "force-unlock", info.lock_id]
        )
        assert (refused.exit_code, refused.output) == (
            1,
            f"Error: no terminal to confirm on: re-run with --force to release lock "
            f"{info.lock_id} (held by {info.describe()}).\n",
        )
        assert current_lock(engine) == info


@pytest.mark.parametrize(("typed", "released"), [("same", True), ("0badc0de", False), ("", False)])
def test_force_unlock_on_a_terminal_asks_for_the_lock_id(
    db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, typed: str, released: bool
) -> None:
    monkeypatch.setattr("autumn_sync.cli.lock.on_terminal", lambda: True)
    with locked(engine, "apply") as info:
        answer = info.lock_id if typed == "same" else typed
        result = CliRunner().invoke(
            group, ["--database-url", db_url, "force-unlock", info.lock_id], input=f"{answer}\n"
        )
        assert f"Lock {info.lock_id} is held by {info.describe()}. If that run" in result.stderr
        assert "Type the lock id to release it: " in result.stdout
        if released:
            assert result.exit_code == 0, result.output
            assert result.stdout.endswith(
                f"Lock {info.lock_id} (held by {info.describe()}) released.\n"
            )
            assert current_lock(engine) is None
        else:
            assert result.exit_code == 1
            assert result.stderr.endswith(
                f"Error: {answer or 'nothing'} is not {info.lock_id}: the lock was not released.\n"
            )
            assert current_lock(engine) == info
