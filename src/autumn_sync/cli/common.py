"""What the commands share: the global options, the `-f FILE` option, and the turning of the
pipeline's known errors into `Error: …` and exit code 1 (never a traceback)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from autumn_sync.cli.output import echo
from autumn_sync.config import ConfigError
from autumn_sync.database.diff.catalog import PlanConflict
from autumn_sync.database.engine import (
    DatabaseError,
    connect,
    database_identity,
    database_url,
)
from autumn_sync.database.lock import LockError, LockHeld, LockInfo, locked
from autumn_sync.pipeline import ApplyRefused
from autumn_sync.plan.saved import SavedPlanError
from autumn_sync.plan.target import TargetError
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
TARGET_OPTION = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDRESS",
    help="Limit the plan to this object and what it depends on (repeatable); the plan is "
    "then partial.",
)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)")
DURATION_RULE = "use seconds (30, 2.5) or a number with s, m or h (30s, 5m, 1h)"


def parse_duration(text: str) -> float | None:
    """Seconds in `text` (`30`, `2.5`, `30s`, `5m`, `1h`), or None if it is not a duration
    (negative, not a number, or another unit)."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        return None
    return float(found[1]) * _UNITS[found[2]]


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    """The option's value in seconds (click turns the error into a usage error, exit 1)."""
    seconds = parse_duration(value)
    if seconds is None:
        raise click.BadParameter(f"{value!r} is not a duration: {DURATION_RULE}.")
    return seconds


LOCK_TIMEOUT_OPTION = click.option(
    "--lock-timeout",
    callback=_duration,
    default="0",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for another run's lock on the billing database: seconds, or 30s, "
    "5m, 1h (0: fail at once).",
)

# Errors whose message is ready to print after `Error: `.
KNOWN_ERRORS = (
    DatabaseError,
    PlanConflict,
    ApplyRefused,
    TargetError,
    LockHeld,
    LockError,
    SavedPlanError,
)

NOT_CONNECTED = "Stripe is not connected (no STRIPE_API_KEY): planning the billing database only."


@dataclass
class Options:
    database_url: str | None
    color: bool
    stripe: StripeConfig | None

    def url(self) -> str:
        """The billing database's URL; `DatabaseError` when it is empty, or unnamed while a
        Stripe key is set."""
        return database_url(self.database_url, stripe_connected=self.stripe is not None)

    def engine(self) -> Engine:
        return connect(self.url())

    def database(self) -> str:
        """The identity a saved plan records of the database (no password in it)."""
        return database_identity(self.url())

    def gateway(self) -> Gateway | None:
        """The Stripe gateway, or None (said once on stderr) without an API key."""
        if self.stripe is None:
            echo(NOT_CONNECTED, err=True)
            return None
        return Gateway(self.stripe)


def color_wanted(no_color: bool) -> bool:
    """Colour only on a terminal, and not with `--no-color` or `NO_COLOR`."""
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def fail(message: str) -> NoReturn:
    """Print `Error: message` to stderr and exit 1."""
    echo(f"Error: {message}", err=True)
    sys.exit(1)


def handles_errors(func: F) -> F:
    """Turn the pipeline's known errors into a message and exit code 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                echo(str(problem), err=True)
            count = len(exc.problems)
            echo(f"{count} problem{'s' if count != 1 else ''} found.", err=True)
            sys.exit(1)
        except KNOWN_ERRORS as exc:
            fail(str(exc))
        except StripeFailure as exc:
            fail(f"Stripe: {exc}")
        except StripeApplyFailed as exc:
            _report_partial(exc)
        except SQLAlchemyError as exc:
            fail(f"database error: {str(exc).splitlines()[0]} (nothing was written)")

    return wrapper  # type: ignore[return-value]


def _report_partial(exc: StripeApplyFailed) -> None:
    """Stripe stopped part-way: say what was done, what failed, and how to go on."""
    echo(f"Error: Stripe change {exc.change.address} failed: {exc.error}", err=True)
    echo(
        f"{len(exc.done)} Stripe change(s) were made before it (the database changes were "
        "applied). Run apply again: it plans from what Stripe now holds and finishes the rest.",
        err=True,
    )
    sys.exit(1)


@contextmanager
def take_lock(engine: Engine, operation: str, timeout: float) -> Iterator[LockInfo]:
    """The billing database's lock for `operation`, waiting up to `timeout` seconds (said
    once on stderr when another run holds it)."""

    def waiting(holder: LockInfo | None) -> None:
        who = "another run"
        if holder is not None:
            since = f"{holder.since:%Y-%m-%d %H:%M:%S}"
            who = f"{holder.holder} ({holder.operation}) since {since} UTC"
        echo(f"Waiting up to {timeout:g}s for the lock held by {who}…", err=True)

    with locked(engine, operation, timeout, on_wait=waiting) as info:
        yield info
