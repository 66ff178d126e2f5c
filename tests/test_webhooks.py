"""Stripe's webhooks into the database (`Billing.handle_stripe_event`, `webhooks serve`):
signatures verified (a forged or missing one is refused and writes nothing), each event
processed once, events out of order never moving a status backwards, payments failing and
succeeding, `settings.billing.past_due`, a deleted subscription handing over to the group's
default plan; and the whole loop, the emulator delivering signed events to `webhooks serve`.
"""

from __future__ import annotations

import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, func, select, update

from autumn_sync import Billing
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.pipeline import load_desired, make_plan
from autumn_sync.runtime import InvalidWebhook
from autumn_sync.runtime.server import WEBHOOK_PATH, webhook_app
from tests.conftest import run_cli
from tests.test_runtime import Clock, apply_file, write

SECRET = "whsec_test_secret"
SUB = "sub_jane"
T0 = datetime(2026, 1, 10, 12, 0)
CREATED = 1_768_046_400  # 2026-01-10 12:00 UTC

CATALOG = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  free:
    name: Free
    group: main
    default: true
    items:
      - {feature: messages, included: 100, reset: month}
  pro:
    name: Pro
    group: main
    price: {amount: 20, interval: month}
    items:
      - {feature: messages, included: 1000, reset: month}
customers:
  - id: jane
    plans: [pro]
"""


def sign(payload: str, secret: str = SECRET, at: int | None = None) -> str:
    """A `Stripe-Signature` header, made as Stripe documents it (independently of the
    `stripe` library the tool verifies with)."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.{payload}".encode(), sha256).hexdigest()
    return f"t={at},v1={digest}"


def event(kind: str, obj: dict[str, Any], created: int = CREATED, eid: str = "") -> str:
    return json.dumps(
        {
            "id": eid or f"evt_{kind}_{created}",
            "object": "event",
            "created": created,
            "type": kind,
            "data": {"object": obj},
        }
    )


def subscription(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": SUB, "object": "subscription", "status": status, **fields}


def invoice(**fields: Any) -> dict[str, Any]:
    parent = {"subscription_details": {"subscription": SUB}, "type": "subscription_details"}
    return {"id": "in_1", "object": "invoice", "parent": parent, **fields}


@pytest.fixture
def billing(db_url: str, tmp_path: Path) -> Iterator[Billing]:
    """Jane on Pro, its subscription `sub_jane` recorded (the database only)."""
    engine = connect(db_url)
    clock = Clock(T0)
    apply_file(engine, write(tmp_path, CATALOG), clock)
    record_subscription(engine)
    yield Billing(engine=engine, clock=clock, webhook_secret=SECRET)
    engine.dispose()


def record_subscription(engine: Engine, sid: str = SUB) -> None:
    cp = t.customer_plans
    with engine.begin() as conn:
        conn.execute(update(cp).where(cp.c.plan_id == "pro").values(stripe_subscription_id=sid))


def deliver(billing: Billing, payload: str) -> str:
    return billing.handle_stripe_event(payload.encode(), sign(payload)).outcome


def plans(engine: Engine) -> dict[str, tuple[str, date | None]]:
    cp = t.customer_plans
    with engine.connect() as conn:
        rows = conn.execute(select(cp.c.plan_id, cp.c.status, cp.c.ends_at)).all()
    return {row.plan_id: (row.status, row.ends_at) for row in rows}


def events_stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.stripe_events)).scalar_one())


def limit(billing: Billing) -> Any:
    return billing.check("jane", "messages").balance.limit


# --- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=1,v1=deadbeef",
        "nonsense",
        "OTHER BODY",  # a genuine signature of another body (below)
        "WRONG",  # signed with another secret (below)
    ],
    ids=["missing", "empty", "forged", "malformed", "other-body", "other-secret"],
)
def test_a_forged_or_missing_signature_is_refused_and_writes_nothing(
    billing: Billing, header: str | None
) -> None:
    payload = event("customer.subscription.deleted", subscription("canceled"))
    if header == "WRONG":
        header = sign(payload, secret="whsec_other")
    elif header == "OTHER BODY":
        header = sign("{}")
    before = plans(billing.engine)
    with pytest.raises(InvalidWebhook):
        billing.handle_stripe_event(payload.encode(), header)
    assert plans(billing.engine) == before
    assert events_stored(billing.engine) == 0


def test_a_signature_too_old_is_refused(billing: Billing) -> None:
    payload = event("invoice.payment_failed", invoice())
    with pytest.raises(InvalidWebhook, match="bad signature"):
        billing.handle_stripe_event(payload, sign(payload, at=int(time.time()) - 3600))


