"""Dependency order of changes (graphlib), deterministic for equal inputs.

Creates and updates come after the changes of what they reference (a plan after its
features); removals come after the changes that stop referencing the removed record (a feature
is deleted only once no plan change still needs it).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from graphlib import TopologicalSorter

from autumn_sync.model.address import Address
from autumn_sync.plan.changes import Archive, Change, Delete, Update


def _sort_key(change: Change) -> tuple[int, int, str]:
    removal = isinstance(change, Delete | Archive)
    rank = change.kind.rank
    return (1 if removal else 0, -rank if removal else rank, change.address)


def dependency_graph(changes: Iterable[Change]) -> dict[str, list[str]]:
    """Address of each change → the addresses of the changes that must happen before it."""
    by_address = {change.address: change for change in changes}
    referrers = _referrers(by_address)
    released = _released(by_address)
    return {
        address: [
            *_dependencies(change, by_address, referrers),
            *_claim_dependencies(change, released),
        ]
        for address, change in by_address.items()
    }


def _claims(record: object | None) -> tuple[str, ...]:
    claims = getattr(record, "claims", None)
    return tuple(claims()) if callable(claims) else ()


def _released(by_address: dict[str, Change]) -> dict[str, list[str]]:
    """Unique name (a promotion code's text) → the removals that free it."""
    released: dict[str, list[str]] = defaultdict(list)
    for change in by_address.values():
        if isinstance(change, Delete | Archive):
            for claim in _claims(change.before):
                released[claim].append(change.address)
    return released


def _claim_dependencies(change: Change, released: dict[str, list[str]]) -> list[str]:
    """A change that takes a unique name waits for the removal that frees it (a code moving
    from one reward to another: the old code is deactivated before the new one is made)."""
    if isinstance(change, Delete | Archive):
        return []
    return [
        other
        for claim in _claims(change.after)
        for other in released.get(claim, ())
        if other != change.address
    ]


def order(changes: Iterable[Change]) -> tuple[Change, ...]:
    """`changes` sorted so that every change follows those it depends on."""
    by_address = {change.address: change for change in changes}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for address, dependencies in dependency_graph(by_address.values()).items():
        sorter.add(address, *dependencies)
    sorter.prepare()
    ready: list[tuple[tuple[int, int, str], str]] = []
    ordered: list[Change] = []
    while sorter.is_active():
        for address in sorter.get_ready():
            heapq.heappush(ready, (_sort_key(by_address[address]), address))
        _, address = heapq.heappop(ready)
        ordered.append(by_address[address])
        sorter.done(address)
    return tuple(ordered)


def _referrers(by_address: dict[str, Change]) -> dict[str, list[str]]:
    """Address → the changes whose `before` references it, in `by_address` order (built once,
    so ordering n removals stays linear rather than n × changes)."""
    referrers: dict[str, list[str]] = defaultdict(list)
    for change in by_address.values():
        if change.before is not None:
            for ref in dict.fromkeys(change.before.references()):
                referrers[ref].append(change.address)
    return referrers


def _keeps(change: Change, address: str) -> bool:
    """Whether `change` leaves its record still referencing `address`."""
    return change.after is not None and address in change.after.references()


def _dependencies(
    change: Change, by_address: dict[str, Change], referrers: dict[str, list[str]]
) -> list[str]:
    if isinstance(change, Delete | Archive):
        # After whatever stops referencing it changed, and after updates of what it
        # references (a price is archived once its product's default price has moved off
        # it). A change that still references it afterwards need not come first (a customer
        # keeping an archived plan until its paid period ends).
        before = [
            other
            for other in referrers.get(change.address, ())
            if other != change.address and not _keeps(by_address[other], change.address)
        ]
        older = Address.parse(change.address)
        if older.instance is not None and str(older.base) in by_address:
            # an older price of an address: after the change of the address's current price
            before.append(str(older.base))
        assert change.before is not None
        updated = [
            ref
            for ref in change.before.references()
            if isinstance(by_address.get(ref), Update) and ref != change.address
        ]
        return [*before, *updated]
    assert change.after is not None
    return [ref for ref in change.after.references() if ref in by_address]
