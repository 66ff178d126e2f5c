"""Tables of what to do per change: appliers (database and Stripe) and renderers look a change
up by its class and its record's class. Each entry is registered once: registering a key a
second time is an error at import time, never a silent override.

An applier is registered in the shape its change needs, and gets its records typed:

    @APPLIERS.made(Create, Feature)
    def _create_feature(tx: Transaction, change: Create, feature: Feature) -> None: ...

    @APPLIERS.changed(Update, Feature)
    def _update_feature(tx: Transaction, change: Update, old: Feature, new: Feature) -> None: ...

    @APPLIERS.gone(Delete, Feature)
    def _delete_feature(tx: Transaction, change: Delete, feature: Feature) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from autumn_sync.model.stripe import AnyRecord
from autumn_sync.plan.changes import Change

K = TypeVar("K")
V = TypeVar("V")
X = TypeVar("X")  # what an applier works with (a database transaction, a Stripe writer)
R = TypeVar("R", bound=AnyRecord)
C = TypeVar("C", bound=Change)


class RegistryError(Exception):
    """A key registered twice, or a change nothing is registered for (both are bugs)."""


class Registry(Generic[K, V]):
    """A table whose keys are each registered once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._table: dict[K, V] = {}

    def add(self, key: K, value: V) -> None:
        if key in self._table:
            raise RegistryError(f"{self.name}: {_name(key)} is registered twice")
        self._table[key] = value

    def __getitem__(self, key: K) -> V:
        try:
            return self._table[key]
        except KeyError:
            raise RegistryError(f"{self.name}: nothing is registered for {_name(key)}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def __iter__(self) -> Iterator[K]:
        return iter(self._table)


def _name(key: object) -> str:
    if isinstance(key, tuple):
        return " of ".join(_name(part) for part in key)
    return key.__name__ if isinstance(key, type) else repr(key)


Step = Callable[[X, Change], None]


class Appliers(Generic[X]):
    """Appliers by (change class, record class); see the module's docstring."""

    def __init__(self, name: str) -> None:
        self._steps: Registry[tuple[type[Change], type[Any]], Step[X]] = Registry(name)

    def made(
        self, change: type[C], record: type[R]
    ) -> Callable[[Callable[[X, C, R], None]], Callable[[X, C, R], None]]:
        """Register an applier that takes the record the change makes (its `after`)."""

        def register(func: Callable[[X, C, R], None]) -> Callable[[X, C, R], None]:
            def step(ctx: X, done: Change) -> None:
                func(ctx, _narrow(done, change), _record(done.after, record, done))

            self._steps.add((change, record), step)
            return func

        return register

    def changed(
        self, change: type[C], record: type[R]
    ) -> Callable[[Callable[[X, C, R, R], None]], Callable[[X, C, R, R], None]]:
        """Register an applier that takes the record before and after the change."""

        def register(func: Callable[[X, C, R, R], None]) -> Callable[[X, C, R, R], None]:
            def step(ctx: X, done: Change) -> None:
                old = _record(done.before, record, done)
                func(ctx, _narrow(done, change), old, _record(done.after, record, done))

            self._steps.add((change, record), step)
            return func

        return register

    def gone(
        self, change: type[C], record: type[R]
    ) -> Callable[[Callable[[X, C, R], None]], Callable[[X, C, R], None]]:
        """Register an applier that takes the record the change removes (its `before`)."""

        def register(func: Callable[[X, C, R], None]) -> Callable[[X, C, R], None]:
            def step(ctx: X, done: Change) -> None:
                func(ctx, _narrow(done, change), _record(done.before, record, done))

            self._steps.add((change, record), step)
            return func

        return register

    def apply(self, ctx: X, change: Change) -> None:
        """Carry out `change` with the applier registered for it."""
        self._steps[(type(change), type(change.record))](ctx, change)

    def keys(self) -> list[tuple[type[Change], type[Any]]]:
        return list(self._steps)


def _narrow(change: Change, cls: type[C]) -> C:
    if not isinstance(change, cls):
        raise RegistryError(f"{change.address}: a {cls.__name__} was expected")
    return change


def _record(value: object, cls: type[R], change: Change) -> R:
    if not isinstance(value, cls):
        raise RegistryError(f"{change.address}: a {cls.__name__} was expected, not {value!r}")
    return value
