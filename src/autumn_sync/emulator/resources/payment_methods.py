"""Payment methods, as far as a customer's checkout leaves one behind: attach, retrieve,
detach.

Stripe's test-mode card ids (`pm_card_visa`, `pm_card_mastercard`, …) stand for a card:
attaching one stores a new card payment method (`pm_…`) on the customer, as Stripe does. A
customer's `invoice_settings.default_payment_method` must name a payment method attached to
it; detaching that one clears it.
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid, no_such, refused
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict, mapping
from autumn_sync.emulator.views import Expand, register

TEST_CARD_PREFIX = "pm_card_"
LAST4 = {"visa": "4242", "mastercard": "4444", "amex": "8431", "discover": "1117"}


def view(state: State, method: JsonDict, expand: Expand) -> JsonDict:
    expand.check(())
    return dict(method)


def attach_to(state: State, method_id: str, customer_id: str, param: str) -> JsonDict:
    """Attach `method_id` (a stored payment method or a test card) to a customer."""
    if method_id.startswith(TEST_CARD_PREFIX):
        method = state.add(_test_card(state, method_id.removeprefix(TEST_CARD_PREFIX)))
    else:
        method = state.require("payment_method", method_id, param, status=400)
    if method["customer"] not in (None, customer_id):
        raise refused(
            "The payment method you provided has already been attached to a customer.", param
        )
    method["customer"] = customer_id
    return method


def _test_card(state: State, brand: str) -> JsonDict:
    return {
        "id": state.new_id("payment_method"),
        "object": "payment_method",
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "card": {"brand": brand, "last4": LAST4.get(brand, "4242"), "exp_month": 12},
        "created": state.now(),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def check_default(state: State, customer: JsonDict, method_id: str | None, param: str) -> None:
    """A customer's default payment method must be attached to it."""
    if method_id is None:
        return
    method = state.find("payment_method", method_id)
    if method is None or method["customer"] != customer["id"]:
        raise invalid(
            f"The customer does not have a payment method with the ID {method_id}. The payment "
            "method must be attached to the customer.",
            param,
        )


def attach(call: Call) -> JsonDict:
    """POST /v1/payment_methods/{id}/attach."""
    p = call.params
    p.check_known(("customer",))
    customer_id = p.string("customer", required=True)
    assert customer_id is not None
    customer = call.state.require("customer", customer_id, "customer", status=400)
    if customer.get("deleted"):
        raise no_such("customer", customer_id, "customer", status=400)
    method = attach_to(call.state, call.arg("id"), customer_id, "id")
    return view(call.state, method, call.expand)


def retrieve(call: Call) -> JsonDict:
    """GET /v1/payment_methods/{id}."""
    call.params.check_known(())
    return view(call.state, call.state.require("payment_method", call.arg("id")), call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/payment_methods/{id} (metadata)."""
    call.params.check_known(("metadata",))
    method = call.state.require("payment_method", call.arg("id"))
    method["metadata"] = metadata.merged(mapping(method["metadata"]), call.params)
    return view(call.state, method, call.expand)


def detach(call: Call) -> JsonDict:
    """POST /v1/payment_methods/{id}/detach: also stops being its customer's default."""
    call.params.check_known(())
    method = call.state.require("payment_method", call.arg("id"))
    if method["customer"] is None:
        raise refused(
            f"The payment method {method['id']} is not attached to a customer.", "payment_method"
        )
    customer = call.state.find("customer", str(method["customer"]))
    if customer is not None:
        settings = as_dict(customer["invoice_settings"])
        if settings.get("default_payment_method") == method["id"]:
            customer["invoice_settings"] = {**settings, "default_payment_method": None}
    method["customer"] = None
    return view(call.state, method, call.expand)


register("payment_method", view)

ROUTES = [
    Route("GET", "/v1/payment_methods/{id}", retrieve),
    Route("POST", "/v1/payment_methods/{id}", update),
    Route("POST", "/v1/payment_methods/{id}/attach", attach),
    Route("POST", "/v1/payment_methods/{id}/detach", detach),
]
