"""Coupons: create (with a chosen `id` or a generated one), retrieve, update, list, delete.

Only `name` and `metadata` change after creation: the amount, currency and duration are
fixed, so the update endpoint does not take them. `applies_to` appears only when expanded.
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import already_exists, invalid
from autumn_sync.emulator.listing import PAGING, list_response
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, mapping
from autumn_sync.emulator.views import Expand, deleted, register, without_hidden

CREATE_PARAMS = (
    "amount_off",
    "applies_to",
    "currency",
    "duration",
    "duration_in_months",
    "id",
    "max_redemptions",
    "metadata",
    "name",
    "percent_off",
    "redeem_by",
)
MAX_NAME_LENGTH = 40


def view(state: State, coupon: JsonDict, expand: Expand) -> JsonDict:
    """A coupon as Stripe shows it: `applies_to` only when expanded."""
    expand.check(("applies_to",))
    out = without_hidden(coupon, ("applies_to",), expand)
    out["metadata"] = mapping(coupon["metadata"])
    out["valid"] = coupon_valid(state, coupon)
    return out


def coupon_valid(state: State, coupon: JsonDict) -> bool:
    """Whether the coupon can still be redeemed: before `redeem_by` and fewer than
    `max_redemptions` times."""
    redeem_by = coupon.get("redeem_by")
    if isinstance(redeem_by, int) and redeem_by <= state.now():
        return False
    limit = coupon.get("max_redemptions")
    return not (isinstance(limit, int) and int(str(coupon["times_redeemed"])) >= limit)


def create(call: Call) -> JsonDict:
    """POST /v1/coupons."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    coupon_id = p.string("id") or state.random_code(8)
    if state.find("coupon", coupon_id) is not None:
        raise already_exists("Coupon")
    coupon: JsonDict = {
        "id": coupon_id,
        "object": "coupon",
        **_discount(p),
        **_duration(p),
        "applies_to": _applies_to(state, p),
        "created": state.now(),
        "livemode": False,
        "max_redemptions": p.integer("max_redemptions", minimum=1),
        "metadata": metadata.merged({}, p),
        "name": _name(p),
        "redeem_by": p.integer("redeem_by"),
        "times_redeemed": 0,
        "valid": True,
    }
    state.add(coupon)
    return view(state, coupon, call.expand)


def _discount(p: Params) -> JsonDict:
    """`percent_off`, or `amount_off` with its `currency` — exactly one of the two."""
    percent = p.number("percent_off")
    amount = p.integer("amount_off", minimum=1)
    if (percent is None) == (amount is None):
        raise invalid("Pass exactly one of percent_off and amount_off.", "percent_off")
    if percent is not None and not 0 < percent <= 100:
        raise invalid("percent_off must be greater than 0 and at most 100.", "percent_off")
    currency = p.string("currency")
    if amount is not None and not currency:
        raise invalid("amount_off requires a currency.", "currency", "parameter_missing")
    if percent is not None and currency:
        raise invalid("currency is only allowed together with amount_off.", "currency")
    return {
        "amount_off": amount,
        "currency": currency.lower() if currency else None,
        "percent_off": percent,
    }


def _duration(p: Params) -> JsonDict:
    duration = p.string("duration", choices=("forever", "once", "repeating")) or "once"
    months = p.integer("duration_in_months", minimum=1)
    if duration == "repeating" and months is None:
        raise invalid(
            "A repeating coupon needs duration_in_months.",
            "duration_in_months",
            "parameter_missing",
        )
    if duration != "repeating" and months is not None:
        raise invalid(
            "duration_in_months is only allowed with duration=repeating.", "duration_in_months"
        )
    return {"duration": duration, "duration_in_months": months}


def _applies_to(state: State, p: Params) -> JsonDict | None:
    applies = p.sub("applies_to")
    if applies is None:
        return None
    applies.check_known(("products",))
    products = applies.strings("products")
    for index, product_id in enumerate(products):
        state.require("product", product_id, f"applies_to[products][{index}]", status=400)
    return {"products": products}


def _name(p: Params) -> str | None:
    name = p.string("name") or None
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise invalid(f"A coupon's name may be at most {MAX_NAME_LENGTH} characters.", "name")
    return name


def retrieve(call: Call) -> JsonDict:
    """GET /v1/coupons/{id}."""
    coupon = call.state.require("coupon", call.arg("id"))
    call.params.check_known(())
    return view(call.state, coupon, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/coupons/{id}: `name` and `metadata` only."""
    state, p = call.state, call.params
    coupon = state.require("coupon", call.arg("id"))
    p.check_known(("metadata", "name"))
    changes: JsonDict = {"metadata": metadata.merged(mapping(coupon["metadata"]), p)}
    if p.has("name"):
        changes["name"] = _name(p)
    coupon.update(changes)
    return view(state, coupon, call.expand)


def delete(call: Call) -> JsonDict:
    """DELETE /v1/coupons/{id}."""
    coupon = call.state.require("coupon", call.arg("id"))
    call.params.check_known(())
    call.state.remove("coupon", str(coupon["id"]))
    return deleted(coupon)


def list_coupons(call: Call) -> JsonDict:
    """GET /v1/coupons."""
    call.params.check_known(PAGING)
    return list_response(call.state, "coupon", call.params, "/v1/coupons", call.expand)


register("coupon", view)

ROUTES = [
    Route("POST", "/v1/coupons", create),
    Route("GET", "/v1/coupons", list_coupons),
    Route("GET", "/v1/coupons/{id}", retrieve),
    Route("POST", "/v1/coupons/{id}", update),
    Route("DELETE", "/v1/coupons/{id}", delete),
]
