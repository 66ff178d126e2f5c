"""Promotion codes' restrictions: how many redemptions, until when, first purchase only.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("max_redemptions", "expires_at", "first_time_transaction")


def upgrade() -> None:
    with op.batch_alter_table("promo_codes") as batch:
        batch.add_column(sa.Column("max_redemptions", sa.Integer))
        batch.add_column(sa.Column("expires_at", sa.DateTime))
        batch.add_column(sa.Column("first_time_transaction", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("promo_codes") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
