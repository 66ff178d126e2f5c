"""`autumn-sync` commands. Each parses options, calls the pipeline, renders, and returns an
exit code: 0 success / nothing to do, 1 error, 2 changes present (`plan --detailed-exitcode`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from autumn_sync import __version__
from autumn_sync.cli.apply import apply
from autumn_sync.cli.common import (
    FILE_OPTION,
    LOCK_TIMEOUT_OPTION,
    TARGET_OPTION,
    Options,
    color_wanted,
    fail,
    handles_errors,
    take_lock,
)
from autumn_sync.cli.lock import force_unlock
from autumn_sync.cli.outfile import OutError, check_replaceable, is_saved_plan_file, write_new
from autumn_sync.cli.output import echo, never_fail_on_encoding
from autumn_sync.cli.runtime import check as check_command
from autumn_sync.cli.runtime import customer, track
from autumn_sync.cli.show import show
from autumn_sync.cli.usage import usage
from autumn_sync.cli.webhooks import webhooks
from autumn_sync.config.export import dump_state
from autumn_sync.config.schema import json_schema_text
from autumn_sync.database.engine import database_url, sqlite_path, url_secrets
from autumn_sync.logs import configure as configure_logging
from autumn_sync.model.state import State
from autumn_sync.pipeline import check_drift, load_desired, make_plan, read_current, save_plan
from autumn_sync.plan.saved import SavedPlan, dumps
from autumn_sync.render import RENDERERS
from autumn_sync.render.drift import DRIFT_RENDERERS
from autumn_sync.stripe.gateway import StripeConfig


class Commands(click.Group):
    """The command group, whose usage errors (an unknown option, a bad value) exit 1 like
    every other error: exit 2 means "changes present" or "drift found" to scripts. Its own
    options (`--no-color`, `-v`, `--database-url URL`, …) may also follow the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, globals_first(args, self._global_options()))
        except click.UsageError as exc:
            exc.exit_code = 1  # type: ignore[misc]  # this instance only
            raise

    def _global_options(self) -> GlobalOptions:
        """The group's options (not --help and --version, which the commands have too)."""
        options = [
            p
            for p in self.params
            if isinstance(p, click.Option) and not p.is_eager and p.name != "help"
        ]
        return GlobalOptions(
            flags={o for p in options if p.is_flag or p.count for o in p.opts},
            valued={o for p in options if not (p.is_flag or p.count) for o in p.opts},
        )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = 1  # type: ignore[misc]  # this instance only
            raise


@dataclass(frozen=True)
class GlobalOptions:
    flags: set[str]  # `--no-color`, `-v`, `--verbose`
    valued: set[str]  # `--database-url` and the others that take a value


def globals_first(args: list[str], options: GlobalOptions) -> list[str]:
    """`args` with the group's options found after the command moved before it, so that
    `plan --no-color` means `--no-color plan` (nothing after `--` is moved)."""
    command = _command_at(args, options)
    if command is None:
        return list(args)
    moved: list[str] = []
    kept: list[str] = []
    index = command + 1
    while index < len(args):
        token = args[index]
        if token == "--":
            kept.extend(args[index:])
            break
        taken = kept
        if _is_global(token, options):
            taken = moved
            if token in options.valued and index + 1 < len(args):
                taken.append(token)
                index += 1
                token = args[index]
        taken.append(token)
        index += 1
    return [*args[:command], *moved, args[command], *kept]


def _command_at(args: list[str], options: GlobalOptions) -> int | None:
    """The index of the command's name: the first word that is not a group option or its
    value (None when there is none, or `--` comes first)."""
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--":
            return None
        if not _is_global(token, options):
            return None if token.startswith("-") else index
        index += 2 if token in options.valued else 1
    return None


def _is_global(token: str, options: GlobalOptions) -> bool:
    """Whether `token` is one of the group's options: `--no-color`, `-vv`, `--database-url`,
    `--database-url=URL`."""
    if token in options.flags or token in options.valued:
        return True
    if token.startswith("--") and "=" in token:
        return token.split("=", 1)[0] in options.valued
    letters = {flag[1] for flag in options.flags if len(flag) == 2}
    return len(token) > 1 and token[0] == "-" and token[1] != "-" and set(token[1:]) <= letters


