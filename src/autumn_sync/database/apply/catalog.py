"""Database appliers of the catalog: settings, features, plans (and their versions), rewards.
Each registers in `APPLIERS` for its (change, record) classes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert, update

from autumn_sync.database import schema as t
from autumn_sync.database.apply.transaction import APPLIERS, Transaction
from autumn_sync.database.read.catalog import CREATE_CUSTOMERS, PAST_DUE, UPGRADES
from autumn_sync.model.records import Feature, Plan, PlanContent, PlanItem, Reward, Settings
from autumn_sync.plan.changes import Archive, Create, Delete, Update


@APPLIERS.made(Create, Settings)
def _create_settings(tx: Transaction, _change: Create, settings: Settings) -> None:
    _settings(tx, settings)


@APPLIERS.changed(Update, Settings)
def _update_settings(tx: Transaction, _change: Update, _old: Settings, settings: Settings) -> None:
    _settings(tx, settings)


def _settings(tx: Transaction, settings: Settings) -> None:
    values = {
        "currency": settings.currency,
        CREATE_CUSTOMERS: settings.create_customers,
        UPGRADES: settings.upgrades,
        PAST_DUE: settings.past_due,
    }
    tx.connection.execute(delete(t.settings).where(t.settings.c.key.in_(list(values))))
    rows = [{"key": key, "value": value} for key, value in values.items() if value is not None]
    tx.connection.execute(insert(t.settings), rows)


def _feature_row(feature: Feature) -> dict[str, Any]:
    return {"name": feature.name, "type": feature.type.value, "consumable": feature.consumable}


def _insert_credit_costs(tx: Transaction, feature: Feature) -> None:
    rows = [
        {"credit_feature_id": feature.id, "feature_id": fid, "cost": cost}
        for fid, cost in feature.credit_costs
    ]
    if rows:
        tx.connection.execute(insert(t.credit_costs), rows)


@APPLIERS.made(Create, Feature)
def _create_feature(tx: Transaction, _change: Create, feature: Feature) -> None:
    tx.connection.execute(insert(t.features).values(id=feature.id, **_feature_row(feature)))
    _insert_credit_costs(tx, feature)


@APPLIERS.changed(Update, Feature)
def _update_feature(tx: Transaction, _change: Update, _old: Feature, feature: Feature) -> None:
    tx.connection.execute(
        update(t.features).where(t.features.c.id == feature.id).values(**_feature_row(feature))
    )
    tx.connection.execute(
        delete(t.credit_costs).where(t.credit_costs.c.credit_feature_id == feature.id)
    )
    _insert_credit_costs(tx, feature)


@APPLIERS.gone(Delete, Feature)
def _delete_feature(tx: Transaction, _change: Delete, feature: Feature) -> None:
    """Also drops the feature from plan versions nobody is on (history that no customer needs;
    the plan refuses the removal when a version with customers uses it)."""
    fid = feature.id
    cc, items, tiers = t.credit_costs, t.plan_items, t.plan_item_tiers
    tx.connection.execute(
        delete(cc).where((cc.c.credit_feature_id == fid) | (cc.c.feature_id == fid))
    )
    tx.connection.execute(delete(tiers).where(tiers.c.feature_id == fid))
    tx.connection.execute(delete(items).where(items.c.feature_id == fid))
    tx.connection.execute(delete(t.features).where(t.features.c.id == fid))


def _plan_row(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "description": plan.description,
        "group_id": plan.group,
        "add_on": plan.add_on,
        "is_default": plan.default,
        "migrate_customers": plan.migrate_customers,
    }


def _insert_version(tx: Transaction, plan_id: str, version: int, content: PlanContent) -> None:
    price, trial = content.price, content.free_trial
    tx.connection.execute(
        insert(t.plan_versions).values(
            plan_id=plan_id,
            version=version,
            price_amount=price.amount if price else None,
            price_interval=price.interval if price else None,
            trial_days=trial.days if trial else None,
            trial_card_required=trial.card_required if trial else None,
            trial_unique_fingerprint=trial.unique_fingerprint if trial else None,
            trial_on_end=trial.on_end if trial and trial.on_end != "cancel" else None,
            created_at=tx.now,
        )
    )
    _insert_items(tx, plan_id, version, content)


def _insert_items(tx: Transaction, plan_id: str, version: int, content: PlanContent) -> None:
    items, tiers = [], []
    for item in content.items:
        price = item.price
        items.append(
            {
                "plan_id": plan_id,
                "version": version,
                "feature_id": item.feature,
                "included": item.included,
                "unlimited": item.unlimited,
                "reset_interval": item.reset,
                "billing": price.billing.value if price else None,
                "price_amount": price.amount if price else None,
                "price_per": price.per if price else None,
                "price_interval": price.interval if price else None,
                "tier_mode": price.tier_mode.value if price and price.tier_mode else None,
                **_item_rules(item),
            }
        )
        for position, tier in enumerate(price.tiers if price else ()):
            tiers.append(
                {
                    "plan_id": plan_id,
                    "version": version,
                    "feature_id": item.feature,
                    "position": position,
                    "up_to": tier.up_to,
                    "amount": tier.amount,
                }
            )
    if items:
        tx.connection.execute(insert(t.plan_items), items)
    if tiers:
        tx.connection.execute(insert(t.plan_item_tiers), tiers)


def _item_rules(item: PlanItem) -> dict[str, object]:
    """The `plan_items` columns of an item's reset count, rollover and overage cap."""
    rollover = item.rollover
    return {
        "reset_count": item.interval_count if item.interval_count != 1 else None,
        "rollover": rollover is not None,
        "rollover_max": rollover.max if rollover else None,
        "rollover_max_percentage": rollover.max_percentage if rollover else None,
        "rollover_months": rollover.expires_months if rollover else None,
        "max_purchase": item.max_purchase,
    }


