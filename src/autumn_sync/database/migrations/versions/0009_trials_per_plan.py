"""Trials per plan: one free trial per customer (or entity) per plan, and a plan's
`unique_fingerprint` gives one trial per fingerprint of that plan, not of every plan.

- `customer_trials` (customer, entity or '', plan, trial end) records every trial a
  customer had, backfilled from the plans customers are on with a trial end
  (`customer_plans.trial_ends_at`). Trials of plans a customer already left were not recorded
  before this revision: those give a second trial once.
- `fingerprint_plan_trials` (fingerprint, plan, when) replaces `fingerprint_trials`
  (fingerprint, when), which did not say of which plan the trial was. A fingerprint recorded
  there keeps blocking: it gets a row for every plan any version of which gives one trial per
  fingerprint (`plan_versions.trial_unique_fingerprint`), the only plans whose trial can
  have recorded it. Plans made later, or that turn `unique_fingerprint` on later, give it
  their trial.

The downgrade keeps one row per fingerprint (its earliest trial) and drops
`customer_trials`.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = 64

_old = sa.table(
    "fingerprint_trials", sa.column("fingerprint", sa.String), sa.column("trial_at", sa.DateTime)
)
_new = sa.table(
    "fingerprint_plan_trials",
    sa.column("fingerprint", sa.String),
    sa.column("plan_id", sa.String),
    sa.column("trial_at", sa.DateTime),
)
_versions = sa.table(
    "plan_versions",
    sa.column("plan_id", sa.String),
    sa.column("trial_unique_fingerprint", sa.Boolean),
)
_plans = sa.table(
    "customer_plans",
    sa.column("customer_internal_id", sa.Integer),
    sa.column("entity_id", sa.String),
    sa.column("plan_id", sa.String),
    sa.column("trial_ends_at", sa.Date),
)
_trials = sa.table(
    "customer_trials",
    sa.column("customer_internal_id", sa.Integer),
    sa.column("entity_id", sa.String),
    sa.column("plan_id", sa.String),
    sa.column("trial_ends_at", sa.Date),
)


def upgrade() -> None:
    op.create_table(
        "customer_trials",
        sa.Column(
            "customer_internal_id",
            sa.Integer,
            sa.ForeignKey("customers.internal_id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("entity_id", sa.String(255), primary_key=True),
        sa.Column("plan_id", sa.String(ID), primary_key=True),
        sa.Column("trial_ends_at", sa.Date, nullable=False),
    )
    op.create_table(
        "fingerprint_plan_trials",
        sa.Column("fingerprint", sa.String(255), primary_key=True),
        sa.Column("plan_id", sa.String(ID), primary_key=True),
        sa.Column("trial_at", sa.DateTime, nullable=False),
    )
    _backfill_customers()
    _per_plan()
    op.drop_table("fingerprint_trials")


def _backfill_customers() -> None:
    """A trial for every plan a customer (or entity) is on with a trial end."""
    columns = ("customer_internal_id", "entity_id", "plan_id", "trial_ends_at")
    rows = sa.select(*(_plans.c[name] for name in columns))
    rows = rows.where(_plans.c.trial_ends_at.is_not(None))
    op.execute(_trials.insert().from_select(list(columns), rows))


def _per_plan() -> None:
    """Each recorded fingerprint, for every plan that gives (or gave) one trial per
    fingerprint."""
    unique = sa.select(_versions.c.plan_id).where(_versions.c.trial_unique_fingerprint == sa.true())
    plans = unique.distinct().subquery()
    rows = sa.select(_old.c.fingerprint, plans.c.plan_id, _old.c.trial_at).select_from(
        _old.join(plans, sa.true())
    )
    op.execute(_new.insert().from_select(["fingerprint", "plan_id", "trial_at"], rows))


def downgrade() -> None:
    op.create_table(
        "fingerprint_trials",
        sa.Column("fingerprint", sa.String(255), primary_key=True),
        sa.Column("trial_at", sa.DateTime, nullable=False),
    )
    first = sa.select(_new.c.fingerprint, sa.func.min(_new.c.trial_at))
    first = first.group_by(_new.c.fingerprint)
    op.execute(_old.insert().from_select(["fingerprint", "trial_at"], first))
    op.drop_table("fingerprint_plan_trials")
    op.drop_table("customer_trials")
