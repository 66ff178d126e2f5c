"""Rules that need the whole file: references, per-group defaults, currency precision, tiers.

Each check takes the validated file and the marks and yields problems; `check_file` runs them
all so the user sees every problem at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from autumn_sync.config.format import BillingFile, ItemSpec, PlanSpec, UsagePriceSpec
from autumn_sync.config.problems import Problem
from autumn_sync.config.yamlfile import Marks, Path
from autumn_sync.model.money import decimals, exponent, is_currency


@dataclass(frozen=True)
class Context:
    """The valid part of a file, where things are, and the ids of entries that failed
    validation (references to those are not reported again)."""

    spec: BillingFile
    marks: Marks
    broken: dict[str, set[str]] = field(default_factory=dict)

    def known(self, section: str, key: str) -> bool:
        return key in getattr(self.spec, section) or key in self.broken.get(section, set())


Check = Callable[[Context], Iterator[Problem]]


def check_file(ctx: Context) -> list[Problem]:
    """Every semantic problem in the file."""
    return [problem for check in CHECKS for problem in check(ctx)]


def _currency(ctx: Context) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    code = spec.settings.currency
    if code != code.lower():
        yield marks.problem(
            ("settings", "currency"), f"write the currency in lower case: {code.lower()!r}"
        )
    elif not is_currency(code):
        yield marks.problem(("settings", "currency"), f"unknown ISO 4217 currency {code!r}")


def _features(ctx: Context) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    for fid, feature in spec.features.items():
        here: Path = ("features", fid)
        if feature.type == "metered" and feature.consumable is None:
            yield marks.problem(
                here,
                f"feature {fid!r}: metered features need 'consumable: true' (used up and reset, "
                "like messages) or 'consumable: false' (continuous, like seats)",
            )
        if feature.type != "metered" and feature.consumable is not None:
            yield marks.problem(
                (*here, "consumable"),
                f"'consumable' applies to metered features, not {feature.type}",
            )
        if feature.type != "credit_system" and feature.credit_costs is not None:
            yield marks.problem(
                (*here, "credit_costs"), "'credit_costs' applies to credit_system features only"
            )
        if feature.type == "credit_system" and not feature.credit_costs:
            yield marks.problem(here, f"credit system {fid!r} needs 'credit_costs'")
        yield from _credit_costs(ctx, fid)


def _credit_costs(ctx: Context, fid: str) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    for target in spec.features[fid].credit_costs or {}:
        where: Path = ("features", fid, "credit_costs", target)
        other = spec.features.get(target)
        if other is None and ctx.known("features", target):
            continue
        if other is None:
            yield marks.problem(
                where, f"unknown feature {target!r}{_known(spec.features)}", key=True
            )
        elif other.type != "metered":
            yield marks.problem(
                where,
                f"a credit cost needs a metered feature; {target!r} is {other.type}",
                key=True,
            )


def _known(ids: Mapping[str, object]) -> str:
    return f" (known: {', '.join(sorted(ids))})" if ids else ""


def _plans(ctx: Context) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    for pid, plan in spec.plans.items():
        here: Path = ("plans", pid)
        if plan.add_on and plan.default:
            yield marks.problem((*here, "default"), "an add-on plan cannot be a default plan")
        if plan.price is not None:
            yield from _amount(ctx, (*here, "price", "amount"), plan.price.amount)
        yield from _duplicate_items(plan, here, marks)
        for index, item in enumerate(plan.items):
            yield from _item(ctx, item, (*here, "items", index))


def _duplicate_items(plan: PlanSpec, here: Path, marks: Marks) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, item in enumerate(plan.items):
        if item.feature in seen:
            yield marks.problem(
                (*here, "items", index, "feature"), f"feature {item.feature!r} is listed twice"
            )
        seen.add(item.feature)


def _item(ctx: Context, item: ItemSpec, here: Path) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    feature = spec.features.get(item.feature)
    if feature is None and ctx.known("features", item.feature):
        return
    if feature is None:
        yield marks.problem(
            (*here, "feature"), f"unknown feature {item.feature!r}{_known(spec.features)}"
        )
        return
    if feature.type == "boolean":
        for key in ("included", "reset", "price"):
            if getattr(item, key) is not None:
                yield marks.problem(
                    (*here, key), f"{item.feature!r} is a boolean feature: it takes no '{key}'"
                )
        return
    consumable = feature.type == "credit_system" or bool(feature.consumable)
    has_interval = item.price is not None and item.price.interval not in (None, "one_off")
    if consumable and item.reset is None and not has_interval:
        yield marks.problem(
            here,
            f"{item.feature!r} is consumable: give the item a 'reset' interval "
            "or its price an 'interval'",
        )
    if item.price is not None:
        yield from _usage_price(ctx, item.price, (*here, "price"))


def _usage_price(ctx: Context, price: UsagePriceSpec, here: Path) -> Iterator[Problem]:
    marks = ctx.marks
    if (price.amount is None) == (price.tiers is None):
        yield marks.problem(here, "a usage price needs either 'amount' or 'tiers' (not both)")
    if price.tier_mode is not None and price.tiers is None:
        yield marks.problem((*here, "tier_mode"), "'tier_mode' needs 'tiers'")
    if price.amount is not None:
        yield from _amount(ctx, (*here, "amount"), price.amount)
    yield from _tiers(ctx, price, here)


def _tiers(ctx: Context, price: UsagePriceSpec, here: Path) -> Iterator[Problem]:
    marks = ctx.marks
    tiers = price.tiers or []
    if price.tiers is not None and not tiers:
        yield marks.problem((*here, "tiers"), "'tiers' needs at least one tier")
        return
    previous = Decimal(0)
    for index, tier in enumerate(tiers):
        where: Path = (*here, "tiers", index)
        yield from _amount(ctx, (*where, "amount"), tier.amount)
        last = index == len(tiers) - 1
        if tier.up_to == "inf":
            if not last:
                yield marks.problem((*where, "up_to"), "only the last tier can go up to 'inf'")
            continue
        if tier.up_to <= previous:
            yield marks.problem(
                (*where, "up_to"), f"tiers must ascend: {tier.up_to} is not above {previous}"
            )
        previous = tier.up_to
        if last:
            yield marks.problem((*where, "up_to"), "the last tier must go up to 'inf'")


def _amount(ctx: Context, where: Path, amount: Decimal) -> Iterator[Problem]:
    currency = ctx.spec.settings.currency
    if not is_currency(currency):
        return
    allowed = exponent(currency)
    if decimals(amount) > allowed:
        yield ctx.marks.problem(
            where,
            f"{amount} has more decimals than {currency.upper()} allows ({allowed})",
        )


def _defaults(ctx: Context) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    by_group: dict[str | None, list[str]] = {}
    for pid, plan in spec.plans.items():
        if plan.default:
            by_group.setdefault(plan.group, []).append(pid)
    for group, pids in by_group.items():
        for pid in pids[1:]:
            label = f"group {group!r}" if group else "the plans without a group"
            yield marks.problem(
                ("plans", pid, "default"),
                f"only one default plan per group: {pids[0]!r} is already the default of {label}",
            )


def _rewards(ctx: Context) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    codes = Counter(code.upper() for r in spec.rewards.values() for code in r.promo_codes)
    for rid, reward in spec.rewards.items():
        here: Path = ("rewards", rid)
        yield from _discount(ctx, rid)
        for index, pid in enumerate(reward.plans):
            if not ctx.known("plans", pid):
                yield marks.problem(
                    (*here, "plans", index), f"unknown plan {pid!r}{_known(spec.plans)}"
                )
        for index, code in enumerate(reward.promo_codes):
            if codes[code.upper()] > 1:
                yield marks.problem(
                    (*here, "promo_codes", index), f"promotion code {code!r} is used twice"
                )
                codes[code.upper()] = 0


def _discount(ctx: Context, rid: str) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    reward = spec.rewards[rid]
    here: Path = ("rewards", rid)
    wanted, other = (
        ("percent_off", "amount_off")
        if reward.type == "percentage_discount"
        else ("amount_off", "percent_off")
    )
    if getattr(reward, wanted) is None:
        yield marks.problem(here, f"a {reward.type} needs '{wanted}'")
    if getattr(reward, other) is not None:
        yield marks.problem((*here, other), f"a {reward.type} takes '{wanted}', not '{other}'")
    if reward.amount_off is not None:
        yield from _amount(ctx, (*here, "amount_off"), reward.amount_off)


CHECKS: tuple[Check, ...] = (_currency, _features, _plans, _defaults, _rewards)
