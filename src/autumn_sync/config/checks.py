"""Rules that need the whole file: references, per-group defaults, currency precision, tiers.

Each check takes the validated file and the marks and yields problems; `check_file` runs them
all so the user sees every problem at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from autumn_sync.config.format import (
    BillingFile,
    ItemSpec,
    PlanSpec,
    PromoCodeRef,
    UsagePriceSpec,
    digits,
)
from autumn_sync.config.item_rules import item_rules, pay_per_use_rules, set_fields
from autumn_sync.config.problems import Problem
from autumn_sync.config.yamlfile import Marks, Path
from autumn_sync.model.money import exponent, is_currency


@dataclass(frozen=True)
class FileView:
    """The valid part of a file, where things are, the ids of entries that failed validation
    and the parts (sections, settings) that could not be read at all. References to broken or
    unreadable things are not reported again."""

    spec: BillingFile
    marks: Marks
    broken: dict[str, set[str]] = field(default_factory=dict)
    opaque: frozenset[str] = frozenset()
    customer_index: tuple[int, ...] = ()  # where each valid customer is in the file's list

    def known(self, section: str, key: str) -> bool:
        return (
            section in self.opaque
            or key in getattr(self.spec, section)
            or key in self.broken.get(section, set())
        )


Check = Callable[[FileView], Iterator[Problem]]


def check_file(ctx: FileView) -> list[Problem]:
    """Every semantic problem in the file."""
    return [problem for check in CHECKS for problem in check(ctx)]


def _currency(ctx: FileView) -> Iterator[Problem]:
    if "settings" in ctx.opaque:
        return
    code, where = ctx.spec.settings.currency, ("settings", "currency")
    if code != code.lower():
        yield ctx.marks.problem(where, f"write the currency in lower case: {code.lower()!r}")
    elif not is_currency(code):
        yield ctx.marks.problem(
            where, f"unknown ISO 4217 currency {code!r}: use a code such as 'usd' or 'eur'"
        )


def did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, section: str, name: str, ids: Iterable[str]) -> str:
    """`unknown feature 'x'` with a way out: the id it is close to, or the known ones."""
    known = sorted(ids)
    hint = did_you_mean(name, known)
    if not hint:
        hint = f" (known: {', '.join(known)})" if known else f": define it under '{section}'"
    return f"unknown {kind} {name!r}{hint}"


def _features(ctx: FileView) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    for fid, feature in spec.features.items():
        here: Path = ("features", fid)
        if feature.type == "metered" and feature.consumable is None:
            yield marks.problem(
                here,
                f"feature {fid!r}: metered features need 'consumable: true' (used up and reset, "
                "like messages) or 'consumable: false' (continuous, like seats)",
                key=True,
            )
        if feature.type != "metered" and feature.consumable is not None:
            yield marks.problem(
                (*here, "consumable"),
                f"only metered features take 'consumable'; {fid!r} is {feature.type}: remove it",
                key=True,
            )
        yield from _credit_system(ctx, fid)


def _credit_system(ctx: FileView, fid: str) -> Iterator[Problem]:
    feature, marks, here = ctx.spec.features[fid], ctx.marks, ("features", fid)
    if feature.type != "credit_system":
        if feature.credit_costs is not None:
            yield marks.problem(
                (*here, "credit_costs"),
                f"only credit_system features take 'credit_costs'; {fid!r} is {feature.type}: "
                "remove it",
                key=True,
            )
        return
    if feature.credit_costs is None:
        yield marks.problem(
            here,
            f"credit system {fid!r} needs 'credit_costs' (credits used per unit of each "
            "metered feature it pays for)",
            key=True,
        )
    elif not feature.credit_costs:
        yield marks.problem(
            (*here, "credit_costs"), "credit_costs: name at least one metered feature"
        )
    yield from _credit_costs(ctx, fid)


def _credit_costs(ctx: FileView, fid: str) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    for target in spec.features[fid].credit_costs or {}:
        where: Path = ("features", fid, "credit_costs", target)
        other = spec.features.get(target)
        if other is None and ctx.known("features", target):
            continue
        if other is None:
            message = unknown("feature", "features", target, spec.features)
            yield marks.problem(where, message, key=True)
        elif other.type != "metered":
            yield marks.problem(
                where,
                f"a credit cost needs a metered feature; {target!r} is {other.type}",
                key=True,
            )
        elif other.consumable is False:
            yield marks.problem(
                where,
                f"a credit cost needs a consumable metered feature; {target!r} is continuous "
                "(consumable: false): credits pay for usage that is used up",
                key=True,
            )


def _plans(ctx: FileView) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    for pid, plan in spec.plans.items():
        here: Path = ("plans", pid)
        if plan.add_on and plan.default:
            yield marks.problem(
                (*here, "default"),
                "an add-on plan cannot be a default plan: remove 'default' or 'add_on'",
            )
        if plan.price is not None:
            yield from amount_precision(ctx, (*here, "price", "amount"), plan.price.amount)
        yield from _duplicate_items(plan, here, marks)
        for index, item in enumerate(plan.items):
            yield from _item(ctx, item, (*here, "items", index))


def _duplicate_items(plan: PlanSpec, here: Path, marks: Marks) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for index, item in enumerate(plan.items):
        if item.feature in first:
            line, _ = marks.at((*here, "items", first[item.feature]))
            yield marks.problem(
                (*here, "items", index, "feature"),
                f"feature {item.feature!r} already has an item in this plan (line {line}): "
                "merge the two items",
            )
        first.setdefault(item.feature, index)


def _item(ctx: FileView, item: ItemSpec, here: Path) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    feature = spec.features.get(item.feature)
    if feature is None and ctx.known("features", item.feature):
        return
    if feature is None:
        message = unknown("feature", "features", item.feature, spec.features)
        yield marks.problem((*here, "feature"), message)
        return
    if feature.type == "boolean":
        keys = ("included", "unlimited", "reset", "price")
        for key in [*(k for k in keys if getattr(item, k) not in (None, False)), *set_fields(item)]:
            yield marks.problem(
                (*here, key),
                f"feature {item.feature!r} is boolean and takes no '{key}': remove it",
                key=True,
            )
        return
    kind = "a credit system" if feature.type == "credit_system" else "metered"
    yield from _allowance(item, kind, here, marks)
    consumable = feature.type == "credit_system" or bool(feature.consumable)
    has_interval = item.price is not None and item.price.interval is not None
    if consumable and item.reset is None and not has_interval and not item.unlimited:
        kind = "a credit system" if feature.type == "credit_system" else "consumable"
        yield marks.problem(
            here,
            f"feature {item.feature!r} is {kind}: give the item a 'reset' interval "
            "or its price an 'interval'",
        )
    if item.price is not None:
        yield from _usage_price(ctx, item.price, (*here, "price"))
        yield from _first_tier(item, (*here, "price"), marks)
        yield from pay_per_use_rules(item, here, marks)
    yield from item_rules(item, feature, here, marks)


def _allowance(item: ItemSpec, kind: str, here: Path, marks: Marks) -> Iterator[Problem]:
    """A metered item says what it allows: `included: N`, `unlimited: true`, or a price (an
    omitted `included` is never unlimited)."""
    if item.unlimited:
        for key in ("included", "price", "rollover"):
            if getattr(item, key) is not None:
                yield marks.problem(
                    (*here, key),
                    f"an unlimited item takes no '{key}': remove '{key}' or 'unlimited'",
                    key=True,
                )
    elif item.included is None and item.price is None:
        yield marks.problem(
            here,
            f"feature {item.feature!r} is {kind}: say what the item allows (add included: 0, "
            "unlimited: true, or a price)",
        )


def _first_tier(item: ItemSpec, here: Path, marks: Marks) -> Iterator[Problem]:
    """The included units are a free first tier: the price's first tier starts after them."""
    tiers = item.price.tiers if item.price is not None else None
    if not tiers or not item.included or tiers[0].up_to == "inf":
        return
    if tiers[0].up_to <= item.included:
        yield marks.problem(
            (*here, "tiers", 0, "up_to"),
            f"the first tier must go above the included amount: {tiers[0].up_to} is not above "
            f"included {item.included} (tiers count every unit, the free included ones first)",
        )


