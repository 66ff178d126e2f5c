"""Subscriptions: create, retrieve, update, list, cancel (DELETE); and the item list.

The emulator does not bill: a new subscription is `active` (or `trialing` during a trial)
and no invoices are made. As in Stripe, charging automatically a first invoice that is due
now needs a payment method: without one the request is refused (or, with
`payment_behavior=default_incomplete`, the subscription is `incomplete`). What it keeps is
what a reconciler needs to read back: customer, items with their prices and quantities,
collection method, trial, cancellation, discounts (an update keeps those it names by
`discounts[n][discount]`) and metadata.
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid, no_such, refused
from autumn_sync.emulator.listing import PAGING, Predicate, all_of, equal_filter, list_response
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import subscription_rules as rules
from autumn_sync.emulator.resources.subscription_items import apply_item_changes
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict, mapping

COMMON_PARAMS = (
    "cancel_at_period_end",
    "collection_method",
    "days_until_due",
    "default_payment_method",
    "description",
    "discounts",
    "items",
    "metadata",
    "off_session",
    "payment_behavior",
    "proration_behavior",
    "trial_end",
)
CREATE_PARAMS = (*COMMON_PARAMS, "customer", "trial_period_days")
UPDATE_PARAMS = (*COMMON_PARAMS, "cancellation_details", "proration_date")
CANCELED_UPDATABLE = {"metadata", "cancellation_details", "expand"}
COLLECTION = ("charge_automatically", "send_invoice")
STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


def create(call: Call) -> JsonDict:
    """POST /v1/subscriptions."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    customer_id = _customer(state, p)
    rows = p.items("items")
    if not rows:
        raise invalid("Missing required param: items.", "items", "parameter_missing")
    prices = [rules.item_price(state, row) for row in rows]
    rules.check_prices(prices)
    collection, days = _collection(p, "charge_automatically", None)
    sources = rules.discount_sources(state, p)
    sub = _new_subscription(state, p, customer_id, prices[0], collection, days)
    period = (int(str(sub["start_date"])), _period_end(state, p, prices[0], sub))
    items = [
        rules.build_item(state, r, pr, str(sub["id"]), period)
        for r, pr in zip(rows, prices, strict=True)
    ]
    _check_payment(state, p, sub, items)
    for item in items:
        state.add(item)
    sub["items"] = [item["id"] for item in items]
    sub["cancel_at"] = period[1] if sub["cancel_at_period_end"] else None
    state.add(sub)
    sub["discounts"] = rules.add_discounts(state, sources, sub)
    return rules.view_subscription(state, sub, call.expand)


PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)


def _check_payment(state: State, p: Params, sub: JsonDict, items: list[JsonDict]) -> None:
    """Charging automatically a first invoice that is due now needs a payment method (the
    subscription's, else the customer's default): without one Stripe refuses, or, with
    `payment_behavior=default_incomplete`, makes the subscription `incomplete`."""
    behavior = p.string("payment_behavior", choices=PAYMENT_BEHAVIORS)
    if sub["collection_method"] != "charge_automatically" or sub["status"] == "trialing":
        return
    if not rules.due_now(state, items) or _payment_method(state, sub):
        return
    if behavior == "default_incomplete":
        sub["status"] = "incomplete"
        return
    raise refused(
        "This customer has no attached payment source or default payment method. Please "
        "consider adding a default payment method."
    )


def _payment_method(state: State, sub: JsonDict) -> bool:
    if sub["default_payment_method"]:
        return True
    customer = state.require("customer", str(sub["customer"]))
    settings = as_dict(customer["invoice_settings"])
    return bool(settings.get("default_payment_method") or customer.get("default_source"))


def _customer(state: State, p: Params) -> str:
    customer_id = p.string("customer", required=True)
    assert customer_id is not None
    customer = state.require("customer", customer_id, "customer", status=400)
    if customer.get("deleted"):
        raise no_such("customer", customer_id, "customer", status=400)
    return customer_id


