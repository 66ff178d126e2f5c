"""Comparators per kind: `existing` (the database) against `desired` (the file).

Each comparator returns the changes for one kind; `diff` orders them into a `ChangePlan`.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from autumn_sync.database.diff.customers import diff_customers
from autumn_sync.model.address import Kind, named
from autumn_sync.model.attributes import CONTENT_FIELDS, attributes
from autumn_sync.model.customers import Lookup
from autumn_sync.model.records import Feature, Plan, Reward
from autumn_sync.model.state import State
from autumn_sync.plan.changes import Archive, Change, Create, Delete, FieldChange, Update
from autumn_sync.plan.fields import field_changes
from autumn_sync.plan.order import order
from autumn_sync.plan.plan import ChangePlan, fingerprint

R = TypeVar("R", Feature, Plan, Reward)


class PlanConflict(Exception):
    """The file asks for something the database cannot do as it stands (a feature removed
    while customers' plan versions still use it). Carries every conflict."""

    def __init__(self, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        super().__init__("\n".join(conflicts))


def diff(existing: State, desired: State) -> ChangePlan:
    """The ordered changes that turn `existing` into `desired`."""
    _check_conflicts(existing, desired)
    changes: list[Change] = [
        *_settings(existing, desired),
        *_compare(existing.features, desired.features, _delete),
        *_plans(existing.plans, desired.plans),
        *_compare(existing.rewards, desired.rewards, _delete),
        *diff_customers(existing, desired),
    ]
    changed = {change.address for change in changes}
    unchanged = tuple(r for r in desired.records() if r.address not in changed)
    return ChangePlan(
        changes=order(changes),
        state_fingerprint=fingerprint(existing),
        warnings=tuple(_warnings(existing, desired)),
        unchanged=unchanged,
        lookup=Lookup.of(desired.customers.values()),
        app_customers=existing.app_customers,
    )


def _warnings(existing: State, desired: State) -> Iterator[str]:
    """What the plan does that its changes alone do not make plain."""
    old, new = existing.settings, desired.settings
    if old is not None and new is not None and old.currency != new.currency:
        before, after = old.currency.upper(), new.currency.upper()
        yield (
            f"The currency changes from {before} to {after} and amounts are not converted:"
            f" every price, including those of plan versions customers are on, is read in {after}"
        )


def _settings(existing: State, desired: State) -> Iterator[Change]:
    if desired.settings is None or existing.settings == desired.settings:
        return
    if existing.settings is None:
        yield Create("settings", None, desired.settings)
    else:
        fields = field_changes(existing.settings, desired.settings)
        yield Update("settings", existing.settings, desired.settings, fields)


def _compare(
    existing: Mapping[str, R],
    desired: Mapping[str, R],
    removal: Callable[[R], Change],
) -> Iterator[Change]:
    for key in sorted(set(existing) | set(desired)):
        old, new = existing.get(key), desired.get(key)
        if old is None and new is not None:
            yield Create(new.address, None, new)
        elif new is None and old is not None:
            yield removal(old)
        elif old is not None and new is not None:
            fields = field_changes(old, new)
            if fields:
                yield Update(new.address, old, new, fields)


def _delete(record: Feature | Reward) -> Change:
    return Delete(record.address, record, None)


def _plans(existing: Mapping[str, Plan], desired: Mapping[str, Plan]) -> Iterator[Change]:
    for key in sorted(set(existing) | set(desired)):
        old, new = existing.get(key), desired.get(key)
        if old is None and new is not None:
            yield Create(new.address, None, new, reason="version 1")
        elif new is None and old is not None:
            yield from _plan_removal(old)
        elif old is not None and new is not None:
            yield from _plan_update(old, new)


def _plan_removal(plan: Plan) -> Iterator[Change]:
    if plan.archived:
        return
    total = plan.customers_total
    if total:
        yield Archive(
            plan.address, plan, None, reason=f"{_customers(total)} {_verb(total, 'stay')} on it"
        )
    else:
        yield Delete(plan.address, plan, None, reason="no customers on any version")


def _plan_update(old: Plan, new: Plan) -> Iterator[Change]:
    fields = field_changes(old, new)
    if old.archived:
        fields = (FieldChange("archived", True, False), *fields)
    content_changed = _content(old) != _content(new)
    if not content_changed and new.migrate_customers and _on_older_versions(old):
        yield _migrate(old, new, fields)
        return
    if not fields:
        return
    unarchive = "unarchive" if old.archived else None
    total = old.customers_total if new.migrate_customers else old.customers
    if not content_changed or not total or old.version is None:
        yield Update(new.address, old, new, fields, reason=unarchive)
        return
    version = old.version + 1
    if new.migrate_customers:
        reason = f"new version {version} ({_customers(total)} {_verb(total, 'move')} to it)"
    else:
        reason = (
            f"new version {version} ({_customers(old.customers)} {_verb(old.customers, 'stay')} on"
            f" version {old.version})"
        )
    if unarchive:
        reason = f"{unarchive}, {reason}"
    yield Update(
        new.address,
        old,
        new,
        fields,
        reason=reason,
        new_version=version,
        customers=total,
        moving=new.migrate_customers,
    )


def _on_older_versions(plan: Plan) -> int:
    """How many customers are on versions before the plan's current one."""
    return sum(n for v, n in plan.versions_in_use if plan.version is not None and v < plan.version)


def _migrate(old: Plan, new: Plan, fields: tuple[FieldChange, ...]) -> Update:
    """`migrate_customers: true` with customers still on older versions (the flag just set,
    or versions made before it): they move to the current version, which stays as it is."""
    moved = _on_older_versions(old)
    older = sorted(v for v, n in old.versions_in_use if n and v < (old.version or 0))
    listed = ", ".join(str(v) for v in older)
    reason = (
        f"{_customers(moved)} on version{'s' if len(older) > 1 else ''} {listed}"
        f" {_verb(moved, 'move')} to version {old.version}"
    )
    if old.archived:
        reason = f"unarchive, {reason}"
    return Update(new.address, old, new, fields, reason=reason, customers=moved, moving=True)


def _content(plan: Plan) -> dict[str, object]:
    """What of a plan makes a version (its price, trial and items), as compared."""
    data = attributes(plan)
    return {name: data[name] for name in CONTENT_FIELDS}


def _verb(count: int, verb: str) -> str:
    """`stays` for one customer, `stay` for several."""
    return f"{verb}s" if count == 1 else verb


def _customers(count: int) -> str:
    return f"{count} customer{'s' if count != 1 else ''}"


def _check_conflicts(existing: State, desired: State) -> None:
    """A feature cannot go while a plan version that customers are on still uses it."""
    conflicts = []
    removed = sorted(set(existing.features) - set(desired.features))
    for feature in removed:
        for plan_id, version, count in existing.feature_users.get(feature, ()):
            conflicts.append(
                f"{named(Kind.FEATURE, feature)} cannot be removed: {named(Kind.PLAN, plan_id)} "
                f"version {version} uses it"
                f" and {_customers(count)} {'is' if count == 1 else 'are'} on that version"
            )
    if conflicts:
        raise PlanConflict(conflicts)