def _delete_versions(tx: Transaction, plan_id: str, version: int | None = None) -> None:
    """Remove the rows of one version of a plan (all versions when `version` is None)."""
    for table in (t.plan_item_tiers, t.plan_items, t.plan_versions):
        condition = table.c.plan_id == plan_id
        if version is not None:
            condition = and_(condition, table.c.version == version)
        tx.connection.execute(delete(table).where(condition))


@APPLIERS.made(Create, Plan)
def _create_plan(tx: Transaction, _change: Create, plan: Plan) -> None:
    tx.connection.execute(
        insert(t.plans).values(id=plan.id, archived=False, current_version=1, **_plan_row(plan))
    )
    _insert_version(tx, plan.id, 1, plan.content)


@APPLIERS.changed(Update, Plan)
def _update_plan(tx: Transaction, change: Update, old: Plan, new: Plan) -> None:
    assert old.version is not None, "a plan in the database has a version"
    version = old.version
    if change.new_version is not None:
        version = change.new_version
        _insert_version(tx, new.id, version, new.content)
    elif old.content != new.content:
        _delete_versions(tx, new.id, old.version)
        _insert_version(tx, new.id, old.version, new.content)
    if change.moving:
        _move_customers(tx, new.id, version)
    tx.connection.execute(
        update(t.plans)
        .where(t.plans.c.id == new.id)
        .values(archived=False, current_version=version, **_plan_row(new))
    )


def _move_customers(tx: Transaction, plan_id: str, version: int) -> None:
    """`migrate_customers`: the customers of every older version move to `version`."""
    cp = t.customer_plans
    tx.connection.execute(
        update(cp)
        .where((cp.c.plan_id == plan_id) & (cp.c.version < version))
        .values(version=version)
    )


@APPLIERS.gone(Archive, Plan)
def _archive_plan(tx: Transaction, _change: Archive, plan: Plan) -> None:
    tx.connection.execute(update(t.plans).where(t.plans.c.id == plan.id).values(archived=True))


@APPLIERS.gone(Delete, Plan)
def _delete_plan(tx: Transaction, _change: Delete, plan: Plan) -> None:
    plan_id = plan.id
    tx.connection.execute(delete(t.reward_plans).where(t.reward_plans.c.plan_id == plan_id))
    _delete_versions(tx, plan_id)
    tx.connection.execute(delete(t.plans).where(t.plans.c.id == plan_id))


def _reward_row(reward: Reward) -> dict[str, Any]:
    return {
        "name": reward.name,
        "type": reward.type.value,
        "percent_off": reward.percent_off,
        "amount_off": reward.amount_off,
        "duration": reward.duration.kind,
        "duration_months": reward.duration.months,
    }


def _reward_children(tx: Transaction, reward: Reward, replace: bool) -> None:
    if replace:
        _delete_reward_children(tx, reward.id)
    if reward.plans:
        rows = [{"reward_id": reward.id, "plan_id": pid} for pid in reward.plans]
        tx.connection.execute(insert(t.reward_plans), rows)
    if reward.promo_codes:
        codes = t.promo_codes
        # A code may move here from another reward changed later in the same plan.
        tx.connection.execute(delete(codes).where(codes.c.code.in_(reward.promo_codes)))
        rows = [_code_row(reward, code) for code in reward.promo_codes]
        tx.connection.execute(insert(codes), rows)


def _code_row(reward: Reward, code: str) -> dict[str, Any]:
    """A promotion code's row: its reward and its restrictions (NULL where none)."""
    restrictions = reward.restrictions(code)
    return {
        "reward_id": reward.id,
        "code": code,
        "max_redemptions": restrictions.max_redemptions,
        "expires_at": restrictions.expires_at,
        "first_time_transaction": restrictions.first_time_transaction,
    }


def _delete_reward_children(tx: Transaction, reward_id: str) -> None:
    tx.connection.execute(delete(t.reward_plans).where(t.reward_plans.c.reward_id == reward_id))
    tx.connection.execute(delete(t.promo_codes).where(t.promo_codes.c.reward_id == reward_id))


@APPLIERS.made(Create, Reward)
def _create_reward(tx: Transaction, _change: Create, reward: Reward) -> None:
    tx.connection.execute(insert(t.rewards).values(id=reward.id, **_reward_row(reward)))
    _reward_children(tx, reward, replace=False)


@APPLIERS.changed(Update, Reward)
def _update_reward(tx: Transaction, _change: Update, _old: Reward, reward: Reward) -> None:
    tx.connection.execute(
        update(t.rewards).where(t.rewards.c.id == reward.id).values(**_reward_row(reward))
    )
    _reward_children(tx, reward, replace=True)


@APPLIERS.gone(Delete, Reward)
def _delete_reward(tx: Transaction, _change: Delete, reward: Reward) -> None:
    reward_id = reward.id
    _delete_reward_children(tx, reward_id)
    tx.connection.execute(delete(t.rewards).where(t.rewards.c.id == reward_id))
