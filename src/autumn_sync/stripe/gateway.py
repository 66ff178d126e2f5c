"""The one module that imports `stripe`: a thin gateway the reader and the appliers use.

It speaks plain dicts, lists every page with `limit=100`, sends idempotency keys, retries
what Stripe says is safe to retry, and turns the client's errors into `StripeFailure` so
nothing else needs the package.

Retries are the gateway's, not the client's (`max_network_retries=0`), because the two kinds
of failure want different backoff:

- a connection error (a response lost after the work was done, a timeout), a 5xx, a 409 or
  an answer with `Stripe-Should-Retry: true`: re-sent up to `max_retries` times with
  exponential backoff (0.5 s doubling to 5 s, jittered, as the `stripe` client does);
- a 429: re-sent with a short jittered backoff (0.25 s doubling to 2 s) for as long as
  `rate_limit_wait` seconds. A rate limit is expected under load, not an error: the client's
  own retries would spend the network-retry budget on it and back off too far.

Every attempt of a write carries the same `Idempotency-Key`, so a retry after a lost
response gets the first result replayed instead of doing the work twice. At most
`per_endpoint` requests to one endpoint (method and path, ids left out) are in flight at once.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe

API_VERSION: str = stripe.api_version  # pinned by the `stripe` package version
log = logging.getLogger(__name__)
DEFAULT_BASE = "https://api.stripe.com"
PAGE = 100
RETRY_DELAY = (0.5, 5.0)  # first and largest backoff after a failure worth retrying
RATE_LIMIT_DELAY = (0.25, 2.0)  # first and largest backoff after a 429
# Path segments that name a collection: the segment after one is an object id.
COLLECTIONS = frozenset(
    {
        "coupons",
        "customers",
        "meters",
        "prices",
        "products",
        "promotion_codes",
        "subscription_items",
        "subscriptions",
    }
)


class StripeFailure(Exception):
    """A Stripe request failed; `status` and `code` come from Stripe's error when known."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def rejected(self) -> bool:
        """Stripe answered with an error (not a 409 or 429): the request is over, what it
        did (nothing, for a 4xx) shows in the next read, and Stripe may keep the answer for
        its idempotency key. A lost answer (no status) leaves the outcome unknown."""
        return self.status is not None and self.status not in (409, 429)


@dataclass(frozen=True)
class StripeConfig:
    api_key: str = field(repr=False)  # a secret: never in a repr, log or saved plan
    api_base: str | None = None
    max_retries: int = 6
    rate_limit_wait: float = 120.0
    per_endpoint: int = 24

    @classmethod
    def from_env(cls, api_key: str | None, api_base: str | None) -> StripeConfig | None:
        """The configuration from options or `STRIPE_API_KEY` / `STRIPE_API_BASE`; None
        without a key (Stripe is then not connected)."""
        key = api_key or os.environ.get("STRIPE_API_KEY")
        if not key:
            return None
        return cls(api_key=key, api_base=api_base or os.environ.get("STRIPE_API_BASE"))