def test_without_a_secret_nothing_is_accepted(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = event("invoice.payment_failed", invoice())
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    unconfigured = Billing(engine=billing.engine)
    with pytest.raises(InvalidWebhook, match="STRIPE_WEBHOOK_SECRET"):
        unconfigured.handle_stripe_event(payload, sign(payload))


# --- statuses ------------------------------------------------------------------------------


def test_a_payment_failure_makes_the_plan_past_due_and_a_payment_activates_it(
    billing: Billing,
) -> None:
    assert deliver(billing, event("invoice.payment_failed", invoice())) == "applied"
    assert plans(billing.engine)["pro"] == ("past_due", None)
    assert limit(billing) == 1000  # past_due: allow (the default)
    assert deliver(billing, event("invoice.paid", invoice(), CREATED + 60)) == "applied"
    assert plans(billing.engine)["pro"] == ("active", None)


def test_past_due_deny_stops_check_granting_the_plan(billing: Billing, tmp_path: Path) -> None:
    denying = CATALOG.replace("version: 1\n", "version: 1\nsettings: {billing: {past_due: deny}}\n")
    apply_file(billing.engine, write(tmp_path, denying), Clock(T0))
    updated = event("customer.subscription.updated", subscription("past_due"))
    assert deliver(billing, updated) == "applied"
    assert not billing.check("jane", "messages").allowed
    paid = event("invoice.paid", invoice(), CREATED + 60)
    assert deliver(billing, paid) == "applied"
    assert billing.check("jane", "messages").allowed


def test_unpaid_gives_nothing_until_paid(billing: Billing) -> None:
    deliver(billing, event("customer.subscription.updated", subscription("unpaid")))
    assert not billing.check("jane", "messages").allowed
    deliver(billing, event("checkout.session.completed", {"subscription": SUB}, CREATED + 1))
    assert plans(billing.engine)["pro"] == ("active", None)
    assert limit(billing) == 1000


def test_a_replayed_event_is_a_no_op(billing: Billing) -> None:
    failed = event("invoice.payment_failed", invoice())
    assert deliver(billing, failed) == "applied"
    assert deliver(billing, event("invoice.paid", invoice(), CREATED + 60)) == "applied"
    assert deliver(billing, failed) == "duplicate"  # Stripe retrying: nothing moves
    assert plans(billing.engine)["pro"] == ("active", None)
    assert events_stored(billing.engine) == 2


def test_events_out_of_order_never_move_a_status_backwards(billing: Billing) -> None:
    deleted = subscription("canceled", ended_at=CREATED + 100)
    assert deliver(billing, event("customer.subscription.deleted", deleted, CREATED + 100)) == (
        "applied"
    )
    older = event("customer.subscription.updated", subscription("active"), CREATED)
    assert deliver(billing, older) == "stale"
    newer = event("customer.subscription.updated", subscription("past_due"), CREATED + 200)
    assert deliver(billing, newer) == "applied"  # a deleted subscription never runs again
    assert plans(billing.engine)["pro"] == ("canceled", date(2026, 1, 10))


def test_an_older_failure_after_a_payment_changes_nothing(billing: Billing) -> None:
    deliver(billing, event("invoice.paid", invoice(), CREATED + 60))
    assert deliver(billing, event("invoice.payment_failed", invoice(), CREATED)) == "stale"
    assert plans(billing.engine)["pro"] == ("active", None)


def test_a_deleted_subscription_hands_over_to_the_default_plan(
    billing: Billing, tmp_path: Path
) -> None:
    deleted = subscription("canceled", ended_at=CREATED)
    assert deliver(billing, event("customer.subscription.deleted", deleted)) == "applied"
    assert plans(billing.engine) == {
        "pro": ("canceled", date(2026, 1, 10)),
        "free": ("active", None),
    }
    assert limit(billing) == 100  # Free's
    # The file still names Pro: the next plan keeps Free while Pro stays cancelled (without
    # Stripe nothing is to be made again), so nothing changes.
    desired = load_desired(write(tmp_path, CATALOG))
    assert make_plan(billing.engine, desired, clock=Clock(T0)).empty


def test_events_about_nothing_recorded_are_ignored(billing: Billing) -> None:
    setup = event("checkout.session.completed", {"mode": "setup", "subscription": None})
    assert deliver(billing, setup) == "ignored"
    assert deliver(billing, event("charge.refunded", {"id": "ch_1"})) == "ignored"
    other = {"id": "sub_unknown", "status": "past_due"}
    assert deliver(billing, event("customer.subscription.updated", other)) == "applied"
    assert plans(billing.engine)["pro"] == ("active", None)


# --- over HTTP -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: str, signature: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    request = urllib.request.Request(url, body.encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def endpoint(billing: Billing) -> Iterator[str]:
    """`webhook_app` under Uvicorn in a thread, on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(webhook_app(billing), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_endpoint_answers_400_to_a_forgery_and_200_once_verified(
    billing: Billing, endpoint: str
) -> None:
    payload = event("invoice.payment_failed", invoice())
    assert post(endpoint, payload, None)[0] == 400
    assert post(endpoint, payload, sign(payload, secret="whsec_other"))[0] == 400
    assert post(endpoint, "not json", sign("not json"))[0] == 400
    assert events_stored(billing.engine) == 0
    status, answer = post(endpoint, payload, sign(payload))
    assert (status, answer["outcome"]) == (200, "applied")
    assert post(endpoint, payload, sign(payload))[1]["outcome"] == "duplicate"
    assert plans(billing.engine)["pro"] == ("past_due", None)


def test_webhooks_serve_needs_the_secret(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    result = run_cli("webhooks", "serve", db=sqlite_url)
    assert result.exit_code == 1
    assert "STRIPE_WEBHOOK_SECRET is not set" in result.output


# --- the whole loop ------------------------------------------------------------------------


@pytest.fixture
def served(sqlite_url: str) -> Iterator[str]:
    """`autumn-sync webhooks serve` in a process of its own, on a free port."""
    port = free_port()
    env = {**os.environ, "STRIPE_WEBHOOK_SECRET": SECRET, "AUTUMN_SYNC_DATABASE_URL": sqlite_url}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    command = [sys.executable, "-c", "from autumn_sync.cli.main import main; main()"]
    command += ["webhooks", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    yield base + WEBHOOK_PATH
    process.terminate()
    process.wait(timeout=10)


def test_the_emulator_delivers_signed_events_to_webhooks_serve(
    sqlite_url: str, served: str, tmp_path: Path
) -> None:
    """Jane pays by card; Stripe fails the renewal (past_due), then the subscription is
    cancelled: every event reaches the database through `webhooks serve`, signed, and Free
    takes over."""
    from tests.test_stripe_customers import give_card
    from tests.test_stripe_sync import sync_on

    with Emulator(seed=7) as emu:
        emu.send_webhooks(served, SECRET)
        sync = next(sync_on(sqlite_url, emu, tmp_path))
        doc = {
            **_doc(),
            "customers": [{"id": "jane", "plans": ["pro"], "stripe": {"create": True}}],
        }
        sync.apply(doc)  # waiting for checkout: no card
        customer = emu.state.all("customer")[0]
        give_card(emu, str(customer["id"]))
        sync.apply(doc)
        (sub,) = emu.state.all("subscription")
        assert plans(sync.engine)["pro"] == ("active", None)

        # The card stops working: the renewal's invoice stays open.
        emu.call(
            "POST",
            f"/v1/customers/{customer['id']}",
            {"invoice_settings": {"default_payment_method": ""}},
        )
        emu.clock.advance(32 * 86400)
        emu.call("GET", f"/v1/subscriptions/{sub['id']}")
        assert emu.webhooks is not None and emu.webhooks.wait(20)
        assert plans(sync.engine)["pro"][0] == "past_due"

        emu.call("DELETE", f"/v1/subscriptions/{sub['id']}")
        assert emu.webhooks.wait(20)
        kinds = [e["type"] for e in emu.webhooks.events]
        assert "invoice.payment_failed" in kinds
        assert kinds[-1] == "customer.subscription.deleted"
        assert all(d.status == 200 for d in emu.webhooks.deliveries)
        status, ends = plans(sync.engine)["pro"]
        assert status == "canceled" and ends is not None
        assert plans(sync.engine)["free"] == ("active", None)
        sync.engine.dispose()


def _doc() -> dict[str, Any]:
    import yaml

    doc: dict[str, Any] = yaml.safe_load(CATALOG)
    return doc


def test_failed_deliveries_are_retried(sqlite_url: str) -> None:
    """An endpoint that answers 500 twice, then 200: three attempts, with backoff."""
    received: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        received.append(dict(scope["headers"]).get(b"stripe-signature", b"").decode())
        assert message["body"]
        status = 500 if len(received) <= 2 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        with Emulator(seed=3) as emu:
            hooks = emu.send_webhooks(f"http://127.0.0.1:{port}/", SECRET, delays=(0.05, 0.2))
            customer = emu.call("POST", "/v1/customers", {"email": "a@example.com"})
            product = emu.call("POST", "/v1/products", {"name": "Pro"})
            price = emu.call(
                "POST",
                "/v1/prices",
                {
                    "product": product["id"],
                    "unit_amount": 2000,
                    "currency": "usd",
                    "recurring": {"interval": "month"},
                },
            )
            sub = emu.call(
                "POST",
                "/v1/subscriptions",
                {
                    "customer": customer["id"],
                    "items": [{"price": price["id"]}],
                    "collection_method": "send_invoice",
                    "days_until_due": 30,
                },
            )
            emu.call("DELETE", f"/v1/subscriptions/{sub['id']}")
            assert hooks.wait(10)
            deleted = [d for d in hooks.deliveries if d.type == "customer.subscription.deleted"]
            assert [(d.attempt, d.status) for d in deleted] == [(1, 500), (2, 500), (3, 200)]
            assert all(header.startswith("t=") and ",v1=" in header for header in received)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