def _collection(p: Params, current: str, current_days: int | None) -> tuple[str, int | None]:
    """The collection method and `days_until_due`, which only `send_invoice` takes."""
    method = p.string("collection_method", choices=COLLECTION) or current
    days = p.integer("days_until_due", minimum=0) if p.has("days_until_due") else current_days
    if method == "send_invoice" and days is None:
        raise invalid(
            "days_until_due is required when collection_method is send_invoice.",
            "days_until_due",
            "parameter_missing",
        )
    if method == "charge_automatically":
        if p.has("days_until_due"):
            raise invalid(
                "days_until_due is only allowed with collection_method=send_invoice.",
                "days_until_due",
            )
        days = None
    return method, days


def _new_subscription(
    state: State, p: Params, customer_id: str, price: JsonDict, method: str, days: int | None
) -> JsonDict:
    now = state.now()
    return {
        "id": state.new_id("subscription"),
        "object": "subscription",
        "application": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "cancel_at": None,
        "cancel_at_period_end": p.boolean("cancel_at_period_end") is True,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": method,
        "created": now,
        "currency": price["currency"],
        "customer": customer_id,
        "days_until_due": days,
        "default_payment_method": p.string("default_payment_method") or None,
        "description": p.string("description") or None,
        "discounts": [],
        "ended_at": None,
        "items": [],
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata.merged({}, p),
        "pause_collection": None,
        "schedule": None,
        "start_date": now,
        "status": "active",
        "test_clock": None,
        "trial_end": None,
        "trial_start": None,
    }


def _period_end(state: State, p: Params, price: JsonDict, sub: JsonDict) -> int:
    """Set the trial from `trial_period_days`/`trial_end`; the first period ends with it."""
    start = int(str(sub["start_date"]))
    days = p.integer("trial_period_days", minimum=0)
    trial_end = _trial_end(state, p) if p.has("trial_end") else None
    if days and trial_end is not None:
        raise invalid(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
            "trial_end",
        )
    if days:
        trial_end = start + days * rules.DAY
    if trial_end is None or trial_end <= start:
        return rules.period_end(price, start)
    sub.update(status="trialing", trial_start=start, trial_end=trial_end)
    return trial_end


def _trial_end(state: State, p: Params) -> int:
    if p.string("trial_end") == "now":
        return state.now()
    moment = p.integer("trial_end")
    assert moment is not None
    if moment <= state.now():
        raise invalid("trial_end must be in the future (or `now`).", "trial_end")
    return moment


