"""Prices: create, retrieve, update, list. There is no delete endpoint; archive instead.

Rules kept from Stripe: amounts, currency, recurring terms and tiers cannot change (the
update endpoint does not take those parameters, so sending one is an unknown parameter);
`lookup_key` is unique among prices unless `transfer_lookup_key=true` moves it; a product's
default price cannot be archived; `tiers` appears only when expanded.
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid, refused
from autumn_sync.emulator.listing import (
    PAGING,
    Predicate,
    all_of,
    bool_filter,
    equal_filter,
    list_response,
)
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import products
from autumn_sync.emulator.resources.price_rules import TAX_BEHAVIORS, build_price, check_lookup_key
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, mapping
from autumn_sync.emulator.views import Expand, reference, register, without_hidden

CREATE_PARAMS = (
    "active",
    "billing_scheme",
    "currency",
    "custom_unit_amount",
    "lookup_key",
    "metadata",
    "nickname",
    "product",
    "product_data",
    "recurring",
    "tax_behavior",
    "tiers",
    "tiers_mode",
    "transfer_lookup_key",
    "transform_quantity",
    "unit_amount",
    "unit_amount_decimal",
)
UPDATE_PARAMS = (
    "active",
    "lookup_key",
    "metadata",
    "nickname",
    "tax_behavior",
    "transfer_lookup_key",
)
MAX_LOOKUP_KEYS = 10
LIST_PARAMS = (
    *PAGING,
    "active",
    "currency",
    "lookup_keys",
    "product",
    "recurring",
    "type",
)


def view(state: State, price: JsonDict, expand: Expand) -> JsonDict:
    """A price as Stripe shows it: `tiers` only when expanded, `product` expandable."""
    expand.check(("tiers", "product"))
    out = without_hidden(price, ("tiers",), expand)
    out["metadata"] = mapping(price["metadata"])
    out["product"] = reference(state, "product", price["product"], expand, "product")
    return out


def create(call: Call) -> JsonDict:
    """POST /v1/prices."""
    p, state = call.params, call.state
    p.check_known(CREATE_PARAMS)
    product_id = _existing_product(state, p)
    price = build_price(state, p)
    price["metadata"] = metadata.merged({}, p)
    transfer = p.boolean("transfer_lookup_key") is True
    _check_lookup_key(state, price.get("lookup_key"), None, transfer)
    if product_id is None:
        product_data = p.sub("product_data")
        assert product_data is not None
        product_id = str(products.add_product(state, product_data)["id"])
    price["product"] = product_id
    _claim_lookup_key(state, price)
    state.add(price)
    return view(state, price, call.expand)


def _existing_product(state: State, p: Params) -> str | None:
    product_id = p.string("product")
    if product_id and p.has("product_data"):
        raise invalid(
            "You may only specify one of these parameters: product, product_data.", "product"
        )
    if not product_id and not p.has("product_data"):
        raise invalid(
            "You must pass either product or product_data.", "product", "parameter_missing"
        )
    if product_id:
        state.require("product", product_id, "product", status=400)
    return product_id or None


def retrieve(call: Call) -> JsonDict:
    """GET /v1/prices/{id}."""
    price = call.state.require("price", call.arg("id"))
    call.params.check_known(())
    return view(call.state, price, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/prices/{id}: only the mutable fields."""
    state, p = call.state, call.params
    price = state.require("price", call.arg("id"))
    p.check_known(UPDATE_PARAMS)
    changes: JsonDict = {"metadata": metadata.merged(mapping(price["metadata"]), p)}
    if p.has("nickname"):
        changes["nickname"] = p.string("nickname") or None
    if p.has("tax_behavior"):
        changes["tax_behavior"] = _tax_behavior(price, p)
    active = p.boolean("active")
    if active is not None:
        changes["active"] = active
    if p.has("lookup_key"):
        check_lookup_key(p)
        changes["lookup_key"] = p.string("lookup_key")
        transfer = p.boolean("transfer_lookup_key") is True
        _check_lookup_key(state, changes["lookup_key"], str(price["id"]), transfer)
    if active is False:
        _check_not_default(state, price)
    _release_lookup_key(state, price, changes)
    price.update(changes)
    _claim_lookup_key(state, price)
    return view(state, price, call.expand)


def _tax_behavior(price: JsonDict, p: Params) -> str:
    wanted = p.string("tax_behavior", choices=TAX_BEHAVIORS)
    assert wanted is not None
    if price["tax_behavior"] != "unspecified" and wanted != price["tax_behavior"]:
        raise refused(
            "tax_behavior cannot change once it is inclusive or exclusive.", "tax_behavior"
        )
    return wanted


def _check_not_default(state: State, price: JsonDict) -> None:
    product = state.find("product", str(price["product"]))
    if product is not None and product.get("default_price") == price["id"]:
        raise refused(
            "This price is its product's default price and cannot be archived; set another "
            "default_price on the product first.",
            "active",
        )


def _check_lookup_key(state: State, key: object, own_id: str | None, transfer: bool) -> None:
    """Refuse a lookup key another price holds, unless it is being transferred."""
    if not key:
        return
    holder = state.lookup_keys.get(str(key))
    if holder is not None and holder != own_id and not transfer:
        raise refused(
            f"A price ({holder}) already uses the lookup key '{key}'; pass "
            "transfer_lookup_key=true to move it to this price.",
            "lookup_key",
        )


def _release_lookup_key(state: State, price: JsonDict, changes: JsonDict) -> None:
    old = price.get("lookup_key")
    if "lookup_key" in changes and old and changes["lookup_key"] != old:
        state.lookup_keys.pop(str(old), None)


def _claim_lookup_key(state: State, price: JsonDict) -> None:
    """Give the price its lookup key, taking it from any price that held it."""
    key = price.get("lookup_key")
    if not key:
        return
    holder_id = state.lookup_keys.get(str(key))
    if holder_id and holder_id != price["id"]:
        holder = state.find("price", holder_id)
        if holder is not None:
            holder["lookup_key"] = None
    state.lookup_keys[str(key)] = str(price["id"])


def list_prices(call: Call) -> JsonDict:
    """GET /v1/prices with Stripe's filters (no `active` filter unless asked)."""
    p = call.params
    p.check_known(LIST_PARAMS)
    p.string("type", choices=("one_time", "recurring"))
    keys = set(p.strings("lookup_keys"))
    if len(keys) > MAX_LOOKUP_KEYS:
        raise invalid(f"At most {MAX_LOOKUP_KEYS} lookup_keys may be given.", "lookup_keys")
    matches = all_of(
        bool_filter(p, "active"),
        equal_filter(p, "currency"),
        equal_filter(p, "product"),
        equal_filter(p, "type"),
        lambda price: not keys or price.get("lookup_key") in keys,
        _recurring_filter(p.sub("recurring")),
    )
    return list_response(call.state, "price", p, "/v1/prices", call.expand, matches)


def _recurring_filter(r: Params | None) -> Predicate:
    if r is None:
        return lambda _: True
    r.check_known(("interval", "meter", "usage_type"))
    wanted = {key: r.string(key) for key in ("interval", "meter", "usage_type")}

    def matches(price: JsonDict) -> bool:
        recurring = price.get("recurring")
        if not isinstance(recurring, dict):
            return False
        return all(v is None or recurring.get(k) == v for k, v in wanted.items())

    return matches


register("price", view)

ROUTES = [
    Route("POST", "/v1/prices", create),
    Route("GET", "/v1/prices", list_prices),
    Route("GET", "/v1/prices/{id}", retrieve),
    Route("POST", "/v1/prices/{id}", update),
]
