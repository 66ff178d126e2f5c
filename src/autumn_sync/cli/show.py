"""`autumn-sync show [ADDRESS]`: what the billing database holds, as text or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from autumn_sync.cli.output import echo
from autumn_sync.cli.runtime import emit, runtime_errors
from autumn_sync.render.show import text
from autumn_sync.runtime import utc_now
from autumn_sync.runtime.errors import InvalidRequest
from autumn_sync.show import Shown, list_customers, show_address

if TYPE_CHECKING:
    from autumn_sync.cli.common import Options


@click.command()
@click.argument("address", required=False)
@click.option("--search", help="customers: only those whose id, email or name contains TEXT.")
@click.option("--plan", "plan_id", help="customers: only those on this plan.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
@runtime_errors
def show(
    options: Options, address: str | None, search: str | None, plan_id: str | None, fmt: str
) -> None:
    """Show what the database holds: a summary, or ADDRESS: customer.ID, customer[EMAIL]
    (plans, versions, renewals, usage, limits, resets, Stripe ids), customers (the list;
    --search, --plan), plan.ID, plan.ID.vN, feature.ID, reward.ID."""
    if (search or plan_id) and address != "customers":
        raise InvalidRequest("--search and --plan go with `show customers`")
    now = utc_now()
    with options.engine().connect() as conn:
        if address == "customers":
            shown = Shown("customers", {"customers": list_customers(conn, search, plan_id, now)})
        else:
            shown = show_address(conn, address, now)
    if fmt == "json":
        emit(shown.document)
    else:
        echo(text(shown.kind, shown.document), nl=False)
