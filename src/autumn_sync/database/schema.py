"""The tables of the billing database (SQLAlchemy Core). Alembic migrations in
`database/migrations/versions` create exactly these; a test compares the two."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from autumn_sync.database.types import Exact

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

ID = 64
SOURCE = 100  # a balance source's key: `rollover:<plan id>:<YYYYmmddHHMM>` at most
CUSTOMER_PLAN_UNIQUE = "uq_customer_plans_entity_plan"
USAGE_EVENT_KEY = "uq_usage_events_customer_key"

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
    Column("trial_on_end", String(20)),  # cancel | bill; null: cancel
    Column("created_at", DateTime, nullable=False),
)

plan_items = Table(
    "plan_items",
    metadata,
    Column("plan_id", String(ID), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("feature_id", String(ID), ForeignKey("features.id"), primary_key=True),
    Column("included", Exact),
    Column("unlimited", Boolean, nullable=False, server_default=false()),
    Column("reset_interval", String(20)),
    Column("billing", String(20)),
    Column("price_amount", Exact),
    Column("price_per", Integer),
    Column("price_interval", String(20)),
    Column("tier_mode", String(20)),
    Column("reset_count", Integer),  # resets every N reset intervals; null: 1
    Column("rollover", Boolean, nullable=False, server_default=false()),
    Column("rollover_max", Exact),  # the most units carried over; null: no cap in units
    Column("rollover_max_percentage", Exact),  # … in % of the allowance; null: none
    Column("rollover_months", Integer),  # how long carried units last; null: never expire
    Column("max_purchase", Exact),  # the most units billed per use beyond the allowance
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

# A code's restrictions (NULL: none; `first_time_transaction` NULL, in rows made before
# 0005, reads as false).
promo_codes = Table(
    "promo_codes",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("reward_id", String(ID), ForeignKey("rewards.id"), nullable=False),
    Column("max_redemptions", Integer),
    Column("expires_at", DateTime),  # UTC
    Column("first_time_transaction", Boolean),
)


def _customer_key() -> Column[int]:
    """The customer a row of a per-customer table belongs to, first part of its key."""
    return Column(
        "customer_internal_id",
        Integer,
        ForeignKey("customers.internal_id"),
        primary_key=True,
        autoincrement=False,
    )


# Customers: the application's (`managed` false: only counted) and the file's (`managed`
# true). `file_key` is how the file names a managed customer (`.user_1`, `[a@b.com]`).
customers = Table(
    "customers",
    metadata,
    Column("internal_id", Integer, primary_key=True, autoincrement=True),
    Column("id", String(255), unique=True),
    Column("email", String(320), index=True),
    Column("name", String(200)),
    Column("created_at", DateTime, nullable=False),
    Column("fingerprint", String(255)),
    Column("metadata_json", Text),
    Column("managed", Boolean, nullable=False, server_default=false(), index=True),
    Column("file_key", String(330), unique=True),
    Column("stripe_link", String(255)),
    Column("stripe_create", Boolean, nullable=False, server_default=false()),
    Column("collection", String(30)),
    Column("days_until_due", Integer),
    Column("stripe_id", String(255)),
)

# A plan a customer (or one of its entities: `entity_id`, '' for the customer itself) is on,
# with the custom price that makes it a version for this customer alone.
customer_plans = Table(
    "customer_plans",
    metadata,
    Column("internal_id", Integer, primary_key=True, autoincrement=True),
    Column("customer_internal_id", Integer, ForeignKey("customers.internal_id"), nullable=False),
    Column("plan_id", String(ID), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("entity_id", String(255), nullable=False, server_default=""),
    Column("quantity", Integer, nullable=False, server_default="1"),
    Column("started_at", Date),  # the start the file declares
    Column("attached_at", DateTime),  # when the customer was put on the plan
    Column("trial_days", Integer),
    Column("trial_ends_at", Date),
    Column("begins_at", Date),  # access and billing begin (a future start, a downgrade)
    Column("ends_at", Date),  # access ends (a downgrade, a cancellation in Stripe)
    Column("price_amount", Exact),
    Column("price_interval", String(20)),
    Column("stripe_subscription_id", String(255)),
    ForeignKeyConstraint(
        ["plan_id", "version"], ["plan_versions.plan_id", "plan_versions.version"]
    ),
    UniqueConstraint("customer_internal_id", "entity_id", "plan_id", name=CUSTOMER_PLAN_UNIQUE),
)

# The items of a customer's custom version: included usage and reset per feature; and the
# prepaid units the customer bought of a feature (a row may hold only those).
customer_plan_items = Table(
    "customer_plan_items",
    metadata,
    Column(
        "customer_plan_id",
        Integer,
        ForeignKey("customer_plans.internal_id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("feature_id", String(ID), primary_key=True),
    Column("included", Exact),
    Column("reset_interval", String(20)),
    Column("quantity", Integer),  # prepaid units bought (`quantities`); null: not set
)

entities = Table(
    "entities",
    metadata,
    _customer_key(),
    Column("id", String(255), primary_key=True),
    Column("feature_id", String(ID), nullable=False),
    Column("name", String(200)),
)

customer_rewards = Table(
    "customer_rewards",
    metadata,
    _customer_key(),
    Column("reward_id", String(ID), primary_key=True),
)

# One row per customer and feature the file declares an allowance for (with the date it ends):
# the file's, written by apply.
balances = Table(
    "balances",
    metadata,
    _customer_key(),
    Column("feature_id", String(ID), primary_key=True),
    Column("allowance", Exact),
    Column("reset_at", Date),
)

# What was used of each source of a balance (`runtime.breakdown`): a plan item's allowance in
# its current period (`plan:<plan>`, with the period's end), a grant for good (`grant:<id>`),
# the declared allowance (`allowance`), and each rollover (`rollover:<plan>:<period end>`, with
# the units it carried and when they expire). The application's: apply never resets it.
balance_usage = Table(
    "balance_usage",
    metadata,
    _customer_key(),
    Column("entity_id", String(255), primary_key=True, server_default=""),
    Column("feature_id", String(ID), primary_key=True),
    Column("source", String(SOURCE), primary_key=True),
    Column("used", Exact, nullable=False, server_default="0"),
    Column("next_reset", DateTime),
    Column("amount", Exact),
    Column("expires", DateTime),
)

# The usage of a source of a customer's feature when its period closed (`track` or `check`
# found it due): what `usage report` still sends to Stripe for that period if it had not yet.
# `source` '' is a feature's whole usage, closed before balances had sources.
usage_periods = Table(
    "usage_periods",
    metadata,
    _customer_key(),
    Column("feature_id", String(ID), primary_key=True),
    Column("period_end", DateTime, primary_key=True),
    Column("source", String(SOURCE), primary_key=True, server_default=""),
    Column("usage", Exact, nullable=False),
)

# Every `track`, kept (a customer's recent usage in `show`): the value of the feature tracked,
# the units charged to which feature (itself or its credit system), and the application's
# idempotency key: one event per (customer, key), so a repeated track is recorded once.
usage_events = Table(
    "usage_events",
    metadata,
    Column("internal_id", Integer, primary_key=True, autoincrement=True),
    Column("customer_internal_id", Integer, ForeignKey("customers.internal_id"), nullable=False),
    Column("entity_id", String(255)),  # the entity the usage was of (null: the customer)
    Column("feature_id", String(ID), nullable=False),
    Column("value", Exact, nullable=False),
    Column("charged_feature_id", String(ID), nullable=False),
    Column("charged", Exact, nullable=False),
    Column("recorded", Exact),  # the units of `charged` the balance took (null: before 0015)
    Column("dropped", Exact),  # those it did not: no overage allowed, or past the cap
    Column("created_at", DateTime, nullable=False),
    Column("idempotency_key", String(255)),
    UniqueConstraint("customer_internal_id", "idempotency_key", name=USAGE_EVENT_KEY),
    Index("usage_events_by_time", "customer_internal_id", "created_at"),
)

# Every meter event `usage report` sent, or is about to send (written first, marked sent
# after), by its identifier: customer, feature, period and the units reported before it.
usage_reports = Table(
    "usage_reports",
    metadata,
    Column("identifier", String(100), primary_key=True),
    Column("customer_internal_id", Integer, ForeignKey("customers.internal_id"), nullable=False),
    Column("feature_id", String(ID), nullable=False),
    Column("period_end", DateTime, nullable=False),
    Column("value", Exact, nullable=False),
    Column("event_name", String(100), nullable=False),
    Column("stripe_customer_id", String(255), nullable=False),
    Column("timestamp", Integer, nullable=False),
    Column("status", String(10), nullable=False),  # pending | sent
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Index("usage_reports_by_period", "customer_internal_id", "feature_id", "period_end"),
)

# Every free trial a customer (or one of its entities: `entity_id`, '' for the customer
# itself) had, per plan: kept when the plan is left, so attaching the plan again gives none.
customer_trials = Table(
    "customer_trials",
    metadata,
    _customer_key(),
    Column("entity_id", String(255), primary_key=True),
    Column("plan_id", String(ID), primary_key=True),
    Column("trial_ends_at", Date, nullable=False),
)

# Every free trial a fingerprint had of a plan that gives one per fingerprint: kept when the
# plan is left, so that plan never gives the fingerprint a second (other plans still may).
fingerprint_plan_trials = Table(
    "fingerprint_plan_trials",
    metadata,
    Column("fingerprint", String(255), primary_key=True),
    Column("plan_id", String(ID), primary_key=True),
    Column("trial_at", DateTime, nullable=False),
)

# Grants keyed by id: given once, whatever how often the file is applied.
balance_grants = Table(
    "balance_grants",
    metadata,
    _customer_key(),
    Column("feature_id", String(ID), primary_key=True),
    Column("grant_id", String(ID), primary_key=True),
    Column("amount", Exact, nullable=False),
    Column("expires", Date),
    Column("granted_at", DateTime, nullable=False),
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

# Who holds the apply lock and since when. The lock itself is the database's (a PostgreSQL
# advisory lock, a MariaDB named lock, a file lock next to a SQLite file); this row only
# describes it, and a row left by a run that died is overwritten by the next holder.
# `session_id` is the holder's PostgreSQL backend pid or MariaDB connection id.
apply_lock = Table(
    "apply_lock",
    metadata,
    Column("lock_id", String(32), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("operation", String(30), nullable=False),
    Column("since", DateTime, nullable=False),
    Column("session_id", BigInteger),
)

# Every Stripe event a webhook delivered, once (its id is the key: a replay or one of Stripe's
# retries finds it and changes nothing), with the subscription it was about and when Stripe
# made it (`created`, UTC): an event older than one already processed for its subscription
# changes no status (Stripe does not deliver in order).
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("subscription_id", String(255), index=True),
    Column("created", DateTime, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
)
