"""The plan as a terminal shows it, Terraform-style."""

from __future__ import annotations

from collections.abc import Set

from autumn_sync.plan.changes import Archive, Change, Create, Delete, Replace, Update
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.plan.registry import Registry
from autumn_sync.render.values import (
    app_customers_line,
    continuous_features,
    detail_lines,
    headline,
    no_changes,
    note_lines,
    summary_line,
)

_COLORS: Registry[type[Change], str] = Registry("change colours")
for _change, _color in (
    (Create, "\033[32m"),
    (Update, "\033[33m"),
    (Archive, "\033[35m"),
    (Replace, "\033[36m"),
    (Delete, "\033[31m"),
):
    _COLORS.add(_change, _color)
_RESET = "\033[0m"
_BOLD = "\033[1m"


def render_text(plan: ChangePlan, color: bool = False) -> str:
    """The plan in text; ANSI colours only when `color`."""
    lines = [f"Warning: {w}" for w in plan.warnings]
    if plan.empty:
        return (
            "\n".join([*lines, *note_lines(plan), *app_customers_line(plan), no_changes(plan)])
            + "\n"
        )
    if lines:
        lines.append("")
    lines += ["autumn-sync will perform the following actions:", ""]
    continuous = continuous_features(plan)
    for change in plan.changes:
        lines += _change_lines(change, color, continuous)
    lines += note_lines(plan)
    lines += app_customers_line(plan)
    lines.append(_paint(summary_line(plan.summary()), _BOLD, color))
    return "\n".join(lines) + "\n"


def _change_lines(change: Change, color: bool, continuous: Set[str]) -> list[str]:
    symbol = _paint(change.symbol, _COLORS[type(change)], color)
    head = f"  {symbol} {_paint(headline(change), _BOLD, color)}"
    return [head, *(f"      {line}" for line in detail_lines(change, continuous)), ""]


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text
