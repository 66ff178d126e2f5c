"""The parts of a subscription: items, discounts, billing periods, and how they are shown.

Items are stored as `subscription_item` objects and discounts as `discount` objects; the
subscription keeps their ids. An item always shows its full price; `items.data.price.tiers`
and `items.data.price.product` expand below it.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid, no_such, refused
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import invoices
from autumn_sync.emulator.resources.amounts import price_cost
from autumn_sync.emulator.resources.coupons import coupon_valid
from autumn_sync.emulator.store import JsonDict, State, as_dict, mapping
from autumn_sync.emulator.views import Expand, present, reference, register

ITEM_PARAMS = ("discounts", "metadata", "price", "quantity", "tax_rates")
DISCOUNT_PARAMS = ("coupon", "discount", "promotion_code")
Source = tuple[JsonDict, str | None, str | None]  # coupon, promotion code, discount kept
DAY = 86400


def add_interval(moment: int, interval: str, count: int) -> int:
    """`moment` moved forward by `count` intervals (months keep the day where they can)."""
    start = datetime.fromtimestamp(moment, UTC)
    if interval in ("day", "week"):
        days = count * (7 if interval == "week" else 1)
        return int((start + timedelta(days=days)).timestamp())
    months = count * (12 if interval == "year" else 1)
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def period_end(price: JsonDict, start: int) -> int:
    """When the first billing period of `price` starting at `start` ends."""
    recurring = as_dict(price["recurring"])
    return add_interval(start, str(recurring["interval"]), int(str(recurring["interval_count"])))


def item_price(state: State, row: Params) -> JsonDict:
    """The active recurring price an item row names."""
    row.check_known((*ITEM_PARAMS, "id", "deleted", "clear_usage"))
    price_id = row.string("price", required=True)
    assert price_id is not None
    price = state.require("price", price_id, row.name("price"), status=400)
    if not price["active"]:
        raise refused(
            f"The price '{price_id}' is archived; only active prices can be subscribed to.",
            row.name("price"),
        )
    if price["type"] != "recurring":
        raise refused(
            f"The price '{price_id}' is a one-time price; subscription items need "
            "recurring prices.",
            row.name("price"),
        )
    return price


def item_quantity(row: Params, price: JsonDict, current: int | None = None) -> int | None:
    """The item's quantity: none for metered prices, 1 by default otherwise."""
    quantity = row.integer("quantity", minimum=0)
    metered = as_dict(price["recurring"]).get("usage_type") == "metered"
    if metered:
        if quantity is not None:
            raise invalid("A metered price's item takes no quantity.", row.name("quantity"))
        return None
    if quantity is not None:
        return quantity
    return current if current is not None else 1


def build_item(
    state: State, row: Params, price: JsonDict, subscription_id: str, period: tuple[int, int]
) -> JsonDict:
    """A new subscription item for the billing period `period` (not yet stored)."""
    return {
        "id": state.new_id("subscription_item"),
        "object": "subscription_item",
        "created": state.now(),
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": metadata.merged({}, row),
        "price": price["id"],
        "quantity": item_quantity(row, price),
        "subscription": subscription_id,
        "tax_rates": [],
        "billed_until": None,
        "billing_thresholds": None,
        "current_trial": None,
    }


def due_now(state: State, items: list[JsonDict]) -> bool:
    """Whether the first invoice of `items` charges anything now (licensed prices bill in
    advance; metered ones at the end of the period)."""
    for item in items:
        price = state.require("price", str(item["price"]))
        if as_dict(price["recurring"]).get("usage_type") == "metered":
            continue
        quantity = item["quantity"] if isinstance(item["quantity"], int) else 0
        if price_cost(price, quantity) > 0:
            return True
    return False


