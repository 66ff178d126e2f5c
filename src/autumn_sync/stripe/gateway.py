"""The one module that imports `stripe`: a thin gateway the reader and the appliers use.

It speaks plain dicts, lists every page with `limit=100`, sends idempotency keys, lets the
official client retry 429s and network errors with backoff, and turns the client's errors
into `StripeFailure` so nothing else needs the package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import stripe

API_VERSION: str = stripe.api_version  # pinned by the `stripe` package version
PAGE = 100


class StripeFailure(Exception):
    """A Stripe request failed; `status` and `code` come from Stripe's error when known."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class StripeConfig:
    api_key: str
    api_base: str | None = None
    max_retries: int = 6

    @classmethod
    def from_env(cls, api_key: str | None, api_base: str | None) -> StripeConfig | None:
        """The configuration from options or `STRIPE_API_KEY` / `STRIPE_API_BASE`; None
        without a key (Stripe is then not connected)."""
        key = api_key or os.environ.get("STRIPE_API_KEY")
        if not key:
            return None
        return cls(api_key=key, api_base=api_base or os.environ.get("STRIPE_API_BASE"))


class Gateway:
    """Requests to Stripe for one API key."""

    def __init__(self, config: StripeConfig) -> None:
        base = {"api": config.api_base} if config.api_base else None
        self._client = stripe.StripeClient(
            config.api_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=config.max_retries,
            stripe_version=API_VERSION,
        )
        self.requests = 0

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
        return self.request("post", path, params, idempotency_key=idempotency_key)

    def request(
        self, method: str, path: str, params: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"idempotency_key": idempotency_key} if idempotency_key else {}
        self.requests += 1
        try:
            response = self._client.raw_request(method, path, **params, **options)
        except stripe.StripeError as exc:
            raise _failure(exc) from None
        body: dict[str, Any] = json.loads(response.body)
        return body


def _failure(exc: stripe.StripeError) -> StripeFailure:
    error = exc.error
    code = getattr(error, "code", None) if error is not None else None
    message = exc.user_message or str(exc) or type(exc).__name__
    return StripeFailure(message, status=exc.http_status, code=code)
