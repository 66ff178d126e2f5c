"""The HTTP server and the `Emulator` that tests and the command line use.

In a test: `with Emulator(seed=1) as emu:` serves on an ephemeral port; `emu.client()` is a
`stripe.StripeClient` pointed at `emu.url`; `emu.requests.count("POST", "/v1/products")`
counts requests by endpoint; `emu.state.modify("product", product_id, name="Renamed")`
changes an object behind the tool's back; `emu.configure(fault_rate=0.1)` turns knobs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from autumn_sync.emulator.app import App, Request, Response
from autumn_sync.emulator.faults import Faults, Unset
from autumn_sync.emulator.forms import from_mapping
from autumn_sync.emulator.idempotency import IdempotencyStore
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.requestlog import RequestLog
from autumn_sync.emulator.resources import ROUTES
from autumn_sync.emulator.resources.customers import build_customer
from autumn_sync.emulator.resources.due import process_due
from autumn_sync.emulator.routing import Call, Router
from autumn_sync.emulator.store import Clock, JsonDict, State
from autumn_sync.emulator.views import Expand
from autumn_sync.emulator.webhooks import Webhooks

DEFAULT_API_KEY = "sk_test_emulator"
POLL_SECONDS = 0.05  # how quickly `stop` is noticed


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into `Request`s for the app and writes (or drops) the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls
    app: App

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-request (killed while sending): like any HTTP server,
            # Stripe never sees an incomplete request, so neither does the app.
            self.close_connection = True
            return
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.app.handle(Request(self.command, url.path, url.query, headers, body))
        if response.drop:
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""


class Emulator:
    """A stateful Stripe emulator served over HTTP on `host`:`port` (0: any free port)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        rate_limit: float | None = None,
        fault_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
        api_keys: frozenset[str] | set[str] | None = None,
        clock: Clock | None = None,
        meter_event_rate_limit: float | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.clock = clock or Clock()
        self.state = State(self.clock, seed)
        self.state.due_handler = process_due
        self.faults = Faults(
            latency_ms, rate_limit, fault_rate, drop_rate, seed, meter_event_rate_limit
        )
        self.requests = RequestLog()
        self.idempotency = IdempotencyStore(self.clock)
        self.router = Router(ROUTES)
        keys = frozenset(api_keys) if api_keys is not None else None
        self.app = App(self.state, self.router, self.faults, self.requests, self.idempotency, keys)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.webhooks: Webhooks | None = None
        if webhook_url is not None:
            self.send_webhooks(webhook_url, webhook_secret or "")

    def send_webhooks(self, url: str, secret: str, **options: Any) -> Webhooks:
        """From now on, deliver signed events of the state's changes to `url` (see
        `emulator.webhooks`; `options`: `attempts`, `delays`, `timeout`)."""
        if not secret:
            raise ValueError("a webhook secret is needed to sign the events")
        if self.webhooks is not None:
            self.webhooks.close()
        webhooks = Webhooks(url, secret, **options)
        webhooks.snapshot(self.state)
        self.webhooks = webhooks
        self.state.observer = webhooks.observe
        return webhooks

    @property
    def url(self) -> str:
        """The base URL to give the `stripe` client (`http://127.0.0.1:PORT`)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def bind(self) -> None:
        """Open the listening socket (done by `start` and `serve_forever`)."""
        if self._server is not None:
            return
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True

    def start(self) -> Emulator:
        """Serve in a background thread; returns self."""
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name="stripe-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self.bind()
        assert self._server is not None
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving and close the socket (and stop delivering webhooks)."""
        if self.webhooks is not None:
            self.state.observer = None
            self.webhooks.close()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        rate_limit: float | Unset | None = Unset.KEEP,
        fault_rate: float | None = None,
        drop_rate: float | None = None,
        meter_event_rate_limit: float | Unset | None = Unset.KEEP,
    ) -> None:
        """Change load and fault knobs while running (`rate_limit=None` lifts the limit, as
        `meter_event_rate_limit=None` lifts the one on meter events)."""
        self.faults.configure(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            fault_rate=fault_rate,
            drop_rate=drop_rate,
            meter_event_rate_limit=meter_event_rate_limit,
        )

    def client(self, api_key: str = DEFAULT_API_KEY, max_network_retries: int = 0) -> Any:
        """A `stripe.StripeClient` talking to this emulator (stripe is imported only here)."""
        import stripe

        return stripe.StripeClient(
            api_key,
            base_addresses={"api": self.url},
            max_network_retries=max_network_retries,
        )

    def call(self, method: str, path: str, params: Mapping[str, object] | None = None) -> JsonDict:
        """Run an endpoint in process, bypassing HTTP, knobs, log and idempotency.

        Raises `StripeError` as the endpoint would answer it.
        """
        found = self.router.match(method, path)
        if found is None:
            raise KeyError(f"no endpoint for {method} {path}")
        route, path_args = found
        form = from_mapping(params or {})
        expand = Params(form).strings("expand")
        form.pop("expand", None)
        with self.state.lock:
            self.state.run_due()
            try:
                return route.handler(Call(self.state, Params(form), path_args, Expand(expand)))
            finally:
                self.state.observe()

    def add_customer(self, customer_id: str, **fields: object) -> JsonDict:
        """Store a customer with a chosen id (Stripe's API cannot), e.g. a pre-existing one."""
        with self.state.lock:
            customer = build_customer(self.state, Params(from_mapping(fields)), customer_id)
            return dict(self.state.add(customer))
