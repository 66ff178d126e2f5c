"""What `apply` shows while it works: a progress bar naming the change just applied on a
terminal; one line per change otherwise (a CI log). Colour only when asked for."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import click

from autumn_sync.cli.output import echo
from autumn_sync.plan.changes import Archive, Change, Create, Delete, Replace, Update

_DONE: dict[type[Change], tuple[str, str]] = {
    Create: ("created", "green"),
    Update: ("updated", "yellow"),
    Archive: ("archived", "magenta"),
    Replace: ("replaced", "cyan"),
    Delete: ("destroyed", "red"),
}


def done_line(change: Change, color: bool) -> str:
    """`plan.pro: updated`, the verb coloured by action when `color`."""
    word, hue = _DONE[type(change)]
    return f"{change.address}: {click.style(word, fg=hue) if color else word}"


class Progress:
    """A context manager whose `done(change)` reports one applied change."""

    def __init__(self, changes: Sequence[Change], color: bool, terminal: bool | None = None):
        self.total = len(changes)
        self.color = color
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.terminal and self.total:
            self._bar = click.progressbar(
                length=self.total,
                label=click.style("Applying", bold=True) if self.color else "Applying",
                item_show_func=self._show,
                show_pos=True,
                color=self.color,
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)

    def done(self, change: Change) -> None:
        """One more change applied."""
        if self._bar is None:
            echo(done_line(change, self.color))
        else:
            self._bar.update(1, change)

    def _show(self, change: Change | None) -> str | None:
        return None if change is None else done_line(change, self.color)
