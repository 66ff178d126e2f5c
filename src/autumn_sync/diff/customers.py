"""Comparators for the customers the file manages and the balances it declares. Pure.

A desired customer is matched to a row of the database by its key (how the file named it
when it was applied), else by id, else by email (a pre-provisioned customer the application
has since bound an id to, or the application's own customer the file now takes over).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from autumn_sync.diff.fields import field_changes
from autumn_sync.model.customers import Balance, Customer
from autumn_sync.model.state import State
from autumn_sync.plan.changes import Change, Create, Delete, Update

ADOPT = "the application created it: the file manages it from now on"
REMOVED = (
    "removed from the file: its plans end (at period end in Stripe); the Stripe customer stays"
)
UNDECLARED = "no longer declared: the allowance and grants go, usage stays"


def match_customers(existing: State, desired: State) -> dict[str, Customer]:
    """Desired key → the existing customer it is (each existing customer matched once)."""
    by_id = {c.customer_id: c for c in existing.customers.values() if c.customer_id}
    by_email: dict[str, Customer] = {}
    for customer in sorted(existing.customers.values(), key=lambda c: not c.managed):
        if customer.email:
            by_email.setdefault(customer.email, customer)
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
    old = by_email.get(new.email) if new.email else None
    if old is not None and (new.customer_id is None or old.customer_id is None):
        return old
    return None


def diff_customers(existing: State, desired: State) -> Iterator[Change]:
    """Creates, updates (and adoptions) and destroys of customers, then their balances."""
    matches = match_customers(existing, desired)
    for key in sorted(desired.customers):
        yield from _customer(matches.get(key), desired.customers[key])
    matched = {c.key for c in matches.values()}
    for key in sorted(existing.customers):
        old = existing.customers[key]
        if old.managed and key not in matched:
            yield Delete(old.address, old, None, reason=REMOVED)
    yield from _balances(existing, desired, matches)


def _customer(old: Customer | None, new: Customer) -> Iterator[Change]:
    if old is None:
        yield Create(new.address, None, new)
        return
    if new.customer_id is None and old.customer_id is not None:
        new = replace(new, customer_id=old.customer_id)  # bound by the application
    new = replace(new, internal_id=old.internal_id, stripe_id=old.stripe_id)
    fields = field_changes(old, new)
    if fields or not old.managed:
        yield Update(new.address, old, new, fields, reason=None if old.managed else ADOPT)


def _balances(existing: State, desired: State, matches: Mapping[str, Customer]) -> Iterator[Change]:
    """Balances by the desired customer's key; a balance no longer declared is emptied (its
    usage stays), unless its customer goes altogether."""
    rekey = {old.key: key for key, old in matches.items()}
    current: dict[str, Balance] = {}
    for balance in existing.balances.values():
        key = rekey.get(balance.customer)
        if key is not None:
            moved = replace(balance, customer=key)
            current[moved.address] = moved
    for address in sorted(set(current) | set(desired.balances)):
        old, new = current.get(address), desired.balances.get(address)
        if old is None and new is not None:
            yield Create(new.address, None, new)
        elif old is not None and new is None:
            empty = Balance(customer=old.customer, feature=old.feature)
            yield Update(old.address, old, empty, field_changes(old, empty), reason=UNDECLARED)
        elif old is not None and new is not None:
            fields = field_changes(old, new)
            if fields:
                yield Update(new.address, old, new, fields)
