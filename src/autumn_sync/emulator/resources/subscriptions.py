"""Subscriptions: create, retrieve, update, list, cancel (DELETE); and the item list.

A new subscription is `active` (or `trialing` during a trial) and makes its first invoice
(see `lifecycle` for how it is billed over time). As in Stripe, charging automatically a first
invoice that is due now needs a payment method: without one the request is refused (or, with
`payment_behavior=default_incomplete`, the subscription is `incomplete` with an open invoice).
An update that changes items is prorated as `proration_behavior` says, at `proration_date`
(default: now). Discounts on an update keep those named by `discounts[n][discount]`.
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid, no_such, refused
from autumn_sync.emulator.listing import PAGING, Predicate, all_of, equal_filter, list_response
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import lifecycle
from autumn_sync.emulator.resources import subscription_rules as rules
from autumn_sync.emulator.resources.charges import current_period, snapshot
from autumn_sync.emulator.resources.invoices import payment_method
from autumn_sync.emulator.resources.subscription_items import apply_item_changes
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict, mapping

COMMON_PARAMS = (
    "cancel_at",
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
    "trial_settings",
)
CREATE_PARAMS = (*COMMON_PARAMS, "billing_mode", "customer", "trial_period_days")
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
    call.params.check_known(CREATE_PARAMS)
    sub = open_subscription(call.state, call.params)
    return rules.view_subscription(call.state, sub, call.expand)


def open_subscription(state: State, p: Params) -> JsonDict:
    """Make a subscription from creation parameters, with its first invoice."""
    customer_id = _customer(state, p)
    rows = p.items("items")
    if not rows:
        raise invalid("Missing required param: items.", "items", "parameter_missing")
    prices = [rules.item_price(state, row) for row in rows]
    rules.check_prices(prices)
    collection, days = _collection(p, "charge_automatically", None)
    sources = rules.discount_sources(state, p, customer_id)
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
    if p.has("cancel_at"):
        sub["cancel_at"] = _cancel_at(state, p, period[1])
    state.add(sub)
    sub["discounts"] = rules.add_discounts(state, sources, sub)
    lifecycle.start(state, sub)
    return sub


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
    if not rules.due_now(state, items) or payment_method(state, sub):
        return
    if behavior == "default_incomplete":
        sub["status"] = "incomplete"
        return
    raise refused(
        "This customer has no attached payment source or default payment method. Please "
        "consider adding a default payment method."
    )


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
    """A new subscription with every field Stripe returns (nullable ones as null)."""
    now = state.now()
    return {
        "id": state.new_id("subscription"),
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": None,
        "billing_mode": _billing_mode(p, now),
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": p.boolean("cancel_at_period_end") is True,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": method,
        "created": now,
        "currency": price["currency"],
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": days,
        "default_payment_method": p.string("default_payment_method") or None,
        "default_source": None,
        "default_tax_rates": [],
        "description": p.string("description") or None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": [],
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata.merged({}, p),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "presentment_details": None,
        "schedule": None,
        "start_date": now,
        "status": "active",
        "status_details": None,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": trial_settings(p, None),
        "trial_start": None,
    }


def _billing_mode(p: Params, now: int) -> JsonDict:
    """`billing_mode`: flexible unless the request asks for classic (the pinned API version's
    default for new subscriptions)."""
    sent = p.sub("billing_mode")
    kind = "flexible"
    discounts = "itemized"
    if sent is not None:
        sent.check_known(("flexible", "type"))
        kind = sent.string("type", required=True, choices=("classic", "flexible")) or kind
        flexible = sent.sub("flexible")
        if flexible is not None:
            flexible.check_known(("proration_discounts",))
            choices = ("included", "itemized")
            discounts = flexible.string("proration_discounts", choices=choices) or discounts
    if kind == "classic":
        return {"flexible": None, "type": "classic", "updated_at": None}
    return {"flexible": {"proration_discounts": discounts}, "type": "flexible", "updated_at": now}


def trial_settings(p: Params, current: object) -> JsonDict:
    """`trial_settings.end_behavior.missing_payment_method` (`create_invoice` unless set)."""
    settings = as_dict(current) or {"end_behavior": {"missing_payment_method": "create_invoice"}}
    sent = p.sub("trial_settings")
    if sent is None:
        return settings
    sent.check_known(("end_behavior",))
    behavior = sent.sub("end_behavior", required=True)
    assert behavior is not None
    behavior.check_known(("missing_payment_method",))
    choice = behavior.string(
        "missing_payment_method", required=True, choices=lifecycle.MISSING_PAYMENT_METHOD
    )
    return {"end_behavior": {"missing_payment_method": choice}}


def _period_end(state: State, p: Params, price: JsonDict, sub: JsonDict) -> int:
    """Set the trial from `trial_period_days`/`trial_end`; the first period ends with it, and
    the billing cycle is anchored at its end (as Stripe anchors a subscription with a trial)."""
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
    sub.update(
        status="trialing", trial_start=start, trial_end=trial_end, billing_cycle_anchor=trial_end
    )
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
    behavior = _proration_behavior(p)
    moment = _proration_date(state, p, sub)
    trial_end = _trial_end(state, p) if p.has("trial_end") else None
    customer_id = str(sub["customer"])
    sources = rules.discount_sources(state, p, customer_id, sub) if p.has("discounts") else None
    before = snapshot(state, sub)
    apply_item_changes(state, sub, p.items("items"))
    sub.update(changes)
    if sources is not None:
        sub["discounts"] = rules.add_discounts(state, sources, sub)
    lifecycle.items_changed(state, sub, before, behavior, moment)
    if trial_end is not None:
        lifecycle.move_trial(state, sub, trial_end)
    if "cancel_at_period_end" in changes:
        sub["cancel_at"] = (
            _current_period_end(state, sub) if changes["cancel_at_period_end"] else None
        )
    if p.has("cancel_at"):
        sub["cancel_at"] = _cancel_at(state, p, current_period(state, sub)[1])
        sub["cancel_at_period_end"] = False
    lifecycle.watch(state, sub)
    return rules.view_subscription(state, sub, call.expand)


def _cancel_at(state: State, p: Params, period_end: int) -> int | None:
    """`cancel_at`: a future moment, `min_period_end`/`max_period_end` (the end of the
    current period), or empty to cancel no more; not together with `cancel_at_period_end`."""
    if p.has("cancel_at_period_end"):
        raise invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
            "cancel_at",
        )
    text = p.string("cancel_at")
    if text == "":
        return None
    if text in ("min_period_end", "max_period_end"):
        return period_end
    moment = p.integer("cancel_at")
    assert moment is not None
    if moment <= state.now():
        raise invalid("cancel_at must be in the future.", "cancel_at")
    return moment


def _proration_behavior(p: Params) -> str:
    """How an item change is prorated (`create_prorations` unless said)."""
    choices = lifecycle.PRORATION_BEHAVIORS
    return p.string("proration_behavior", choices=choices) or "create_prorations"


def _proration_date(state: State, p: Params, sub: JsonDict) -> int:
    """The moment prorations are worked out at: `proration_date`, within the current period,
    or now."""
    moment = p.integer("proration_date")
    if moment is None:
        return state.now()
    start, end = current_period(state, sub)
    if not start <= moment <= end:
        raise invalid(
            "proration_date must fall within the subscription's current billing period.",
            "proration_date",
        )
    return moment


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
    if p.has("trial_settings"):
        changes["trial_settings"] = trial_settings(p, sub.get("trial_settings"))
    return changes


def _details(p: Params, sub: JsonDict) -> JsonDict:
    """`cancellation_details` with the comment and feedback the request sends."""
    details = as_dict(sub["cancellation_details"])
    sent = p.sub("cancellation_details")
    if sent is not None:
        sent.check_known(("comment", "feedback"))
        details.update({key: sent.string(key) or None for key in sent.names()})
    return details


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
    lifecycle.settle_cancel(
        state, sub, p.boolean("prorate") is True, p.boolean("invoice_now") is True
    )
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


ITEM_UPDATE_PARAMS = ("metadata", "price", "quantity", "proration_behavior", "proration_date")


def update_item(call: Call) -> JsonDict:
    """POST /v1/subscription_items/{id}: its price, quantity or metadata, prorated as
    `proration_behavior` says (`create_prorations` unless said), as a subscription update
    of that one item is."""
    state, p = call.state, call.params
    item = state.require("subscription_item", call.arg("id"))
    p.check_known(ITEM_UPDATE_PARAMS)
    sub = state.require("subscription", str(item["subscription"]))
    if sub["status"] == "canceled":
        raise invalid("A canceled subscription's items cannot be updated.")
    behavior = _proration_behavior(p)
    moment = _proration_date(state, p, sub)
    row = {k: v for k, v in p.data.items() if k in ("metadata", "price", "quantity")}
    before = snapshot(state, sub)
    apply_item_changes(state, sub, [Params({**row, "id": str(item["id"])})])
    lifecycle.items_changed(state, sub, before, behavior, moment)
    lifecycle.watch(state, sub)
    return rules.view_item(state, item, call.expand)


ROUTES = [
    Route("POST", "/v1/subscriptions", create),
    Route("GET", "/v1/subscriptions", list_subscriptions),
    Route("GET", "/v1/subscriptions/{id}", retrieve),
    Route("POST", "/v1/subscriptions/{id}", update),
    Route("DELETE", "/v1/subscriptions/{id}", cancel),
    Route("GET", "/v1/subscription_items", list_items),
    Route("POST", "/v1/subscription_items/{id}", update_item),
]
