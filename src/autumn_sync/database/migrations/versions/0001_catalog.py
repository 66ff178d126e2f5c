"""The catalog: settings, features, plans with versions, rewards; who is on which version.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autumn_sync.database.types import Exact

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = 64


def _id(name: str, *args: object, **kwargs: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(ID), *args, **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "settings",
        _id("key", primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    op.create_table(
        "features",
        _id("id", primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("consumable", sa.Boolean, nullable=False),
    )
    op.create_table(
        "credit_costs",
        _id("credit_feature_id", sa.ForeignKey("features.id"), primary_key=True),
        _id("feature_id", sa.ForeignKey("features.id"), primary_key=True),
        sa.Column("cost", Exact, nullable=False),
    )
    op.create_table(
        "plans",
        _id("id", primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(1000)),
        _id("group_id"),
        sa.Column("add_on", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("migrate_customers", sa.Boolean, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "plan_versions",
        _id("plan_id", sa.ForeignKey("plans.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("price_amount", Exact),
        sa.Column("price_interval", sa.String(20)),
        sa.Column("trial_days", sa.Integer),
        sa.Column("trial_card_required", sa.Boolean),
        sa.Column("trial_unique_fingerprint", sa.Boolean),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "plan_items",
        _id("plan_id", primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        _id("feature_id", sa.ForeignKey("features.id"), primary_key=True),
        sa.Column("included", Exact),
        sa.Column("reset_interval", sa.String(20)),
        sa.Column("billing", sa.String(20)),
        sa.Column("price_amount", Exact),
        sa.Column("price_per", sa.Integer),
        sa.Column("price_interval", sa.String(20)),
        sa.Column("tier_mode", sa.String(20)),
        sa.ForeignKeyConstraint(
            ["plan_id", "version"], ["plan_versions.plan_id", "plan_versions.version"]
        ),
    )
    op.create_table(
        "plan_item_tiers",
        _id("plan_id", primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        _id("feature_id", primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("up_to", Exact),
        sa.Column("amount", Exact, nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id", "version", "feature_id"],
            ["plan_items.plan_id", "plan_items.version", "plan_items.feature_id"],
        ),
    )
    op.create_table(
        "rewards",
        _id("id", primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("percent_off", Exact),
        sa.Column("amount_off", Exact),
        sa.Column("duration", sa.String(20), nullable=False),
        sa.Column("duration_months", sa.Integer),
    )
    op.create_table(
        "reward_plans",
        _id("reward_id", sa.ForeignKey("rewards.id"), primary_key=True),
        _id("plan_id", sa.ForeignKey("plans.id"), primary_key=True),
    )
    op.create_table(
        "promo_codes",
        sa.Column("code", sa.String(64), primary_key=True),
        _id("reward_id", sa.ForeignKey("rewards.id"), nullable=False),
    )
    op.create_table(
        "customers",
        sa.Column("internal_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(255), unique=True),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(200)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "customer_plans",
        sa.Column("internal_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "customer_internal_id",
            sa.Integer,
            sa.ForeignKey("customers.internal_id"),
            nullable=False,
        ),
        _id("plan_id", nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id", "version"], ["plan_versions.plan_id", "plan_versions.version"]
        ),
        sa.UniqueConstraint("customer_internal_id", "plan_id"),
    )


def downgrade() -> None:
    for table in (
        "customer_plans",
        "customers",
        "promo_codes",
        "reward_plans",
        "rewards",
        "plan_item_tiers",
        "plan_items",
        "plan_versions",
        "plans",
        "credit_costs",
        "features",
        "settings",
    ):
        op.drop_table(table)
