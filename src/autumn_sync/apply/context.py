"""What every database applier gets: the connection of the apply's one transaction and the
time the apply started."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection


@dataclass(frozen=True)
class Context:
    connection: Connection
    now: datetime
