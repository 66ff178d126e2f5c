"""Usage events: every `track`, kept (`usage_events`): customer, feature, value, the units
charged to which feature (itself or its credit system), time, and the application's
idempotency key, unique per customer, so a repeated track is recorded once.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autumn_sync.database.types import Exact

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_events",
        sa.Column("internal_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "customer_internal_id",
            sa.Integer,
            sa.ForeignKey("customers.internal_id"),
            nullable=False,
        ),
        sa.Column("feature_id", sa.String(64), nullable=False),
        sa.Column("value", Exact, nullable=False),
        sa.Column("charged_feature_id", sa.String(64), nullable=False),
        sa.Column("charged", Exact, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.UniqueConstraint(
            "customer_internal_id", "idempotency_key", name="uq_usage_events_customer_key"
        ),
    )
    op.create_index("usage_events_by_time", "usage_events", ["customer_internal_id", "created_at"])


def downgrade() -> None:
    op.drop_table("usage_events")