def check_prices(prices: list[JsonDict]) -> None:
    """Items of one subscription share a currency and never repeat a price."""
    if len({price["currency"] for price in prices}) > 1:
        raise invalid("All items of a subscription must use the same currency.", "items")
    ids = [price["id"] for price in prices]
    if len(set(ids)) != len(ids):
        raise invalid("A subscription cannot have two items with the same price.", "items")


def discount_sources(
    state: State, p: Params, customer_id: str, subscription: JsonDict | None = None
) -> list[Source]:
    """The coupons (and promotion codes) named by the `discounts` parameter, checked as
    Stripe checks a redemption by `customer_id`; on an update, `discount` names one of the
    subscription's discounts to keep as it is."""
    sources: list[Source] = []
    for row in p.items("discounts"):
        row.check_known(DISCOUNT_PARAMS)
        named = [row.string(name) for name in DISCOUNT_PARAMS]
        if sum(value is not None for value in named) != 1:
            raise invalid(
                "Each discount names exactly one coupon, discount or promotion_code.",
                row.name("coupon"),
            )
        coupon_id, discount_id, promo_id = named
        if discount_id is not None:
            sources.append(_kept(state, row, discount_id, subscription))
            continue
        param = row.name("coupon")
        if promo_id is not None:
            coupon_id = redeemable_promotion(state, row, promo_id, customer_id)
            param = row.name("promotion_code")
        assert coupon_id is not None
        coupon = state.require("coupon", coupon_id, row.name("coupon"), status=400)
        check_coupon(state, coupon, param)
        sources.append((coupon, promo_id, None))
    return sources


def _kept(state: State, row: Params, discount_id: str, subscription: JsonDict | None) -> Source:
    """An existing discount of the subscription (reused: its duration is not restarted)."""
    discount = state.find("discount", discount_id)
    if discount is None or subscription is None or discount["subscription"] != subscription["id"]:
        raise no_such("discount", discount_id, row.name("discount"), status=400)
    coupon_id = str(as_dict(discount["source"]).get("coupon"))
    return state.require("coupon", coupon_id), None, discount_id


def check_coupon(state: State, coupon: JsonDict, param: str) -> None:
    """Refuse a coupon that can no longer be redeemed."""
    if not coupon_valid(state, coupon):
        raise refused(
            f"The coupon '{coupon['id']}' is no longer valid: it was redeemed its maximum "
            "number of times or its redeem_by date has passed.",
            param,
            "coupon_expired",
        )


def redeemable_promotion(state: State, row: Params, promo_id: str, customer_id: str) -> str:
    """The coupon of a promotion code the customer may redeem now (Stripe refuses an
    inactive, expired or exhausted code, a code restricted to another customer, and a
    first-time-transaction code for a customer who already paid)."""
    param = row.name("promotion_code")
    promo = state.require("promotion_code", promo_id, param, status=400)
    problem = _promotion_problem(state, promo, customer_id)
    if problem is not None:
        raise refused(f"The promotion code '{promo['code']}' {problem}.", param)
    return str(mapping(promo["promotion"])["coupon"])


def _promotion_problem(state: State, promo: JsonDict, customer_id: str) -> str | None:
    expires_at = promo.get("expires_at")
    limit = promo.get("max_redemptions")
    restrictions = as_dict(promo.get("restrictions"))
    if not promo["active"]:
        return "is inactive"
    if isinstance(expires_at, int) and expires_at <= state.now():
        return "has expired"
    if isinstance(limit, int) and int(str(promo["times_redeemed"])) >= limit:
        return "has been redeemed its maximum number of times"
    if promo.get("customer") not in (None, customer_id):
        return "belongs to another customer"
    first_time = restrictions.get("first_time_transaction") is True
    if first_time and invoices.has_paid_before(state, customer_id):
        return "is only for customers who have never paid"
    return None


