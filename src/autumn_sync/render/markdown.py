"""The plan as a pull-request comment: a headline, removals called out first, then each
change in a collapsible section."""

from __future__ import annotations

from collections.abc import Sequence

from autumn_sync.plan.changes import Archive, Change, Delete
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.render.values import (
    action_text,
    app_customers_line,
    detail_lines,
    no_changes,
    summary_line,
)


def render_markdown(plan: ChangePlan) -> str:
    """GitHub-flavoured Markdown for a pull-request comment."""
    lines = ["### autumn-sync plan", ""]
    lines += [f"> [!WARNING]\n> {w}\n" for w in plan.warnings]
    if plan.empty:
        return "\n".join([*lines, *_notes(plan), *_apps(plan), no_changes(plan)]) + "\n"
    lines += [f"**{summary_line(plan.summary())}**", "", *_apps(plan)]
    removals = [c for c in plan.changes if isinstance(c, Delete | Archive)]
    if removals:
        lines += _removals(removals)
    lines += ["| | Address | Action |", "|---|---|---|"]
    lines += [f"| `{c.symbol}` | `{c.address}` | {action_text(c)} |" for c in plan.changes]
    lines.append("")
    for change in plan.changes:
        lines += _details(change)
    lines += _notes(plan)
    return "\n".join(lines) + "\n"


def _apps(plan: ChangePlan) -> list[str]:
    line = app_customers_line(plan)
    return [*line, ""] if line else []


def _notes(plan: ChangePlan) -> list[str]:
    if not plan.notes:
        return []
    lines = ["Not changed yet (nothing to apply until then):", ""]
    lines += [f"- `{note.address}`: {note.text}" for note in plan.notes]
    return [*lines, ""]


def _removals(removals: Sequence[Change]) -> list[str]:
    lines = ["> [!CAUTION]", "> This plan removes or archives:"]
    lines += [f"> - `{c.address}` ({action_text(c)})" for c in removals]
    return [*lines, ""]


def _details(change: Change) -> list[str]:
    body = detail_lines(change)
    if not body:
        return []
    return [
        f"<details><summary><code>{change.symbol} {change.address}</code></summary>",
        "",
        "```",
        *body,
        "```",
        "",
        "</details>",
        "",
    ]
