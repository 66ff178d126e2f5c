"""The plan as a pull-request comment (GitHub-flavoured Markdown).

The comment opens with a hidden marker (a CI job finds and updates its one comment by it),
a headline with the summary, the plan's warnings, and the destroys and archives called out in
a caution block. Then come the billing database's changes and Stripe's, each as a table and
then one collapsible section per change with its field-level detail, and last the notes.

GitHub refuses a comment body of 65,536 characters or more, so a long plan is cut, at line
boundaries only: the collapsible details go first (the tables stay: they are the review
summary), then, if even the tables are too long, the end of the tables. The cut body ends
with a note that says what is missing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Container, Sequence, Set
from dataclasses import dataclass

from autumn_sync.model.address import Target
from autumn_sync.plan.changes import Archive, Change, Delete, Replace
from autumn_sync.plan.plan import ChangePlan, resubscribes
from autumn_sync.render.values import (
    action_text,
    app_customers_line,
    continuous_features,
    detail_lines,
    no_changes,
)

MARKER = "<!-- autumn-sync-plan -->"
MAX_BODY = 65_536  # GitHub refuses a comment body this long or longer
NOT_CONNECTED = "Stripe is not connected: this plan covers the billing database only."
RUN_FULL = "Run `autumn-sync plan` for the full plan."
DETAILED = "shown in detail"
LISTED = "listed, none in detail"

_TABLE_HEAD = ("| | Address | Action |", "|---|---|---|")
_INLINE_SPECIAL = re.compile(r"[\\`*<>\[\]|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class _Block:
    """The collapsible section of one change; `removal` for a destroy or an archive (their
    details are kept first when a long plan is cut)."""

    lines: tuple[str, ...]
    removal: bool


@dataclass(frozen=True)
class _Section:
    """The changes of one side (the billing database or Stripe): a heading and a table,
    then a collapsible section for each change that has details."""

    heading: tuple[str, ...]
    rows: tuple[str, ...]
    details: tuple[_Block, ...]

    def table(self) -> list[str]:
        return [*self.heading, *self.rows, ""]


@dataclass(frozen=True)
class _Layout:
    """The comment in parts: `head` (always kept), the sections, and `tail` (the notes)."""

    head: tuple[str, ...]
    sections: tuple[_Section, ...]
    tail: tuple[str, ...]

    @property
    def blocks(self) -> list[_Block]:
        """Every collapsible section, in order."""
        return [block for section in self.sections for block in section.details]

    @property
    def rows(self) -> int:
        return sum(len(s.rows) for s in self.sections)

    def lines(self, shown: Container[int]) -> list[str]:
        """Every line, with the collapsible sections numbered in `shown` only."""
        out, index = list(self.head), 0
        for section in self.sections:
            out += section.table()
            for block in section.details:
                out += block.lines if index in shown else ()
                index += 1
        return out + list(self.tail)

    def skeleton(self) -> list[tuple[str, bool]]:
        """The lines without any details, each tagged True when it is a row of a table."""
        tagged = [(line, False) for line in self.head]
        for section in self.sections:
            tagged += [(line, False) for line in section.heading]
            tagged += [(row, True) for row in section.rows] + [("", False)]
        return tagged + [(line, False) for line in self.tail]


def render_markdown(plan: ChangePlan, limit: int = MAX_BODY) -> str:
    """GitHub-flavoured Markdown for a pull-request comment, shorter than `limit` characters
    (GitHub's limit unless a test says otherwise; a limit of a few hundred at least)."""
    if plan.empty:
        return _join([*_opening(plan), *_notes(plan), *_apps(plan), no_changes(plan)])
    layout = _layout(plan)
    full = _join(layout.lines(range(len(layout.blocks))))
    if len(full) < limit:
        return full
    return _without_details(layout, limit) or _cut_tables(layout, limit)


# --- the parts ---------------------------------------------------------------------------


def _layout(plan: ChangePlan) -> _Layout:
    database = [c for c in plan.changes if not is_stripe(c)]
    stripe = [c for c in plan.changes if is_stripe(c)]
    head = [*_opening(plan), *_callout([*database, *stripe]), *_apps(plan)]
    if plan.stripe is None:
        head += [NOT_CONNECTED, ""]
    continuous = continuous_features(plan)
    sections = [
        _section(title, changes, continuous)
        for title, changes in (("Billing database", database), ("Stripe", stripe))
        if changes
    ]
    return _Layout(tuple(head), tuple(sections), tuple(_notes(plan)))


def is_stripe(change: Change) -> bool:
    """Whether `change` is made in Stripe (its address is a Stripe object's)."""
    return change.kind.target is Target.STRIPE


def _opening(plan: ChangePlan) -> list[str]:
    """The marker, the headline and the warnings (a partial plan says so here)."""
    lines = [MARKER, f"### autumn-sync plan: {_counts(plan)}", ""]
    for warning in plan.warnings:
        lines += ["> [!WARNING]", *(f"> {_inline(part)}" for part in warning.splitlines()), ""]
    return lines


def _counts(plan: ChangePlan) -> str:
    if plan.empty:
        return "no changes"
    s = plan.summary()
    return f"{s.add} to add, {s.change} to change, {s.archive} to archive, {s.destroy} to destroy"


def _callout(changes: Sequence[Change]) -> list[str]:
    """The destroys and archives (a replace archives the object it replaces unless customers
    keep it), and the subscriptions that charge again customers who cancelled, each with
    what happens, in a caution block."""
    removals = [c for c in changes if _removes(c)]
    charges = [c for c in changes if resubscribes(c)]
    if not removals and not charges:
        return []
    lines = ["> [!CAUTION]"]
    if removals:
        destroys = sum(c.destructive for c in removals)
        verbs = ["destroys"] * bool(destroys) + ["archives"] * (destroys < len(removals))
        lines.append(f"> This plan {' and '.join(verbs)}:")
        lines += [f"> - {_code(c.address)}: {_inline(action_text(c))}" for c in removals]
        if destroys:
            lines += [">", "> `autumn-sync apply` refuses to destroy without `--allow-destroy`."]
    if charges:
        lines += [">"] * bool(removals)
        lines.append("> This plan charges again customers who cancelled in Stripe:")
        lines += [f"> - {_code(c.address)}: {_inline(action_text(c))}" for c in charges]
        lines += [">", "> `autumn-sync apply` leaves them out without `--allow-resubscribe`."]
    return [*lines, ""]


def _removes(change: Change) -> bool:
    if isinstance(change, Replace):
        return change.keep_old is None
    return isinstance(change, Delete | Archive)


def _apps(plan: ChangePlan) -> list[str]:
    line = app_customers_line(plan)
    return [*line, ""] if line else []


def _notes(plan: ChangePlan) -> list[str]:
    if not plan.notes:
        return []
    lines = ["Not changed yet (nothing to apply until then):", ""]
    lines += [f"- {_code(note.address)}: {_inline(note.text)}" for note in plan.notes]
    return [*lines, ""]


def _section(title: str, changes: Sequence[Change], continuous: Set[str]) -> _Section:
    noun = "change" if len(changes) == 1 else "changes"
    rows = tuple(
        f"| `{c.symbol}` | {_cell(_code(c.address))} | {_cell(_inline(action_text(c)))} |"
        for c in changes
    )
    heading = (f"#### {title}: {len(changes)} {noun}", "", *_TABLE_HEAD)
    details = tuple(
        _Block(lines, _removes(c)) for c in changes if (lines := _details(c, continuous))
    )
    return _Section(heading, rows, details)


def _details(change: Change, continuous: Set[str]) -> tuple[str, ...]:
    body = detail_lines(change, continuous)
    if not body:
        return ()
    fence = _fence(body)
    summary = html.escape(f"{change.symbol} {change.address}")
    return (
        f"<details><summary><code>{summary}</code></summary>",
        "",
        fence,
        *body,
        fence,
        "",
        "</details>",
        "",
    )


# --- escaping ----------------------------------------------------------------------------


def _code(text: str) -> str:
    """`text` as a code span, whatever backticks it holds."""
    runs = [len(run) for run in _BACKTICKS.findall(text)]
    ticks = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _fence(body: Sequence[str]) -> str:
    """A code fence longer than any run of backticks in `body`."""
    runs = [len(run) for line in body for run in _BACKTICKS.findall(line)]
    return "`" * max(3, max(runs, default=0) + 1)


def _inline(text: str) -> str:
    """Plain text with the characters that Markdown or HTML would read escaped."""
    return _INLINE_SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(text.splitlines()))


