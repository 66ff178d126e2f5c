"""Stripe events: every event a webhook delivered, once, with the subscription it was about
and when Stripe made it (`stripe_events`), so a replay changes nothing and an event older
than one already processed for its subscription changes no status.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("subscription_id", sa.String(255)),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
    )
    op.create_index("ix_stripe_events_subscription_id", "stripe_events", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_stripe_events_subscription_id", table_name="stripe_events")
    op.drop_table("stripe_events")
