"""Field-level differences between two records of one kind, by deepdiff.

The records' comparable data (`model.attributes`) is compared with DeepDiff (numbers by
value: `Decimal("20")` equals `Decimal("20.00")` and `20`; lists by position), but for the
records there is one of per customer, compared leaf by leaf for speed (see `PER_CUSTOMER`).
What is found is turned into `FieldChange`s on the leaves, in the project's path notation:
fields by name (`price.amount`), maps keyed by id in brackets (`items[messages].included`),
lists by index (`tiers[1].up_to`), and sets of ids or codes (`plans`, `promo_codes`, …) as one
value, their order meaning nothing. A part only one side has shows each of its leaves against
`None`. The changes come in the record's own order: fields as declared, maps by id, lists by
index (a field only one side has takes its place among its siblings, the new side's order
first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff

from autumn_sync.model.attributes import (
    Steps,
    attributes,
    is_whole,
    keyed_by_id,
    leaves,
    path,
)
from autumn_sync.model.customers import Balance, Customer
from autumn_sync.model.stripe import AnyRecord, StripeCustomer, StripeSubscription
from autumn_sync.plan.changes import FieldChange

_ABSENT = object()  # a leaf one side does not have


def field_changes(before: AnyRecord, after: AnyRecord) -> tuple[FieldChange, ...]:
    """Field-level differences, in the record's own field order: by deepdiff, but for the
    records there is one of per customer (see `compare_leaves`)."""
    old, new = attributes(before), attributes(after)
    if old == new:  # the common case: no diff to run
        return ()
    per_customer = isinstance(before, PER_CUSTOMER)
    changed = compare_leaves(old, new) if per_customer else compare_deep(old, new)
    ranks = _ranks(new, old)
    ordered = sorted(changed, key=lambda steps: _sort_key(steps, ranks))
    return tuple(FieldChange(path(s), changed[s][0], changed[s][1]) for s in ordered)


# Records there is one of (or several of) per customer: a plan may change thousands at once,
# and DeepDiff takes about a millisecond a call. For them it would take half of a plan that
# changes every customer's grants at 10,000 customers (benchmarks/field_diff.py; for the
# catalog's records it takes under 10 %): their differences are found by comparing leaves,
# which gives the same changes (a property test holds the two alike).
PER_CUSTOMER = (Customer, Balance, StripeCustomer, StripeSubscription)

Changed = dict[Steps, tuple[Any, Any]]


def compare_deep(old: Any, new: Any) -> Changed:
    """The leaves that differ between two records' data, each as (old, new): DeepDiff (numbers
    by value) on each field whose nested value differs; a plain field that differs is a leaf
    as it is (a renamed plan runs no DeepDiff at all)."""
    changed: Changed = {}
    for name in dict.fromkeys([*old, *new]):
        before, after = old.get(name, _ABSENT), new.get(name, _ABSENT)
        if before == after:
            continue
        if not (isinstance(before, dict | list) and isinstance(after, dict | list)):
            changed.update(_leaf_changes((name,), before, after))
            continue
        report = DeepDiff(
            before,
            after,
            view="tree",
            ignore_numeric_type_changes=True,
            zip_ordered_iterables=True,  # lists by position, as paths index them (`tiers[1]`)
        )
        for levels in report.values():
            for level in levels:
                steps = _whole((name, *level.path(output_format="list")), old, new)
                changed.update(_leaf_changes(steps, _at(old, steps), _at(new, steps)))
    return changed


def compare_leaves(old: Any, new: Any) -> Changed:
    """The leaves that differ between two records' data, found leaf by leaf."""
    return _leaf_changes((), old, new)


def _whole(steps: Steps, old: Any, new: Any) -> Steps:
    """`steps`, or its prefix that names a set (a difference inside `plans` is `plans`)."""
    for end in range(1, len(steps) + 1):
        prefix = steps[:end]
        shown = path(prefix)
        if is_whole(shown, _at(old, prefix)) or is_whole(shown, _at(new, prefix)):
            return prefix
    return steps


def _at(data: Any, steps: Steps) -> Any:
    for step in steps:
        if isinstance(data, Mapping) and step in data:
            data = data[step]
        elif isinstance(data, list) and isinstance(step, int) and step < len(data):
            data = data[step]
        else:
            return _ABSENT
    return data


def _leaf_changes(steps: Steps, old: Any, new: Any) -> Changed:
    """The leaves under `steps` whose values differ, each as (old, new); `None` for a leaf
    one side does not have."""
    before = dict(leaves(old, steps)) if old is not _ABSENT else {}
    after = dict(leaves(new, steps)) if new is not _ABSENT else {}
    return {
        at: (before.get(at), after.get(at))
        for at in dict.fromkeys([*before, *after])
        if before.get(at) != after.get(at)
    }


Ranks = dict[tuple[Steps, str], int]


def _ranks(*sides: Any) -> Ranks:
    """The place of each field among its siblings, in the order the sides declare them."""
    ranks: Ranks = {}
    for side in sides:
        _rank(side, (), ranks)
    return ranks


def _rank(data: Any, steps: Steps, ranks: Ranks) -> None:
    if isinstance(data, Mapping):
        keyed = keyed_by_id(path(steps))
        for key, value in data.items():
            if not keyed:
                ranks.setdefault((steps, key), len(ranks))
            _rank(value, (*steps, key), ranks)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _rank(value, (*steps, index), ranks)


def _sort_key(steps: Steps, ranks: Ranks) -> tuple[tuple[int, str], ...]:
    key = []
    for end, step in enumerate(steps):
        parent = steps[:end]
        if isinstance(step, int):
            key.append((step, ""))
        elif keyed_by_id(path(parent)):
            key.append((0, step))
        else:
            key.append((ranks.get((parent, step), len(ranks)), ""))
    return tuple(key)
