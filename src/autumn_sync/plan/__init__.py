"""Typed changes and the ordered plan they form."""

from autumn_sync.plan.changes import Archive, Change, Create, Delete, FieldChange, Update
from autumn_sync.plan.plan import ChangePlan, Summary, fingerprint

__all__ = [
    "Archive",
    "Change",
    "ChangePlan",
    "Create",
    "Delete",
    "FieldChange",
    "Summary",
    "Update",
    "fingerprint",
]
