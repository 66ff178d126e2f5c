"""`autumn-sync apply`: plan from the billing file and apply after confirmation, or apply a
saved plan (`plan --out`) exactly, under the billing database's lock."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine

from autumn_sync.cli.common import (
    LOCK_TIMEOUT_OPTION,
    TARGET_OPTION,
    fail,
    handles_errors,
    take_lock,
)
from autumn_sync.cli.output import echo
from autumn_sync.cli.progress import Progress
from autumn_sync.pipeline import (
    StalePlan,
    apply_plan,
    check_destroys,
    check_saved,
    load_desired,
    make_plan,
)
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.plan.saved import SavedPlan, SavedPlanError, loads
from autumn_sync.render import RENDERERS
from autumn_sync.stripe.gateway import Gateway

if TYPE_CHECKING:
    from autumn_sync.cli.common import Options

DEFAULT_FILE = Path("billing.yaml")


@click.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path))
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The billing file [default: billing.yaml]; not with PLANFILE.",
)
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking (needed without a terminal)."
)
@click.option("--allow-destroy", is_flag=True, help="Allow deleting features, plans and rewards.")
@click.option(
    "--allow-resubscribe",
    is_flag=True,
    help="Allow subscribing again customers who cancelled in Stripe (it charges them).",
)
@TARGET_OPTION
@LOCK_TIMEOUT_OPTION
@click.pass_obj
@handles_errors
def apply(
    options: Options,
    planfile: Path | None,
    path: Path | None,
    auto_approve: bool,
    allow_destroy: bool,
    allow_resubscribe: bool,
    targets: tuple[str, ...],
    lock_timeout: float,
) -> None:
    """Plan from the billing file, show the plan, and apply it after confirmation. With
    PLANFILE (made by `plan --out`), apply exactly that plan, without asking: it is refused,
    with nothing done, when the database, Stripe or the billing file changed since.
    Subscribing again a customer who cancelled in Stripe needs --allow-resubscribe: without
    it, those changes are named and left out, the rest is applied, and the exit code is 1."""
    allowed = Allowed(allow_destroy, allow_resubscribe)
    if planfile is None:
        _apply_file(options, path or DEFAULT_FILE, auto_approve, allowed, targets, lock_timeout)
        return
    if path is not None or targets:
        fail("a saved plan is applied as it is: give PLANFILE or -f FILE (with --target), not both")
    _apply_saved(options, _read_saved(planfile), allowed, lock_timeout)


@dataclass(frozen=True)
class Allowed:
    """What the command line allows beyond the plain changes."""

    destroy: bool
    resubscribe: bool


def _apply_file(
    options: Options,
    path: Path,
    auto_approve: bool,
    allowed: Allowed,
    targets: tuple[str, ...],
    lock_timeout: float,
) -> None:
    desired = load_desired(path)
    engine = options.engine()
    gateway = options.gateway()
    with take_lock(engine, "apply", lock_timeout):
        change_plan = make_plan(engine, desired, gateway, targets=targets)
        echo(RENDERERS["text"](change_plan, options.color), nl=False)
        if change_plan.empty:
            return
        check_destroys(change_plan, allowed.destroy)
        _confirm(auto_approve)
        _run(engine, change_plan, gateway, allowed, options.color)


def _read_saved(planfile: Path) -> SavedPlan:
    try:
        text = planfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the saved plan {planfile}: {getattr(exc, 'strerror', None) or exc}")
    try:
        return loads(text)
    except SavedPlanError as exc:
        hint = ""
        if planfile.suffix in (".yaml", ".yml"):
            hint = f"; to plan and apply a billing file: autumn-sync apply -f {planfile}"
        fail(f"{planfile}: {exc}{hint}")


def _apply_saved(options: Options, saved: SavedPlan, allowed: Allowed, timeout: float) -> None:
    engine = options.engine()
    gateway = options.gateway()
    with take_lock(engine, "apply", timeout):
        try:
            verified = check_saved(engine, saved, options.database(), gateway)
            echo(RENDERERS["text"](verified, options.color), nl=False)
            if verified.empty:
                return
            check_destroys(verified, allowed.destroy)
            _run(engine, verified, gateway, allowed, options.color)
        except StalePlan as exc:
            fail(
                f"saved plan is stale: {exc}. Nothing was applied; run plan again and review "
                "the new plan."
            )


def _confirm(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        fail("no terminal to confirm on: re-run with --auto-approve to apply without asking.")
    if not click.confirm("Apply these changes?", default=False):
        echo("Apply cancelled. Nothing was changed.")
        sys.exit(1)


def _run(
    engine: Engine, change_plan: ChangePlan, gateway: Gateway | None, allowed: Allowed, color: bool
) -> None:
    refused = () if allowed.resubscribe else change_plan.resubscribes
    applying = tuple(c for c in change_plan.changes if c not in refused)
    with Progress(applying, color) as progress:
        apply_plan(
            engine,
            change_plan,
            allow_destroy=allowed.destroy,
            allow_resubscribe=allowed.resubscribe,
            gateway=gateway,
            on_change=progress.done,
        )
    summary = replace(change_plan, changes=applying).summary()
    done = (
        f"Apply complete! {summary.add} added, {summary.change} changed, "
        f"{summary.archive} archived, {summary.destroy} destroyed."
    )
    echo(click.style(done, fg="green", bold=True) if color else done)
    if refused:
        for change in refused:
            echo(f"Not applied: {change.address}: {change.reason}", err=True)
        fail(
            f"{len(refused)} change(s) would charge customers who cancelled in Stripe and were "
            "left out; re-run with --allow-resubscribe to subscribe them again, or take the "
            "plans off those customers in the file."
        )
