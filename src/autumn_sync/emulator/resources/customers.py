"""Customers: create, retrieve, update, list, delete.

Deleting a customer cancels its subscriptions at once; afterwards retrieving it answers the
short deleted form (`deleted: true`), and updating or deleting it again is a 404. Creating
one with `payment_method` attaches that payment method; `invoice_settings.
default_payment_method` must name one attached to the customer (a test card id given as
`payment_method` in the same request counts as the card it attaches).
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import no_such
from autumn_sync.emulator.listing import PAGING, equal_filter, list_response
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import payment_methods
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict, mapping
from autumn_sync.emulator.views import Expand, deleted, register

TEXT_FIELDS = ("business_name", "description", "email", "individual_name", "name", "phone")
HASH_FIELDS = ("address", "shipping", "tax")
COMMON_PARAMS = (
    *TEXT_FIELDS,
    *HASH_FIELDS,
    "balance",
    "cash_balance",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "next_invoice_sequence",
    "preferred_locales",
    "source",
    "tax_exempt",
    "validate",
)
CREATE_PARAMS = (*COMMON_PARAMS, "payment_method", "tax_id_data", "test_clock")
UPDATE_PARAMS = (*COMMON_PARAMS, "default_source")
INVOICE_SETTINGS = ("custom_fields", "default_payment_method", "footer", "rendering_options")


def view(state: State, customer: JsonDict, expand: Expand) -> JsonDict:
    """A customer as Stripe shows it (nothing to expand)."""
    expand.check(())
    out = dict(customer)
    out["metadata"] = mapping(customer["metadata"])
    return out


def build_customer(state: State, p: Params, object_id: str | None = None) -> JsonDict:
    """A new customer object from creation parameters (not yet stored)."""
    customer: JsonDict = {
        "id": object_id or state.new_id("customer"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": state.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": state.random_code(8),
        "invoice_settings": dict.fromkeys(INVOICE_SETTINGS),
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    customer.update(_changes(customer, p))
    return customer


def _changes(customer: JsonDict, p: Params) -> JsonDict:
    """The fields a create or update request sets."""
    changes: JsonDict = {"metadata": metadata.merged(mapping(customer["metadata"]), p)}
    for field in TEXT_FIELDS:
        if p.has(field):
            changes[field] = p.string(field) or None
    for field in HASH_FIELDS:
        if p.has(field):
            sub = p.sub(field)
            changes[field] = _plain(sub.data) if sub is not None else None
    if p.has("balance"):
        changes["balance"] = p.integer("balance") or 0
    if p.has("invoice_prefix"):
        changes["invoice_prefix"] = p.string("invoice_prefix")
    if p.has("next_invoice_sequence"):
        changes["next_invoice_sequence"] = p.integer("next_invoice_sequence", minimum=1)
    if p.has("preferred_locales"):
        changes["preferred_locales"] = p.strings("preferred_locales")
    if p.has("tax_exempt"):
        changes["tax_exempt"] = p.string("tax_exempt", choices=("exempt", "none", "reverse"))
    if p.has("invoice_settings"):
        changes["invoice_settings"] = _invoice_settings(customer, p)
    return changes


def _invoice_settings(customer: JsonDict, p: Params) -> JsonDict:
    settings = as_dict(customer["invoice_settings"])
    sub = p.sub("invoice_settings")
    if sub is not None:
        sub.check_known(INVOICE_SETTINGS)
        for key in sub.names():
            value = sub.data[key]
            settings[key] = _plain(value) if value != "" else None
    return settings


def _plain(value: object) -> object:
    """A decoded parameter value with indexed hashes turned into lists."""
    if isinstance(value, dict):
        if value and all(key.isdigit() for key in value):
            return [_plain(value[key]) for key in sorted(value, key=int)]
        return {key: _plain(item) for key, item in value.items()}
    return value


def create(call: Call) -> JsonDict:
    """POST /v1/customers."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    customer = build_customer(state, p)
    settings = as_dict(customer["invoice_settings"])
    default = settings.get("default_payment_method")
    given = p.string("payment_method")
    if given is not None:
        method = payment_methods.attach_to(state, given, str(customer["id"]), "payment_method")
        if default == given:
            customer["invoice_settings"] = {**settings, "default_payment_method": method["id"]}
    _check_default(state, customer)
    return view(state, state.add(customer), call.expand)


def _check_default(state: State, customer: JsonDict) -> None:
    settings = as_dict(customer["invoice_settings"])
    method = settings.get("default_payment_method")
    param = "invoice_settings[default_payment_method]"
    payment_methods.check_default(state, customer, str(method) if method else None, param)


def _live(state: State, customer_id: str) -> JsonDict:
    customer = state.require("customer", customer_id)
    if customer.get("deleted"):
        raise no_such("customer", customer_id)
    return customer


def retrieve(call: Call) -> JsonDict:
    """GET /v1/customers/{id} (a deleted customer answers its deleted form)."""
    customer = call.state.require("customer", call.arg("id"))
    call.params.check_known(())
    if customer.get("deleted"):
        return deleted(customer)
    return view(call.state, customer, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/customers/{id}."""
    customer = _live(call.state, call.arg("id"))
    call.params.check_known(UPDATE_PARAMS)
    changes = _changes(customer, call.params)
    _check_default(call.state, {**customer, **changes})
    customer.update(changes)
    return view(call.state, customer, call.expand)


def delete(call: Call) -> JsonDict:
    """DELETE /v1/customers/{id}: also cancels the customer's subscriptions."""
    state = call.state
    customer = _live(state, call.arg("id"))
    call.params.check_known(())
    now = state.now()
    for subscription in state.tables["subscription"].rows.values():
        if subscription["customer"] == customer["id"] and subscription["status"] != "canceled":
            subscription.update(status="canceled", canceled_at=now, ended_at=now)
    customer["deleted"] = True
    return deleted(customer)


def list_customers(call: Call) -> JsonDict:
    """GET /v1/customers, optionally by exact `email`."""
    p = call.params
    p.check_known((*PAGING, "email", "test_clock"))
    by_email = equal_filter(p, "email")
    return list_response(
        call.state,
        "customer",
        p,
        "/v1/customers",
        call.expand,
        lambda customer: not customer.get("deleted") and by_email(customer),
    )


register("customer", view)

ROUTES = [
    Route("POST", "/v1/customers", create),
    Route("GET", "/v1/customers", list_customers),
    Route("GET", "/v1/customers/{id}", retrieve),
    Route("POST", "/v1/customers/{id}", update),
    Route("DELETE", "/v1/customers/{id}", delete),
]
