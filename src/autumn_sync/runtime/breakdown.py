"""A feature's balance as a breakdown: one entry per source, used in a fixed order (pure).

Sources (`Source`): each plan item's allowance (`plan:<plan>`, with its own reset), the
customer's declared allowance when it has no plan item for the feature (`allowance`), each
grant (`grant:<id>`, one-time: used up for good), and what a rollover carried from an
item's unused allowance (`rollover:<plan>:<period end>`, until it expires).

- **Order.** Usage is taken from an entity's own sources before its customer's; within
  each, from the sources that reset, the shortest interval first (an item's rollovers just
  before the item, the soonest to expire first); then those that expire (grants), the
  soonest first; then the rest (grants without expiry last). A refund gives back in the
  opposite order: overage first, then what the last sources gave.
- **Overage.** Beyond every source, usage goes on the first item priced pay-per-use
  (billed), up to its `max_purchase` (the cap; `overage="allow"` records past it); without
  such an item it stops at 0: nothing more is recorded (`dropped`).
- **Resets.** A source that resets closes its period when now reaches its next reset: its
  usage goes back to 0 and, when its item has a rollover, the unused allowance is carried
  (up to the item's cap on what it holds) into a rollover that expires `months` after.
  The next reset is counted from the item's anchor (the billing cycle), so a month's day
  does not drift. Grants never reset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from autumn_sync.runtime.intervals import add_intervals, length, next_boundary

ZERO = Decimal(0)
HUNDRED = Decimal(100)
PLAN, ALLOWANCE, GRANT, ROLLOVER = "plan", "allowance", "grant", "rollover"
CAP, ALLOW = "cap", "allow"  # `track(..., overage=)`
MAX_PERIODS = 1000  # periods closed one by one (rollovers); past that, the rest at once
FOREVER = datetime.max


@dataclass(frozen=True, slots=True)
class Rollover:
    """An item's rollover: the cap on what its rollovers hold (`max` units, or
    `max_percentage` of the allowance; neither: no cap), and their life (None: forever)."""

    max: Decimal | None = None
    max_percentage: Decimal | None = None
    months: int | None = None

    def cap(self, granted: Decimal) -> Decimal | None:
        if self.max is not None:
            return self.max
        if self.max_percentage is not None:
            return granted * self.max_percentage / HUNDRED
        return None


@dataclass(frozen=True, slots=True)
class Source:
    """Where units of a feature come from. `interval`/`every`/`anchor`: its resets (None:
    none); `expires`: when it stops counting; `priced`: overage is billed on it."""

    key: str
    kind: str
    entity: str = ""
    plan_id: str | None = None
    granted: Decimal = ZERO
    unlimited: bool = False
    interval: str | None = None
    every: int = 1
    anchor: datetime | None = None
    first_reset: datetime | None = None  # a declared reset date still ahead
    expires: datetime | None = None
    priced: bool = False
    max_purchase: Decimal | None = None
    rollover: Rollover | None = None

    def rank(self) -> tuple[object, ...]:
        """Its place in the order usage is taken in."""
        scope = 0 if self.entity else 1
        if self.interval is not None:
            sub = 0 if self.kind == ROLLOVER else 1
            return (scope, 0, length(self.interval, self.every), sub, self.expires or FOREVER)
        if self.expires is not None:
            return (scope, 1, timedelta(0), 0, self.expires)
        return (scope, 2, timedelta(0), 1 if self.kind == GRANT else 0, FOREVER)


@dataclass(frozen=True, slots=True)
class Entry:
    """A source with what was used of it in its current period (grants: ever)."""

    source: Source
    used: Decimal = ZERO
    next_reset: datetime | None = None

    @property
    def remaining(self) -> Decimal:
        if self.source.unlimited:
            return ZERO
        return max(self.source.granted - self.used, ZERO)

    @property
    def overage(self) -> Decimal:
        if self.source.unlimited:
            return ZERO
        return max(self.used - self.source.granted, ZERO)


@dataclass(frozen=True, slots=True)
class Closed:
    """A period that ended, with what was used of a source in it."""

    entity: str
    key: str
    end: datetime
    used: Decimal


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.source.rank(), e.source.key))


# --- resets --------------------------------------------------------------------------------


def advance(entries: Sequence[Entry], now: datetime) -> tuple[list[Entry], list[Closed]]:
    """The entries at `now`: every period that ended closed (usage 0 again, rollovers carried,
    rollovers expired or used up gone), and the periods closed with usage."""
    result = [e for e in entries if e.source.kind != ROLLOVER]
    rollovers = [e for e in entries if e.source.kind == ROLLOVER]
    closed: list[Closed] = []
    for index, entry in enumerate(result):
        if entry.source.interval is None:
            continue
        mine = [r for r in rollovers if _carried_by(r, entry)]
        others = [r for r in rollovers if not _carried_by(r, entry)]
        entry, mine, ends = _close(entry, mine, now)
        result[index] = entry
        rollovers = others + mine
        closed.extend(
            Closed(entry.source.entity, entry.source.key, end, used) for end, used in ends
        )
    live = [r for r in rollovers if _lasts(r, now) and r.remaining > 0]
    return result + live, closed


def _lasts(entry: Entry, now: datetime) -> bool:
    return entry.source.expires is None or entry.source.expires > now


def _carried_by(rollover: Entry, entry: Entry) -> bool:
    source = entry.source
    return (
        source.kind == PLAN
        and rollover.source.entity == source.entity
        and rollover.source.plan_id == source.plan_id
    )


def first_reset(source: Source, now: datetime) -> datetime:
    """The end of a source's first period: a declared reset date ahead, else one interval
    after its anchor (or the anchor itself while it is ahead: a trial's end)."""
    assert source.interval is not None and source.anchor is not None
    if source.first_reset is not None and source.first_reset > now:
        return source.first_reset
    if source.anchor > now:
        return source.anchor
    return add_intervals(source.anchor, source.interval, source.every)


def _close(
    entry: Entry, rollovers: list[Entry], now: datetime
) -> tuple[Entry, list[Entry], list[tuple[datetime, Decimal]]]:
    """Close the entry's periods that `now` passed; carry unused allowance if it rolls."""
    source = entry.source
    assert source.interval is not None and source.anchor is not None
    due = entry.next_reset or first_reset(source, now)
    used, ends = entry.used, []
    count = 0
    while now >= due:
        if used:
            ends.append((due, used))
        if source.rollover is not None and not source.unlimited and count < MAX_PERIODS:
            rollovers = _carry(source, rollovers, used, due)
        used, count = ZERO, count + 1
        if count >= MAX_PERIODS or source.rollover is None:
            due = next_boundary(source.anchor, source.interval, now, source.every)
        else:
            due = next_boundary(source.anchor, source.interval, due, source.every)
    return replace(entry, used=used, next_reset=due), rollovers, ends


def _carry(source: Source, rollovers: list[Entry], used: Decimal, end: datetime) -> list[Entry]:
    """`rollovers` with the unused allowance of the period ending at `end` carried, within
    the item's cap on what its live rollovers hold."""
    rule = source.rollover
    assert rule is not None
    live = [r for r in rollovers if _lasts(r, end)]
    unused = max(source.granted - used, ZERO)
    cap = rule.cap(source.granted)
    room = unused if cap is None else min(unused, cap - sum((r.remaining for r in live), ZERO))
    if room <= 0:
        return live
    expires = None if rule.months is None else add_intervals(end, "month", rule.months)
    carried = Source(
        key=f"{ROLLOVER}:{source.plan_id}:{end:%Y%m%d%H%M}",
        kind=ROLLOVER,
        entity=source.entity,
        plan_id=source.plan_id,
        granted=room,
        interval=source.interval,
        every=source.every,
        expires=expires,
    )
    return [*live, Entry(carried)]


# --- usage ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deducted:
    entries: list[Entry]
    recorded: Decimal  # units the balance took (given back, for a refund)
    dropped: Decimal  # units it did not take: no overage allowed, or past the cap


def overage_target(entries: Sequence[Entry]) -> Entry | None:
    """The first entry priced pay-per-use, where usage beyond every source goes."""
    return next((e for e in ordered(entries) if e.source.priced), None)


def room(entries: Sequence[Entry]) -> Decimal | None:
    """Units that may go past every source: None for no limit (unlimited, or overage without
    a cap)."""
    if any(e.source.unlimited for e in entries):
        return None
    target = overage_target(entries)
    if target is None:
        return ZERO
    cap = target.source.max_purchase
    return None if cap is None else max(cap - target.overage, ZERO)


def covers(entries: Sequence[Entry], needed: Decimal) -> bool:
    """Whether `needed` more units may be used: what remains, plus the overage allowed."""
    beyond = room(entries)
    return beyond is None or sum((e.remaining for e in entries), ZERO) + beyond >= needed


def deduct(entries: Sequence[Entry], value: Decimal, overage: str = CAP) -> Deducted:
    """`value` units used (a negative value gives units back), in the fixed order."""
    if value < 0:
        return _refund(entries, -value)
    order = ordered(entries)
    unlimited = next((e for e in order if e.source.unlimited), None)
    if unlimited is not None:
        return Deducted(_put(order, unlimited, value), value, ZERO)
    left, result = value, []
    for entry in order:
        take = min(entry.remaining, left)
        left -= take
        result.append(replace(entry, used=entry.used + take) if take else entry)
    beyond = room(result)
    extra = left if beyond is None or overage == ALLOW else min(left, beyond)
    target = overage_target(result)
    if target is not None and extra > 0:
        result = _put(result, target, extra)
    else:
        extra = ZERO
    return Deducted(result, value - left + extra, left - extra)


def _put(entries: list[Entry], target: Entry, units: Decimal) -> list[Entry]:
    return [replace(e, used=e.used + units) if e is target else e for e in entries]


def _refund(entries: Sequence[Entry], value: Decimal) -> Deducted:
    """Give `value` units back: overage first, then the last sources used first."""
    order = ordered(entries)
    left = value
    backwards = list(reversed(order))
    for passes in ("overage", "used"):
        for index, entry in enumerate(backwards):
            held = entry.overage if passes == "overage" else entry.used
            give = min(held, left)
            if give:
                backwards[index] = replace(entry, used=entry.used - give)
                left -= give
    return Deducted(list(reversed(backwards)), -(value - left), ZERO)


def entries_of(sources: Iterable[Source], stored: Mapping[tuple[str, str], Stored]) -> list[Entry]:
    """Each source with what its stored row says was used (none: nothing yet)."""
    found = []
    for source in sources:
        row = stored.get((source.entity, source.key))
        used = row.used if row is not None else ZERO
        found.append(Entry(source, used, row.next_reset if row is not None else None))
    return found


@dataclass(frozen=True, slots=True)
class Stored:
    """A `balance_usage` row: what was used of a source (`amount`/`expires`: a rollover's)."""

    entity: str
    feature: str
    key: str
    used: Decimal = ZERO
    next_reset: datetime | None = None
    amount: Decimal | None = None
    expires: datetime | None = None


def stored_of(feature: str, entry: Entry) -> Stored:
    """The row that keeps `entry`."""
    source = entry.source
    carried = source.kind == ROLLOVER
    return Stored(
        entity=source.entity,
        feature=feature,
        key=source.key,
        used=entry.used,
        next_reset=entry.next_reset,
        amount=source.granted if carried else None,
        expires=source.expires if carried else None,
    )


@dataclass(frozen=True)
class RowChanges:
    """What to write for a feature's entries: rows to insert, to update, to delete."""

    new: list[Stored]
    changed: list[Stored]
    gone: list[tuple[str, str]]  # (entity, key)


def row_changes(
    feature: str,
    before: Mapping[tuple[str, str], Stored],
    entries: Sequence[Entry],
    now: datetime,
) -> RowChanges:
    """The writes that take the stored rows `before` to `entries`: a rollover used up or
    expired goes; a source never used and without a period needs no row; a grant's row stays
    (it is used up for good)."""
    after: dict[tuple[str, str], Stored] = {}
    gone = []
    for entry in entries:
        row = stored_of(feature, entry)
        key = (row.entity, row.key)
        if entry.source.kind == ROLLOVER and entry.remaining <= 0:
            if key in before:
                gone.append(key)
            continue
        after[key] = row
    for key, row in before.items():
        expired = row.expires is not None and row.expires <= now
        spent = row.amount is not None and row.used >= row.amount
        if key[1].startswith(f"{ROLLOVER}:") and key not in after and (expired or spent):
            gone.append(key)
    new = [
        row
        for key, row in after.items()
        if key not in before and (row.used or row.next_reset or row.amount is not None)
    ]
    changed = [
        row
        for key, row in after.items()
        if key in before
        and (before[key].used, before[key].next_reset) != (row.used, row.next_reset)
    ]
    return RowChanges(new, changed, sorted(set(gone)))