@click.group(cls=Commands)
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
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log what is done on stderr: Stripe requests, lock waits, journal replays, SQL "
    "statement counts (-vv: more). Also AUTUMN_SYNC_LOG=info|debug.",
)
@click.version_option(__version__, prog_name="autumn-sync")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    stripe_api_key: str | None,
    stripe_api_base: str | None,
    no_color: bool,
    verbose: int,
) -> None:
    """Keep a billing catalog (features, plans, rewards) as code and reconcile the billing
    database with it."""
    never_fail_on_encoding(sys.stdout, sys.stderr)
    stripe = StripeConfig.from_env(stripe_api_key, stripe_api_base)
    secrets = [stripe.api_key] if stripe is not None else []
    configure_logging(verbose, [*secrets, *url_secrets(database_url)])
    ctx.obj = Options(database_url=database_url, color=color_wanted(no_color), stripe=stripe)


@cli.command()
@FILE_OPTION
@handles_errors
def validate(path: Path) -> None:
    """Check the billing file; print every problem with FILE:LINE:COLUMN."""
    state = load_desired(path)
    echo(
        f"{path} is valid: {len(state.features)} features, {len(state.plans)} plans, "
        f"{len(state.rewards)} rewards, {len(state.customers)} customers."
    )


@cli.command()
@FILE_OPTION
@click.option(
    "--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    metavar="PLANFILE",
    help="Also save the plan here, for `autumn-sync apply PLANFILE` (takes the lock while "
    "planning).",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@TARGET_OPTION
@LOCK_TIMEOUT_OPTION
@click.pass_obj
@handles_errors
def plan(
    options: Options,
    path: Path,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    lock_timeout: float,
) -> None:
    """Show what apply would change in the billing database and in Stripe."""
    if out is not None:
        _check_out(out, path, options)
    desired = load_desired(path)
    engine = options.engine()
    gateway = options.gateway()
    if out is None:
        change_plan = make_plan(engine, desired, gateway, targets=targets)
    else:
        with take_lock(engine, "plan", lock_timeout):
            change_plan = make_plan(engine, desired, gateway, targets=targets)
        _save(save_plan(change_plan, path, options.database(), targets), out, path, options)
    echo(RENDERERS[fmt](change_plan, options.color), nl=False)
    if detailed_exitcode and not change_plan.empty:
        sys.exit(2)


def _check_out(out: Path, path: Path, options: Options) -> None:
    """Fail unless `--out` may be written: never the billing file, the database, or a file
    autumn-sync did not save (it is checked before planning, and again before the rename)."""
    protected = {"the billing file itself": path}
    database = sqlite_path(options.url())
    if database is not None:
        protected["the billing database"] = database
    try:
        check_replaceable(out, protected, is_saved_plan_file)
    except OutError as exc:
        fail(str(exc))


def _save(saved: SavedPlan, out: Path, path: Path, options: Options) -> None:
    """Write the saved plan to `out` whole or not at all (a new temporary file renamed)."""
    try:
        write_new(out, dumps(saved), lambda: _check_out(out, path, options))
    except OSError as exc:
        fail(f"cannot write the saved plan {out}: {exc.strerror or exc}")
    echo(f"Saved the plan to {out}: `autumn-sync apply {out}` applies exactly it.", err=True)


@cli.command()
@FILE_OPTION
@click.option(
    "--format", "fmt", type=click.Choice(sorted(DRIFT_RENDERERS)), default="text", show_default=True
)
@click.option(
    "--strict",
    is_flag=True,
    help="Count cosmetic differences (a product renamed in the dashboard) as drift too.",
)
@click.pass_obj
@handles_errors
def drift(options: Options, path: Path, fmt: str, strict: bool) -> None:
    """Report what changed outside autumn-sync: in Stripe, and between the file and the
    database. Exit 2 when apply would correct something or a decision is needed; 0 when
    clean or the differences are only cosmetic (apply keeps them); 1 on error."""
    desired = load_desired(path)
    report = check_drift(options.engine(), desired, options.gateway())
    echo(DRIFT_RENDERERS[fmt](report), nl=False)
    if report.found or (strict and report.cosmetic):
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
        echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    echo(
        f"Wrote {out}: {len(state.features)} features, {len(state.active_plans)} plans, "
        f"{len(state.rewards)} rewards.",
        err=True,
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the billing file format."""
    echo(json_schema_text(), nl=False)


cli.add_command(apply)
cli.add_command(force_unlock)
cli.add_command(customer)
cli.add_command(check_command)
cli.add_command(track)
cli.add_command(show)
cli.add_command(usage)
cli.add_command(webhooks)


def main() -> None:
    """Entry point of the `autumn-sync` script."""
    cli(prog_name="autumn-sync")


__all__ = ["Options", "cli", "database_url", "main"]
