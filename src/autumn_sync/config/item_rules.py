"""Rules of how an item's allowance renews and how its overage is billed: a pay-per-use
price (billed, and reset, each period), `interval_count` (resets every N intervals),
`rollover` (unused allowance carried over) and `max_purchase` (a cap on the units billed per
use). `config.checks` runs them on every item of a metered feature or credit system; a
boolean feature's item takes none of these fields."""

from __future__ import annotations

from collections.abc import Iterator

from autumn_sync.config.format import FeatureSpec, ItemSpec
from autumn_sync.config.problems import Problem
from autumn_sync.config.yamlfile import Marks, Path
from autumn_sync.model.records import RECURRING_RESETS

RECURRING = "hour, day, week, month, quarter, semi_annual or year"


def item_rules(item: ItemSpec, feature: FeatureSpec, here: Path, marks: Marks) -> Iterator[Problem]:
    """The problems of `item` (at `here`, of `feature`) with these fields."""
    yield from _interval_count(item, here, marks)
    if item.rollover is not None:
        yield from _rollover(item, feature, (*here, "rollover"), marks)
    if item.max_purchase is not None and not pay_per_use(item):
        yield marks.problem(
            (*here, "max_purchase"),
            "max_purchase caps the units billed beyond the allowance: only an item with a "
            "'billing: pay_per_use' price takes it; remove it",
            key=True,
        )


_PAY_PER_USE_RESET = {
    "hour": "a pay-per-use item resets when its usage is billed, and no price bills hourly: "
    "make its reset a price interval (week, month, …)",
    "one_off": "a pay-per-use item resets when its usage is billed, each period: make its "
    "reset a price interval (week, month, …), not one_off",
}


def pay_per_use_rules(item: ItemSpec, here: Path, marks: Marks) -> Iterator[Problem]:
    """Pay-per-use is billed in arrears each period, at the end of the period the usage
    resets; volume tiers (every unit at the rate of the tier reached) are for prepaid units."""
    price = item.price
    if price is None or price.billing != "pay_per_use":
        return
    if price.interval == "one_off":
        yield marks.problem(
            (*here, "price", "interval"),
            "pay-per-use is billed at the end of each period: give it a recurring interval "
            "(week, month, …) or make it prepaid",
        )
    elif item.reset in ("hour", "one_off"):
        yield marks.problem((*here, "reset"), _PAY_PER_USE_RESET[item.reset])
    elif price.interval is not None and item.reset is not None and item.reset != price.interval:
        yield marks.problem(
            (*here, "reset"),
            "a pay-per-use item resets when its usage is billed: make its reset "
            f"({item.reset!r}) its price's interval ({price.interval!r})",
        )
    if price.tier_mode == "volume":
        yield marks.problem(
            (*here, "price", "tier_mode"),
            "volume tiers are only for prepaid items: use graduated tiers for pay-per-use, "
            "or make it prepaid",
            key=True,
        )


def custom_reset(item: ItemSpec, reset: str) -> str | None:
    """Why a customer's own `reset` cannot replace that of the plan's `item` (None: it can):
    a pay-per-use item resets when it is billed, and counted resets and rollovers recur."""
    if pay_per_use(item) and reset in _PAY_PER_USE_RESET:
        return _PAY_PER_USE_RESET[reset]
    uses = [key for key in ("interval_count", "rollover") if key in set_fields(item)]
    if uses and reset not in RECURRING_RESETS:
        return (
            f"the plan's item has {' and '.join(repr(u) for u in uses)}: a customer's own "
            f"reset must recur ({RECURRING})"
        )
    return None


def set_fields(item: ItemSpec) -> list[str]:
    """Which of these fields `item` sets (an `interval_count` of 1 is the default)."""
    values = {
        "interval_count": item.interval_count != 1,
        "rollover": item.rollover is not None,
        "max_purchase": item.max_purchase is not None,
    }
    return [key for key, present in values.items() if present]


def pay_per_use(item: ItemSpec) -> bool:
    return item.price is not None and item.price.billing == "pay_per_use"


def _recurs(item: ItemSpec) -> bool:
    return item.reset in RECURRING_RESETS


def _interval_count(item: ItemSpec, here: Path, marks: Marks) -> Iterator[Problem]:
    if item.interval_count == 1:
        return
    where: Path = (*here, "interval_count")
    if not _recurs(item):
        yield marks.problem(
            where,
            f"interval_count counts the item's resets: give it a recurring 'reset' ({RECURRING})"
            " or remove 'interval_count'",
            key=True,
        )
    elif pay_per_use(item):
        yield marks.problem(
            where,
            "a pay-per-use item resets when its usage is billed, every price interval: remove "
            "'interval_count' (or make the price prepaid)",
            key=True,
        )


def _rollover(item: ItemSpec, feature: FeatureSpec, where: Path, marks: Marks) -> Iterator[Problem]:
    """Only used-up allowances roll over: the included usage of a consumable feature or a
    credit system, at a reset that recurs. An unlimited item's rollover is reported with its
    other keys (`checks._allowance`)."""
    if feature.type == "metered" and feature.consumable is False:
        yield marks.problem(
            where,
            f"feature {item.feature!r} is continuous (consumable: false): its usage is never "
            "used up, so nothing rolls over; remove 'rollover'",
            key=True,
        )
        return
    if not item.unlimited and not item.included:
        yield marks.problem(
            where,
            "rollover carries unused included usage over: give the item 'included' above 0, "
            "or remove 'rollover'",
            key=True,
        )
    if not item.unlimited and not _recurs(item):
        yield marks.problem(
            where,
            f"rollover happens at each reset: give the item a recurring 'reset' ({RECURRING}) "
            "or remove 'rollover'",
            key=True,
        )
    rollover = item.rollover
    if rollover is not None and rollover.max is not None and rollover.max_percentage is not None:
        yield marks.problem(
            (*where, "max_percentage"),
            "rollover takes 'max' (units) or 'max_percentage' (of the allowance), not both: "
            "remove one",
            key=True,
        )
