"""What every database applier gets (`Transaction`): the connection of the apply's one
transaction, the time the apply started, and what the customer appliers keep for the rest of
the apply: the customers it created (by key: their balances need their row, and have none
yet) and the plans' current versions (read once). `APPLIERS` is the table the appliers of
`catalog` and `customers` register in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from autumn_sync.plan.registry import Appliers


@dataclass(frozen=True)
class Transaction:
    connection: Connection
    now: datetime
    created_customers: dict[str, int] = field(default_factory=dict)  # key → internal id
    # plan id → (current version, trial days, one trial per fingerprint)
    plan_terms: dict[str, tuple[int, int | None, bool | None]] = field(default_factory=dict)


APPLIERS: Appliers[Transaction] = Appliers("database appliers")
