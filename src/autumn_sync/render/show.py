"""`show` as text: the documents of `runtime.inspect` laid out for a person (pure).

Values: `-` for nothing, decimals with their exact digits, times as `YYYY-MM-DD` (with
`HH:MM` when not midnight; UTC), tables aligned on their columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from autumn_sync.model.money import canonical
from autumn_sync.render.values import whole_packs

Document = dict[str, Any]


def text(kind: str, document: Document) -> str:
    """The text for a `Shown` document of `kind`, ending with a newline."""
    return "\n".join(RENDERERS[kind](document)) + "\n"


def value(item: Any) -> str:
    if item is None or item == "":
        return "-"
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, Decimal):
        return format(canonical(item), "f")
    if isinstance(item, datetime):
        return item.strftime("%Y-%m-%d" if item.time() == datetime.min.time() else "%Y-%m-%d %H:%M")
    if isinstance(item, date):
        return item.isoformat()
    return str(item)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """`header` and `rows` in columns two spaces apart (no trailing spaces)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        (
            indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]


def fields(pairs: Sequence[tuple[str, Any]], indent: str = "  ") -> list[str]:
    """`name: value` lines, values aligned."""
    width = max(len(name) for name, _ in pairs) + 1
    return [f"{indent}{name + ':':<{width}} {value(item)}" for name, item in pairs]


# --- customers -----------------------------------------------------------------------------


def customer(doc: Document) -> list[str]:
    lines = [doc["address"]]
    lines += fields(
        [
            ("id", doc["id"]),
            ("email", doc["email"]),
            ("name", doc["name"]),
            ("fingerprint", doc["fingerprint"]),
            ("in the file", doc["declared_as"] or "no (created by the application)"),
            ("created", doc["created_at"]),
            ("stripe customer", doc["stripe_id"]),
            ("rewards", ", ".join(doc["rewards"])),
        ]
    )
    lines += ["", "Plans:", *_plans(doc["plans"])]
    lines += ["", "Features:", *_features(doc["features"])]
    if doc["entities"]:
        rows = [[e["id"], e["feature_id"], value(e["name"])] for e in doc["entities"]]
        lines += ["", "Entities:", *table(["ENTITY", "FEATURE", "NAME"], rows)]
    lines += ["", "Recent usage:", *_events(doc["usage_events"])]
    return lines


def _events(events: list[Document]) -> list[str]:
    if not events:
        return ["  (none)"]
    rows = [
        [
            e["time"].strftime("%Y-%m-%d %H:%M:%S"),
            e["feature_id"],
            value(e["value"]),
            ""
            if e["charged_feature"] == e["feature_id"]
            else f"{value(e['charged'])} {e['charged_feature']}",
            value(e["idempotency_key"]),
        ]
        for e in events
    ]
    return table(["TIME", "FEATURE", "VALUE", "CHARGED", "IDEMPOTENCY KEY"], rows)


def _plan_name(plan: Document) -> str:
    return plan["plan_id"] if not plan["entity_id"] else f"{plan['entity_id']}: {plan['plan_id']}"


def _price(price: Document | None) -> str:
    if price is None:
        return "-"
    return f"{value(price['amount'])}/{price['interval']}"


def _status(plan: Document) -> str:
    """`trialing until 2026-12-15`, `scheduled from 2027-01-01`, `active until 2027-01-01`."""
    status = str(plan["status"])
    if status == "trialing":
        return f"{status} until {value(plan['trial_ends_at'])}"
    if status == "scheduled":
        return f"{status} from {value(plan['begins_at'])}"
    if plan.get("ends_at") is not None and status != "ended":
        return f"{status} until {value(plan['ends_at'])}"
    return status


def _plans(plans: list[Document]) -> list[str]:
    if not plans:
        return ["  (none)"]
    rows = [
        [
            _plan_name(p),
            f"{p['version']}{' (custom)' if p['custom'] else ''}",
            _status(p),
            _price(p["price"]),
            value(p["next_renewal"]),
            value(p["stripe_subscription_id"]),
        ]
        for p in plans
    ]
    header = ["PLAN", "VERSION", "STATUS", "PRICE", "NEXT RENEWAL", "STRIPE SUBSCRIPTION"]
    return table(header, rows)


def _features(features: list[Document]) -> list[str]:
    if not features:
        return ["  (none)"]
    rows = [_feature_row(f) for f in features]
    return table(["FEATURE", "USAGE", "LIMIT", "BALANCE", "NEXT RESET", "NOTES"], rows)


def _feature_row(f: Document) -> list[str]:
    if f["type"] == "boolean":
        return [f["feature_id"], "-", "included", "-", "-", ""]
    notes = []
    if f["granted"]:
        notes.append(f"{value(f['included'])} + {value(f['granted'])} granted")
    if f["overage_allowed"]:
        notes.append("overage allowed")
    limit = "unlimited" if f["unlimited"] else value(f["limit"])
    return [
        f["feature_id"],
        value(f["usage"]),
        limit,
        value(f["balance"]),
        value(f["next_reset"]),
        ", ".join(notes),
    ]


def customers(doc: Document) -> list[str]:
    listed = doc["customers"]
    rows = [
        [
            value(c["id"]),
            value(c["email"]),
            value(c["name"]),
            value(c["managed"]),
            ", ".join(_short_plan(p) for p in c["plans"]) or "-",
        ]
        for c in listed
    ]
    count = f"{len(listed)} customer{'s' if len(listed) != 1 else ''}."
    if not listed:
        return [count]
    return [*table(["ID", "EMAIL", "NAME", "IN FILE", "PLANS"], rows, indent=""), count]


