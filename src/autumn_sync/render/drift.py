"""Drift reports as text, JSON and Markdown (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from autumn_sync.drift import DriftItem, DriftReport, Finding
from autumn_sync.model.stripe import OWNER_KEY
from autumn_sync.render.values import headline, show
from autumn_sync.stripe.assign import MissingLink

CLEAN = "No drift. The billing database, Stripe and the file agree."
CLEAN_NO_STRIPE = "No drift between the file and the billing database (Stripe not connected)."
COSMETIC_HEADING = "Cosmetic differences in Stripe, which apply keeps (exit 0 unless --strict):"


def _summary(report: DriftReport) -> str:
    kept = _cosmetic_kept(report)
    if not report.found:
        if kept:
            return f"No drift to correct: {kept}."
        return CLEAN if report.stripe_connected else CLEAN_NO_STRIPE
    parts = [f"{len(report.to_correct)} in Stripe"] if report.stripe_connected else []
    parts.append(f"{len(report.pending)} pending from the file")
    return "Drift found: " + ", ".join(parts) + (f" (and {kept})" if kept else "") + "."


def _cosmetic_kept(report: DriftReport) -> str:
    """`1 cosmetic difference in Stripe, kept`, or "" without any."""
    count = len(report.cosmetic)
    return f"{count} cosmetic difference{_s(count)} in Stripe, kept" if count else ""


def _counted(report: DriftReport) -> str:
    """The application's customers and subscriptions in Stripe, counted, never listed."""
    customers, subscriptions = report.unmanaged_customers, report.unmanaged_subscriptions
    if not customers and not subscriptions:
        return ""
    return (
        f"Left alone in Stripe (not the file's): {customers} customer{_s(customers)}, "
        f"{subscriptions} subscription{_s(subscriptions)}."
    )


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _fields(item: DriftItem) -> str:
    return "; ".join(f"{f.path}: {show(f.before)} → {show(f.after)}" for f in item.fields)


def _renamed(item: DriftItem) -> str:
    in_stripe, in_catalog = item.names or ("", "")
    return (
        f"renamed in Stripe to {show(in_stripe)} (cosmetic: kept; the catalog says "
        f"{show(in_catalog)})"
    )


FINDINGS: dict[Finding, Callable[[DriftItem], str]] = {
    "gone": lambda i: f"{i.stripe_id} is gone from Stripe",
    "unmanaged_now": lambda i: f"{i.stripe_id} lost its {OWNER_KEY} metadata (now unmanaged)",
    "restorable": lambda i: f"{i.stripe_id} lost its {OWNER_KEY} metadata (plan restores it)",
    "not_created": lambda _: "not in Stripe yet (an apply is pending)",
    "archived": lambda _: "archived outside autumn-sync",
    "terms": lambda i: f"terms no longer match: {_fields(i)}",
    "changed": lambda i: f"changed outside autumn-sync: {_fields(i)}",
    "set_to_cancel": lambda i: f"{i.stripe_id} was set to cancel at period end in Stripe",
    "renamed": _renamed,
    "not_needed": lambda _: "active in Stripe, but the catalog does not need it",
    "no_such_plan": lambda i: (
        f"{i.stripe_id} is active in Stripe, but the database has no such plan"
    ),
    "customer_deleted": lambda i: f"{i.stripe_id} was deleted in Stripe",
    "link_missing": lambda i: str(MissingLink(i.address, str(i.stripe_id))),
    "cancelled": lambda i: f"{i.stripe_id} was cancelled in Stripe",
}


def message(item: DriftItem) -> str:
    """What was found at the item's address, in words."""
    return FINDINGS[item.finding](item)


def _item_line(item: DriftItem) -> str:
    return f"{item.address}: {message(item)}"


def render_drift_text(report: DriftReport) -> str:
    lines: list[str] = []
    if report.to_correct:
        lines += ["Stripe differs from the billing database:", ""]
        lines += [f"  ! {_item_line(item)}" for item in report.to_correct]
        lines.append("")
    if report.cosmetic:
        lines += [COSMETIC_HEADING, ""]
        lines += [f"  ~ {_item_line(item)}" for item in report.cosmetic]
        lines.append("")
    if report.pending:
        lines += ["The file and the billing database differ (run `autumn-sync plan`):", ""]
        lines += [f"  {c.symbol} {headline(c)}" for c in report.pending]
        lines.append("")
    if report.unmanaged:
        lines += [f"Unmanaged Stripe objects, left alone: {len(report.unmanaged)}", ""]
        lines += [f"  {o.kind}: {o.stripe_id} {o.label}".rstrip() for o in report.unmanaged]
        lines.append("")
    counted = _counted(report)
    if counted:
        lines += [counted, ""]
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def render_drift_json(report: DriftReport) -> str:
    document: dict[str, Any] = {
        "format_version": "1.0",
        "drift_found": report.found,
        "stripe_connected": report.stripe_connected,
        "stripe": [
            {"address": i.address, "kind": i.kind, "message": message(i), "cosmetic": i.cosmetic}
            for i in report.stripe
        ],
        "pending": [{"address": c.address, "action": c.action} for c in report.pending],
        "unmanaged": [
            {"kind": o.kind, "id": o.stripe_id, "label": o.label} for o in report.unmanaged
        ],
        "unmanaged_counts": {
            "customers": report.unmanaged_customers,
            "subscriptions": report.unmanaged_subscriptions,
        },
        "summary": _summary(report),
    }
    return json.dumps(document, indent=2) + "\n"


def render_drift_markdown(report: DriftReport) -> str:
    lines = ["### autumn-sync drift", "", f"**{_summary(report)}**", ""]
    if report.to_correct:
        lines += ["| | Address | What changed |", "|---|---|---|"]
        lines += [f"| ⚠️ | `{i.address}` | {message(i)} |" for i in report.to_correct]
        lines.append("")
    if report.cosmetic:
        lines += [COSMETIC_HEADING, ""]
        lines += [f"- `{i.address}`: {message(i)}" for i in report.cosmetic]
        lines.append("")
    if report.pending:
        lines += ["Pending from the file (see `autumn-sync plan`):", ""]
        lines += [f"- `{c.symbol} {c.address}`" for c in report.pending]
        lines.append("")
    if report.unmanaged:
        lines += [
            f"<details><summary>{len(report.unmanaged)} unmanaged Stripe objects (left alone)"
            "</summary>",
            "",
            *[f"- {o.kind} `{o.stripe_id}` {o.label}".rstrip() for o in report.unmanaged],
            "",
            "</details>",
            "",
        ]
    counted = _counted(report)
    if counted:
        lines += [counted, ""]
    return "\n".join(lines)


DRIFT_RENDERERS: dict[str, Callable[[DriftReport], str]] = {
    "text": render_drift_text,
    "json": render_drift_json,
    "markdown": render_drift_markdown,
}
