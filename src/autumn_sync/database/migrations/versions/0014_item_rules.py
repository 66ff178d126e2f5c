"""Item rules: a plan item's reset every N intervals (`interval_count`), the rollover of its
unused allowance (a cap in units or in % of the allowance, and how many months carried units
last) and the most units billed per use beyond the allowance (`max_purchase`). Existing items
get none of them: they reset every interval, carry nothing over and have no cap.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autumn_sync.database.types import Exact

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = (
    "reset_count",
    "rollover",
    "rollover_max",
    "rollover_max_percentage",
    "rollover_months",
    "max_purchase",
)


def upgrade() -> None:
    with op.batch_alter_table("plan_items") as batch:
        batch.add_column(sa.Column("reset_count", sa.Integer))
        batch.add_column(
            sa.Column("rollover", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("rollover_max", Exact))
        batch.add_column(sa.Column("rollover_max_percentage", Exact))
        batch.add_column(sa.Column("rollover_months", sa.Integer))
        batch.add_column(sa.Column("max_purchase", Exact))


def downgrade() -> None:
    with op.batch_alter_table("plan_items") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