def add_discounts(state: State, sources: list[Source], subscription: JsonDict) -> list[str]:
    """Store one discount per new source on `subscription` (a kept one stays as it is);
    returns their ids."""
    ids = []
    for coupon, promo_id, kept in sources:
        if kept is not None:
            ids.append(kept)
            continue
        discount = state.add(new_discount(state, coupon, promo_id, subscription))
        coupon["times_redeemed"] = int(str(coupon["times_redeemed"])) + 1
        promo = state.find("promotion_code", promo_id) if promo_id else None
        if promo is not None:
            promo["times_redeemed"] = int(str(promo["times_redeemed"])) + 1
        ids.append(str(discount["id"]))
    return ids


def new_discount(
    state: State, coupon: JsonDict, promo_id: str | None, subscription: JsonDict
) -> JsonDict:
    """A discount of `coupon` on `subscription` starting now (not stored): a repeating
    coupon's discount ends after its months."""
    start = state.now()
    months = coupon["duration_in_months"]
    end = add_interval(start, "month", months) if isinstance(months, int) else None
    return {
        "id": state.new_id("discount"),
        "object": "discount",
        "checkout_session": None,
        "customer": subscription["customer"],
        "customer_account": None,
        "end": end,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": promo_id,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": start,
        "subscription": subscription["id"],
        "subscription_item": None,
    }


def owned_item(state: State, subscription: JsonDict, row: Params) -> JsonDict:
    """The existing item an update row names by `id`."""
    item_id = row.string("id")
    assert item_id is not None
    item = state.find("subscription_item", item_id)
    if item is None or item["subscription"] != subscription["id"]:
        raise no_such("subscription item", item_id, row.name("id"), status=400)
    return item


def view_item(state: State, item: JsonDict, expand: Expand) -> JsonDict:
    """A subscription item, always with its full price and the `plan` Stripe still shows."""
    expand.check(("price", "discounts", "plan"))
    out = dict(item)
    out["metadata"] = mapping(item["metadata"])
    price = state.find("price", str(item["price"]))
    out["price"] = present(state, price, expand.sub("price")) if price else item["price"]
    if price is not None:
        out["plan"] = plan_of(state, price, expand.sub("plan"))
    out["discounts"] = [
        reference(state, "discount", d, expand, "discounts") for d in _ids(item["discounts"])
    ]
    return out


def plan_of(state: State, price: JsonDict, expand: Expand) -> JsonDict:
    """The legacy `plan` view of a recurring price (`product` expands)."""
    expand.check(("product",))
    recurring = as_dict(price["recurring"])
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": mapping(price["metadata"]),
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "product": reference(state, "product", price["product"], expand, "product"),
        "tiers_mode": price["tiers_mode"],
        "transform_usage": price["transform_quantity"],
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type"),
    }


def view_subscription(state: State, sub: JsonDict, expand: Expand) -> JsonDict:
    """A subscription; `customer`, `discounts`, `latest_invoice`, `schedule` and
    `items.data.price...` expand."""
    expand.check(("customer", "discounts", "items", "latest_invoice", "schedule"))
    items_expand = expand.sub("items")
    items_expand.check(("data",))
    out = dict(sub)
    out["metadata"] = mapping(sub["metadata"])
    out["customer"] = reference(state, "customer", sub["customer"], expand, "customer")
    out["latest_invoice"] = reference(
        state, "invoice", sub["latest_invoice"], expand, "latest_invoice"
    )
    out["schedule"] = reference(state, "subscription_schedule", sub["schedule"], expand, "schedule")
    out["discounts"] = [
        reference(state, "discount", d, expand, "discounts") for d in _ids(sub["discounts"])
    ]
    items = [state.find("subscription_item", i) for i in _ids(sub["items"])]
    out["items"] = {
        "object": "list",
        "data": [view_item(state, i, items_expand.sub("data")) for i in items if i],
        "has_more": False,
        "total_count": len(items),
        "url": f"/v1/subscription_items?subscription={sub['id']}",
    }
    return out


def _ids(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


register("subscription_item", view_item)
register("subscription", view_subscription)