def retrieve(call: Call) -> JsonDict:
    """GET /v1/subscriptions/{id}."""
    sub = call.state.require("subscription", call.arg("id"))
    call.params.check_known(())
    return rules.view_subscription(call.state, sub, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/subscriptions/{id}."""
    state, p = call.state, call.params
    sub = state.require("subscription", call.arg("id"))
    p.check_known(UPDATE_PARAMS)
    if sub["status"] == "canceled":
        _check_canceled_update(p)
    changes = _plain_changes(p, sub)
    changes.update(_trial_changes(state, p, sub))
    sources = rules.discount_sources(state, p, sub) if p.has("discounts") else None
    apply_item_changes(state, sub, p.items("items"))
    sub.update(changes)
    if "cancel_at_period_end" in changes:
        sub["cancel_at"] = (
            _current_period_end(state, sub) if changes["cancel_at_period_end"] else None
        )
    if sources is not None:
        sub["discounts"] = rules.add_discounts(state, sources, sub)
    return rules.view_subscription(state, sub, call.expand)


def _check_canceled_update(p: Params) -> None:
    extra = [key for key in p.names() if key not in CANCELED_UPDATABLE]
    if extra:
        raise refused(
            "A canceled subscription can only change its metadata and cancellation_details.",
            extra[0],
        )


def _plain_changes(p: Params, sub: JsonDict) -> JsonDict:
    method, days = _collection(p, str(sub["collection_method"]), _opt_int(sub["days_until_due"]))
    changes: JsonDict = {
        "collection_method": method,
        "days_until_due": days,
        "metadata": metadata.merged(mapping(sub["metadata"]), p),
    }
    if p.has("cancel_at_period_end"):
        changes["cancel_at_period_end"] = p.boolean("cancel_at_period_end") is True
    if p.has("description"):
        changes["description"] = p.string("description") or None
    if p.has("default_payment_method"):
        changes["default_payment_method"] = p.string("default_payment_method") or None
    if p.has("cancellation_details"):
        changes["cancellation_details"] = _details(p, sub)
    return changes


def _details(p: Params, sub: JsonDict) -> JsonDict:
    """`cancellation_details` with the comment and feedback the request sends."""
    details = as_dict(sub["cancellation_details"])
    sent = p.sub("cancellation_details")
    if sent is not None:
        sent.check_known(("comment", "feedback"))
        details.update({key: sent.string(key) or None for key in sent.names()})
    return details


def _trial_changes(state: State, p: Params, sub: JsonDict) -> JsonDict:
    """`trial_end=now` ends a trial; a future `trial_end` starts or extends one."""
    if not p.has("trial_end"):
        return {}
    moment = _trial_end(state, p)
    if moment <= state.now():
        return {"status": "active", "trial_end": moment}
    return {
        "status": "trialing",
        "trial_end": moment,
        "trial_start": sub["trial_start"] or state.now(),
    }


def _current_period_end(state: State, sub: JsonDict) -> int | None:
    for item_id in sub["items"] if isinstance(sub["items"], list) else []:
        item = state.find("subscription_item", str(item_id))
        if item is not None:
            return _opt_int(item["current_period_end"])
    return None


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def cancel(call: Call) -> JsonDict:
    """DELETE /v1/subscriptions/{id}: cancel now."""
    state, p = call.state, call.params
    sub = state.require("subscription", call.arg("id"))
    p.check_known(("cancellation_details", "invoice_now", "prorate"))
    if sub["status"] == "canceled":
        raise refused("This subscription is already canceled.", "id")
    details = _details(p, sub)
    details["reason"] = "cancellation_requested"
    now = state.now()
    sub.update(status="canceled", canceled_at=now, ended_at=now, cancellation_details=details)
    return rules.view_subscription(state, sub, call.expand)


def list_subscriptions(call: Call) -> JsonDict:
    """GET /v1/subscriptions by `customer`, `price`, `status` and `collection_method`."""
    state, p = call.state, call.params
    p.check_known((*PAGING, "collection_method", "customer", "price", "status"))
    status = p.string("status", choices=STATUSES)
    price = p.string("price")
    matches = all_of(
        equal_filter(p, "customer"),
        equal_filter(p, "collection_method"),
        _status_filter(status),
        lambda sub: price is None or price in _item_prices(state, sub),
    )
    return list_response(state, "subscription", p, "/v1/subscriptions", call.expand, matches)


def _status_filter(status: str | None) -> Predicate:
    if status == "all":
        return lambda _: True
    if status is None:
        return lambda sub: sub["status"] not in ("canceled", "incomplete_expired")
    if status == "ended":
        return lambda sub: sub["status"] in ("canceled", "incomplete_expired")
    return lambda sub: sub["status"] == status


def _item_prices(state: State, sub: JsonDict) -> set[str]:
    items = sub["items"] if isinstance(sub["items"], list) else []
    found = (state.find("subscription_item", str(i)) for i in items)
    return {str(item["price"]) for item in found if item is not None}


def list_items(call: Call) -> JsonDict:
    """GET /v1/subscription_items?subscription=..."""
    p = call.params
    p.check_known((*PAGING, "subscription"))
    sub_id = p.string("subscription", required=True)
    call.state.require("subscription", str(sub_id), "subscription", status=400)
    matches = equal_filter(p, "subscription")
    return list_response(
        call.state, "subscription_item", p, "/v1/subscription_items", call.expand, matches
    )


ROUTES = [
    Route("POST", "/v1/subscriptions", create),
    Route("GET", "/v1/subscriptions", list_subscriptions),
    Route("GET", "/v1/subscriptions/{id}", retrieve),
    Route("POST", "/v1/subscriptions/{id}", update),
    Route("DELETE", "/v1/subscriptions/{id}", cancel),
    Route("GET", "/v1/subscription_items", list_items),
]
