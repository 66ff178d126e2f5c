"""Rules for the `customers` section that need the whole file: identities, references to
plans, features and rewards, one plan per group, custom versions and balances."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from autumn_sync.config.checks import FileView, amount_precision, unknown
from autumn_sync.config.format import (
    BalanceSpec,
    CustomerPlanSpec,
    CustomerSpec,
    EntitySpec,
    PlanRef,
    PlanSpec,
)
from autumn_sync.config.item_rules import custom_reset
from autumn_sync.config.problems import Problem
from autumn_sync.config.yamlfile import Path
from autumn_sync.model.money import canonical

BALANCE_TYPES = ("metered", "credit_system")
MAX_METADATA_KEYS = 50


def check_customers(ctx: FileView) -> Iterator[Problem]:
    """Every problem of the customers section."""
    seen = _Seen()
    for index, customer in zip(ctx.customer_index, ctx.spec.customers, strict=True):
        here: Path = ("customers", index)
        yield from _identity(ctx, customer, here, seen)
        yield from _stripe_and_billing(ctx, customer, here)
        yield from _plan_refs(ctx, customer.plans, (*here, "plans"))
        yield from _entities(ctx, customer.entities, here)
        yield from _balances(ctx, customer, here)
        yield from _rewards(ctx, customer.rewards, here)


@dataclass
class _Seen:
    """The customers listed so far: index by id, by email (pre-provisioned: no id), and
    (index, id) by the email of a customer with an id."""

    ids: dict[str, int] = field(default_factory=dict)
    emails: dict[str, int] = field(default_factory=dict)
    emails_with_id: dict[str, tuple[int, str]] = field(default_factory=dict)


def _identity(ctx: FileView, customer: CustomerSpec, here: Path, seen: _Seen) -> Iterator[Problem]:
    """A customer has an id or an email; ids are unique, and the email of a pre-provisioned
    customer (no id: the email is its identity) is on no other customer."""
    if customer.id is None and customer.email is None:
        yield ctx.marks.problem(
            here, "a customer needs an 'id', or an 'email' while it has no id yet (pre-provisioned)"
        )
    elif customer.id is not None:
        yield from _listed_by_id(ctx, customer.id, customer.email, here, seen)
    elif customer.email is not None:
        yield from _listed_by_email(ctx, customer.email, here, seen)
    if len(customer.metadata) > MAX_METADATA_KEYS:
        yield ctx.marks.problem(
            (*here, "metadata"), f"at most {MAX_METADATA_KEYS} metadata keys (Stripe's limit)"
        )


def _line(ctx: FileView, index: int) -> int:
    return ctx.marks.at(("customers", index))[0]


def _listed_by_id(
    ctx: FileView, cid: str, email: str | None, here: Path, seen: _Seen
) -> Iterator[Problem]:
    index = int(here[1])
    first = seen.ids.setdefault(cid, index)
    if first != index:
        yield ctx.marks.problem(
            (*here, "id"),
            f"the customer with id {cid!r} is already listed (line {_line(ctx, first)}): "
            "list each customer once",
        )
    if email is None:
        return
    seen.emails_with_id.setdefault(email, (index, cid))
    if email in seen.emails:
        yield ctx.marks.problem(
            (*here, "email"),
            f"the customer with email {email!r} is already listed without an id (line "
            f"{_line(ctx, seen.emails[email])}): list it once, with its id if it has one",
        )


def _listed_by_email(ctx: FileView, email: str, here: Path, seen: _Seen) -> Iterator[Problem]:
    index = int(here[1])
    first = seen.emails.setdefault(email, index)
    if first != index:
        yield ctx.marks.problem(
            (*here, "email"),
            f"the customer with email {email!r} is already listed (line {_line(ctx, first)}): "
            "list each customer once",
        )
    elif email in seen.emails_with_id:
        other, cid = seen.emails_with_id[email]
        yield ctx.marks.problem(
            (*here, "email"),
            f"email {email!r} is the email of customer {cid!r} (line {_line(ctx, other)}): "
            "list that customer once, by its id",
        )


def _stripe_and_billing(ctx: FileView, customer: CustomerSpec, here: Path) -> Iterator[Problem]:
    link = customer.stripe
    if link is not None and link.customer and link.create:
        yield ctx.marks.problem(
            (*here, "stripe", "create"),
            "link an existing Stripe customer ('customer') or create one ('create'), not both: "
            "remove one",
        )
    billing = customer.billing
    if billing is None:
        return
    if billing.collection == "send_invoice" and billing.days_until_due is None:
        yield ctx.marks.problem(
            (*here, "billing"),
            "invoice billing needs 'days_until_due' (the days a customer has to pay an invoice)",
        )
    if billing.collection != "send_invoice" and billing.days_until_due is not None:
        yield ctx.marks.problem(
            (*here, "billing", "days_until_due"),
            "days_until_due: only invoice billing has a due date; add 'collection: send_invoice' "
            "or remove it",
        )


def _plan_id(ref: PlanRef) -> str:
    return ref if isinstance(ref, str) else ref.plan


def _plan_refs(ctx: FileView, refs: Sequence[PlanRef], here: Path) -> Iterator[Problem]:
    """Known plans, each once, one per group (attaching another replaces it)."""
    plans, marks = ctx.spec.plans, ctx.marks
    first: dict[str, int] = {}
    groups: dict[str, str] = {}
    for index, ref in enumerate(refs):
        pid = _plan_id(ref)
        where: Path = (*here, index) if isinstance(ref, str) else (*here, index, "plan")
        if not ctx.known("plans", pid):
            yield marks.problem(where, unknown("plan", "plans", pid, plans))
            continue
        if pid in first:
            yield marks.problem(
                where, f"plan {pid!r} is listed twice: a customer is on a plan once (remove one)"
            )
            continue
        first[pid] = index
        plan = plans.get(pid)
        if plan is not None and plan.group and not plan.add_on:
            if plan.group in groups:
                yield marks.problem(
                    where,
                    f"plans {groups[plan.group]!r} and {pid!r} are both in group "
                    f"{plan.group!r}: a customer is on one plan of a group (keep one)",
                )
            groups.setdefault(plan.group, pid)
        if isinstance(ref, CustomerPlanSpec):
            yield from _custom(ctx, ref, (*here, index))


def _custom(ctx: FileView, ref: CustomerPlanSpec, here: Path) -> Iterator[Problem]:
    if ref.price is not None:
        yield from amount_precision(ctx, (*here, "price", "amount"), ref.price.amount)
    plan = ctx.spec.plans.get(ref.plan)
    if plan is None:
        return
    yield from _quantity(ctx, ref, plan, here)
    yield from _quantities(ctx, ref, plan, here)
    features = {item.feature: item for item in plan.items}
    seen: set[str] = set()
    for index, item in enumerate(ref.items):
        where: Path = (*here, "items", index, "feature")
        base = features.get(item.feature)
        if base is not None and item.reset is not None and item.feature not in seen:
            message = custom_reset(base, item.reset)
            if message:
                yield ctx.marks.problem((*here, "items", index, "reset"), message)
        if item.feature in seen:
            yield ctx.marks.problem(where, f"feature {item.feature!r} is listed twice")
        elif item.feature not in features:
            listed = ", ".join(sorted(features)) or "none"
            yield ctx.marks.problem(
                where,
                f"plan {ref.plan!r} has no item for feature {item.feature!r} (its items: "
                f"{listed}): a custom version changes the included usage of the plan's items",
            )
        elif _type(ctx, item.feature) == "boolean":
            yield ctx.marks.problem(
                where,
                f"feature {item.feature!r} is boolean: it has no included usage to change "
                "(the plan grants it as it is)",
            )
        seen.add(item.feature)


def _quantity(
    ctx: FileView, ref: CustomerPlanSpec, plan: PlanSpec, here: Path
) -> Iterator[Problem]:
    """`quantity` multiplies a plan's base price: a plan without one has nothing to multiply."""
    if ref.quantity != 1 and plan.price is None and ref.price is None:
        yield ctx.marks.problem(
            (*here, "quantity"),
            f"plan {ref.plan!r} has no base price for `quantity` ({ref.quantity}) to multiply: "
            "set the prepaid units of a feature with `quantities: {feature: N}`",
        )


