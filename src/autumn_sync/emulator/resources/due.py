"""Catching up with the clock: what fell due since the last request, done in time order.

Before each request the state checks its earliest due moment (one comparison); once the clock
has passed it, `process_due` does every step that came due, oldest first: at one moment, a
schedule's phase change comes before its subscription's renewal (so a downgrade at the period's
end bills the new price). Each step runs with the state's time set to its own moment, so the
invoices and periods it makes carry that moment. Afterwards the next due moment is noted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from autumn_sync.emulator.resources import lifecycle, schedules
from autumn_sync.emulator.store import JsonDict, State

MAX_STEPS = 100_000  # a safety net: every step moves its object forward in time
Due = tuple[int, int, Callable[[], None]]


def process_due(state: State) -> None:
    """Do every step that fell due, in time order, then note the next due moment."""
    now = state.clock.now()
    for _ in range(MAX_STEPS):
        earliest = min(_steps(state), key=lambda due: (due[0], due[1]), default=None)
        if earliest is None or earliest[0] > now:
            state.due_at = earliest[0] if earliest is not None else math.inf
            return
        state.frozen_now = earliest[0]
        try:
            earliest[2]()
            state.observe()  # the step's events, at its moment
        finally:
            state.frozen_now = None
    raise RuntimeError("the emulator's scheduled work does not move forward in time")


def _steps(state: State) -> Iterator[Due]:
    """Every object's next step: schedules (order 0) before subscriptions (order 1)."""
    for schedule in state.tables["subscription_schedule"].rows.values():
        found = schedules.next_step(state, schedule)
        if found is not None:
            yield found[0], 0, _bound(state, schedule, found[1])
    for sub in state.tables["subscription"].rows.values():
        step = lifecycle.next_step(state, sub)
        if step is not None:
            yield step[0], 1, _bound(state, sub, step[1])


def _bound(
    state: State, obj: JsonDict, step: Callable[[State, JsonDict], None]
) -> Callable[[], None]:
    return lambda: step(state, obj)
