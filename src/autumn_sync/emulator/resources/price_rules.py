"""Building a price from its creation parameters, with Stripe's validation rules.

The price fixes everything about how it charges at creation: currency, amounts, recurring
terms, tiers and quantity transformation. Only `active`, `lookup_key`, `nickname`,
`metadata` and `tax_behavior` change afterwards (see `prices.update`).
"""

from __future__ import annotations

from decimal import Decimal

from autumn_sync.emulator.errors import invalid, missing_param, refused
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.store import JsonDict, State

INTERVALS = ("day", "week", "month", "year")
# The longest recurring period Stripe accepts is three years.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
TIER_PARAMS = ("up_to", "unit_amount", "unit_amount_decimal", "flat_amount", "flat_amount_decimal")


def decimal_text(value: Decimal) -> str:
    """A decimal as Stripe prints `*_decimal` fields: plain notation, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def amount_pair(p: Params, whole_key: str, decimal_key: str) -> tuple[int | None, str | None]:
    """An amount given either as integer minor units or as a decimal string (not both)."""
    whole = p.integer(whole_key, minimum=0)
    exact = p.decimal(decimal_key)
    if whole is not None and exact is not None:
        raise invalid(
            f"You may only specify one of these parameters: {p.name(whole_key)}, "
            f"{p.name(decimal_key)}.",
            p.name(whole_key),
        )
    if whole is not None:
        return whole, str(whole)
    if exact is not None:
        integral = exact == exact.to_integral_value()
        return (int(exact) if integral else None), decimal_text(exact)
    return None, None


def build_price(state: State, p: Params) -> JsonDict:
    """A new price object (not yet stored; `product` is filled in by the caller)."""
    currency = p.string("currency", required=True)
    assert currency is not None
    scheme = p.string("billing_scheme", choices=("per_unit", "tiered")) or "per_unit"
    recurring = build_recurring(state, p.sub("recurring"))
    price: JsonDict = {
        "id": state.new_id("price"),
        "object": "price",
        "active": p.boolean("active") is not False,
        "billing_scheme": scheme,
        "created": state.now(),
        "currency": _currency(currency, p.name("currency")),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": p.string("lookup_key") or None,
        "metadata": {},
        "nickname": p.string("nickname") or None,
        "product": None,
        "recurring": recurring,
        "tax_behavior": p.string("tax_behavior", choices=TAX_BEHAVIORS) or "unspecified",
        "tiers": None,
        "tiers_mode": None,
        "transform_quantity": build_transform(p.sub("transform_quantity")),
        "type": "recurring" if recurring else "one_time",
        "unit_amount": None,
        "unit_amount_decimal": None,
    }
    if scheme == "tiered":
        _fill_tiered(p, price)
    else:
        _fill_per_unit(p, price)
    check_lookup_key(p)
    return price


def _currency(code: str, param: str) -> str:
    if len(code) != 3 or not code.isalpha():
        raise invalid(f"Invalid currency: {code}. Use a three-letter ISO code.", param)
    return code.lower()


def check_lookup_key(p: Params) -> None:
    """A lookup key is a non-empty string of at most 200 characters: Stripe takes an empty
    string as an attempt to unset it, which it refuses (a price's key is moved, not unset)."""
    p.reject_empty("lookup_key")
    key = p.string("lookup_key")
    if key is not None and len(key) > 200:
        raise invalid("Invalid lookup_key: at most 200 characters.", "lookup_key")


def _fill_per_unit(p: Params, price: JsonDict) -> None:
    for name in ("tiers", "tiers_mode"):
        if p.has(name):
            raise invalid(f"{name} is only allowed with billing_scheme=tiered.", name)
    unit, unit_decimal = amount_pair(p, "unit_amount", "unit_amount_decimal")
    custom = _custom_unit_amount(p, price)
    if unit_decimal is None and custom is None:
        raise invalid(
            "A per-unit price needs unit_amount, unit_amount_decimal or custom_unit_amount.",
            "unit_amount",
            "parameter_missing",
        )
    if unit_decimal is not None and custom is not None:
        raise invalid(
            "custom_unit_amount cannot be combined with unit_amount.", "custom_unit_amount"
        )
    price.update(unit_amount=unit, unit_amount_decimal=unit_decimal, custom_unit_amount=custom)


def _custom_unit_amount(p: Params, price: JsonDict) -> JsonDict | None:
    custom = p.sub("custom_unit_amount")
    if custom is None:
        return None
    custom.check_known(("enabled", "maximum", "minimum", "preset"))
    if custom.boolean("enabled") is not True:
        raise missing_param(custom.name("enabled"))
    if price["recurring"] is not None:
        raise invalid("custom_unit_amount is only allowed on one-time prices.", p.name("recurring"))
    return {
        "maximum": custom.integer("maximum", minimum=0),
        "minimum": custom.integer("minimum", minimum=0),
        "preset": custom.integer("preset", minimum=0),
    }


def _fill_tiered(p: Params, price: JsonDict) -> None:
    for name in ("unit_amount", "unit_amount_decimal", "custom_unit_amount"):
        if p.has(name):
            raise invalid(f"{name} is not allowed with billing_scheme=tiered.", name)
    if price["transform_quantity"] is not None:
        raise invalid(
            "transform_quantity cannot be combined with tiered pricing.", "transform_quantity"
        )
    mode = p.string("tiers_mode", required=True, choices=("graduated", "volume"))
    price.update(tiers=build_tiers(p), tiers_mode=mode)


def build_tiers(p: Params) -> list[JsonDict]:
    """The tiers of a tiered price: increasing `up_to`, the last one `inf`."""
    rows = p.items("tiers")
    if not rows:
        raise missing_param("tiers")
    tiers: list[JsonDict] = []
    floor = 0
    for index, row in enumerate(rows):
        last = index == len(rows) - 1
        up_to = _up_to(row, last, floor)
        tiers.append(_tier(row, up_to))
        floor = up_to or floor
    return tiers


def _up_to(row: Params, last: bool, floor: int) -> int | None:
    row.check_known(TIER_PARAMS)
    text = row.string("up_to", required=True)
    if text == "inf":
        if not last:
            raise invalid("Only the last tier may have up_to=inf.", row.name("up_to"))
        return None
    if last:
        raise invalid("The last tier must have up_to=inf.", row.name("up_to"))
    up_to = row.integer("up_to", minimum=1)
    assert up_to is not None
    if up_to <= floor:
        raise invalid("Tiers must be sorted by increasing up_to.", row.name("up_to"))
    return up_to


def _tier(row: Params, up_to: int | None) -> JsonDict:
    unit, unit_decimal = amount_pair(row, "unit_amount", "unit_amount_decimal")
    flat, flat_decimal = amount_pair(row, "flat_amount", "flat_amount_decimal")
    if unit_decimal is None and flat_decimal is None:
        raise invalid("Each tier needs a unit amount or a flat amount.", row.name("unit_amount"))
    return {
        "flat_amount": flat,
        "flat_amount_decimal": flat_decimal,
        "unit_amount": unit,
        "unit_amount_decimal": unit_decimal,
        "up_to": up_to,
    }


def build_recurring(state: State, r: Params | None) -> JsonDict | None:
    """The recurring terms; a metered price must name an active billing meter."""
    if r is None:
        return None
    r.check_known(("interval", "interval_count", "meter", "trial_period_days", "usage_type"))
    interval = r.string("interval", required=True, choices=INTERVALS)
    assert interval is not None
    count = r.integer("interval_count", minimum=1) or 1
    if count > MAX_INTERVAL_COUNT[interval]:
        raise invalid(
            "The recurring interval may be at most three years.", r.name("interval_count")
        )
    usage = r.string("usage_type", choices=("licensed", "metered")) or "licensed"
    return {
        "interval": interval,
        "interval_count": count,
        "meter": _meter(state, r, usage),
        "trial_period_days": r.integer("trial_period_days", minimum=0),
        "usage_type": usage,
    }


def _meter(state: State, r: Params, usage: str) -> str | None:
    meter_id = r.string("meter") or None
    if usage == "metered" and meter_id is None:
        raise invalid(
            "A metered price must be backed by a billing meter: pass recurring[meter].",
            r.name("meter"),
            "parameter_missing",
        )
    if meter_id is None:
        return None
    if usage != "metered":
        raise invalid("recurring[meter] requires recurring[usage_type]=metered.", r.name("meter"))
    meter = state.require("billing.meter", meter_id, r.name("meter"), status=400)
    if meter["status"] != "active":
        raise refused(
            f"The billing meter '{meter_id}' is inactive; an inactive meter cannot be "
            "attached to a price.",
            r.name("meter"),
        )
    return meter_id


def build_transform(t: Params | None) -> JsonDict | None:
    """`transform_quantity`: divide the quantity by `divide_by`, rounding `up` or `down`."""
    if t is None:
        return None
    t.check_known(("divide_by", "round"))
    divide_by = t.integer("divide_by", required=True, minimum=1)
    rounding = t.string("round", required=True, choices=("down", "up"))
    return {"divide_by": divide_by, "round": rounding}
