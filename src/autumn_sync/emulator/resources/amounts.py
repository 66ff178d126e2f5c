"""What prices cost, in the currency's minor units, the way Stripe computes it.

Everything is `Decimal`: a price's `unit_amount_decimal` and its tiers' amounts are decimal
minor units (up to 12 places). A line's cost is worked out exactly and rounded once, to a whole
minor unit, half away from zero (Stripe bills integers and rounds sub-unit totals to the nearest
one):

- `per_unit`: quantity × unit amount, the quantity first divided by `transform_quantity.
  divide_by` and rounded `up` or `down` when the price says so;
- `tiered` + `graduated`: each tier charges the units that fall inside it at its unit amount,
  plus its flat amount when any unit falls inside it;
- `tiered` + `volume`: every unit is charged at the tier the whole quantity falls in, plus that
  tier's flat amount.

A proration charges the share of a period that is left: Stripe counts it to the second,
`(period end - proration moment) / (period end - period start)`.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from autumn_sync.emulator.store import JsonDict, as_dict

ZERO = Decimal(0)


def minor_units(value: Decimal) -> int:
    """`value` rounded to a whole minor unit, halves away from zero."""
    magnitude = abs(value).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(magnitude) if value >= 0 else -int(magnitude)


def price_cost(price: JsonDict, quantity: int) -> Decimal:
    """The exact cost of `quantity` units of `price`, before rounding."""
    if quantity <= 0:
        return ZERO
    if price["billing_scheme"] == "tiered":
        rows = price["tiers"] if isinstance(price["tiers"], list) else []
        tiers = [as_dict(tier) for tier in rows]
        if price["tiers_mode"] == "volume":
            return _volume(tiers, quantity)
        return _graduated(tiers, quantity)
    return _decimal(price["unit_amount_decimal"]) * _transformed(price, quantity)


def unit_amount(price: JsonDict) -> Decimal | None:
    """The per-unit amount of a `per_unit` price (None for tiered prices)."""
    if price["billing_scheme"] == "tiered":
        return None
    return _decimal(price["unit_amount_decimal"])


def _transformed(price: JsonDict, quantity: int) -> int:
    """The quantity after `transform_quantity` (divide, then round up or down)."""
    transform = price.get("transform_quantity")
    if not isinstance(transform, dict):
        return quantity
    divided = Decimal(quantity) / Decimal(str(transform["divide_by"]))
    rounding = ROUND_CEILING if transform["round"] == "up" else ROUND_FLOOR
    return int(divided.quantize(Decimal(1), rounding=rounding))


def _graduated(tiers: list[JsonDict], quantity: int) -> Decimal:
    """Each tier charges the units inside it (and its flat amount if any unit is)."""
    total, floor = ZERO, 0
    for tier in tiers:
        up_to = tier["up_to"] if isinstance(tier["up_to"], int) else None
        ceiling = quantity if up_to is None else min(quantity, up_to)
        if ceiling > floor:
            total += _tier_cost(tier, ceiling - floor)
        if up_to is None or quantity <= up_to:
            break
        floor = up_to
    return total


def _volume(tiers: list[JsonDict], quantity: int) -> Decimal:
    """All units at the tier the whole quantity falls in."""
    for tier in tiers:
        up_to = tier["up_to"] if isinstance(tier["up_to"], int) else None
        if up_to is None or quantity <= up_to:
            return _tier_cost(tier, quantity)
    return ZERO


def _tier_cost(tier: JsonDict, units: int) -> Decimal:
    unit = _decimal(tier.get("unit_amount_decimal"))
    flat = _decimal(tier.get("flat_amount_decimal"))
    return unit * units + flat


def _decimal(value: object) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def fraction_left(start: int, end: int, moment: int) -> Decimal:
    """The share of the period [start, end) that remains at `moment`, to the second."""
    if end <= start:
        return ZERO
    left = min(max(end - moment, 0), end - start)
    return Decimal(left) / Decimal(end - start)
