"""The tables of the billing database (SQLAlchemy Core). Alembic migrations in
`db/migrations/versions` create exactly these; a test compares the two."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from autumn_sync.db.types import Exact

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

ID = 64

settings = Table(
    "settings",
    metadata,
    Column("key", String(ID), primary_key=True),
    Column("value", String(200), nullable=False),
)

features = Table(
    "features",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("type", String(20), nullable=False),
    Column("consumable", Boolean, nullable=False),
)

credit_costs = Table(
    "credit_costs",
    metadata,
    Column("credit_feature_id", String(ID), ForeignKey("features.id"), primary_key=True),
    Column("feature_id", String(ID), ForeignKey("features.id"), primary_key=True),
    Column("cost", Exact, nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", String(1000)),
    Column("group_id", String(ID)),
    Column("add_on", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("migrate_customers", Boolean, nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("current_version", Integer, nullable=False),
)

plan_versions = Table(
    "plan_versions",
    metadata,
    Column("plan_id", String(ID), ForeignKey("plans.id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("price_amount", Exact),
    Column("price_interval", String(20)),
    Column("trial_days", Integer),
    Column("trial_card_required", Boolean),
    Column("trial_unique_fingerprint", Boolean),
    Column("created_at", DateTime, nullable=False),
)

plan_items = Table(
    "plan_items",
    metadata,
    Column("plan_id", String(ID), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("feature_id", String(ID), ForeignKey("features.id"), primary_key=True),
    Column("included", Exact),
    Column("reset_interval", String(20)),
    Column("billing", String(20)),
    Column("price_amount", Exact),
    Column("price_per", Integer),
    Column("price_interval", String(20)),
    Column("tier_mode", String(20)),
    ForeignKeyConstraint(
        ["plan_id", "version"], ["plan_versions.plan_id", "plan_versions.version"]
    ),
)

plan_item_tiers = Table(
    "plan_item_tiers",
    metadata,
    Column("plan_id", String(ID), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("feature_id", String(ID), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("up_to", Exact),
    Column("amount", Exact, nullable=False),
    ForeignKeyConstraint(
        ["plan_id", "version", "feature_id"],
        ["plan_items.plan_id", "plan_items.version", "plan_items.feature_id"],
    ),
)

rewards = Table(
    "rewards",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200)),
    Column("type", String(30), nullable=False),
    Column("percent_off", Exact),
    Column("amount_off", Exact),
    Column("duration", String(20), nullable=False),
    Column("duration_months", Integer),
)

reward_plans = Table(
    "reward_plans",
    metadata,
    Column("reward_id", String(ID), ForeignKey("rewards.id"), primary_key=True),
    Column("plan_id", String(ID), ForeignKey("plans.id"), primary_key=True),
)

promo_codes = Table(
    "promo_codes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("reward_id", String(ID), ForeignKey("rewards.id"), nullable=False),
)

# Customers are the application's (and, from the customer issue on, the file's too). The
# catalog only needs to know who is on which plan version: that decides version vs. in-place.
customers = Table(
    "customers",
    metadata,
    Column("internal_id", Integer, primary_key=True, autoincrement=True),
    Column("id", String(255), unique=True),
    Column("email", String(320)),
    Column("name", String(200)),
    Column("created_at", DateTime, nullable=False),
)

customer_plans = Table(
    "customer_plans",
    metadata,
    Column("internal_id", Integer, primary_key=True, autoincrement=True),
    Column("customer_internal_id", Integer, ForeignKey("customers.internal_id"), nullable=False),
    Column("plan_id", String(ID), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    ForeignKeyConstraint(
        ["plan_id", "version"], ["plan_versions.plan_id", "plan_versions.version"]
    ),
    UniqueConstraint("customer_internal_id", "plan_id"),
)

# Stripe: the id of every object autumn-sync made or adopted, and the product name it last
# wrote (a dashboard rename is then told apart from a rename in the file).
stripe_objects = Table(
    "stripe_objects",
    metadata,
    Column("address", String(255), primary_key=True),
    Column("stripe_id", String(255), nullable=False),
    Column("written_name", String(255)),
    Column("updated_at", DateTime, nullable=False),
)

# What each apply did in Stripe, change by change: written before and after every request so
# a crashed run can be reported and picked up.
apply_journal = Table(
    "apply_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("address", String(255), nullable=False),
    Column("action", String(20), nullable=False),
    Column("idempotency_key", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("stripe_id", String(255)),
    Column("message", String(1000)),
    Column("at", DateTime, nullable=False),
)
