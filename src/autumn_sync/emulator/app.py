"""The request pipeline, independent of the HTTP server.

For each request, in order: latency; the rate limit (429); authentication (401); an injected
fault (500, before any work); routing (404 for unknown URLs); the meter-event rate limit (429,
`POST /v1/billing/meter_events` only); the idempotency check for POSTs
that carry an `Idempotency-Key`; under the state lock, whatever fell due since the last request
(renewals, trial ends, schedule phases), then the handler; and finally, for requests that did
their work, possibly dropping the response.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field

from autumn_sync.emulator.errors import (
    API_ERROR,
    StripeError,
    bad_api_key,
    no_api_key,
    rate_limited,
    server_fault,
    unrecognized_url,
)
from autumn_sync.emulator.faults import Faults
from autumn_sync.emulator.forms import Form, decode
from autumn_sync.emulator.idempotency import IdempotencyStore
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.requestlog import LoggedRequest, RequestLog
from autumn_sync.emulator.routing import Call, Route, Router
from autumn_sync.emulator.store import JsonDict, State
from autumn_sync.emulator.views import Expand

API_VERSION = "2026-10-28.endive"
KEY_PREFIXES = ("sk_test_", "rk_test_")
OUTCOMES = {200: "ok", 401: "unauthorized", 429: "rate_limited"}
METER_EVENTS = ("POST", "/v1/billing/meter_events")


@dataclass
class Request:
    """An HTTP request as the pipeline sees it (header names in lower case)."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Response:
    """The answer; `drop` means: close the connection without sending it."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    outcome: str = "ok"


class App:
    """Answers requests against one `State` with the given knobs."""

    def __init__(
        self,
        state: State,
        router: Router,
        faults: Faults,
        log: RequestLog,
        idempotency: IdempotencyStore,
        api_keys: frozenset[str] | None = None,
    ) -> None:
        self.state = state
        self.router = router
        self.faults = faults
        self.log = log
        self.idempotency = idempotency
        self.api_keys = api_keys
        self._request_ids = 0

    def handle(self, request: Request) -> Response:
        """Answer one request and log it."""
        request_id = self._next_request_id()
        try:
            response = self._answer(request, request_id)
        except StripeError as error:
            response = error_response(error)
            response.outcome = "fault" if error.status == 500 else response.outcome
        except Exception as exc:  # a bug in the emulator: answer 500 rather than hang up
            traceback.print_exc(file=sys.stderr)
            response = error_response(StripeError(500, API_ERROR, f"Emulator error: {exc!r}"))
        response.headers.setdefault("Request-Id", request_id)
        response.headers.setdefault(
            "Stripe-Version", request.headers.get("stripe-version", API_VERSION)
        )
        self._log(request, response)
        return response

    def _next_request_id(self) -> str:
        with self.state.lock:
            self._request_ids += 1
            return f"req_emu{self._request_ids:010d}"

    def _answer(self, request: Request, request_id: str) -> Response:
        self.faults.delay()
        if not self.faults.admit():
            raise rate_limited()
        api_key = authenticate(request.headers, self.api_keys)
        if self.faults.fault():
            raise server_fault()
        found = self.router.match(request.method, request.path)
        if found is None:
            raise unrecognized_url(request.method, request.path)
        route, path_args = found
        if (route.method, route.template) == METER_EVENTS and not self.faults.admit_meter_event():
            raise rate_limited()
        raw = request.body.decode("utf-8", "replace") if request.method == "POST" else request.query
        params = decode(raw)
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        if key:
            response = self._idempotent(api_key, key, request, route, path_args, params, request_id)
        else:
            response = self._execute(route, path_args, params)[0]
        response.drop = self.faults.drop()
        return response

    def _idempotent(
        self,
        api_key: str,
        key: str,
        request: Request,
        route: Route,
        path_args: dict[str, str],
        params: Form,
        request_id: str,
    ) -> Response:
        store = self.idempotency
        record = store.begin(api_key, key, request.method, request.path, params, request_id)
        if record is not None:
            headers = {"Idempotent-Replayed": "true", "Original-Request": record.request_id}
            headers["Idempotency-Key"] = key
            return Response(record.status or 200, record.body, headers, outcome="replayed")
        response, keep = self._execute(route, path_args, params)
        store.finish(api_key, key, response.status, response.body, keep)
        response.headers["Idempotency-Key"] = key
        return response

    def _execute(
        self, route: Route, path_args: dict[str, str], params: Form
    ) -> tuple[Response, bool]:
        """Run the handler; returns the response and whether an idempotent replay keeps it."""
        with self.state.lock:
            try:
                self.state.run_due()
                body = route.handler(_call(self.state, path_args, params))
            except StripeError as error:
                return error_response(error), error.saved
            finally:
                self.state.observe()
        return Response(200, encode(body)), True

    def _log(self, request: Request, response: Response) -> None:
        outcome = "dropped" if response.drop else response.outcome
        self.log.record(
            LoggedRequest(
                method=request.method,
                path=request.path,
                template=self.router.template_for(request.method, request.path),
                query=request.query,
                idempotency_key=request.headers.get("idempotency-key"),
                status=None if response.drop else response.status,
                outcome=outcome,
            )
        )


def _call(state: State, path_args: dict[str, str], params: Form) -> Call:
    args = Params(params)
    expand = Expand(args.strings("expand"))
    rest = {key: value for key, value in params.items() if key != "expand"}
    return Call(state, Params(rest), path_args, expand)


def authenticate(headers: Mapping[str, str], accepted: frozenset[str] | None) -> str:
    """The API key from a Bearer (or Basic) Authorization header, or a 401."""
    header = headers.get("authorization", "").strip()
    if not header:
        raise no_api_key()
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() == "basic":
        credential = _basic_user(credential)
    elif scheme.lower() != "bearer":
        raise no_api_key()
    if not credential:
        raise no_api_key()
    valid = credential in accepted if accepted is not None else _looks_valid(credential)
    if not valid:
        raise bad_api_key(credential)
    return credential


def _basic_user(credential: str) -> str:
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def _looks_valid(key: str) -> bool:
    return key.startswith(KEY_PREFIXES) and len(key) > len("sk_test_")


def encode(body: JsonDict) -> bytes:
    """A response body as JSON bytes."""
    return json.dumps(body).encode("utf-8")


def error_response(error: StripeError) -> Response:
    """The HTTP response for a `StripeError`."""
    outcome = OUTCOMES.get(error.status, "error")
    return Response(error.status, encode(error.body()), dict(error.headers), outcome=outcome)
