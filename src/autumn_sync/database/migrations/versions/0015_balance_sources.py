"""Balances as a breakdown: what was used of each source of a customer's balance
(`balance_usage`: a plan item's allowance per period, a grant for good, a rollover), instead
of one usage per feature; `usage_periods` says which source a closed period was; a usage
event says which entity it was of, and what the balance took of it and dropped.

The usage each balance held moves to the source that would have given it first: the
customer's plan item of the feature with the shortest reset (its period's end kept), else
the declared allowance, else the grant that expires first. `balances` keeps the file's
allowance and its end.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from autumn_sync.database.types import Exact

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LENGTHS = {"hour": 0, "day": 1, "week": 7, "month": 31, "quarter": 92, "semi_annual": 183}
LENGTHS["year"] = 366


def _customer_key() -> sa.Column[int]:
    return sa.Column(
        "customer_internal_id",
        sa.Integer,
        sa.ForeignKey("customers.internal_id"),
        primary_key=True,
        autoincrement=False,
    )


def upgrade() -> None:
    op.create_table(
        "balance_usage",
        _customer_key(),
        sa.Column("entity_id", sa.String(255), primary_key=True, server_default=""),
        sa.Column("feature_id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("used", Exact, nullable=False, server_default="0"),
        sa.Column("next_reset", sa.DateTime),
        sa.Column("amount", Exact),
        sa.Column("expires", sa.DateTime),
    )
    conn = op.get_bind()
    b = _balances()
    used = sa.select(b).where(b.c.usage != 0)
    moved = [_moved(conn, row) for row in conn.execute(used).mappings()]
    if moved:
        op.bulk_insert(_usage_table(), moved)
    with op.batch_alter_table("balances") as batch:
        batch.drop_column("usage")
        batch.drop_column("next_reset")
    _periods_by_source()
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("entity_id", sa.String(255)))
        batch.add_column(sa.Column("recorded", Exact))
        batch.add_column(sa.Column("dropped", Exact))


def _balances() -> sa.TableClause:
    return sa.table(
        "balances",
        sa.column("customer_internal_id", sa.Integer),
        sa.column("feature_id", sa.String),
        sa.column("allowance", Exact),
        sa.column("usage", Exact),
        sa.column("next_reset", sa.DateTime),
    )


def _periods(name: str, *extra: str) -> sa.TableClause:
    columns = ("customer_internal_id", "feature_id", "period_end", *extra, "usage")
    return sa.table(name, *(sa.column(c) for c in columns))


def _usage_table() -> sa.TableClause:
    return sa.table(
        "balance_usage",
        sa.column("customer_internal_id", sa.Integer),
        sa.column("entity_id", sa.String),
        sa.column("feature_id", sa.String),
        sa.column("source", sa.String),
        sa.column("used", Exact),
        sa.column("next_reset", sa.DateTime),
    )


def _moved(conn: sa.Connection, row: Any) -> dict[str, Any]:
    """The `balance_usage` row the usage of a `balances` row moves to."""
    iid, feature = row["customer_internal_id"], row["feature_id"]
    plan = _first_plan(conn, iid, feature)
    source, next_reset = ("allowance", None)
    if plan is not None:
        source, next_reset = f"plan:{plan}", row["next_reset"]
    elif row["allowance"] is None:
        grant = _first_grant(conn, iid, feature)
        source = f"grant:{grant}" if grant is not None else source
    return {
        "customer_internal_id": iid,
        "entity_id": "",
        "feature_id": feature,
        "source": source,
        "used": row["usage"],
        "next_reset": next_reset,
    }


def _first_plan(conn: sa.Connection, iid: int, feature: str) -> str | None:
    query = sa.text(
        "SELECT cp.plan_id, pi.reset_interval, pi.price_interval FROM customer_plans cp "
        "JOIN plan_items pi ON pi.plan_id = cp.plan_id AND pi.version = cp.version "
        "WHERE cp.customer_internal_id = :iid AND cp.entity_id = '' AND pi.feature_id = :f "
        "AND cp.status IN ('active', 'trialing', 'past_due', 'canceled')"
    )
    rows = conn.execute(query, {"iid": iid, "f": feature}).all()

    def shortest(r: Any) -> tuple[int, str]:
        interval = r.reset_interval or r.price_interval
        return (LENGTHS.get(interval, 10_000), r.plan_id)

    return min(rows, key=shortest).plan_id if rows else None


def _first_grant(conn: sa.Connection, iid: int, feature: str) -> str | None:
    query = sa.text(
        "SELECT grant_id, expires FROM balance_grants "
        "WHERE customer_internal_id = :iid AND feature_id = :f"
    )
    rows = conn.execute(query, {"iid": iid, "f": feature}).all()
    ordered = sorted(rows, key=lambda r: (r.expires is None, str(r.expires), r.grant_id))
    return ordered[0].grant_id if ordered else None


def _periods_by_source() -> None:
    """`usage_periods` keyed by source too (a new table: the key changes)."""
    op.create_table(
        "usage_periods_by_source",
        _customer_key(),
        sa.Column("feature_id", sa.String(64), primary_key=True),
        sa.Column("period_end", sa.DateTime, primary_key=True),
        sa.Column("source", sa.String(100), primary_key=True, server_default=""),
        sa.Column("usage", Exact, nullable=False),
    )
    old, new = _periods("usage_periods"), _periods("usage_periods_by_source", "source")
    rows = sa.select(
        old.c.customer_internal_id, old.c.feature_id, old.c.period_end, sa.literal(""), old.c.usage
    )
    op.execute(new.insert().from_select([c.name for c in new.columns], rows))
    op.drop_table("usage_periods")
    op.rename_table("usage_periods_by_source", "usage_periods")


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("dropped")
        batch.drop_column("recorded")
        batch.drop_column("entity_id")
    with op.batch_alter_table("balances") as batch:
        batch.add_column(sa.Column("usage", Exact, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_reset", sa.DateTime))
    op.drop_table("balance_usage")
    op.create_table(
        "usage_periods_by_feature",
        _customer_key(),
        sa.Column("feature_id", sa.String(64), primary_key=True),
        sa.Column("period_end", sa.DateTime, primary_key=True),
        sa.Column("usage", Exact, nullable=False),
    )
    old, new = _periods("usage_periods"), _periods("usage_periods_by_feature")
    key = (old.c.customer_internal_id, old.c.feature_id, old.c.period_end)
    rows = sa.select(*key, sa.func.sum(old.c.usage)).group_by(*key)
    op.execute(new.insert().from_select([c.name for c in new.columns], rows))
    op.drop_table("usage_periods")
    op.rename_table("usage_periods_by_feature", "usage_periods")
