"""`--target ADDRESS`: a plan limited to some objects and what they depend on.

A target names an object of the file or the database: `plan.pro`, `customer.user_1`,
`customer[billing@acme.com]`, `reward.launch20`, `feature.messages`, or one Stripe object
(`stripe_price.pro.base`). An object of the file takes with it the Stripe objects that mirror
it and, for a customer, its balances: `plan.pro` is also `stripe_product.pro`, its prices and
meters; `customer.user_1` is also `balance.user_1.*`, `stripe_customer.user_1` and its
subscriptions; `reward.launch20` is also its coupon and promotion codes. The selection is then
closed over dependencies (what each selected change references, and what must change before
it, as apply orders them), so the limited plan never applies half of something. Pure.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import replace

from autumn_sync.model.address import Address
from autumn_sync.model.stripe import AnyRecord
from autumn_sync.plan.changes import Change
from autumn_sync.plan.order import dependency_graph
from autumn_sync.plan.plan import ChangePlan


class TargetError(Exception):
    """A target names nothing the file or the database holds; the message says which."""


def partial_warning(targets: Sequence[str]) -> str:
    """The warning a limited plan carries."""
    return (
        f"this plan is partial: it is limited to {', '.join(targets)} and what "
        f"{'it depends' if len(targets) == 1 else 'they depend'} on (--target). Other changes "
        "the file asks for are left out; a plan without --target shows them."
    )


def select(plan: ChangePlan, targets: Sequence[str]) -> ChangePlan:
    """`plan` limited to `targets`, their parts and their dependencies, with the partial
    warning (raises `TargetError` for a target that names nothing)."""
    records = _records(plan)
    _check_known(targets, records)
    owners = {address: _owner(address) for address in records}
    chosen = {a for a, owner in owners.items() if a in targets or owner in targets}
    closure = _closure(chosen, _dependencies(plan.changes, records))
    return replace(
        plan,
        changes=tuple(c for c in plan.changes if c.address in closure),
        notes=tuple(n for n in plan.notes if n.address in closure),
        unchanged=tuple(r for r in plan.unchanged if r.address in closure),
        warnings=(*plan.warnings, partial_warning(targets)),
    )


def _records(plan: ChangePlan) -> dict[str, AnyRecord]:
    """Every object the plan knows by address: what changes, what the file holds unchanged,
    and the Stripe objects the file maps to."""
    found: dict[str, AnyRecord] = {r.address: r for r in plan.unchanged}
    if plan.stripe is not None:
        wanted = plan.stripe.desired
        for kind in (wanted.products, wanted.prices, wanted.meters, wanted.coupons):
            found.update(kind)
        for more in (wanted.promotion_codes, wanted.customers, wanted.subscriptions):
            found.update(more)
    found.update((c.address, c.record) for c in plan.changes)
    return found


def _check_known(targets: Iterable[str], records: dict[str, AnyRecord]) -> None:
    for target in targets:
        if target not in records:
            close = difflib.get_close_matches(target, list(records), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise TargetError(f"--target {target}: no such object in the file or the plan{hint}")


def _owner(address: str) -> str | None:
    """The object of the file a Stripe object or a balance is part of, if any."""
    owner = Address.parse(address).owner
    return str(owner) if owner is not None else None


def _dependencies(changes: Sequence[Change], records: dict[str, AnyRecord]) -> dict[str, set[str]]:
    """Address → what it needs: the records it references, what apply orders before it, and
    the object of the file it mirrors (a Stripe price is made from its plan's version)."""
    needs = {address: set(record.references()) for address, record in records.items()}
    for address, before in dependency_graph(changes).items():
        needs[address].update(before)
    for address in records:
        owner = _owner(address)
        if owner is not None and owner in records:
            needs[address].add(owner)
    return needs


def _closure(start: set[str], needs: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    stack = list(start)
    while stack:
        for dependency in needs.get(stack.pop(), ()):
            if dependency not in seen:
                seen.add(dependency)
                stack.append(dependency)
    return seen
