"""Comparators for the customers the file manages and the balances it declares. Pure.

A desired customer is matched to a row of the database by its key (how the file named it
when it was applied), else by id, else by email (a pre-provisioned customer the application
has since bound an id to, or the application's own customer the file now takes over).

The reason of a customer's update says what happens to its plans in the words of billing
(`upgrade pro → business`, `adds extra_credits`, `custom version of business`); the fields
say the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date

from autumn_sync.database.diff.schedule import Cancellations, scheduled, yearly
from autumn_sync.model.address import key_is_email
from autumn_sync.model.customers import CANCELED, Balance, Customer, CustomerPlan, Entity, declared
from autumn_sync.model.records import Plan
from autumn_sync.model.state import State
from autumn_sync.plan.changes import Change, Create, Delete, Update
from autumn_sync.plan.fields import field_changes

ADOPT = "the application created it: the file manages it from now on"
PRE_PROVISIONED = (
    "pre-provisioned: known by its email until the application's first get_or_create gives it an id"
)
REMOVED = (
    "removed from the file: its plans, entities and balances go (usage too); in Stripe its "
    "subscriptions end at period end and the customer stays"
)
WITH_CUSTOMER = "goes with its customer"
UNDECLARED = "no longer declared: the allowance and grants go, usage stays"


def match_customers(existing: State, desired: State) -> dict[str, Customer]:
    """Desired key → the existing customer it is (each existing customer matched once)."""
    by_id = {c.customer_id: c for c in existing.customers.values() if c.customer_id}
    by_email: dict[str, Customer] = {}
    for customer in sorted(existing.customers.values(), key=lambda c: not c.managed):
        if customer.email:
            by_email.setdefault(customer.email.lower(), customer)
    taken: set[str] = set()
    matches: dict[str, Customer] = {}
    for key in sorted(desired.customers):
        new = desired.customers[key]
        old = _candidate(existing.customers.get(key), by_id, by_email, new)
        if old is not None and old.key not in taken:
            matches[key] = old
            taken.add(old.key)
    return matches


def _candidate(
    same_key: Customer | None,
    by_id: Mapping[str, Customer],
    by_email: Mapping[str, Customer],
    new: Customer,
) -> Customer | None:
    if same_key is not None:
        return same_key
    if new.customer_id and new.customer_id in by_id:
        return by_id[new.customer_id]
    old = by_email.get(new.email.lower()) if new.email else None
    if old is not None and (new.customer_id is None or old.customer_id is None):
        return old
    return None


def dated(
    existing: State, desired: State, today: date, cancelled: Cancellations | None = None
) -> State:
    """`desired` with the dates its customers' plans begin and end in the database
    (`diff.schedule`), given the customers `existing` has and, when Stripe was read, which
    subscriptions someone cancelled there (`cancelled`): what the diff compares and the
    projection starts from."""
    matches = match_customers(existing, desired)
    catalog = {**existing.plans, **desired.plans}
    customers = {
        key: scheduled(matches.get(key), customer, catalog, today, cancelled)
        for key, customer in desired.customers.items()
    }
    return replace(desired, customers=customers)


def diff_customers(existing: State, desired: State) -> Iterator[Change]:
    """Creates, updates (and adoptions) and destroys of customers, then their balances."""
    matches = match_customers(existing, desired)
    catalog = {**existing.plans, **desired.plans}
    for key in sorted(desired.customers):
        yield from _customer(matches.get(key), desired.customers[key], catalog)
    matched = {c.key for c in matches.values()}
    going = {key for key, c in existing.customers.items() if c.managed and key not in matched}
    for key in sorted(going):
        yield Delete(existing.customers[key].address, existing.customers[key], None, reason=REMOVED)
    yield from _balances(existing, desired, matches, going)


def _customer(old: Customer | None, new: Customer, catalog: Mapping[str, Plan]) -> Iterator[Change]:
    if old is None:
        reason = PRE_PROVISIONED if new.customer_id is None else None
        yield Create(new.address, None, new, reason=reason)
        return
    if new.customer_id is None and old.customer_id is not None:
        new = replace(new, customer_id=old.customer_id)  # bound by the application
    if old.managed and old.key == new.key and declared(old) == declared(new):
        return  # the common case, quickly
    new = replace(new, internal_id=old.internal_id, stripe_id=old.stripe_id)
    changes = field_changes(old, new)
    if changes or not old.managed or old.key != new.key:
        parts = [] if old.managed else [ADOPT]
        parts += _renamed(old, new) + plan_moves(old, new, catalog)
        yield Update(new.address, old, new, changes, reason="; ".join(parts) or None)


def _renamed(old: Customer, new: Customer) -> list[str]:
    """The file names a customer it manages another way: by the id the application bound to
    it, or by its email (the id stays: an id is never taken back)."""
    if not old.managed or old.key == new.key:
        return []
    how = "email" if key_is_email(new.key) else "id"
    return [f"the file names it by its {how} {new.label} now (was {old.label})"]


# --- what an update does to a customer's plans --------------------------------------------------


def plan_moves(old: Customer, new: Customer, catalog: Mapping[str, Plan]) -> list[str]:
    """`upgrade pro → business`, `adds extra_credits`, `cancels pro`, `custom version of
    business`, for the customer and (prefixed by their id) for its entities."""
    moves = _moves(old.plans, new.plans, catalog)
    old_entities = {e.id: e for e in old.entities}
    new_entities = {e.id: e for e in new.entities}
    for eid in sorted(set(old_entities) | set(new_entities)):
        before = old_entities.get(eid, Entity(eid, ""))
        after = new_entities.get(eid, Entity(eid, ""))
        moves += [f"{eid}: {m}" for m in _moves(before.plans, after.plans, catalog)]
    return moves


def _moves(
    before: tuple[CustomerPlan, ...], after: tuple[CustomerPlan, ...], catalog: Mapping[str, Plan]
) -> list[str]:
    old = {p.plan: p for p in before}
    leaving = {p.plan: p.ends for p in after if p.ends is not None and p.status != CANCELED}
    staying = {p.plan for p in after if p.plan not in leaving}
    gone = [pid for pid in old if pid not in staying]
    moves = []
    for plan in after:  # sorted by plan id
        if plan.plan in old:
            moves += _terms_move(old[plan.plan], plan)
            continue
        replaced = _same_group(plan.plan, gone, catalog)
        custom = " (custom version)" if plan.custom else ""
        if replaced is None:
            starts = f" (starts {plan.begins})" if plan.begins is not None else ""
            moves.append(f"adds {plan.plan}{custom}{starts}")
            continue
        gone.remove(replaced)
        word = _direction(old[replaced], plan, catalog)
        when = f" on {leaving[replaced]}" if replaced in leaving else ""
        moves.append(f"{word} {replaced} → {plan.plan}{custom}{when}")
    return moves + [_gone(old, pid) for pid in sorted(gone) if pid not in leaving]


def _gone(old: Mapping[str, CustomerPlan], pid: str) -> str:
    """`cancels pro`; a plan a pending downgrade was to begin: the downgrade is called off;
    a plan whose end passed: it ended."""
    plan = old[pid]
    if plan.begins is not None and any(o.ends == plan.begins for o in old.values()):
        return f"calls off the downgrade to {pid} on {plan.begins}"
    if plan.ends is not None:
        return f"{pid} ended on {plan.ends}"
    return f"cancels {pid}"


def _terms_move(old: CustomerPlan, new: CustomerPlan) -> list[str]:
    """A plan the customer stays on whose custom version (price, items) changes, or that
    was cancelled in Stripe (or is active again)."""
    moves = []
    if new.status == CANCELED and (old.status != CANCELED or old.ends != new.ends):
        moves.append(f"{new.plan} ends {new.ends} (cancelled in Stripe)")
    elif old.status == CANCELED and new.status != CANCELED:
        moves.append(f"{new.plan} active again (subscribed again in Stripe)")
    if _custom_terms(old) == _custom_terms(new):
        return moves
    if new.custom:
        return [*moves, f"custom version of {new.plan}"]
    return [*moves, f"{new.plan} as in the catalog (custom version dropped)"]


def _custom_terms(plan: CustomerPlan) -> tuple[object, ...]:
    return (plan.price, plan.items)


def _same_group(pid: str, candidates: list[str], catalog: Mapping[str, Plan]) -> str | None:
    """The plan among `candidates` that `pid` replaces: one of its group (not an add-on)."""
    plan = catalog.get(pid)
    if plan is None or plan.group is None or plan.add_on:
        return None
    for other in sorted(candidates):
        found = catalog.get(other)
        if found is not None and found.group == plan.group and not found.add_on:
            return other
    return None


def _direction(old: CustomerPlan, new: CustomerPlan, catalog: Mapping[str, Plan]) -> str:
    """`upgrade` to a plan that costs more a year (the customer's own price if it has one),
    `downgrade` to one that costs less, `switch` between equals."""
    before, after = yearly(old, catalog), yearly(new, catalog)
    if after > before:
        return "upgrade"
    return "downgrade" if after < before else "switch"


# --- balances -----------------------------------------------------------------------------------


def _balances(
    existing: State, desired: State, matches: Mapping[str, Customer], going: set[str]
) -> Iterator[Change]:
    """Balances by the desired customer's key; a balance no longer declared is emptied (its
    usage stays), and goes with its customer when the customer goes. The application's
    customers the file does not take over keep theirs, untouched."""
    rekey = {old.key: key for key, old in matches.items()}
    current: dict[str, Balance] = {}
    for balance in existing.balances.values():
        key = rekey.get(balance.customer)
        if key is None:
            if balance.customer in going:
                yield Delete(balance.address, balance, None, reason=WITH_CUSTOMER)
            continue
        moved = replace(balance, customer=key) if key != balance.customer else balance
        current[moved.address] = moved
    wanted = {a: b for a, b in desired.balances.items() if b.declared}  # nothing: no balance
    for address in sorted(set(current) | set(wanted)):
        old, new = current.get(address), wanted.get(address)
        if old is None and new is not None:
            yield Create(new.address, None, new)
        elif old is not None and new is None:
            empty = Balance(customer=old.customer, feature=old.feature)
            yield Update(old.address, old, empty, field_changes(old, empty), reason=UNDECLARED)
        elif old is not None and new is not None and old != new:
            changes = field_changes(old, new)
            if changes:
                yield Update(new.address, old, new, changes, reason=grant_moves(old, new))


def grant_moves(old: Balance, new: Balance) -> str | None:
    """`grants: welcome given, onboarding changed, promo taken back` (None: same grants)."""
    before = {g.id: g for g in old.grants}
    after = {g.id: g for g in new.grants}
    moves = [
        f"{gid} given" if gid not in before else f"{gid} changed"
        for gid in sorted(after)
        if before.get(gid) != after[gid]
    ]
    moves += [f"{gid} taken back" for gid in sorted(set(before) - set(after))]
    return f"grants: {', '.join(moves)}" if moves else None
