"""Errors in Stripe's wire shape: `{"error": {"type", "message", "code"?, "param"?}}`.

Every refusal inside the emulator is a `StripeError`; the server turns it into a response.
`saved` says whether an idempotent request keeps the error as its result: Stripe records a
result only once an endpoint has started executing, so parameter validation failures are not
kept (the caller may fix the request and retry with the same key) while refusals that depend
on stored state are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

JsonDict = dict[str, object]

INVALID_REQUEST = "invalid_request_error"
API_ERROR = "api_error"
IDEMPOTENCY_ERROR = "idempotency_error"


@dataclass
class StripeError(Exception):
    """An API error: HTTP status, Stripe error type and message, optional code and param."""

    status: int
    type: str
    message: str
    code: str | None = None
    param: str | None = None
    saved: bool = True
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> JsonDict:
        """The JSON body Stripe sends for this error."""
        error: JsonDict = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid(
    message: str, param: str | None = None, code: str | None = None, *, saved: bool = False
) -> StripeError:
    """A 400 `invalid_request_error` about the request's parameters (not kept for replay)."""
    return StripeError(400, INVALID_REQUEST, message, code=code, param=param, saved=saved)


def refused(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """A 400 `invalid_request_error` raised by a rule on stored state (kept for replay)."""
    return StripeError(400, INVALID_REQUEST, message, code=code, param=param, saved=True)


def no_such(noun: str, object_id: str, param: str = "id", *, status: int = 404) -> StripeError:
    """`resource_missing`: 404 for the object named by the URL, 400 for one named by a param."""
    return StripeError(
        status,
        INVALID_REQUEST,
        f"No such {noun}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def missing_param(name: str) -> StripeError:
    """A required parameter is absent."""
    return invalid(f"Missing required param: {name}.", name, "parameter_missing")


def unknown_params(names: Sequence[str]) -> StripeError:
    """Parameters the endpoint does not take (Stripe names them all, and points at the first)."""
    noun = "parameter" if len(names) == 1 else "parameters"
    return invalid(f"Received unknown {noun}: {', '.join(names)}", names[0], "parameter_unknown")


def already_exists(noun: str, param: str = "id") -> StripeError:
    """An object with the id the caller chose already exists."""
    return refused(f"{noun} already exists.", param, "resource_already_exists")


def unrecognized_url(method: str, path: str) -> StripeError:
    """No endpoint answers this method and path."""
    message = (
        f"Unrecognized request URL ({method}: {path}). "
        "The emulator serves only the endpoints autumn-sync uses."
    )
    return StripeError(404, INVALID_REQUEST, message, saved=False)


def no_api_key() -> StripeError:
    """401: the request carried no key."""
    message = (
        "You did not provide an API key. Send it in the Authorization header "
        "as 'Authorization: Bearer sk_test_...'."
    )
    return StripeError(401, INVALID_REQUEST, message, saved=False)


def bad_api_key(key: str) -> StripeError:
    """401: the key is not one the emulator accepts (shown masked, as Stripe does)."""
    shown = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "****"
    return StripeError(401, INVALID_REQUEST, f"Invalid API Key provided: {shown}", saved=False)


def rate_limited() -> StripeError:
    """429: the request was refused before doing anything; safe to retry."""
    message = "Request rate limit exceeded. Back off and retry the request later."
    headers = {"Stripe-Should-Retry": "true", "Retry-After": "1"}
    return StripeError(429, INVALID_REQUEST, message, "rate_limit", saved=False, headers=headers)


def server_fault() -> StripeError:
    """500: an injected fault, answered before any work was done."""
    message = "An unexpected error occurred in the emulator (injected fault); nothing was done."
    return StripeError(500, API_ERROR, message, saved=False)


def idempotency_mismatch(key: str) -> StripeError:
    """400: an idempotency key reused with a different request."""
    message = (
        f"Idempotency key '{key}' was first used with different parameters or another "
        "endpoint; a key may only be reused to retry the identical request."
    )
    return StripeError(400, IDEMPOTENCY_ERROR, message, saved=False)


def idempotency_in_progress(key: str) -> StripeError:
    """409: another request with the same idempotency key is still running."""
    message = f"A request with idempotency key '{key}' is still in progress; retry shortly."
    return StripeError(409, IDEMPOTENCY_ERROR, message, "idempotency_key_in_use", saved=False)
