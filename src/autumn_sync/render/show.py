"""`show` as text: the documents of `runtime.inspect` laid out for a person (pure).

Values: `-` for nothing, decimals with their exact digits, times as `YYYY-MM-DD` (with
`HH:MM` when not midnight; UTC), tables aligned on their columns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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
    counts = Counter(e["feature_id"] for e in doc["entities"])
    lines += ["", "Features:", *_features(doc["features"], counts)]
    if doc["entities"]:
        lines += ["", "Entities:", *_entities(doc["entities"], doc["id"])]
    lines += ["", "Recent usage:", *_events(doc["usage_events"])]
    return lines


def _entities(entities: list[Document], customer_id: str | None) -> list[str]:
    """The entities in a table, then the balances of each that has plans of its own."""
    rows = [[e["id"], e["feature_id"], value(e["name"]), _plan_ids(e["plans"])] for e in entities]
    lines = table(["ENTITY", "FEATURE", "NAME", "PLANS"], rows)
    unread = [e["id"] for e in entities if e["features"] is None]
    if unread:
        lines.append(
            f"  ({len(unread)} more with plans of their own: autumn-sync check "
            f"{customer_id or 'CUSTOMER'} FEATURE --entity ID for their balances)"
        )
    for e in entities:
        if e["features"]:
            lines += ["", f"Features of entity {e['id']}:"]
            lines += _features(e["features"], entity=e["id"])
    return lines


def _plan_ids(plans: list[Document]) -> str:
    return ", ".join(p["plan_id"] for p in plans) or "-"


def _events(events: list[Document]) -> list[str]:
    if not events:
        return ["  (none)"]
    entities = any(e.get("entity_id") for e in events)
    rows = [
        [
            e["time"].strftime("%Y-%m-%d %H:%M:%S"),
            e["feature_id"],
            *([value(e["entity_id"])] if entities else []),
            value(e["value"]) + (f" ({value(e['dropped'])} dropped)" if e.get("dropped") else ""),
            ""
            if e["charged_feature"] == e["feature_id"]
            else f"{value(e['charged'])} {e['charged_feature']}",
            value(e["idempotency_key"]),
        ]
        for e in events
    ]
    header = ["TIME", "FEATURE", *(["ENTITY"] if entities else []), "VALUE", "CHARGED"]
    return table([*header, "IDEMPOTENCY KEY"], rows)


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


def _features(
    features: list[Document], entities: Mapping[str, int] | None = None, entity: str | None = None
) -> list[str]:
    """The features in a table, each metered one followed by its breakdown (for an entity:
    its own sources, then its customer's in one line)."""
    if not features:
        return ["  (none)"]
    rows = [_feature_row(f, (entities or {}).get(f["feature_id"], 0)) for f in features]
    header, *lines = table(["FEATURE", "USAGE", "LIMIT", "BALANCE", "NEXT RESET", "NOTES"], rows)
    shown = [header]
    for f, line in zip(features, lines, strict=True):
        shown += [line, *(f"    {said}" for said in breakdown(f, entity))]
    return shown


def _feature_row(f: Document, entities: int = 0) -> list[str]:
    if f["type"] == "boolean":
        return [f["feature_id"], "-", "included", "-", "-", ""]
    notes = []
    if entities:
        notes.append(f"counts {entities} entit{'ies' if entities != 1 else 'y'}")
    if f["overage_allowed"]:
        cap = f["max_purchase"]
        notes.append("overage allowed" + (f" (cap {value(cap)})" if cap is not None else ""))
    limit = "unlimited" if f["unlimited"] else value(f["limit"])
    return [
        f["feature_id"],
        value(f["usage"]),
        limit,
        value(f["balance"]),
        value(f["next_reset"]),
        ", ".join(notes),
    ]


def breakdown(feature: Document, entity: str | None = None) -> list[str]:
    """One line per source of a feature's balance, in the order usage is taken, an overage
    after the source that holds it; for an entity, its own sources, then one line for what
    its customer's have left."""
    entries = feature.get("breakdown") or []
    lines = []
    for entry in (e for e in entries if e["entity_id"] == entity):
        lines.append(_source(entry))
        if entry["overage"]:
            lines.append(_overage(entry, feature))
    theirs = [e for e in entries if e["entity_id"] is None]
    if entity is not None and theirs:
        lines.append(f"then the customer's: {_left(theirs)}")
    return lines


def _source(entry: Document) -> str:
    """`plan pro: 100 of 100 used, resets 2027-02-01 (month)`, `grant welcome: 20 of 50
    used (one-time, expires 2027-03-01)`, `rollover from pro: 60 left, expires 2027-04-01`
    (`30 of 80 left` once some is used)."""
    kind = entry["kind"]
    name = SOURCE_NAMES[kind](entry)
    if kind == "rollover":
        of = f" of {value(entry['granted'])}" if entry["used"] else ""
        said = f"{name}: {value(entry['remaining'])}{of} left"
        return said + (f", expires {value(entry['expires'])}" if entry["expires"] else "")
    if entry["unlimited"]:
        said = f"{name}: unlimited, {value(entry['used'])} used"
    else:
        used = min(entry["used"], entry["granted"])
        said = f"{name}: {value(used)} of {value(entry['granted'])} used"
    if entry["next_reset"] is not None:
        return f"{said}, resets {value(entry['next_reset'])} ({_every(entry)})"
    if kind == "grant":
        expiry = f", expires {value(entry['expires'])}" if entry["expires"] else ""
        return f"{said} (one-time{expiry})"
    return said


SOURCE_NAMES: dict[str, Callable[[Document], str]] = {
    "plan": lambda e: f"plan {e['plan_id']}",
    "allowance": lambda e: "allowance",
    "grant": lambda e: f"grant {e['source'].split(':', 1)[1]}",
    "rollover": lambda e: f"rollover from {e['plan_id']}",
}
PLURALS = {"semi_annual": "half-years"}


def _every(entry: Document) -> str:
    """`month`, or `every 3 months` for an interval count above 1."""
    interval, count = entry["reset"], entry["interval_count"] or 1
    if count == 1:
        return str(interval)
    return f"every {count} {PLURALS.get(interval, interval + 's')}"


def _overage(entry: Document, feature: Document) -> str:
    """`+20 overage (billed, cap 50)`: billed on the feature's pay-per-use item, else not."""
    if feature.get("overage_source") != entry["source"]:
        return f"+{value(entry['overage'])} overage (not billed)"
    cap = feature["max_purchase"]
    terms = "billed" + (f", cap {value(cap)}" if cap is not None else "")
    return f"+{value(entry['overage'])} overage ({terms})"


def _left(entries: list[Document]) -> str:
    if any(e["unlimited"] for e in entries):
        return "unlimited"
    return f"{value(sum((e['remaining'] for e in entries), Decimal(0)))} left"


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
    items = version["items"]
    terms = any(_terms(i) for i in items)  # the column only when some item has terms
    rows = [
        [i["feature_id"], _included(i), _reset(i), _usage_price(i["price"])]
        + ([_terms(i)] if terms else [])
        for i in items
    ]
    lines += ["", f"Items (version {version['version']}):"]
    header = ["FEATURE", "INCLUDED", "RESET", "PRICE"] + (["TERMS"] if terms else [])
    lines += table(header, rows) if rows else ["  (none)"]
    return lines


def _reset(item: Document) -> str:
    count = item.get("interval_count") or 1
    return value(item["reset"]) if count == 1 else f"every {count} {item['reset']}s"


def _terms(item: Document) -> str:
    """`rollover up to 500, expires after 2 months`, `overage up to 50`."""
    said = []
    rollover = item.get("rollover")
    if rollover is not None:
        cap = rollover["max"]
        if rollover["max_percentage"] is not None:
            cap = f"{value(rollover['max_percentage'])}%"
        words = "rollover" if cap is None else f"rollover up to {value(cap)}"
        months = rollover["expires_after_months"]
        said.append(words + (f", expires after {months} months" if months else ""))
    if item.get("max_purchase") is not None:
        said.append(f"overage up to {value(item['max_purchase'])}")
    return "; ".join(said)


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
