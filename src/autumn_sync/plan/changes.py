"""The vocabulary of changes. Renderers and appliers look a change up by its class.

Every change names its `address`, the record `before` (current) and `after` (desired), the
field-level differences, and a human `reason` where the action needs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from autumn_sync.model.address import Address, Kind
from autumn_sync.model.stripe import AnyRecord


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """Base of all changes. Subclasses fix the action, symbol and whether it destroys."""

    address: str
    before: AnyRecord | None
    after: AnyRecord | None
    fields: tuple[FieldChange, ...] = ()
    reason: str | None = None

    action: ClassVar[str] = ""
    symbol: ClassVar[str] = ""
    tf_actions: ClassVar[tuple[str, ...]] = ()
    destructive: ClassVar[bool] = False

    @property
    def kind(self) -> Kind:
        """The kind of object it changes: `feature`, `plan`, `stripe_price`…"""
        return self.record.kind

    @property
    def name(self) -> str:
        """The address without its kind: `pro`, `user_1`, `[a@b.com]`, `pro.base`."""
        return Address.parse(self.address).name

    @property
    def record(self) -> AnyRecord:
        record = self.after if self.after is not None else self.before
        assert record is not None
        return record


@dataclass(frozen=True)
class Create(Change):
    action: ClassVar[str] = "create"
    symbol: ClassVar[str] = "+"
    tf_actions: ClassVar[tuple[str, ...]] = ("create",)


@dataclass(frozen=True)
class Update(Change):
    """An in-place update; for a plan whose content changed while customers are on it,
    `new_version` is the version created and `moving` tells whether customers move to it."""

    new_version: int | None = None
    customers: int = 0
    moving: bool = False

    action: ClassVar[str] = "update"
    symbol: ClassVar[str] = "~"
    tf_actions: ClassVar[tuple[str, ...]] = ("update",)


@dataclass(frozen=True)
class Archive(Change):
    """Kept in the database for the customers on it, but no longer offered."""

    action: ClassVar[str] = "archive"
    symbol: ClassVar[str] = "~"
    tf_actions: ClassVar[tuple[str, ...]] = ("update",)


@dataclass(frozen=True)
class Delete(Change):
    action: ClassVar[str] = "destroy"
    symbol: ClassVar[str] = "-"
    tf_actions: ClassVar[tuple[str, ...]] = ("delete",)
    destructive: ClassVar[bool] = True


@dataclass(frozen=True)
class Replace(Change):
    """An object whose immutable terms changed: a new one is made and the old one archived
    (a price: create, move the lookup key and default price, then archive the old; the old
    stays active when `keep_old` says customers on an older plan version still pay it)."""

    keep_old: str | None = None

    action: ClassVar[str] = "replace"
    symbol: ClassVar[str] = "-/+"
    tf_actions: ClassVar[tuple[str, ...]] = ("create", "delete")
