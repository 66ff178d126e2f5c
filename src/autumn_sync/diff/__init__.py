"""The pure diff: current state and desired state in, typed changes out. No I/O here."""

from autumn_sync.diff.catalog import PlanConflict, diff

__all__ = ["PlanConflict", "diff"]