def _usage_price(ctx: FileView, price: UsagePriceSpec, here: Path) -> Iterator[Problem]:
    marks = ctx.marks
    if price.amount is not None and price.tiers is not None:
        yield marks.problem(
            (*here, "tiers"),
            "a usage price takes 'amount' or 'tiers', not both: remove one",
            key=True,
        )
    if price.amount is None and price.tiers is None:
        yield marks.problem(
            here, "a usage price needs 'amount' (per unit) or 'tiers': add one", key=True
        )
    if price.tier_mode is not None and price.tiers is None:
        yield marks.problem(
            (*here, "tier_mode"),
            "a usage price without 'tiers' takes no 'tier_mode': remove it",
            key=True,
        )
    if price.amount is not None:
        yield from amount_precision(ctx, (*here, "amount"), price.amount)
    yield from _tiers(ctx, price, here)


def _tiers(ctx: FileView, price: UsagePriceSpec, here: Path) -> Iterator[Problem]:
    marks = ctx.marks
    tiers = price.tiers or []
    if price.tiers is not None and not tiers:
        yield marks.problem(
            (*here, "tiers"), "tiers: add at least one tier (the last one up to 'inf')"
        )
        return
    previous = Decimal(0)
    inf_early = False
    for index, tier in enumerate(tiers):
        where: Path = (*here, "tiers", index)
        yield from amount_precision(ctx, (*where, "amount"), tier.amount)
        last = index == len(tiers) - 1
        if tier.up_to == "inf":
            if not last:
                inf_early = True
                yield marks.problem(
                    (*where, "up_to"), "only the last tier can go up to 'inf': move this tier last"
                )
            continue
        if tier.up_to <= previous:
            yield marks.problem(
                (*where, "up_to"),
                f"tiers must go up: {tier.up_to} is not above the previous tier's {previous}",
            )
        previous = tier.up_to
        if last and not inf_early:
            yield marks.problem(
                (*where, "up_to"), "the last tier must go up to 'inf': add a tier 'up_to: inf'"
            )


