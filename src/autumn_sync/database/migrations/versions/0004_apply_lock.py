"""The apply lock's description: who holds it and since when.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apply_lock",
        sa.Column("lock_id", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(30), nullable=False),
        sa.Column("since", sa.DateTime, nullable=False),
        sa.Column("session_id", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("apply_lock")
