"""Customers as code: managed customers, their plans (entities, custom prices), rewards,
balances and grants.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autumn_sync.database.types import Exact

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = 64
OLD_UNIQUE = "uq_customer_plans_customer_internal_id"
NEW_UNIQUE = "uq_customer_plans_entity_plan"


def _customer_fk(**kwargs: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "customer_internal_id",
        sa.Integer,
        sa.ForeignKey("customers.internal_id"),
        autoincrement=False,
        **kwargs,  # type: ignore[arg-type]
    )


def upgrade() -> None:
    false = sa.false()
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(255)))
        batch.add_column(sa.Column("metadata_json", sa.Text))
        batch.add_column(sa.Column("managed", sa.Boolean, nullable=False, server_default=false))
        batch.add_column(sa.Column("file_key", sa.String(330)))
        batch.add_column(sa.Column("stripe_link", sa.String(255)))
        batch.add_column(
            sa.Column("stripe_create", sa.Boolean, nullable=False, server_default=false)
        )
        batch.add_column(sa.Column("collection", sa.String(30)))
        batch.add_column(sa.Column("days_until_due", sa.Integer))
        batch.add_column(sa.Column("stripe_id", sa.String(255)))
        batch.create_unique_constraint("uq_customers_file_key", ["file_key"])
        batch.create_index("ix_customers_email", ["email"])
        batch.create_index("ix_customers_managed", ["managed"])
    with op.batch_alter_table("customer_plans") as batch:
        batch.add_column(sa.Column("entity_id", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("quantity", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("started_at", sa.Date))
        batch.add_column(sa.Column("attached_at", sa.DateTime))
        batch.add_column(sa.Column("trial_days", sa.Integer))
        batch.add_column(sa.Column("trial_ends_at", sa.Date))
        batch.add_column(sa.Column("price_amount", Exact))
        batch.add_column(sa.Column("price_interval", sa.String(20)))
        batch.add_column(sa.Column("stripe_subscription_id", sa.String(255)))
        # The new key first: on MariaDB the old one serves the customer foreign key until then.
        batch.create_unique_constraint(NEW_UNIQUE, ["customer_internal_id", "entity_id", "plan_id"])
        batch.drop_constraint(OLD_UNIQUE, type_="unique")
    op.create_table(
        "customer_plan_items",
        sa.Column(
            "customer_plan_id",
            sa.Integer,
            sa.ForeignKey("customer_plans.internal_id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("feature_id", sa.String(ID), primary_key=True),
        sa.Column("included", Exact),
        sa.Column("reset_interval", sa.String(20)),
    )
    op.create_table(
        "entities",
        _customer_fk(primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("feature_id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(200)),
    )
    op.create_table(
        "customer_rewards",
        _customer_fk(primary_key=True),
        sa.Column("reward_id", sa.String(ID), primary_key=True),
    )
    op.create_table(
        "balances",
        _customer_fk(primary_key=True),
        sa.Column("feature_id", sa.String(ID), primary_key=True),
        sa.Column("allowance", Exact),
        sa.Column("reset_at", sa.Date),
        sa.Column("usage", Exact, nullable=False, server_default="0"),
        sa.Column("next_reset", sa.DateTime),
    )
    op.create_table(
        "fingerprint_trials",
        sa.Column("fingerprint", sa.String(255), primary_key=True),
        sa.Column("trial_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "balance_grants",
        _customer_fk(primary_key=True),
        sa.Column("feature_id", sa.String(ID), primary_key=True),
        sa.Column("grant_id", sa.String(ID), primary_key=True),
        sa.Column("amount", Exact, nullable=False),
        sa.Column("expires", sa.Date),
        sa.Column("granted_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "balance_grants",
        "fingerprint_trials",
        "balances",
        "customer_rewards",
        "entities",
    ):
        op.drop_table(table)
    op.drop_table("customer_plan_items")
    with op.batch_alter_table("customer_plans") as batch:
        batch.create_unique_constraint(OLD_UNIQUE, ["customer_internal_id", "plan_id"])
        batch.drop_constraint(NEW_UNIQUE, type_="unique")
        for column in (
            "stripe_subscription_id",
            "price_interval",
            "price_amount",
            "trial_ends_at",
            "trial_days",
            "attached_at",
            "started_at",
            "quantity",
            "entity_id",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_managed")
        batch.drop_index("ix_customers_email")
        batch.drop_constraint("uq_customers_file_key", type_="unique")
        for column in (
            "stripe_id",
            "days_until_due",
            "collection",
            "stripe_create",
            "stripe_link",
            "file_key",
            "managed",
            "metadata_json",
            "fingerprint",
        ):
            batch.drop_column(column)
