"""`autumn-sync webhooks serve`: receive Stripe's webhooks (signature verified with
`STRIPE_WEBHOOK_SECRET`) and record them in the billing database."""

from __future__ import annotations

import os

import click

from autumn_sync.cli.common import Options, fail
from autumn_sync.cli.output import echo
from autumn_sync.database.engine import DatabaseError
from autumn_sync.runtime import Billing
from autumn_sync.runtime.api import WEBHOOK_SECRET
from autumn_sync.runtime.server import WEBHOOK_PATH, webhook_app


@click.group()
def webhooks() -> None:
    """Stripe's webhooks: checkout, invoices paid or failed, subscriptions changed."""


@webhooks.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
def serve(options: Options, host: str, port: int) -> None:
    """Serve POST /webhooks/stripe until interrupted (Uvicorn)."""
    import uvicorn  # the server only: the rest of the tool starts without it

    secret = os.environ.get(WEBHOOK_SECRET)
    if not secret:
        fail(f"{WEBHOOK_SECRET} is not set: the endpoint's signing secret (whsec_…)")
    try:
        engine = options.engine()
    except DatabaseError as exc:
        fail(str(exc))
    billing = Billing(engine=engine, webhook_secret=secret)
    echo(f"Receiving Stripe webhooks at http://{host}:{port}{WEBHOOK_PATH}", err=True)
    try:
        uvicorn.run(webhook_app(billing), host=host, port=port, log_level="warning")
    finally:
        billing.engine.dispose()
