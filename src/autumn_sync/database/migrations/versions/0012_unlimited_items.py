"""Explicit unlimited items (`unlimited: true`): an item of a metered feature or credit system
without included usage or a price used to be unlimited; it now says so. The items stored that
way are marked unlimited, so that the customers on them keep what they had and the file that
now says `unlimited: true` plans no change.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plan_items") as batch:
        batch.add_column(
            sa.Column("unlimited", sa.Boolean, nullable=False, server_default=sa.false())
        )
    items, features = (
        sa.table(
            "plan_items",
            sa.column("feature_id", sa.String),
            sa.column("included", sa.Numeric),
            sa.column("billing", sa.String),
            sa.column("unlimited", sa.Boolean),
        ),
        sa.table("features", sa.column("id", sa.String), sa.column("type", sa.String)),
    )
    metered = sa.select(features.c.id).where(features.c.type != "boolean")
    op.execute(
        items.update()
        .where(items.c.included.is_(None))
        .where(items.c.billing.is_(None))
        .where(items.c.feature_id.in_(metered))
        .values(unlimited=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("plan_items") as batch:
        batch.drop_column("unlimited")
