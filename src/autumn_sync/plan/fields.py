"""Field-level differences between two records of one kind."""

from __future__ import annotations

from autumn_sync.model.attributes import attributes, flatten, path_order
from autumn_sync.model.stripe import AnyRecord
from autumn_sync.plan.changes import FieldChange


def field_changes(before: AnyRecord, after: AnyRecord) -> tuple[FieldChange, ...]:
    """Field-level differences, by flattened path, in the record's own field order."""
    old, new = flatten(attributes(before)), flatten(attributes(after))
    if old == new:  # the common case: skip ordering the paths of an unchanged record
        return ()
    paths = path_order(old, new)
    return tuple(
        FieldChange(path, old.get(path), new.get(path))
        for path in paths
        if old.get(path) != new.get(path)
    )
