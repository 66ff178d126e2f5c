"""Promotion codes: create, retrieve, update (`active`, `metadata`, `restrictions`), list.

A code is redeemed through a subscription's `discounts[n][promotion_code]`; Stripe then refuses
it when inactive, past `expires_at`, redeemed `max_redemptions` times, restricted to another
`customer`, or restricted to `first_time_transaction` for a customer who already paid (see
`subscription_rules.redeemable_promotion`). Each redemption counts in `times_redeemed`.

In the pinned API version a promotion code names its coupon through the polymorphic
`promotion` hash (`promotion[type]=coupon&promotion[coupon]=...`), not a top-level `coupon`
parameter. A code is unique, regardless of case, among the active promotion codes for the
same customer (codes for everyone count as one customer).
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid, refused
from autumn_sync.emulator.listing import PAGING, all_of, bool_filter, list_response
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, mapping
from autumn_sync.emulator.views import Expand, reference, register

CREATE_PARAMS = (
    "active",
    "code",
    "customer",
    "expires_at",
    "max_redemptions",
    "metadata",
    "promotion",
    "restrictions",
)
RESTRICTIONS = (
    "currency_options",
    "first_time_transaction",
    "minimum_amount",
    "minimum_amount_currency",
)
MAX_CODE_LENGTH = 500


def view(state: State, promo: JsonDict, expand: Expand) -> JsonDict:
    """A promotion code as Stripe shows it; `promotion.coupon` and `customer` expand."""
    expand.check(("promotion", "customer"))
    expand.sub("promotion").check(("coupon",))
    out = dict(promo)
    out["metadata"] = mapping(promo["metadata"])
    promotion = mapping(promo["promotion"])
    coupon = reference(state, "coupon", promotion["coupon"], expand.sub("promotion"), "coupon")
    out["promotion"] = {"coupon": coupon, "type": promotion["type"]}
    out["customer"] = reference(state, "customer", promo["customer"], expand, "customer")
    return out


def create(call: Call) -> JsonDict:
    """POST /v1/promotion_codes."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    coupon_id = _coupon(state, p)
    code = _code(state, p)
    customer = p.string("customer") or None
    if customer:
        state.require("customer", customer, "customer", status=400)
    promo: JsonDict = {
        "id": state.new_id("promotion_code"),
        "object": "promotion_code",
        "active": p.boolean("active") is not False,
        "code": code,
        "created": state.now(),
        "customer": customer,
        "customer_account": None,
        "expires_at": _expires_at(state, p, coupon_id),
        "livemode": False,
        "max_redemptions": p.integer("max_redemptions", minimum=1),
        "metadata": metadata.merged({}, p),
        "promotion": {"coupon": coupon_id, "type": "coupon"},
        "restrictions": _restrictions(p),
        "times_redeemed": 0,
    }
    if promo["active"]:
        _check_code_free(state, promo)
    state.add(promo)
    return view(state, promo, call.expand)


def _coupon(state: State, p: Params) -> str:
    promotion = p.sub("promotion", required=True)
    assert promotion is not None
    promotion.check_known(("coupon", "type"))
    promotion.string("type", required=True, choices=("coupon",))
    coupon_id = promotion.string("coupon", required=True)
    assert coupon_id is not None
    state.require("coupon", coupon_id, promotion.name("coupon"), status=400)
    return coupon_id


def _expires_at(state: State, p: Params, coupon_id: str) -> int | None:
    """`expires_at`: in the future, and not after the coupon's `redeem_by`."""
    moment = p.integer("expires_at")
    if moment is None:
        return None
    if moment <= state.now():
        raise invalid("expires_at must be in the future.", "expires_at")
    redeem_by = state.require("coupon", coupon_id).get("redeem_by")
    if isinstance(redeem_by, int) and moment > redeem_by:
        raise invalid("expires_at cannot be after the coupon's redeem_by.", "expires_at")
    return moment


def _code(state: State, p: Params) -> str:
    code = p.string("code")
    if code is None:
        return state.random_code(8)
    plain = code.replace("-", "")
    if not code or len(code) > MAX_CODE_LENGTH or not plain.isalnum() or not plain.isascii():
        raise invalid(
            f"Invalid code: use 1 to {MAX_CODE_LENGTH} letters, digits and dashes.", "code"
        )
    return code


def _check_code_free(state: State, promo: JsonDict) -> None:
    """Refuse a second active code with the same text (any case) for the same customer."""
    code = str(promo["code"]).lower()
    for other in state.tables["promotion_code"].rows.values():
        clash = str(other["code"]).lower() == code and other["customer"] == promo["customer"]
        if clash and other["active"] and other["id"] != promo["id"]:
            raise refused(
                f"An active promotion code ({other['id']}) already uses the code "
                f"'{promo['code']}'.",
                "code",
            )


def _restrictions(p: Params) -> JsonDict:
    restrictions: JsonDict = {
        "currency_options": {},
        "first_time_transaction": False,
        "minimum_amount": None,
        "minimum_amount_currency": None,
    }
    sub = p.sub("restrictions")
    if sub is None:
        return restrictions
    sub.check_known(RESTRICTIONS)
    if sub.has("first_time_transaction"):
        restrictions["first_time_transaction"] = sub.boolean("first_time_transaction")
    restrictions["minimum_amount"] = sub.integer("minimum_amount", minimum=0)
    currency = sub.string("minimum_amount_currency")
    restrictions["minimum_amount_currency"] = currency.lower() if currency else None
    return restrictions


def retrieve(call: Call) -> JsonDict:
    """GET /v1/promotion_codes/{id}."""
    promo = call.state.require("promotion_code", call.arg("id"))
    call.params.check_known(())
    return view(call.state, promo, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/promotion_codes/{id}: `active`, `metadata`, `restrictions`."""
    state, p = call.state, call.params
    promo = state.require("promotion_code", call.arg("id"))
    p.check_known(("active", "metadata", "restrictions"))
    restrictions = p.sub("restrictions")
    if restrictions is not None:
        restrictions.check_known(("currency_options",))
    changes: JsonDict = {"metadata": metadata.merged(mapping(promo["metadata"]), p)}
    active = p.boolean("active")
    if active is not None:
        changes["active"] = active
    if active and not promo["active"]:
        _check_code_free(state, promo)
    promo.update(changes)
    return view(state, promo, call.expand)


def list_codes(call: Call) -> JsonDict:
    """GET /v1/promotion_codes by `active`, `code` (any case), `coupon`, `customer`."""
    p = call.params
    p.check_known((*PAGING, "active", "code", "coupon", "customer"))
    code = (p.string("code") or "").lower()
    coupon = p.string("coupon")
    customer = p.string("customer")
    matches = all_of(
        bool_filter(p, "active"),
        lambda promo: not code or str(promo["code"]).lower() == code,
        lambda promo: coupon is None or mapping(promo["promotion"]).get("coupon") == coupon,
        lambda promo: customer is None or promo["customer"] == customer,
    )
    return list_response(
        call.state, "promotion_code", p, "/v1/promotion_codes", call.expand, matches
    )


register("promotion_code", view)

ROUTES = [
    Route("POST", "/v1/promotion_codes", create),
    Route("GET", "/v1/promotion_codes", list_codes),
    Route("GET", "/v1/promotion_codes/{id}", retrieve),
    Route("POST", "/v1/promotion_codes/{id}", update),
]
