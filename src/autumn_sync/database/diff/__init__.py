"""The database diff (pure): the current `State` against the desired one, as typed changes:
the catalog's (`catalog`) and the customers' and balances' (`customers`)."""

from autumn_sync.database.diff.catalog import PlanConflict, diff
from autumn_sync.database.diff.customers import match_customers

__all__ = ["PlanConflict", "diff", "match_customers"]
