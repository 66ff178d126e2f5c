"""The file that describes a state: `autumn-sync import` writes it, and planning it against
the same database shows no changes. Archived plans are left out (they are not offered);
customers are the ones the file manages, each under the identity the file gave it (a
pre-provisioned customer stays listed by its email after the application bound an id to it),
with their declared balances. The application's own customers are only counted."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import yaml

from autumn_sync.model.address import key_label
from autumn_sync.model.customers import (
    CHARGE_AUTOMATICALLY,
    Balance,
    Customer,
    CustomerPlan,
    Entity,
)
from autumn_sync.model.money import canonical
from autumn_sync.model.records import (
    Feature,
    FeatureType,
    Plan,
    PlanItem,
    Reward,
    Rollover,
    UsagePrice,
)
from autumn_sync.model.state import State

HEADER = "# Written by `autumn-sync import`: the catalog as the billing database holds it.\n"


def dump_state(state: State) -> str:
    """YAML text for `state`, in the file format (version 1)."""
    document: dict[str, Any] = {"version": 1}
    if state.settings is not None:
        document["settings"] = {"currency": state.settings.currency}
        if state.settings.create_customers is not None:
            document["settings"]["stripe"] = {"create_customers": state.settings.create_customers}
        billing = {"upgrades": state.settings.upgrades, "past_due": state.settings.past_due}
        if any(value is not None for value in billing.values()):
            document["settings"]["billing"] = {k: v for k, v in billing.items() if v is not None}
    document["features"] = {f.id: _feature(f) for f in _sorted(state.features)}
    document["plans"] = {p.id: _plan(p) for p in _sorted(state.active_plans)}
    document["rewards"] = {r.id: _reward(r) for r in _sorted(state.rewards)}
    customers = [c for c in _sorted(state.customers) if c.managed]
    if customers:
        balances = _balances_by_customer(state)
        document["customers"] = [_customer(c, balances.get(c.key, [])) for c in customers]
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + _app_customers(state.app_customers) + body


def _app_customers(count: int) -> str:
    if not count:
        return ""
    who = "customer" if count == 1 else "customers"
    return f"# {count} {who} the application created not listed: the file does not manage them.\n"


def _sorted(records: dict[str, Any]) -> list[Any]:
    return [records[key] for key in sorted(records)]


def _feature(feature: Feature) -> dict[str, Any]:
    data: dict[str, Any] = {"name": feature.name, "type": feature.type.value}
    if feature.type is FeatureType.METERED:
        data["consumable"] = feature.consumable
    if feature.credit_costs:
        data["credit_costs"] = dict(feature.credit_costs)
    return data


def _plan(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = {"name": plan.name}
    optional = {
        "description": plan.description,
        "group": plan.group,
        "add_on": plan.add_on or None,
        "default": plan.default or None,
        "migrate_customers": plan.migrate_customers or None,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    content = plan.content
    if content.price is not None:
        data["price"] = {"amount": content.price.amount, "interval": content.price.interval}
    if content.free_trial is not None:
        trial = content.free_trial
        data["free_trial"] = {
            "days": trial.days,
            "card_required": trial.card_required,
            "unique_fingerprint": trial.unique_fingerprint,
            **({"on_end": trial.on_end} if trial.on_end != "cancel" else {}),
        }
    if content.items:
        data["items"] = [_item(item) for item in content.items]
    return data


def _item(item: PlanItem) -> dict[str, Any]:
    data: dict[str, Any] = {"feature": item.feature}
    if item.included is not None:
        data["included"] = item.included
    if item.unlimited:
        data["unlimited"] = True
    if item.reset is not None:
        data["reset"] = item.reset
    if item.interval_count != 1:
        data["interval_count"] = item.interval_count
    if item.rollover is not None:
        data["rollover"] = _rollover(item.rollover)
    if item.price is not None:
        data["price"] = _usage_price(item.price)
    if item.max_purchase is not None:
        data["max_purchase"] = item.max_purchase
    return data


def _rollover(rollover: Rollover) -> dict[str, Any]:
    caps = {"max": rollover.max, "max_percentage": rollover.max_percentage}
    data: dict[str, Any] = {k: v for k, v in caps.items() if v is not None}
    months = rollover.expires_months
    data["expires_after"] = "never" if months is None else {"months": months}
    return data


def _usage_price(price: UsagePrice) -> dict[str, Any]:
    data: dict[str, Any] = {"billing": price.billing.value}
    if price.amount is not None:
        data["amount"] = price.amount
    if price.per != 1:
        data["per"] = price.per
    if price.tiers:
        data["tier_mode"] = price.tier_mode.value if price.tier_mode else "graduated"
        data["tiers"] = [
            {"up_to": "inf" if t.up_to is None else t.up_to, "amount": t.amount}
            for t in price.tiers
        ]
    if price.interval is not None:
        data["interval"] = price.interval
    return data


def _reward(reward: Reward) -> dict[str, Any]:
    data: dict[str, Any] = {"type": reward.type.value}
    if reward.name is not None:
        data["name"] = reward.name
    if reward.percent_off is not None:
        data["percent_off"] = reward.percent_off
    if reward.amount_off is not None:
        data["amount_off"] = reward.amount_off
    duration = reward.duration
    data["duration"] = (
        {"months": duration.months} if duration.kind == "repeating" else duration.kind
    )
    if reward.plans:
        data["plans"] = list(reward.plans)
    if reward.promo_codes:
        data["promo_codes"] = [_promo_code(reward, code) for code in reward.promo_codes]
    return data


def _promo_code(reward: Reward, code: str) -> str | dict[str, Any]:
    """A code as its text, or with its restrictions: `{code: VIP50, max_redemptions: 50}`;
    an expiry at midnight is written as its date."""
    restrictions = reward.restrictions(code)
    expires = restrictions.expires_at
    optional = {
        "max_redemptions": restrictions.max_redemptions,
        "expires_at": expires.date() if expires and expires == _midnight(expires) else expires,
        "first_time_transaction": restrictions.first_time_transaction or None,
    }
    terms = {k: v for k, v in optional.items() if v is not None}
    return {"code": code, **terms} if terms else code


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _balances_by_customer(state: State) -> dict[str, list[Balance]]:
    found: dict[str, list[Balance]] = {}
    for address in sorted(state.balances):
        balance = state.balances[address]
        found.setdefault(balance.customer, []).append(balance)
    return found


def _customer(customer: Customer, balances: list[Balance]) -> dict[str, Any]:
    """The customer under its file identity: `id` (and email) or, pre-provisioned, `email`."""
    by_id = customer.key.startswith(".")
    data: dict[str, Any] = {"id": key_label(customer.key)} if by_id else {}
    optional = {
        "email": customer.email,
        "name": customer.name,
        "fingerprint": customer.fingerprint,
        "metadata": dict(customer.metadata) or None,
        "stripe": _stripe_link(customer),
        "billing": _billing(customer),
        "plans": [_customer_plan(p) for p in customer.plans] or None,
        "entities": [_entity(e) for e in customer.entities] or None,
        "balances": {b.feature: _balance(b) for b in balances} or None,
        "rewards": list(customer.rewards) or None,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return data


def _stripe_link(customer: Customer) -> dict[str, Any] | None:
    if customer.stripe_customer:
        return {"customer": customer.stripe_customer}
    return {"create": True} if customer.stripe_create else None


def _billing(customer: Customer) -> dict[str, Any] | None:
    if customer.collection == CHARGE_AUTOMATICALLY and customer.days_until_due is None:
        return None
    data: dict[str, Any] = {"collection": customer.collection}
    if customer.days_until_due is not None:
        data["days_until_due"] = customer.days_until_due
    return data


def _customer_plan(plan: CustomerPlan) -> str | dict[str, Any]:
    """A plan id, or the plan with the terms set on it (a custom version: price, items)."""
    optional = {
        "quantity": plan.quantity if plan.quantity != 1 else None,
        "quantities": dict(plan.quantities) or None,
        "start": plan.start,
        "trial_days": plan.trial_days,
        "price": {"amount": plan.price.amount, "interval": plan.price.interval}
        if plan.price
        else None,
        "items": [_item(item) for item in plan.items] or None,
    }
    terms = {k: v for k, v in optional.items() if v is not None}
    return {"plan": plan.plan, **terms} if terms else plan.plan


def _entity(entity: Entity) -> dict[str, Any]:
    data: dict[str, Any] = {"id": entity.id, "feature": entity.feature}
    if entity.name is not None:
        data["name"] = entity.name
    if entity.plans:
        data["plans"] = [_customer_plan(p) for p in entity.plans]
    return data


def _balance(balance: Balance) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if balance.allowance is not None:
        data["allowance"] = balance.allowance
    if balance.reset_at is not None:
        data["reset_at"] = balance.reset_at
    if balance.grants:
        data["grants"] = [
            {"id": g.id, "amount": g.amount, **({"expires": g.expires} if g.expires else {})}
            for g in balance.grants
        ]
    return data


class _Dumper(yaml.SafeDumper):
    """Writes decimals as plain YAML numbers with their exact digits."""

    def ignore_aliases(self, data: Any) -> bool:
        """Never `&id001` / `*id001`: a value held twice in memory (one `Decimal` in two
        places) is written out in full at each place, as a person would write it."""
        return True


def _decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    value = canonical(value)
    if value == value.to_integral_value():
        return dumper.represent_scalar("tag:yaml.org,2002:int", format(value, "f"))
    return dumper.represent_scalar("tag:yaml.org,2002:float", format(value, "f"))


# Line breaks YAML knows beyond \n and \r: in plain or single-quoted text they are read back as
# a space, so text holding them is written double-quoted, where they are escaped.
_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(mark in value for mark in _UNICODE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _moment(dumper: yaml.SafeDumper, value: datetime) -> yaml.ScalarNode:
    """A time (UTC, as the model keeps times) in ISO 8601 with its zone: `…T12:00:00Z`."""
    text = value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)


_Dumper.add_representer(Decimal, _decimal)
_Dumper.add_representer(datetime, _moment)
_Dumper.add_representer(str, _text)