class Gateway:
    """Requests to Stripe for one API key, safe to share between threads.

    `requests` counts every attempt sent, `rate_limited` the 429s among the answers and
    `retries` the other attempts that were sent again.
    """

    def __init__(self, config: StripeConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        base = {"api": config.api_base} if config.api_base else None
        self._client = stripe.StripeClient(
            config.api_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=0,  # the gateway retries (see the module's docstring)
            stripe_version=API_VERSION,
        )
        self._config = config
        self._sleep = sleep
        self._lock = threading.Lock()
        self._endpoints: dict[str, threading.Semaphore] = {}
        self.requests = 0
        self.rate_limited = 0
        self.retries = 0
        log.info("Stripe at %s, API version %s", config.api_base or DEFAULT_BASE, API_VERSION)

    def list_all(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, page by page (`limit=100`)."""
        after: str | None = None
        while True:
            query = {**params, "limit": PAGE}
            if after:
                query["starting_after"] = after
            page = self.request("get", path, query)
            data: list[dict[str, Any]] = page["data"]
            yield from data
            if not page.get("has_more") or not data:
                return
            after = data[-1]["id"]

    def post(self, path: str, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """A write, with its idempotency key (the same change always sends the same key)."""
        log.debug("POST %s with Idempotency-Key %s", path, idempotency_key)
        return self.request("post", path, params, idempotency_key=idempotency_key)

    def request(
        self, method: str, path: str, params: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """One request, retried as the module's docstring says; raises `StripeFailure`."""
        options: dict[str, Any] = {"idempotency_key": idempotency_key} if idempotency_key else {}
        retries = limited = 0
        limited_since: float | None = None
        while True:
            started = time.monotonic()
            try:
                with self._endpoint(method, path):
                    with self._lock:
                        self.requests += 1
                    response = self._client.raw_request(method, path, **params, **options)
                _log_answer(method, path, response.code, started, response.headers)
                return _json(response.body, method, path)
            except stripe.StripeError as exc:
                error = exc
            attempts = retries + limited + 1
            if error.http_status == 429:
                with self._lock:
                    self.rate_limited += 1
                now = time.monotonic()
                limited_since = now if limited_since is None else limited_since
                if now - limited_since < self._config.rate_limit_wait:
                    limited += 1
                    self._wait(method, path, error, started, _backoff(RATE_LIMIT_DELAY, limited))
                    continue
            elif _retryable(error) and retries < self._config.max_retries:
                with self._lock:
                    self.retries += 1
                retries += 1
                self._wait(method, path, error, started, _backoff(RETRY_DELAY, retries))
                continue
            failure = _failure(error, attempts)
            log.info("%s %s failed: %s", method.upper(), path, failure)
            raise failure from None

    def _wait(
        self, method: str, path: str, error: stripe.StripeError, started: float, delay: float
    ) -> None:
        """Back off `delay` seconds before sending a request again (said in the log)."""
        answer = error.http_status or type(error).__name__
        elapsed = (time.monotonic() - started) * 1000
        log.info(
            "%s %s → %s in %.0f ms; retry in %.2f s", method.upper(), path, answer, elapsed, delay
        )
        self._sleep(delay)

    def _endpoint(self, method: str, path: str) -> threading.Semaphore:
        """The semaphore bounding the requests in flight to this endpoint."""
        name = endpoint(method, path)
        with self._lock:
            gate = self._endpoints.get(name)
            if gate is None:
                gate = self._endpoints[name] = threading.Semaphore(self._config.per_endpoint)
            return gate


def _log_answer(
    method: str, path: str, status: int, started: float, headers: Mapping[str, str]
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    elapsed = (time.monotonic() - started) * 1000
    replayed = {k.lower(): v for k, v in headers.items()}.get("idempotent-replayed") == "true"
    note = " (replayed by Stripe: the idempotency key was used before)" if replayed else ""
    log.info("%s %s → %s in %.0f ms%s", method.upper(), path, status, elapsed, note)


def _json(body: str, method: str, path: str) -> dict[str, Any]:
    """The response's object; a body that is not a JSON object is a failure, not a crash."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise StripeFailure(f"{method.upper()} {path}: the response is not a Stripe object")
    return data


def endpoint(method: str, path: str) -> str:
    """`POST /v1/prices/{id}` for `post`, `/v1/prices/price_123`: the endpoint, ids left out."""
    segments = path.split("?")[0].strip("/").split("/")
    named = [
        "{id}" if index and segments[index - 1] in COLLECTIONS else segment
        for index, segment in enumerate(segments)
    ]
    return f"{method.upper()} /" + "/".join(named)


def _retryable(error: stripe.StripeError) -> bool:
    """Whether sending the same request again may succeed (as the `stripe` client decides,
    without counting 429s, which the gateway handles apart)."""
    if isinstance(error, stripe.APIConnectionError):
        return error.should_retry
    advice = {name.lower(): value for name, value in (error.headers or {}).items()}.get(
        "stripe-should-retry"
    )
    if advice is not None:
        return advice == "true"
    status = error.http_status or 0
    return status == 409 or status >= 500


def _backoff(delays: tuple[float, float], attempt: int) -> float:
    """Exponential backoff from `delays[0]`, at most `delays[1]`, jittered into its upper
    half so that threads backing off together spread out."""
    first, largest = delays
    delay = min(first * 2.0 ** (attempt - 1), largest)
    return delay * random.uniform(0.5, 1.0)


def _failure(exc: stripe.StripeError, attempts: int) -> StripeFailure:
    error = exc.error
    code = getattr(error, "code", None) if error is not None else None
    message = exc.user_message or str(exc) or type(exc).__name__
    if attempts > 1:
        message = f"{message} (gave up after {attempts} attempts)"
    return StripeFailure(message, status=exc.http_status, code=code)


# --- webhooks ------------------------------------------------------------------------------

WEBHOOK_TOLERANCE = 300  # seconds a signature stays valid (Stripe's libraries' default)


class WebhookRejected(Exception):
    """A webhook delivery that is not a genuine Stripe event: a missing, malformed or wrong
    `Stripe-Signature`, one too old (a replayed capture), or a body that is no event."""


def verify_webhook(
    payload: bytes | str,
    signature: str | None,
    secret: str | None,
    tolerance: int = WEBHOOK_TOLERANCE,
) -> dict[str, Any]:
    """The event a webhook delivered, as a plain dict, once its `Stripe-Signature` header
    (`t=…,v1=…`: HMAC-SHA256 of `t.payload` with the endpoint's secret) is verified by the
    `stripe` library; raises `WebhookRejected` otherwise."""
    if not secret:
        raise WebhookRejected("no webhook secret is configured (STRIPE_WEBHOOK_SECRET)")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected(f"bad signature: {str(exc).splitlines()[0]}") from None
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    try:
        event = json.loads(text)
    except ValueError:
        raise WebhookRejected("the body is not JSON") from None
    if not isinstance(event, dict) or event.get("object") != "event" or "id" not in event:
        raise WebhookRejected("the body is not a Stripe event")
    return event
