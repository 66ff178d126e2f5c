"""Alembic environment: migrations always run on a connection autumn-sync hands over."""

from __future__ import annotations

from alembic import context

from autumn_sync.database.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
