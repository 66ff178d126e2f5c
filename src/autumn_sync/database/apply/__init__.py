"""Applying the database changes of a plan: one applier per (change, record) class, in the
apply's one transaction (the caller's), so a failure leaves the database as it was."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from autumn_sync.database.apply import catalog, customers
from autumn_sync.database.apply.transaction import APPLIERS, Transaction
from autumn_sync.plan.changes import Change

__all__ = ["APPLIERS", "Transaction", "apply_changes", "catalog", "customers"]


def apply_changes(connection: Connection, changes: Iterable[Change], now: datetime) -> None:
    """Carry out the database `changes`, in order, on `connection` (inside its transaction)."""
    transaction = Transaction(connection, now)
    for change in changes:
        APPLIERS.apply(transaction, change)
