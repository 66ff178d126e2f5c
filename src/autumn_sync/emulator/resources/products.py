"""Products: create, retrieve, update, list, delete.

A product that has prices cannot be deleted (archive it with `active=false`); its
`default_price` must be one of its own active prices; `default_price_data` creates that price
together with the product.
"""

from __future__ import annotations

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import already_exists, invalid, refused
from autumn_sync.emulator.listing import PAGING, all_of, bool_filter, list_response
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import price_rules
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, mapping
from autumn_sync.emulator.views import Expand, deleted, reference, register

SIMPLE_FIELDS = ("description", "statement_descriptor", "tax_code", "unit_label", "url")
CREATE_PARAMS = (
    *SIMPLE_FIELDS,
    "active",
    "default_price_data",
    "id",
    "images",
    "marketing_features",
    "metadata",
    "name",
    "package_dimensions",
    "shippable",
    "type",
)
UPDATE_PARAMS = (
    *SIMPLE_FIELDS,
    "active",
    "default_price",
    "images",
    "marketing_features",
    "metadata",
    "name",
    "package_dimensions",
    "shippable",
)
PRODUCT_DATA_PARAMS = (
    "active",
    "id",
    "metadata",
    "name",
    "statement_descriptor",
    "tax_code",
    "unit_label",
)
DEFAULT_PRICE_PARAMS = (
    "currency",
    "metadata",
    "recurring",
    "tax_behavior",
    "unit_amount",
    "unit_amount_decimal",
)


def view(state: State, product: JsonDict, expand: Expand) -> JsonDict:
    """A product as Stripe shows it; `default_price` is expandable."""
    expand.check(("default_price",))
    out = dict(product)
    out["metadata"] = mapping(product["metadata"])
    out["default_price"] = reference(
        state, "price", product["default_price"], expand, "default_price"
    )
    return out


def build_product(state: State, p: Params) -> JsonDict:
    """A new product object from creation parameters (not yet stored)."""
    name = p.string("name", required=True)
    object_id = p.string("id") or state.new_id("product")
    if state.find("product", object_id) is not None:
        raise already_exists("Product")
    now = state.now()
    product: JsonDict = {
        "id": object_id,
        "object": "product",
        "active": p.boolean("active") is not False,
        "created": now,
        "default_price": None,
        "description": None,
        "images": p.strings("images"),
        "livemode": False,
        "marketing_features": _features(p),
        "metadata": metadata.merged({}, p),
        "name": name,
        "package_dimensions": _dimensions(p),
        "shippable": p.boolean("shippable"),
        "statement_descriptor": None,
        "tax_code": None,
        "type": p.string("type", choices=("good", "service")) or "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    for field in SIMPLE_FIELDS:
        product[field] = p.string(field) or None
    return product


def add_product(state: State, p: Params) -> JsonDict:
    """Create and store a product (also used by `product_data` on price creation)."""
    p.check_known(PRODUCT_DATA_PARAMS)
    return state.add(build_product(state, p))


def _features(p: Params) -> list[JsonDict]:
    features: list[JsonDict] = []
    for row in p.items("marketing_features"):
        row.check_known(("name",))
        features.append({"name": row.string("name", required=True)})
    return features


def _dimensions(p: Params) -> JsonDict | None:
    dims = p.sub("package_dimensions")
    if dims is None:
        return None
    names = ("height", "length", "weight", "width")
    dims.check_known(names)
    return {name: dims.number(name) for name in names}


def create(call: Call) -> JsonDict:
    """POST /v1/products."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    product = build_product(state, p)
    price = _default_price(state, p.sub("default_price_data"))
    state.add(product)
    if price is not None:
        price["product"] = product["id"]
        state.add(price)
        product["default_price"] = price["id"]
    return view(state, product, call.expand)


def _default_price(state: State, data: Params | None) -> JsonDict | None:
    if data is None:
        return None
    data.check_known(DEFAULT_PRICE_PARAMS)
    recurring = data.sub("recurring")
    if recurring is not None:
        recurring.check_known(("interval", "interval_count"))
    price = price_rules.build_price(state, data)
    price["metadata"] = metadata.merged({}, data)
    return price


def retrieve(call: Call) -> JsonDict:
    """GET /v1/products/{id}."""
    product = call.state.require("product", call.arg("id"))
    call.params.check_known(())
    return view(call.state, product, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/products/{id}."""
    state, p = call.state, call.params
    product = state.require("product", call.arg("id"))
    p.check_known(UPDATE_PARAMS)
    changes: JsonDict = {"metadata": metadata.merged(mapping(product["metadata"]), p)}
    if p.has("name"):
        if p.is_empty("name"):
            raise invalid("A product's name cannot be empty.", "name")
        changes["name"] = p.string("name")
    for field in SIMPLE_FIELDS:
        if p.has(field):
            changes[field] = p.string(field) or None
    _simple_updates(p, changes)
    if p.has("default_price"):
        changes["default_price"] = _new_default_price(state, product, p.string("default_price"))
    product.update(changes, updated=state.now())
    return view(state, product, call.expand)


def _simple_updates(p: Params, changes: JsonDict) -> None:
    active = p.boolean("active")
    if active is not None:
        changes["active"] = active
    if p.has("shippable"):
        changes["shippable"] = p.boolean("shippable")
    if p.has("images"):
        changes["images"] = p.strings("images")
    if p.has("marketing_features"):
        changes["marketing_features"] = _features(p)
    if p.has("package_dimensions"):
        changes["package_dimensions"] = _dimensions(p)


def _new_default_price(state: State, product: JsonDict, price_id: str | None) -> str | None:
    if not price_id:
        return None
    price = state.require("price", price_id, "default_price", status=400)
    if price["product"] != product["id"]:
        raise refused(
            f"The price '{price_id}' belongs to another product and cannot be this "
            "product's default price.",
            "default_price",
        )
    if not price["active"]:
        raise refused(
            f"The price '{price_id}' is archived; only an active price can be the default.",
            "default_price",
        )
    return price_id


def delete(call: Call) -> JsonDict:
    """DELETE /v1/products/{id}: refused while the product has prices."""
    state = call.state
    product = state.require("product", call.arg("id"))
    call.params.check_known(())
    if any(price["product"] == product["id"] for price in state.tables["price"].rows.values()):
        raise refused(
            "This product has one or more user-created prices and cannot be deleted; "
            "archive it with active=false instead."
        )
    state.remove("product", str(product["id"]))
    return deleted(product)


def list_products(call: Call) -> JsonDict:
    """GET /v1/products with the `active`, `ids`, `shippable` and `url` filters."""
    p = call.params
    p.check_known((*PAGING, "active", "ids", "shippable", "type", "url"))
    ids = set(p.strings("ids"))
    if ids and (p.has("starting_after") or p.has("ending_before")):
        raise invalid("ids cannot be combined with starting_after or ending_before.", "ids")
    url = p.string("url")
    kind = p.string("type", choices=("good", "service"))
    matches = all_of(
        bool_filter(p, "active"),
        bool_filter(p, "shippable"),
        lambda product: not ids or product["id"] in ids,
        lambda product: url is None or product.get("url") == url,
        lambda product: kind is None or product.get("type") == kind,
    )
    return list_response(call.state, "product", p, "/v1/products", call.expand, matches)


register("product", view)

ROUTES = [
    Route("POST", "/v1/products", create),
    Route("GET", "/v1/products", list_products),
    Route("GET", "/v1/products/{id}", retrieve),
    Route("POST", "/v1/products/{id}", update),
    Route("DELETE", "/v1/products/{id}", delete),
]