def _quantities(
    ctx: FileView, ref: CustomerPlanSpec, plan: PlanSpec, here: Path
) -> Iterator[Problem]:
    """Prepaid units go to a feature the plan sells prepaid, and at least what it includes."""
    items = {item.feature: item for item in plan.items}
    custom = {item.feature: item.included for item in ref.items if item.included is not None}
    for feature, units in ref.quantities.items():
        where: Path = (*here, "quantities", feature)
        item = items.get(feature)
        if item is None or item.price is None or item.price.billing != "prepaid":
            prepaid = sorted(
                f for f, i in items.items() if i.price is not None and i.price.billing == "prepaid"
            )
            listed = ", ".join(prepaid) or "none"
            yield ctx.marks.problem(
                where,
                f"plan {ref.plan!r} has no prepaid price for feature {feature!r} (its prepaid "
                f"features: {listed}): `quantities` buys units of a prepaid feature",
            )
            continue
        included = custom.get(feature, item.included)
        if included is not None and units < included:
            yield ctx.marks.problem(
                where,
                f"quantities: {units} {feature} is fewer than the {canonical(included)} plan "
                f"{ref.plan!r} includes (the included units count toward it)",
            )


def _type(ctx: FileView, fid: str) -> str | None:
    feature = ctx.spec.features.get(fid)
    return feature.type if feature is not None else None


