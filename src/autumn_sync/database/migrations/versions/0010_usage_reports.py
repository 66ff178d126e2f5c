"""Usage reported to Stripe's meters, exactly once (`autumn-sync usage report`).

- `usage_periods`: the usage of a feature a customer had when its period closed (written by
  `track` when it resets the balance), so the usage of a period ended is still reported if
  the report runs after the reset;
- `usage_reports`: every meter event sent or about to be sent, by its identifier (customer,
  feature, period, units reported before it): written before the request, marked sent after,
  so a run that dies sends again the same events (Stripe drops an identifier it has seen)
  and then only what is new.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autumn_sync.database.types import Exact

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_periods",
        sa.Column(
            "customer_internal_id",
            sa.Integer,
            sa.ForeignKey("customers.internal_id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("feature_id", sa.String(64), primary_key=True),
        sa.Column("period_end", sa.DateTime, primary_key=True),
        sa.Column("usage", Exact, nullable=False),
    )
    op.create_table(
        "usage_reports",
        sa.Column("identifier", sa.String(100), primary_key=True),
        sa.Column(
            "customer_internal_id",
            sa.Integer,
            sa.ForeignKey("customers.internal_id"),
            nullable=False,
        ),
        sa.Column("feature_id", sa.String(64), nullable=False),
        sa.Column("period_end", sa.DateTime, nullable=False),
        sa.Column("value", Exact, nullable=False),
        sa.Column("event_name", sa.String(100), nullable=False),
        sa.Column("stripe_customer_id", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime),
    )
    op.create_index(
        "usage_reports_by_period",
        "usage_reports",
        ["customer_internal_id", "feature_id", "period_end"],
    )


def downgrade() -> None:
    op.drop_table("usage_reports")  # its index with it (MariaDB's foreign key needs it)
    op.drop_table("usage_periods")
