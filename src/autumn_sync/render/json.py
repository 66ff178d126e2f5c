"""The plan as JSON shaped like Terraform's `show -json` plan, so policy tools (conftest/OPA)
read it as they read Terraform's.

`resource_changes[]` holds every managed object: `change.actions` uses Terraform's words
(`create`, `update`, `delete`, `no-op`); an archive is `["update"]` with
`action_reason: "archive"` and what is kept as `after` (a plan as it is, a Stripe object
inactive; only a delete has a null `after`); a plan's new version is `["update"]` with
`action_reason: "new_version"`; an archived plan offered again is `["update"]` with
`action_reason: "unarchive"` (unless it also gets a new version); a Stripe price or coupon
whose terms change is `["create", "delete"]` (create before delete: the old one is archived,
or kept for `autumn_sync.old_kept_for`) with `action_reason: "replace_because_cannot_update"`
and `change.replace_paths`. A plan's pay-per-use item priced per N > 1 units carries
`autumn_sync.remarks` at its `per`: usage billed in whole packs of N. Decimal amounts are
JSON numbers written with their exact digits (never rounded through a float).
"""

from __future__ import annotations

import json
import re
from collections.abc import Set
from datetime import date
from decimal import Decimal
from typing import Any

from autumn_sync import __version__
from autumn_sync.model.address import Address
from autumn_sync.model.attributes import attributes
from autumn_sync.model.money import canonical
from autumn_sync.model.records import Plan
from autumn_sync.model.state import Record
from autumn_sync.model.stripe import AnyRecord
from autumn_sync.plan.changes import Archive, Change, Replace, Update
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.render.values import continuous_features, pack_remarks

FORMAT_VERSION = "1.2"


def render_json(plan: ChangePlan) -> str:
    """The JSON document, pretty-printed, ending with a newline."""
    return exact_json(plan_document(plan))


def plan_document(plan: ChangePlan) -> dict[str, Any]:
    summary = plan.summary()
    continuous = continuous_features(plan)
    document = {
        "format_version": FORMAT_VERSION,
        "autumn_sync_version": __version__,
        "checksum": plan.checksum(),
        "resource_changes": [
            *(_resource_change(c, continuous) for c in plan.changes),
            *(_no_op(r) for r in plan.unchanged),
        ],
        "summary": {
            "add": summary.add,
            "change": summary.change,
            "archive": summary.archive,
            "destroy": summary.destroy,
        },
        "warnings": list(plan.warnings),
        "unmanaged_customers": plan.app_customers,
    }
    if plan.notes:  # what waits, not a change (a subscription waiting for checkout)
        document["notes"] = [{"address": n.address, "message": n.text} for n in plan.notes]
    return document


def _resource_change(change: Change, continuous: Set[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "address": change.address,
        "type": change.kind.value,
        "name": change.name,
        "change": {
            "actions": list(change.tf_actions),
            "before": _data(change.before),
            "after": _data(_after(change)),
        },
        "autumn_sync": {
            "action": change.action,
            "destructive": change.destructive,
            "reason": change.reason,
            "fields": [
                {"path": f.path, "before": f.before, "after": f.after} for f in change.fields
            ],
        },
    }
    if isinstance(change, Replace):
        entry["change"]["replace_paths"] = [_steps(f.path) for f in change.fields]
        entry["autumn_sync"]["old_kept_for"] = change.keep_old
    if isinstance(change, Update) and change.new_version is not None:
        entry["autumn_sync"]["version"] = {
            "new": change.new_version,
            "customers": change.customers,
            "customers_move": change.moving,
        }
    remarks = pack_remarks(change, continuous)
    if remarks:  # a plan's items billed in whole packs
        entry["autumn_sync"]["remarks"] = [
            {"path": path, "message": f"usage billed in {text}"} for path, text in remarks.items()
        ]
    reason = _action_reason(change)
    if reason:
        entry["action_reason"] = reason
    return entry


def _after(change: Change) -> AnyRecord | None:
    """What the change leaves: an archived plan is kept as it is (its change has no `after`);
    an archived Stripe object is kept inactive."""
    if isinstance(change, Archive) and change.after is None:
        return change.before
    return change.after


def _action_reason(change: Change) -> str | None:
    if isinstance(change, Archive):
        return "archive"
    if isinstance(change, Replace):
        return "replace_because_cannot_update"
    if isinstance(change, Update) and change.new_version is not None:
        return "new_version"
    if isinstance(change, Update) and isinstance(change.before, Plan) and change.before.archived:
        return "unarchive"
    return None


_STEP = re.compile(r"\[([^\]]*)\]|\.?([^.\[]+)")


def _steps(path: str) -> list[str | int]:
    """A field path as Terraform writes one: `tiers[1].unit_amount_decimal` →
    `["tiers", 1, "unit_amount_decimal"]`."""
    steps: list[str | int] = []
    for index, name in _STEP.findall(path):
        steps.append(name if name else int(index) if index.isdigit() else index)
    return steps


def _no_op(record: Record) -> dict[str, Any]:
    data = _data(record)
    return {
        "address": record.address,
        "type": record.kind.value,
        "name": Address.parse(record.address).name,
        "change": {"actions": ["no-op"], "before": data, "after": data},
    }


def _data(record: AnyRecord | None) -> dict[str, Any] | None:
    return attributes(record) if record is not None else None


_MARK = "\x00decimal:"  # no text of the file can hold NUL, so no value looks like this
_MARKED = re.compile(r'"\\u0000decimal:(-?[0-9.]+)"')


def exact_json(document: Any) -> str:
    """`document` as indented JSON where every `Decimal` is a JSON number written with its
    own digits (never rounded through a float, never in exponent form)."""
    text = json.dumps(document, indent=2, default=_number)
    return _MARKED.sub(r"\1", text) + "\n"


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _MARK + format(canonical(value), "f")
    if isinstance(value, date):  # a date or a time: ISO 8601
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