def _cell(text: str) -> str:
    """Text for a table cell: a `|` would end the cell, even inside a code span (the table
    is split at unescaped pipes before the cells are read, so every `|` is escaped, also one
    after a backslash)."""
    return text.replace("|", "\\|")


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


# --- cutting a long plan -----------------------------------------------------------------


def _too_long(shown: int, total: int, how: str) -> str:
    return f"The plan is too long for a comment: {shown} of {total} changes are {how}. {RUN_FULL}"


def _without_details(layout: _Layout, limit: int) -> str | None:
    """The whole tables and as many collapsible sections as fit, or None when even the
    tables do not fit. Destroys and archives are given room first, then the other changes in
    order; a section too long for the room left is skipped, a later one may still fit."""
    total = layout.rows
    size = _size(layout.lines(())) + len(_too_long(total, total, DETAILED)) + 2
    if size >= limit:
        return None
    blocks, shown = layout.blocks, set[int]()
    for index in sorted(range(len(blocks)), key=lambda i: not blocks[i].removal):
        if size + _size(blocks[index].lines) < limit:
            size += _size(blocks[index].lines)
            shown.add(index)
    note = _too_long(len(shown), total, DETAILED)
    return _join(_ended(layout.lines(shown), note))


def _cut_tables(layout: _Layout, limit: int) -> str:
    """As many lines without details as fit, in order (the headline, warnings and callout
    first), a blank line to end a table or quote cut short, and the note. Nothing else can be
    left open: collapsible sections and code fences are only ever dropped whole."""
    tagged, total = layout.skeleton(), layout.rows
    kept = tagged[: _fitting(tagged, limit - len(_too_long(total, total, LISTED)) - 3)]
    note = _too_long(sum(row for _, row in kept), total, LISTED)
    return _join(_ended([line for line, _ in kept], note))


def _fitting(tagged: Sequence[tuple[str, bool]], budget: int) -> int:
    """How many of the first lines fit in `budget` characters."""
    size = 0
    for index, (line, _) in enumerate(tagged):
        size += len(line) + 1
        if size > budget:
            return index
    return len(tagged)


def _ended(lines: Sequence[str], note: str) -> list[str]:
    """`lines`, a blank line unless they end with one (it ends a table or a quote cut
    short), and `note`."""
    return [*lines, note] if lines and not lines[-1] else [*lines, "", note]


def _size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)
