"""`autumn-sync` commands. Each parses options, calls the pipeline, renders, and returns an
exit code: 0 success / nothing to do, 1 error, 2 changes present (`plan --detailed-exitcode`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from autumn_sync import __version__
from autumn_sync.cli.runtime import check as check_command
from autumn_sync.cli.runtime import customer, track
from autumn_sync.cli.show import show
from autumn_sync.config import ConfigError
from autumn_sync.config.export import dump_state
from autumn_sync.config.schema import json_schema_text
from autumn_sync.db.engine import DatabaseError, connect, database_url
from autumn_sync.diff.catalog import PlanConflict
from autumn_sync.model.state import State
from autumn_sync.pipeline import (
    ApplyRefused,
    apply_plan,
    check_destroys,
    check_drift,
    load_desired,
    make_plan,
    read_current,
)
from autumn_sync.plan.changes import Change
from autumn_sync.render import RENDERERS
from autumn_sync.render.drift import DRIFT_RENDERERS
from autumn_sync.render.values import ACTION_WORDS
from autumn_sync.stripe.executor import StripeApplyFailed
from autumn_sync.stripe.gateway import Gateway, StripeConfig, StripeFailure

F = TypeVar("F", bound=Callable[..., Any])

FILE_OPTION = click.option(
    "-f",
    "--file",
    "path",
    default="billing.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The billing file.",
)


NOT_CONNECTED = "Stripe is not connected (no STRIPE_API_KEY): planning the billing database only."


@dataclass
class Options:
    database_url: str | None
    color: bool
    stripe: StripeConfig | None

    def engine(self) -> Engine:
        return connect(self.database_url)

    def gateway(self) -> Gateway | None:
        """The Stripe gateway, or None (said once on stderr) without an API key."""
        if self.stripe is None:
            click.echo(NOT_CONNECTED, err=True)
            return None
        return Gateway(self.stripe)


def _color_wanted(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def fail(message: str) -> None:
    """Print `Error: message` to stderr and exit 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def handles_errors(func: F) -> F:
    """Turn the pipeline's known errors into a message and exit code 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            count = len(exc.problems)
            click.echo(f"{count} problem{'s' if count != 1 else ''} found.", err=True)
            sys.exit(1)
        except (DatabaseError, PlanConflict, ApplyRefused) as exc:
            fail(str(exc))
        except StripeFailure as exc:
            fail(f"Stripe: {exc}")
        except StripeApplyFailed as exc:
            _report_partial(exc)
        except SQLAlchemyError as exc:
            fail(f"database error: {str(exc).splitlines()[0]} (nothing was written)")

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option(
    "--database-url",
    envvar="AUTUMN_SYNC_DATABASE_URL",
    help="SQLAlchemy URL of the billing database [default: sqlite:///autumn-sync.db].",
)
@click.option(
    "--stripe-api-key",
    envvar="STRIPE_API_KEY",
    help="Stripe secret key; without one only the database is planned and applied.",
)
@click.option(
    "--stripe-api-base",
    envvar="STRIPE_API_BASE",
    help="Stripe API address, e.g. a local emulator (python -m autumn_sync.emulator).",
)
@click.option("--no-color", is_flag=True, help="Plain output (also when NO_COLOR is set).")
@click.version_option(__version__, prog_name="autumn-sync")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    stripe_api_key: str | None,
    stripe_api_base: str | None,
    no_color: bool,
) -> None:
    """Keep a billing catalog (features, plans, rewards) as code and reconcile the billing
    database with it."""
    ctx.obj = Options(
        database_url=database_url,
        color=_color_wanted(no_color),
        stripe=StripeConfig.from_env(stripe_api_key, stripe_api_base),
    )


@cli.command()
@FILE_OPTION
@handles_errors
def validate(path: Path) -> None:
    """Check the billing file; print every problem with FILE:LINE:COLUMN."""
    state = load_desired(path)
    click.echo(
        f"{path} is valid: {len(state.features)} features, {len(state.plans)} plans, "
        f"{len(state.rewards)} rewards, {len(state.customers)} customers."
    )


@cli.command()
@FILE_OPTION
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@click.pass_obj
@handles_errors
def plan(options: Options, path: Path, fmt: str, detailed_exitcode: bool) -> None:
    """Show what apply would change in the billing database."""
    desired = load_desired(path)
    change_plan = make_plan(options.engine(), desired, options.gateway())
    click.echo(RENDERERS[fmt](change_plan, options.color), nl=False)
    if detailed_exitcode and not change_plan.empty:
        sys.exit(2)


@cli.command()
@FILE_OPTION
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking (needed without a terminal)."
)
@click.option("--allow-destroy", is_flag=True, help="Allow deleting features, plans and rewards.")
@click.pass_obj
@handles_errors
def apply(options: Options, path: Path, auto_approve: bool, allow_destroy: bool) -> None:
    """Plan, show the plan, and apply it after confirmation."""
    desired = load_desired(path)
    engine = options.engine()
    gateway = options.gateway()
    change_plan = make_plan(engine, desired, gateway)
    click.echo(RENDERERS["text"](change_plan, options.color), nl=False)
    if change_plan.empty:
        return
    check_destroys(change_plan, allow_destroy)
    _confirm(auto_approve)
    apply_plan(
        engine,
        change_plan,
        allow_destroy=allow_destroy,
        gateway=gateway,
        on_change=lambda change: click.echo(f"{change.address}: {_done(change)}"),
    )
    summary = change_plan.summary()
    click.echo(
        f"Apply complete! {summary.add} added, {summary.change} changed, "
        f"{summary.archive} archived, {summary.destroy} destroyed."
    )


def _confirm(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        fail("no terminal to confirm on: re-run with --auto-approve to apply without asking.")
    if not click.confirm("Apply these changes?", default=False):
        click.echo("Apply cancelled. Nothing was changed.")
        sys.exit(1)


def _done(change: Change) -> str:
    words = {
        "create": "created",
        "update in place": "updated",
        "archive": "archived",
        "replace": "replaced",
    }
    return words.get(ACTION_WORDS[type(change)], "destroyed")


def _report_partial(exc: StripeApplyFailed) -> None:
    """Stripe stopped part-way: say what was done, what failed, and how to go on."""
    click.echo(f"Error: Stripe change {exc.change.address} failed: {exc.error}", err=True)
    click.echo(
        f"{len(exc.done)} Stripe change(s) were made before it (the database changes were "
        "applied). Run apply again: it plans from what Stripe now holds and finishes the rest.",
        err=True,
    )
    sys.exit(1)


@cli.command()
@FILE_OPTION
@click.option(
    "--format", "fmt", type=click.Choice(sorted(DRIFT_RENDERERS)), default="text", show_default=True
)
@click.pass_obj
@handles_errors
def drift(options: Options, path: Path, fmt: str) -> None:
    """Report what changed outside autumn-sync: in Stripe, and between the file and the
    database. Exit 0 when clean, 2 when drift is found, 1 on error."""
    desired = load_desired(path)
    report = check_drift(options.engine(), desired, options.gateway())
    click.echo(DRIFT_RENDERERS[fmt](report), nl=False)
    if report.found:
        sys.exit(2)


@cli.command(name="import")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the YAML here instead of to standard output.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.pass_obj
@handles_errors
def import_(options: Options, out: Path | None, force: bool) -> None:
    """Write the YAML that describes what the billing database holds now."""
    if out is not None and out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it.")
    state: State = read_current(options.engine())
    text = dump_state(state)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    click.echo(
        f"Wrote {out}: {len(state.features)} features, {len(state.active_plans)} plans, "
        f"{len(state.rewards)} rewards.",
        err=True,
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the billing file format."""
    click.echo(json_schema_text(), nl=False)


cli.add_command(customer)
cli.add_command(check_command)
cli.add_command(track)
cli.add_command(show)


def main() -> None:
    """Entry point of the `autumn-sync` script."""
    cli(prog_name="autumn-sync")


__all__ = ["cli", "database_url", "main"]
