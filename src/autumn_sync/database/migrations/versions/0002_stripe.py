"""Stripe: ids of owned objects, names last written, and the apply journal.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_objects",
        sa.Column("address", sa.String(255), primary_key=True),
        sa.Column("stripe_id", sa.String(255), nullable=False),
        sa.Column("written_name", sa.String(255)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "apply_journal",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stripe_id", sa.String(255)),
        sa.Column("message", sa.String(1000)),
        sa.Column("at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("apply_journal")
    op.drop_table("stripe_objects")
