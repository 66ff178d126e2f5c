"""What `autumn-sync show` prints, read from the database: one customer (plans, balances,
Stripe ids), the list of customers, a plan, a feature, a reward, or a summary. Each answer is
a plain dict (decimals as `Decimal`, times as `datetime`), the same for JSON and text.

Every read is a bounded number of `select()`s: listing customers is two queries whatever their
number (customers, then the plans of those customers); a customer is a fixed number, plus
those of the balances of its first ENTITY_BALANCES entities with plans of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, func, or_, select, true

from autumn_sync.database import schema as t
from autumn_sync.model.address import Address, AddressError, Kind, customer_key, keyed, named
from autumn_sync.runtime.breakdown import overage_target
from autumn_sync.runtime.entitlements import Entitlements, feature_balance
from autumn_sync.runtime.errors import BillingError
from autumn_sync.runtime.queries import customer_info, entitlements, info_of, plans_by_customer
from autumn_sync.runtime.results import PlanInfo

RECENT_EVENTS = 20  # usage events shown with a customer
ENTITY_BALANCES = 20  # entities with plans of their own whose balances are shown
ADDRESSES = "customer.ID, customer[EMAIL], plan.ID, plan.ID.vN, feature.ID, reward.ID or customers"


class NotFound(BillingError):
    """The address names nothing the database holds (or is not an address)."""


@dataclass(frozen=True)
class Shown:
    """What `show` found: `kind` (summary, customers, customer, plan, feature, reward) and
    the document."""

    kind: str
    document: dict[str, Any]


def show_address(conn: Connection, address: str | None, now: datetime) -> Shown:
    """The document for `address` (None: the summary)."""
    if address is None:
        return Shown("summary", summary(conn))
    if address == "customers":
        return Shown("customers", {"customers": list_customers(conn, None, None, now)})
    try:
        parsed = Address.parse(address)
    except AddressError:
        raise NotFound(f"{address!r} is not an address: use {ADDRESSES}") from None
    shown = _SHOWN.get(parsed.kind)
    if shown is None or parsed.part is not None or parsed.index is not None:
        raise NotFound(f"{address!r} is not an address: use {ADDRESSES}")
    return Shown(parsed.kind.value, shown(conn, parsed, now))


# --- customers -----------------------------------------------------------------------------


def _customer(conn: Connection, address: Address, now: datetime) -> dict[str, Any]:
    return customer(conn, _customer_row(conn, address), now)


def _customer_row(conn: Connection, address: Address) -> Row[Any]:
    c = t.customers
    if not address.by_email:
        found = conn.execute(select(c).where(c.c.id == address.key)).first()
        if found is None:
            raise NotFound(f"no customer with id {address.key!r}")
        return found
    email = str(address.key)
    declared = conn.execute(select(c).where(c.c.file_key == address.customer_key)).first()
    if declared is not None:
        return declared
    rows = conn.execute(select(c).where(c.c.email == email).order_by(c.c.internal_id)).all()
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise NotFound(f"no customer with email {email!r}")
    ids = ", ".join(keyed(Kind.CUSTOMER, customer_key(row.id, None)) for row in rows if row.id)
    raise NotFound(f"{len(rows)} customers have email {email!r}: show one of {ids}")


def customer(conn: Connection, row: Row[Any], now: datetime) -> dict[str, Any]:
    """A customer: identity, plans (custom versions, status, next renewal, Stripe
    subscription), features with usage, limit, next reset and their breakdown per source,
    entities (each with its own plans and their balances), rewards and its recent usage
    events.

    A fixed number of queries, plus one `entitlements` read (a fixed number too) for each of
    the first ENTITY_BALANCES entities with plans of their own, whatever their number."""
    info = customer_info(conn, row, now)
    ents = entitlements(conn, row, now)
    iid = row.internal_id
    e, r = t.entities, t.customer_rewards
    entity_rows = conn.execute(
        select(e).where(e.c.customer_internal_id == iid).order_by(e.c.id)
    ).all()
    rewards = conn.execute(
        select(r.c.reward_id).where(r.c.customer_internal_id == iid).order_by(r.c.reward_id)
    ).scalars()
    return {
        "address": info.address,
        "declared_as": keyed(Kind.CUSTOMER, row.file_key) if row.file_key else None,
        **info.as_dict(),
        "features": [balance_document(ents, f, now) for f in ents.shown_features()],
        "entities": entities(conn, row, info.plans, entity_rows, now),
        "rewards": list(rewards),
        "usage_events": usage_events(conn, iid),
    }


def balance_document(ents: Entitlements, feature_id: str, now: datetime) -> dict[str, Any]:
    """The feature's balance as `check` answers it, and the source that takes its overage
    (`overage_source`: the first item priced pay-per-use, None without one)."""
    balance = feature_balance(ents, feature_id, now)
    target = overage_target(balance.breakdown)
    return {
        **balance.as_dict(),
        "overage_source": None if target is None else target.source.key,
    }


def entities(
    conn: Connection,
    row: Row[Any],
    plans: Sequence[PlanInfo],
    entity_rows: Sequence[Row[Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """The customer's entities, each with its own plans and the balances of the features
    those plans have, as `check --entity` sees them (its sources, then the customer's):
    for the first ENTITY_BALANCES entities with plans; None for the others (not read)."""
    shown = []
    with_plans = 0
    for ent in entity_rows:
        own = [plan for plan in plans if plan.entity_id == ent.id]
        balances = None
        if not own:
            balances = []
        elif with_plans < ENTITY_BALANCES:
            with_plans += 1
            balances = entity_balances(conn, row, ent.id, now)
        shown.append(
            {
                "id": ent.id,
                "feature_id": ent.feature_id,
                "name": ent.name,
                "plans": [plan.as_dict() for plan in own],
                "features": balances,
            }
        )
    return shown


def entity_balances(
    conn: Connection, row: Row[Any], entity_id: str, now: datetime
) -> list[dict[str, Any]]:
    """The balances of the features the entity's own plans have (one `entitlements` read)."""
    ents = entitlements(conn, row, now, entity_id)
    own = {item.feature for item in ents.items if item.entity == entity_id}
    return [balance_document(ents, f, now) for f in sorted(own) if f in ents.features]


def usage_events(conn: Connection, iid: int) -> list[dict[str, Any]]:
    """The customer's RECENT_EVENTS last tracks, the newest first."""
    e = t.usage_events
    query = (
        select(e)
        .where(e.c.customer_internal_id == iid)
        .order_by(e.c.created_at.desc(), e.c.internal_id.desc())
        .limit(RECENT_EVENTS)
    )
    return [
        {
            "time": row.created_at,
            "feature_id": row.feature_id,
            "value": row.value,
            "charged_feature": row.charged_feature_id,
            "charged": row.charged,
            "dropped": row.dropped,
            "entity_id": row.entity_id,
            "idempotency_key": row.idempotency_key,
        }
        for row in conn.execute(query)
    ]


def _customer_filter(search: str | None, plan_id: str | None) -> ColumnElement[bool]:
    """Id, email or name contains `search` (any case); on `plan_id` (or one of its entities)."""
    c = t.customers
    chosen: ColumnElement[bool] = true()
    if search:
        pattern = "%" + re.sub(r"([/%_])", r"/\1", search.lower()) + "%"
        columns = (c.c.id, c.c.email, c.c.name)
        chosen = chosen & or_(*(func.lower(col).like(pattern, escape="/") for col in columns))
    if plan_id:
        on = t.customer_plans.alias("on_plan")
        mine = (on.c.customer_internal_id == c.c.internal_id) & (on.c.plan_id == plan_id)
        chosen = chosen & exists().where(mine).correlate(c)
    return chosen


def list_customers(
    conn: Connection, search: str | None, plan_id: str | None, now: datetime
) -> list[dict[str, Any]]:
    """The customers (the file's and the application's) whose id, email or name contains
    `search` (any case) and who are on `plan_id`, oldest first: two queries."""
    c = t.customers
    chosen = _customer_filter(search, plan_id)
    rows = conn.execute(select(c).where(chosen).order_by(c.c.internal_id))
    plans = plans_by_customer(conn, select(c.c.internal_id).where(chosen), now)
    listed = []
    for row in rows:
        info = info_of(row, plans.get(row.internal_id, []))
        listed.append({"address": info.address, **info.as_dict()})
    return listed


# --- catalog -------------------------------------------------------------------------------


def plan(conn: Connection, plan_id: str, version: int | None) -> dict[str, Any]:
    """A plan, its versions with the customers on each, and the content of `version` (the
    current one by default)."""
    row = conn.execute(select(t.plans).where(t.plans.c.id == plan_id)).first()
    if row is None:
        raise NotFound(f"no plan {plan_id!r} in the database")
    shown = version or row.current_version
    pv, cp = t.plan_versions, t.customer_plans
    counts: dict[int, int] = dict(
        conn.execute(
            select(cp.c.version, func.count()).where(cp.c.plan_id == plan_id).group_by(cp.c.version)
        ).all()
    )
    versions = conn.execute(select(pv).where(pv.c.plan_id == plan_id).order_by(pv.c.version)).all()
    content = next((v for v in versions if v.version == shown), None)
    if content is None:
        raise NotFound(f"plan {plan_id!r} has no version {shown}")
    return {
        "address": named(Kind.PLAN, plan_id),
        "id": plan_id,
        "name": row.name,
        "description": row.description,
        "group": row.group_id,
        "default": bool(row.is_default),
        "add_on": bool(row.add_on),
        "archived": bool(row.archived),
        "migrate_customers": bool(row.migrate_customers),
        "current_version": row.current_version,
        "versions": [
            {
                "version": v.version,
                "customers": counts.get(v.version, 0),
                "created_at": v.created_at,
            }
            for v in versions
        ],
        "version": _version(conn, content),
    }


def _version(conn: Connection, row: Row[Any]) -> dict[str, Any]:
    pi, tiers, f = t.plan_items, t.plan_item_tiers, t.features
    of_version = (pi.c.plan_id == row.plan_id) & (pi.c.version == row.version)
    tier_rows: dict[str, list[dict[str, Any]]] = {}
    tier_query = select(tiers).where(
        (tiers.c.plan_id == row.plan_id) & (tiers.c.version == row.version)
    )
    for tier in conn.execute(tier_query.order_by(tiers.c.position)):
        tier_rows.setdefault(tier.feature_id, []).append(
            {"up_to": "inf" if tier.up_to is None else tier.up_to, "amount": tier.amount}
        )
    continuous = (f.c.type == "metered") & (f.c.consumable == False)  # noqa: E712
    items = conn.execute(
        select(pi, continuous.label("continuous"))
        .join(f, f.c.id == pi.c.feature_id)
        .where(of_version)
        .order_by(pi.c.feature_id)
    )
    return {
        "version": row.version,
        "price": None
        if row.price_amount is None
        else {"amount": row.price_amount, "interval": row.price_interval},
        "free_trial": None
        if row.trial_days is None
        else {
            "days": row.trial_days,
            "card_required": bool(row.trial_card_required),
            "unique_fingerprint": bool(row.trial_unique_fingerprint),
        },
        "items": [_item(item, tier_rows.get(item.feature_id, [])) for item in items],
    }


def _item(row: Row[Any], tiers: list[dict[str, Any]]) -> dict[str, Any]:
    price = None
    if row.billing is not None:
        price = {
            "billing": row.billing,
            "amount": row.price_amount,
            "per": row.price_per,
            "interval": row.price_interval,
            "tier_mode": row.tier_mode,
            "tiers": tiers,
            "whole_packs": _whole_packs(row),
        }
    return {
        "feature_id": row.feature_id,
        "included": row.included,
        "unlimited": row.unlimited,
        "reset": row.reset_interval,
        "interval_count": row.reset_count or 1,
        "rollover": _rollover(row),
        "max_purchase": row.max_purchase,
        "price": price,
    }


def _rollover(row: Row[Any]) -> dict[str, Any] | None:
    if not row.rollover:
        return None
    return {
        "max": row.rollover_max,
        "max_percentage": row.rollover_max_percentage,
        "expires_after_months": row.rollover_months,
    }


def _whole_packs(row: Row[Any]) -> bool:
    """Whether the item's usage beyond the included units is billed in whole packs of its
    price's `per` units, rounded up: pay-per-use per N > 1 of a feature whose usage `usage
    report` sends to a meter (not a continuous one's, billed as a quantity)."""
    per = row.price_per or 1
    return row.billing == "pay_per_use" and per > 1 and not row.continuous


def feature(conn: Connection, feature_id: str) -> dict[str, Any]:
    """A feature, its credit costs (or the credit systems that count it), the plans whose
    current version has it, and how many customers have a balance of it."""
    f, costs, pi, p = t.features, t.credit_costs, t.plan_items, t.plans
    row = conn.execute(select(f).where(f.c.id == feature_id)).first()
    if row is None:
        raise NotFound(f"no feature {feature_id!r} in the database")
    current = (pi.c.plan_id == p.c.id) & (pi.c.version == p.c.current_version)
    plans = conn.execute(
        select(p.c.id, p.c.current_version)
        .join(pi, current)
        .where(pi.c.feature_id == feature_id)
        .order_by(p.c.id)
    ).all()
    own = conn.execute(select(costs).where(costs.c.credit_feature_id == feature_id)).all()
    counted_in = conn.execute(select(costs).where(costs.c.feature_id == feature_id)).all()
    balances = select(func.count()).where(t.balances.c.feature_id == feature_id)
    return {
        "address": named(Kind.FEATURE, feature_id),
        "id": feature_id,
        "name": row.name,
        "type": row.type,
        "consumable": bool(row.consumable),
        "credit_costs": {c.feature_id: c.cost for c in sorted(own, key=lambda c: c.feature_id)},
        "credit_systems": {
            c.credit_feature_id: c.cost
            for c in sorted(counted_in, key=lambda c: c.credit_feature_id)
        },
        "plans": [{"plan_id": pid, "version": version} for pid, version in plans],
        "balances": int(conn.execute(balances).scalar_one()),
    }


def reward(conn: Connection, reward_id: str) -> dict[str, Any]:
    """A reward, the plans it applies to, its promotion codes and how many customers have it."""
    r = t.rewards
    row = conn.execute(select(r).where(r.c.id == reward_id)).first()
    if row is None:
        raise NotFound(f"no reward {reward_id!r} in the database")
    rp, codes, cr = t.reward_plans, t.promo_codes, t.customer_rewards
    plans = conn.execute(select(rp.c.plan_id).where(rp.c.reward_id == reward_id)).scalars()
    promo = conn.execute(select(codes).where(codes.c.reward_id == reward_id)).all()
    holders = select(func.count()).where(cr.c.reward_id == reward_id)
    return {
        "address": named(Kind.REWARD, reward_id),
        "id": reward_id,
        "name": row.name,
        "type": row.type,
        "percent_off": row.percent_off,
        "amount_off": row.amount_off,
        "duration": row.duration,
        "duration_months": row.duration_months,
        "plans": sorted(plans),
        "promo_codes": sorted(code.code for code in promo),
        "code_restrictions": {
            code.code: _restrictions(code) for code in sorted(promo, key=lambda c: c.code)
        },
        "customers": int(conn.execute(holders).scalar_one()),
    }


def _restrictions(code: Row[Any]) -> dict[str, Any]:
    """A promotion code's restrictions: `max_redemptions`, `expires_at` (UTC) and
    `first_time_transaction`, null (false) where it has none."""
    return {
        "max_redemptions": code.max_redemptions,
        "expires_at": code.expires_at,
        "first_time_transaction": bool(code.first_time_transaction),
    }


def summary(conn: Connection) -> dict[str, Any]:
    """What the database holds, in a few lines: features, plans, rewards by id; customers
    counted (the file's and the application's)."""
    p, c = t.plans, t.customers
    features = conn.execute(select(t.features.c.id).order_by(t.features.c.id)).scalars()
    plans = conn.execute(
        select(p.c.id, p.c.current_version, p.c.archived, p.c.is_default).order_by(p.c.id)
    ).all()
    rewards = conn.execute(select(t.rewards.c.id).order_by(t.rewards.c.id)).scalars()
    counts: dict[Any, int] = dict(
        conn.execute(select(c.c.managed, func.count()).group_by(c.c.managed)).all()
    )
    return {
        "features": list(features),
        "plans": [
            {
                "id": row.id,
                "version": row.current_version,
                "default": bool(row.is_default),
                "archived": bool(row.archived),
            }
            for row in plans
        ],
        "rewards": list(rewards),
        "customers": {
            "managed": sum(n for managed, n in counts.items() if managed),
            "application": sum(n for managed, n in counts.items() if not managed),
        },
    }


def _plan(conn: Connection, address: Address, _now: datetime) -> dict[str, Any]:
    return plan(conn, str(address.key), address.version)


def _feature(conn: Connection, address: Address, _now: datetime) -> dict[str, Any]:
    return feature(conn, str(address.key))


def _reward(conn: Connection, address: Address, _now: datetime) -> dict[str, Any]:
    return reward(conn, str(address.key))


_SHOWN: dict[Kind, Callable[[Connection, Address, datetime], dict[str, Any]]] = {
    Kind.CUSTOMER: _customer,
    Kind.PLAN: _plan,
    Kind.FEATURE: _feature,
    Kind.REWARD: _reward,
}
