"""Dependency order of changes (graphlib), deterministic for equal inputs.

Creates and updates come after the changes of what they reference (a plan after its
features); removals come after the changes of what referenced the removed record (a feature is
deleted only once no plan change still needs it).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from graphlib import TopologicalSorter

from autumn_sync.plan.changes import Archive, Change, Delete

KIND_RANK = {"settings": 0, "feature": 1, "plan": 2, "reward": 3}


def _sort_key(change: Change) -> tuple[int, int, str]:
    removal = isinstance(change, Delete | Archive)
    rank = KIND_RANK.get(change.kind, 9)
    return (1 if removal else 0, -rank if removal else rank, change.address)


def order(changes: Iterable[Change]) -> tuple[Change, ...]:
    """`changes` sorted so that every change follows those it depends on."""
    by_address = {change.address: change for change in changes}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for change in by_address.values():
        sorter.add(change.address, *_dependencies(change, by_address))
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


def _dependencies(change: Change, by_address: dict[str, Change]) -> list[str]:
    if isinstance(change, Delete | Archive):
        return [
            other.address
            for other in by_address.values()
            if other.before is not None
            and other is not change
            and change.address in other.before.references()
        ]
    assert change.after is not None
    return [ref for ref in change.after.references() if ref in by_address]
