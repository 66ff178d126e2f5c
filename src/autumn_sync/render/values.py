"""How values and changes are spelled in the human-readable renderers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from autumn_sync.model.attributes import attributes, flatten
from autumn_sync.model.money import canonical
from autumn_sync.plan.changes import Archive, Change, Create, Delete, Update

ACTION_WORDS: dict[type[Change], str] = {
    Create: "create",
    Update: "update in place",
    Archive: "archive",
    Delete: "destroy",
}


def show(value: Any) -> str:
    """A value as the plan shows it: strings quoted, decimals exact, None as (none)."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(canonical(value), "f")
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def headline(change: Change) -> str:
    """`plan.pro: new version 3 (12 customers stay on version 2)` or `feature.sso (create)`."""
    if isinstance(change, Update) and change.new_version is not None:
        return f"{change.address}: {change.reason}"
    words = ACTION_WORDS[type(change)]
    if change.reason and not isinstance(change, Create):
        return f"{change.address} ({words}: {change.reason})"
    return f"{change.address} ({words})"


def detail_lines(change: Change) -> list[str]:
    """`path: value` lines for a create, `path: old → new` lines for an update."""
    if isinstance(change, Create) and change.after is not None:
        shown = flatten(attributes(change.after)).items()
        fields = {k: v for k, v in shown if v is not None and v is not False}
        width = max((len(k) for k in fields), default=0) + 1
        return [f"{path + ':':<{width}} {show(value)}" for path, value in fields.items()]
    width = max((len(f.path) for f in change.fields), default=0) + 1
    return [f"{f.path + ':':<{width}} {show(f.before)} → {show(f.after)}" for f in change.fields]


def summary_line(plan_summary: Any) -> str:
    s = plan_summary
    return (
        f"Plan: {s.add} to add, {s.change} to change, {s.archive} to archive, "
        f"{s.destroy} to destroy."
    )


NO_CHANGES = "No changes. The billing database matches the configuration."
