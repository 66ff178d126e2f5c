"""When a customer's plan gives access: `begins_at` (a future `start`, or the end of the
paid period of the plan a downgrade replaces) and `ends_at` (a downgrade's end of period, or
the end of a subscription cancelled in Stripe). `check` grants a plan from `begins_at` and
until `ends_at`; existing rows begin at the start the file declared.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_plans") as batch:
        batch.add_column(sa.Column("begins_at", sa.Date))
        batch.add_column(sa.Column("ends_at", sa.Date))
    op.execute("UPDATE customer_plans SET begins_at = started_at")


def downgrade() -> None:
    with op.batch_alter_table("customer_plans") as batch:
        batch.drop_column("ends_at")
        batch.drop_column("begins_at")