def amount_precision(ctx: FileView, where: Path, amount: Decimal) -> Iterator[Problem]:
    currency = ctx.spec.settings.currency
    if not is_currency(currency):
        return
    allowed = exponent(currency)
    if digits(amount)[1] <= allowed:
        return
    code, key = currency.upper(), where[-1]
    rule = (
        "must be whole numbers"
        if allowed == 0
        else f"have at most {allowed} decimal place{'s' if allowed > 1 else ''}"
    )
    yield ctx.marks.problem(where, f"{key}: {code} amounts {rule}, got {amount}")


def _defaults(ctx: FileView) -> Iterator[Problem]:
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


def _rewards(ctx: FileView) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    for rid, reward in spec.rewards.items():
        here: Path = ("rewards", rid)
        yield from _discount(ctx, rid)
        for index, pid in enumerate(reward.plans):
            if not ctx.known("plans", pid):
                message = unknown("plan", "plans", pid, spec.plans)
                yield marks.problem((*here, "plans", index), message)
    yield from _promo_codes(ctx)


def _promo_codes(ctx: FileView) -> Iterator[Problem]:
    """A code (in any case) may be used once in the whole file; each repeat is reported."""
    owner: dict[str, str] = {}
    for rid, reward in ctx.spec.rewards.items():
        for index, entry in enumerate(reward.promo_codes):
            here: Path = ("rewards", rid, "promo_codes", index)
            code, text_at = _code_at(entry, here)
            first = owner.get(code.upper())
            if first is None:
                owner[code.upper()] = rid
                continue
            where = f"reward {first!r}" if first != rid else "this reward"
            yield ctx.marks.problem(
                text_at,
                f"promotion code {code!r} is already used by {where} "
                "(codes ignore case): remove it or choose another",
            )


def _code_at(entry: PromoCodeRef, here: Path) -> tuple[str, Path]:
    """The text of the promotion code entry at `here` (a string, or a mapping with
    restrictions) and where that text is."""
    return (entry, here) if isinstance(entry, str) else (entry.code, (*here, "code"))


def _discount(ctx: FileView, rid: str) -> Iterator[Problem]:
    spec, marks = ctx.spec, ctx.marks
    reward = spec.rewards[rid]
    here: Path = ("rewards", rid)
    wanted, other = (
        ("percent_off", "amount_off")
        if reward.type == "percentage_discount"
        else ("amount_off", "percent_off")
    )
    if getattr(reward, wanted) is None:
        yield marks.problem(here, f"a {reward.type} needs '{wanted}'", key=True)
    if getattr(reward, other) is not None:
        yield marks.problem(
            (*here, other),
            f"a {reward.type} takes '{wanted}', not '{other}': remove '{other}'",
            key=True,
        )
    if reward.amount_off is not None:
        yield from amount_precision(ctx, (*here, "amount_off"), reward.amount_off)


CHECKS: tuple[Check, ...] = (_currency, _features, _plans, _defaults, _rewards)