def _entities(ctx: FileView, entities: Sequence[EntitySpec], here: Path) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, entity in enumerate(entities):
        where: Path = (*here, "entities", index)
        if entity.id in seen:
            yield ctx.marks.problem((*where, "id"), f"entity {entity.id!r} is listed twice")
        seen.add(entity.id)
        yield from _entity_feature(ctx, entity.feature, (*where, "feature"))
        yield from _plan_refs(ctx, entity.plans, (*where, "plans"))


def _entity_feature(ctx: FileView, fid: str, where: Path) -> Iterator[Problem]:
    """Entities (teams, seats) are counted by a continuous-use feature, as in Autumn."""
    feature = ctx.spec.features.get(fid)
    if not ctx.known("features", fid):
        yield ctx.marks.problem(where, unknown("feature", "features", fid, ctx.spec.features))
    elif feature is not None and (feature.type != "metered" or feature.consumable):
        kind = "consumable" if feature.type == "metered" else feature.type
        yield ctx.marks.problem(
            where,
            f"feature {fid!r} is {kind}: entities are counted by a continuous-use feature "
            "(metered, consumable: false), like seats",
        )


def _balances(ctx: FileView, customer: CustomerSpec, here: Path) -> Iterator[Problem]:
    features = ctx.spec.features
    for fid, balance in customer.balances.items():
        where: Path = (*here, "balances", fid)
        feature = features.get(fid)
        if not ctx.known("features", fid):
            yield ctx.marks.problem(where, unknown("feature", "features", fid, features), key=True)
        elif feature is not None and feature.type not in BALANCE_TYPES:
            yield ctx.marks.problem(
                where,
                f"feature {fid!r} is {feature.type}: balances are for metered features and "
                "credit systems",
                key=True,
            )
        if balance.allowance is None and balance.reset_at is None and not balance.grants:
            yield ctx.marks.problem(
                where,
                f"the balance of {fid!r} declares nothing: give it an 'allowance', a "
                "'reset_at' or 'grants', or remove it",
                key=True,
            )
        yield from _grants(ctx, balance, where)


def _grants(ctx: FileView, balance: BalanceSpec, here: Path) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, grant in enumerate(balance.grants):
        if grant.id in seen:
            yield ctx.marks.problem(
                (*here, "grants", index, "id"),
                f"grant {grant.id!r} is listed twice: a grant id is given once",
            )
        seen.add(grant.id)


def _rewards(ctx: FileView, rewards: Sequence[str], here: Path) -> Iterator[Problem]:
    for index, rid in enumerate(rewards):
        if not ctx.known("rewards", rid):
            message = unknown("reward", "rewards", rid, ctx.spec.rewards)
            yield ctx.marks.problem((*here, "rewards", index), message)