def _short_plan(plan: Document) -> str:
    return f"{_plan_name(plan)} v{plan['version']}{' (custom)' if plan['custom'] else ''}"


# --- catalog -------------------------------------------------------------------------------


def plan(doc: Document) -> list[str]:
    version = doc["version"]
    versions = ", ".join(f"v{v['version']}: {v['customers']}" for v in doc["versions"])
    trial = version["free_trial"]
    lines = [f"{doc['address']}: {doc['name']}"]
    lines += fields(
        [
            ("description", doc["description"]),
            ("group", doc["group"]),
            ("default", doc["default"]),
            ("add-on", doc["add_on"]),
            ("archived", doc["archived"]),
            ("current version", doc["current_version"]),
            ("customers", versions),
            ("price", _price(version["price"])),
            ("free trial", _trial(trial) if trial else None),
        ]
    )
    rows = [
        [i["feature_id"], _included(i), value(i["reset"]), _usage_price(i["price"])]
        for i in version["items"]
    ]
    lines += ["", f"Items (version {version['version']}):"]
    lines += table(["FEATURE", "INCLUDED", "RESET", "PRICE"], rows) if rows else ["  (none)"]
    return lines


def _included(item: Document) -> str:
    return "unlimited" if item["unlimited"] else value(item["included"])


def _trial(trial: Document) -> str:
    words = [f"{trial['days']} days"]
    if trial["card_required"]:
        words.append("card required")
    if trial["unique_fingerprint"]:
        words.append("once per fingerprint")
    return ", ".join(words)


def _usage_price(price: Document | None) -> str:
    """`pay_per_use: 5 per 100 (whole 100s, rounded up)`, `prepaid per month: up to 10 at
    10, then 8 (graduated)`; tiers priced per N > 1 units say `per N` after the last."""
    if price is None:
        return "-"
    per = price["per"]
    terms = f"{value(price['amount'])} per {per}"
    remarks = [whole_packs(per)] if price["whole_packs"] else []
    if price["tiers"]:
        steps = [
            f"then {value(t['amount'])}"
            if t["up_to"] == "inf"
            else f"up to {value(t['up_to'])} at {value(t['amount'])}"
            for t in price["tiers"]
        ]
        terms = ", ".join(steps) + (f" per {per}" if per != 1 else "")
        remarks.insert(0, price["tier_mode"] or "graduated")
    interval = f" per {price['interval']}" if price["interval"] else ""
    said = f" ({', '.join(remarks)})" if remarks else ""
    return f"{price['billing']}{interval}: {terms}{said}"


def feature(doc: Document) -> list[str]:
    kind = doc["type"]
    if kind == "metered":
        kind += " (consumable)" if doc["consumable"] else " (continuous)"
    pairs: list[tuple[str, Any]] = [("type", kind)]
    if doc["credit_costs"]:
        pairs.append(("credit costs", _costs(doc["credit_costs"])))
    if doc["credit_systems"]:
        pairs.append(("counted in", _costs(doc["credit_systems"])))
    plans = ", ".join(f"{p['plan_id']} v{p['version']}" for p in doc["plans"])
    pairs += [("plans", plans), ("customers with a balance", doc["balances"])]
    return [f"{doc['address']}: {doc['name']}", *fields(pairs)]


def _costs(costs: dict[str, Decimal]) -> str:
    return ", ".join(f"{fid} ({value(cost)} per unit)" for fid, cost in costs.items())


def reward(doc: Document) -> list[str]:
    off = f"{value(doc['percent_off'])}%" if doc["percent_off"] is not None else None
    if doc["amount_off"] is not None:
        off = value(doc["amount_off"])
    duration = doc["duration"]
    if doc["duration_months"]:
        duration = f"{doc['duration_months']} months"
    pairs = [
        ("type", doc["type"]),
        ("off", off),
        ("duration", duration),
        ("plans", ", ".join(doc["plans"]) or "all"),
        ("promo codes", ", ".join(_code(c, doc["code_restrictions"]) for c in doc["promo_codes"])),
        ("customers", doc["customers"]),
    ]
    title = f"{doc['address']}: {doc['name']}" if doc["name"] else doc["address"]
    return [title, *fields(pairs)]


def _code(code: str, restrictions: dict[str, Document]) -> str:
    """`VIP50 (50 redemptions, until 2027-01-01 UTC, first purchase only)`, or the code
    alone."""
    terms = restrictions.get(code) or {}
    limit, until = terms.get("max_redemptions"), terms.get("expires_at")
    said = [
        f"{limit} redemption{'s' if limit != 1 else ''}" if limit else "",
        f"until {value(until)} UTC" if until else "",
        "first purchase only" if terms.get("first_time_transaction") else "",
    ]
    shown = ", ".join(part for part in said if part)
    return f"{code} ({shown})" if shown else code


def summary(doc: Document) -> list[str]:
    plans = [
        f"{p['id']} v{p['version']}"
        + (" (default)" if p["default"] else "")
        + (" (archived)" if p["archived"] else "")
        for p in doc["plans"]
    ]
    people = doc["customers"]
    total = people["managed"] + people["application"]
    return fields(
        [
            (f"features ({len(doc['features'])})", ", ".join(doc["features"])),
            (f"plans ({len(plans)})", ", ".join(plans)),
            (f"rewards ({len(doc['rewards'])})", ", ".join(doc["rewards"])),
            (
                f"customers ({total})",
                f"{people['managed']} in the file, {people['application']} created by the "
                "application (autumn-sync show customers)",
            ),
        ],
        indent="",
    )


RENDERERS: dict[str, Callable[[Document], list[str]]] = {
    "customer": customer,
    "customers": customers,
    "plan": plan,
    "feature": feature,
    "reward": reward,
    "summary": summary,
}
