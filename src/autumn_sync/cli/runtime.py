"""The runtime API on the command line, JSON on stdout: `customer get-or-create`, `check`,
`track`. The database is the global `--database-url`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from autumn_sync.cli.output import echo
from autumn_sync.database.engine import DatabaseError
from autumn_sync.render.json import exact_json
from autumn_sync.runtime import Billing, BillingError
from autumn_sync.runtime.breakdown import ALLOW, CAP

if TYPE_CHECKING:
    from autumn_sync.cli.common import Options

F = TypeVar("F", bound=Callable[..., Any])


def runtime_errors(func: F) -> F:
    """Known errors become `Error: …` on stderr and exit code 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (BillingError, DatabaseError) as exc:
            message = str(exc)
        except SQLAlchemyError as exc:
            message = f"database error: {str(exc).splitlines()[0]}"
        echo(f"Error: {message}", err=True)
        sys.exit(1)

    return wrapper  # type: ignore[return-value]


def billing(options: Options) -> Billing:
    return Billing(engine=options.engine())


def emit(document: dict[str, Any]) -> None:
    echo(exact_json(document), nl=False)


@click.group()
def customer() -> None:
    """The application's customers (runtime API)."""


@customer.command("get-or-create")
@click.option("--id", "customer_id", required=True, help="The application's id of the customer.")
@click.option("--email", help="Binds a pre-provisioned customer with this email to the id.")
@click.option("--name")
@click.option(
    "--fingerprint", help="Device or card fingerprint: one free trial of a plan per fingerprint."
)
@click.pass_obj
@runtime_errors
def get_or_create(
    options: Options,
    customer_id: str,
    email: str | None,
    name: str | None,
    fingerprint: str | None,
) -> None:
    """Find the customer with --id, or bind a pre-provisioned one with --email to it, or
    create it on the default plans. Prints the customer as JSON (`outcome`: found, claimed
    or created)."""
    found = billing(options).get_or_create(customer_id, email, name, fingerprint)
    emit(found.as_dict())


ENTITY_OPTION = click.option(
    "--entity",
    "entity_id",
    metavar="ID",
    help="One of the customer's entities: its own plans first, then the customer's.",
)


@click.command()
@click.argument("customer_id", metavar="CUSTOMER")
@click.argument("feature_id", metavar="FEATURE")
@click.option("--required", default="1", show_default=True, help="Units about to be used.")
@ENTITY_OPTION
@click.pass_obj
@runtime_errors
def check(
    options: Options, customer_id: str, feature_id: str, required: str, entity_id: str | None
) -> None:
    """May CUSTOMER (or its entity) use FEATURE now? Prints allowed, the balance (limit,
    usage, next reset) and its breakdown per source (JSON). Exit 0 whatever the answer; 1 on
    error."""
    emit(billing(options).check(customer_id, feature_id, required, entity_id).as_dict())


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("customer_id", metavar="CUSTOMER")
@click.argument("feature_id", metavar="FEATURE")
@click.argument("value", metavar="VALUE")
@click.option(
    "--idempotency-key",
    help="Records the event once: a repeat with this key changes nothing (replayed: true).",
)
@ENTITY_OPTION
@click.option(
    "--overage",
    type=click.Choice([CAP, ALLOW]),
    default=CAP,
    show_default=True,
    help="Overage of a pay-per-use item past its max_purchase: cap drops it, allow records it.",
)
@click.pass_obj
@runtime_errors
def track(
    options: Options,
    customer_id: str,
    feature_id: str,
    value: str,
    idempotency_key: str | None,
    entity_id: str | None,
    overage: str,
) -> None:
    """Record VALUE units of FEATURE used by CUSTOMER (or its entity; a negative VALUE gives
    usage back). Prints what was recorded and dropped, and the balance after it (JSON)."""
    found = billing(options).track(
        customer_id, feature_id, value, idempotency_key, entity_id, overage
    )
    emit(found.as_dict())
