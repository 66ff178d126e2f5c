"""Prepaid units a customer bought of a feature of its plan (`quantities: {seats: 50}`).

A customer plan's item row may now carry only a quantity: its included usage and reset stay
the plan's (null), as a custom item's unset fields always did.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_plan_items") as batch:
        batch.add_column(sa.Column("quantity", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("customer_plan_items") as batch:
        batch.drop_column("quantity")
