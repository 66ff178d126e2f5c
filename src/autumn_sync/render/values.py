"""How values and changes are spelled in the human-readable renderers."""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from decimal import Decimal
from typing import Any

from autumn_sync.model.address import Target
from autumn_sync.model.attributes import attributes, flatten
from autumn_sync.model.customers import CHARGE_AUTOMATICALLY, Customer
from autumn_sync.model.money import canonical
from autumn_sync.model.records import Feature, FeatureType, Plan, UsageModel
from autumn_sync.model.stripe import AnyRecord, StripeCustomer, StripeSubscription
from autumn_sync.plan.changes import Archive, Change, Create, Delete, Replace, Update
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.plan.registry import Registry

ACTION_WORDS: Registry[type[Change], str] = Registry("action words")
for _change, _words in (
    (Create, "create"),
    (Update, "update in place"),
    (Archive, "archive"),
    (Delete, "destroy"),
    (Replace, "replace"),
):
    ACTION_WORDS.add(_change, _words)


def show(value: Any) -> str:
    """A value as the plan shows it: strings quoted, decimals exact, None as (none), times
    in ISO 8601 (`2027-01-01T00:00:00Z`)."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(canonical(value), "f")
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return f"[{', '.join(show(v) for v in value)}]"
    if isinstance(value, datetime):  # UTC, as the model keeps times
        return value.isoformat(timespec="seconds") + "Z"
    return str(value)


def headline(change: Change) -> str:
    """`plan.pro: new version 3 (12 customers stay on version 2)` or `feature.sso (create)`."""
    if isinstance(change, Update) and change.new_version is not None:
        return f"{change.address}: {action_text(change)}"
    return f"{change.address} ({action_text(change)})"


def action_text(change: Change) -> str:
    """What happens, without the address: `create`, `archive: 5 customers stay on it`,
    `unarchive`, `new version 3 (12 customers stay on version 2)`."""
    if isinstance(change, Update) and change.reason:
        return change.reason
    words = ACTION_WORDS[type(change)]
    if change.reason and not isinstance(change, Create):
        return f"{words}: {change.reason}"
    return words


def detail_lines(change: Change, continuous: Set[str] = frozenset()) -> list[str]:
    """`path: value` lines for a create (what is made) or a destroy (what goes), `path: old →
    new` lines for an update; the `per` of a plan's item billed in whole packs says so
    (`pack_remarks`: `continuous` are the features billed as a quantity, not in packs)."""
    said = pack_remarks(change, continuous)
    if isinstance(change, Create | Delete):
        record = change.record
        shown = flatten(attributes(record)).items()
        fields = {k: v for k, v in shown if _shown_whole(record, k, v)}
        width = max((len(k) for k in fields), default=0) + 1
        return [
            f"{path + ':':<{width}} {show(value)}{_remark(said, path)}"
            for path, value in fields.items()
        ]
    width = max((len(f.path) for f in change.fields), default=0) + 1
    return [
        f"{f.path + ':':<{width}} {show(f.before)} → {show(f.after)}{_remark(said, f.path)}"
        for f in change.fields
    ]


def _remark(remarks: dict[str, str], path: str) -> str:
    return f" ({remarks[path]})" if path in remarks else ""


def whole_packs(per: int) -> str:
    """How usage priced per `per` units is billed: `whole 100s, rounded up`."""
    return f"whole {per}s, rounded up"


def pack_remarks(change: Change, continuous: Set[str]) -> dict[str, str]:
    """Path → remark for a plan made or changed: each pay-per-use item priced per N > 1
    units bills its usage beyond the included units in whole packs of N, rounded up
    (`usage report` rounds what it sends), except a continuous feature's (`continuous`:
    seats in use, billed as a subscription item's quantity)."""
    plan = change.after if isinstance(change, Create | Update) else None
    if not isinstance(plan, Plan):
        return {}
    return {
        f"items[{item.feature}].price.per": whole_packs(item.price.per)
        for item in plan.content.items
        if item.price is not None
        and item.price.billing is UsageModel.PAY_PER_USE
        and item.price.per > 1
        and item.feature not in continuous
    }


def continuous_features(plan: ChangePlan) -> frozenset[str]:
    """The continuous metered features (seats in use) the plan holds, made, changed or
    unchanged: their pay-per-use usage is a subscription item's quantity, not packs."""
    records = [*plan.unchanged, *(c.after for c in plan.changes)]
    return frozenset(
        r.id
        for r in records
        if isinstance(r, Feature) and r.type is FeatureType.METERED and not r.consumable
    )


def _shown_whole(record: AnyRecord, path: str, value: Any) -> bool:
    """A create or destroy lists what the file sets: unset values, empty sets and false
    flags are left out, except a metered feature's `consumable: false` (the file must say it);
    a Stripe object's `active: true` goes without saying, and so does the ownership metadata
    of a Stripe customer or subscription (its address), and a customer charged automatically
    (the default)."""
    if isinstance(record, Feature) and path == "consumable":
        return bool(value) or record.type is FeatureType.METERED
    if record.kind.target is Target.STRIPE and path == "active":
        return not value
    if isinstance(record, StripeCustomer | StripeSubscription) and path == "owner":
        return bool(value != record.address)
    if isinstance(record, Customer) and path == "collection":
        return bool(value != CHARGE_AUTOMATICALLY)  # the default: said for invoicing only
    return value is not None and value is not False and value != ()


def summary_line(plan_summary: Any) -> str:
    s = plan_summary
    return (
        f"Plan: {s.add} to add, {s.change} to change, {s.archive} to archive, "
        f"{s.destroy} to destroy."
    )


def note_lines(plan: ChangePlan) -> list[str]:
    """What waits (not changes), followed by a blank line; nothing without notes."""
    if not plan.notes:
        return []
    lines = ["Not changed yet (nothing to apply until then):"]
    lines += [f"  {note.address}: {note.text}" for note in plan.notes]
    return [*lines, ""]


def app_customers_line(plan: ChangePlan) -> list[str]:
    """How many customers the application made that the file leaves alone (when any)."""
    count = plan.app_customers
    if not count:
        return []
    noun = "customer" if count == 1 else "customers"
    verb = "is" if count == 1 else "are"
    return [f"{count} {noun} the application created {verb} not in the file: left alone."]


NO_CHANGES = "No changes. The billing database matches the configuration."
NO_CHANGES_WITH_STRIPE = "No changes. The billing database and Stripe match the configuration."


def no_changes(plan: ChangePlan) -> str:
    """The line for an empty plan: it says whether Stripe was compared too."""
    return NO_CHANGES if plan.stripe is None else NO_CHANGES_WITH_STRIPE
