"""The webhook endpoint as a small ASGI application (Starlette), for `autumn-sync webhooks
serve` or to mount in an application's own ASGI server:

    app = webhook_app(Billing("postgresql+psycopg://…"))      # POST /webhooks/stripe

Each request's raw body and `Stripe-Signature` header go to `Billing.handle_stripe_event`
(in a worker thread: the database calls block). Answers: 200 with the outcome (also for a
replay, a stale or an ignored event: Stripe stops retrying), 400 for a delivery that is not
a verified Stripe event (nothing written), 500 when the database fails (Stripe retries).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from autumn_sync.runtime.api import Billing
from autumn_sync.runtime.errors import InvalidRequest, InvalidWebhook

WEBHOOK_PATH = "/webhooks/stripe"
HEALTH_PATH = "/healthz"


def webhook_app(billing: Billing, path: str = WEBHOOK_PATH) -> Starlette:
    """An ASGI app receiving Stripe's webhooks at `path` (POST), with `GET /healthz`."""

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        signature = request.headers.get("stripe-signature")
        try:
            result = await run_in_threadpool(billing.handle_stripe_event, body, signature)
        except (InvalidWebhook, InvalidRequest) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        answer = {"received": True, "id": result.event_id, "outcome": result.outcome}
        return JSONResponse(answer)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route(path, receive, methods=["POST"]), Route(HEALTH_PATH, health)])
