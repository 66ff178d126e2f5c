"""Rules for the `customers` section that need the whole file: identities, references to
plans, features and rewards, one plan per group, custom versions and balances."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from autumn_sync.config.checks import Context, amount_precision, unknown
from autumn_sync.config.format import (
    BalanceSpec,
    CustomerPlanSpec,
    CustomerSpec,
    EntitySpec,
    PlanRef,
)
from autumn_sync.config.problems import Problem
from autumn_sync.config.yamlfile import Path

BALANCE_TYPES = ("metered", "credit_system")
MAX_METADATA_KEYS = 50


def check_customers(ctx: Context) -> Iterator[Problem]:
    """Every problem of the customers section."""
    seen: dict[str, int] = {}
    for index, customer in zip(ctx.customer_index, ctx.spec.customers, strict=True):
        here: Path = ("customers", index)
        yield from _identity(ctx, customer, here, seen)
        yield from _stripe_and_billing(ctx, customer, here)
        yield from _plan_refs(ctx, customer.plans, (*here, "plans"))
        yield from _entities(ctx, customer.entities, here)
        yield from _balances(ctx, customer, here)
        yield from _rewards(ctx, customer.rewards, here)


def _identity(
    ctx: Context, customer: CustomerSpec, here: Path, seen: dict[str, int]
) -> Iterator[Problem]:
    """A customer has an id or an email; ids are unique, and an email that names a customer
    (one without an id) is on no other customer."""
    if customer.id is None and customer.email is None:
        yield ctx.marks.problem(
            here, "a customer needs an 'id', or an 'email' while it has no id yet (pre-provisioned)"
        )
        return
    index = int(here[1])
    names = [f"id {customer.id!r}"] if customer.id else []
    if customer.email is not None:
        names.append(f"email {customer.email!r}" if customer.id is None else f"+{customer.email}")
    for name in names:
        clash = seen.get(name) if not name.startswith("+") else seen.get(f"email {name[1:]!r}")
        if clash is not None:
            line, _ = ctx.marks.at(("customers", clash))
            key = "id" if name.startswith("id ") else "email"
            label = name if not name.startswith("+") else f"email {name[1:]!r}"
            yield ctx.marks.problem(
                (*here, key), f"the customer with {label} is already listed (line {line})"
            )
        if not name.startswith("+"):
            seen.setdefault(name, index)
    if customer.id is None and customer.email is not None:
        earlier = seen.get(f"+{customer.email}")
        if earlier is not None:
            line, _ = ctx.marks.at(("customers", earlier))
            yield ctx.marks.problem(
                (*here, "email"),
                f"the customer with email {customer.email!r} is already listed with an id "
                f"(line {line})",
            )
    elif customer.email is not None:
        seen.setdefault(f"+{customer.email}", index)
    if len(customer.metadata) > MAX_METADATA_KEYS:
        yield ctx.marks.problem(
            (*here, "metadata"), f"at most {MAX_METADATA_KEYS} metadata keys (Stripe's limit)"
        )


def _stripe_and_billing(ctx: Context, customer: CustomerSpec, here: Path) -> Iterator[Problem]:
    link = customer.stripe
    if link is not None and link.customer and link.create:
        yield ctx.marks.problem(
            (*here, "stripe", "create"),
            "'customer' links an existing Stripe customer, 'create' makes a new one: keep one",
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
            "'days_until_due' is for 'collection: send_invoice' only",
        )


def _plan_id(ref: PlanRef) -> str:
    return ref if isinstance(ref, str) else ref.plan


def _plan_refs(ctx: Context, refs: Sequence[PlanRef], here: Path) -> Iterator[Problem]:
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
            yield marks.problem(where, f"plan {pid!r} is listed twice")
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


def _custom(ctx: Context, ref: CustomerPlanSpec, here: Path) -> Iterator[Problem]:
    if ref.price is not None:
        yield from amount_precision(ctx, (*here, "price", "amount"), ref.price.amount)
    plan = ctx.spec.plans.get(ref.plan)
    if plan is None:
        return
    features = {item.feature for item in plan.items}
    seen: set[str] = set()
    for index, item in enumerate(ref.items):
        where: Path = (*here, "items", index, "feature")
        if item.feature in seen:
            yield ctx.marks.problem(where, f"feature {item.feature!r} is listed twice")
        elif item.feature not in features:
            listed = ", ".join(sorted(features)) or "none"
            yield ctx.marks.problem(
                where,
                f"plan {ref.plan!r} has no item for feature {item.feature!r} (its items: "
                f"{listed}): a custom version changes the included usage of the plan's items",
            )
        seen.add(item.feature)


def _entities(ctx: Context, entities: Sequence[EntitySpec], here: Path) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, entity in enumerate(entities):
        where: Path = (*here, "entities", index)
        if entity.id in seen:
            yield ctx.marks.problem((*where, "id"), f"entity {entity.id!r} is listed twice")
        seen.add(entity.id)
        if not ctx.known("features", entity.feature):
            message = unknown("feature", "features", entity.feature, ctx.spec.features)
            yield ctx.marks.problem((*where, "feature"), message)
        yield from _plan_refs(ctx, entity.plans, (*where, "plans"))


def _balances(ctx: Context, customer: CustomerSpec, here: Path) -> Iterator[Problem]:
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
        yield from _grants(ctx, balance, where)


def _grants(ctx: Context, balance: BalanceSpec, here: Path) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, grant in enumerate(balance.grants):
        if grant.id in seen:
            yield ctx.marks.problem(
                (*here, "grants", index, "id"),
                f"grant {grant.id!r} is listed twice: a grant id is given once",
            )
        seen.add(grant.id)


def _rewards(ctx: Context, rewards: Sequence[str], here: Path) -> Iterator[Problem]:
    for index, rid in enumerate(rewards):
        if not ctx.known("rewards", rid):
            message = unknown("reward", "rewards", rid, ctx.spec.rewards)
            yield ctx.marks.problem((*here, "rewards", index), message)
