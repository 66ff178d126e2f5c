"""The committed JSON Schema, the example's editor line, and migrations that match the tables."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, DateTime, func, inspect, select, text

import autumn_sync.database
from autumn_sync.config.schema import json_schema, json_schema_text
from autumn_sync.database import schema as t
from autumn_sync.database.engine import VERSION_TABLE, head_revision, open_engine, upgrade
from autumn_sync.database.read.catalog import read_state
from autumn_sync.database.schema import metadata
from tests.conftest import EXAMPLES, run_cli

ROOT = Path(__file__).parent.parent
COMMITTED = ROOT / "schemas" / "billing.schema.json"


def test_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == json_schema_text(), (
        "schemas/billing.schema.json is stale: regenerate it with `autumn-sync schema`"
    )


def test_schema_command_prints_it() -> None:
    result = run_cli("schema")
    assert result.exit_code == 0
    assert json.loads(result.output) == json_schema()


def test_example_points_editors_at_the_schema() -> None:
    first = (EXAMPLES / "billing.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/billing.schema.json"
    assert (EXAMPLES / first.split("=", 1)[1]).resolve() == COMMITTED.resolve()


def test_example_satisfies_the_json_schema() -> None:
    document = _as_editors_read((EXAMPLES / "billing.yaml").read_text())
    jsonschema.validate(document, json_schema())


def _as_editors_read(text: str) -> Any:
    """The example as the YAML language server reads it (YAML 1.2: `2027-01-01` is a string,
    not a date)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value.isoformat() if isinstance(value, date) else value

    return plain(yaml.safe_load(text))


def test_schema_rejects_unknown_keys() -> None:
    document = _as_editors_read((EXAMPLES / "billing.yaml").read_text())
    document["features"]["sso"]["colour"] = "red"
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = list(validator.iter_errors(document))
    assert errors and "colour" in errors[0].message


@pytest.mark.parametrize("replay", [True, False], ids=["migrated", "created"])
def test_migrations_create_exactly_the_tables(db_url: str, replay: bool) -> None:
    """Every migration run in turn on an empty database gives the tables `schema` declares,
    and so does the shortcut taken on an empty database (the tables made at once, stamped
    with the newest migration)."""
    engine = open_engine(db_url)
    upgrade(engine, replay=replay)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        differences = [d for d in compare_metadata(context, metadata) if not _is_version_table(d)]
        assert context.get_current_revision() == head_revision()
    engine.dispose()
    assert differences == []


def _is_version_table(difference: object) -> bool:
    return (
        isinstance(difference, tuple)
        and difference[0] == "remove_table"
        and difference[1].name == VERSION_TABLE
    )


def _migrate(connection: Connection, revision: str, down: bool = False) -> None:
    """`alembic upgrade REVISION` (or `downgrade`) on `connection`, as autumn-sync runs them."""
    config = Config()
    migrations = Path(autumn_sync.database.__file__).parent / "migrations"
    config.set_main_option("script_location", str(migrations))
    config.attributes.update(connection=connection, version_table=VERSION_TABLE)
    (command.downgrade if down else command.upgrade)(config, revision)
    connection.commit()


def test_promotion_codes_made_before_0005_keep_working_unrestricted(db_url: str) -> None:
    """A database of 0004 with a promotion code migrates to restrictions: the code is kept,
    with none; 0005 downgrades too."""
    engine = open_engine(db_url)
    with engine.connect() as conn:
        _migrate(conn, "0004")
        conn.execute(
            text(
                "INSERT INTO rewards (id, type, percent_off, duration)"
                " VALUES ('launch20', 'percentage_discount', 20, 'once')"
            )
        )
        conn.execute(text("INSERT INTO promo_codes (code, reward_id) VALUES ('L20', 'launch20')"))
        conn.commit()
    upgrade(engine)
    with engine.connect() as conn:
        reward = read_state(conn).rewards["launch20"]
        assert (reward.promo_codes, reward.code_restrictions) == (("L20",), ())
        _migrate(conn, "0004", down=True)
        columns = {c["name"] for c in inspect(conn).get_columns("promo_codes")}
        assert columns == {"code", "reward_id"}
    engine.dispose()


# Before 0009: Pro (one trial per fingerprint in its first version only), Annual (one per
# fingerprint) and Free (no trial); a fingerprint that had a trial, of which plan the table
# does not say; x1 trialing Pro, y1 on Free.
BEFORE_0009 = (
    "INSERT INTO plans (id, name, add_on, is_default, migrate_customers, archived,"
    " current_version) VALUES ('pro', 'Pro', FALSE, FALSE, FALSE, FALSE, 2),"
    " ('annual', 'Annual', FALSE, FALSE, FALSE, FALSE, 1),"
    " ('free', 'Free', FALSE, TRUE, FALSE, FALSE, 1)",
    "INSERT INTO plan_versions (plan_id, version, trial_days, trial_unique_fingerprint,"
    " created_at) VALUES ('pro', 1, 14, TRUE, '2026-01-01 00:00:00'),"
    " ('pro', 2, 14, FALSE, '2026-01-02 00:00:00'),"
    " ('annual', 1, 7, TRUE, '2026-01-01 00:00:00'),"
    " ('free', 1, NULL, NULL, '2026-01-01 00:00:00')",
    "INSERT INTO fingerprint_trials (fingerprint, trial_at) VALUES ('fp_z', '2026-01-05 00:00:00')",
    "INSERT INTO customers (internal_id, id, created_at, fingerprint)"
    " VALUES (1, 'x1', '2026-01-05 00:00:00', 'fp_z'), (2, 'y1', '2026-01-05 00:00:00', NULL)",
    "INSERT INTO customer_plans (customer_internal_id, plan_id, version, status, entity_id,"
    " trial_ends_at) VALUES (1, 'pro', 1, 'trialing', '', '2026-01-19'),"
    " (2, 'free', 1, 'active', '', NULL)",
)


def test_trials_recorded_before_0009_keep_blocking_per_plan(db_url: str) -> None:
    """A database of 0007 with a fingerprint that had a trial and a customer trialing Pro
    migrates to trials per plan: the fingerprint is recorded for every plan any version of
    which gives one trial per fingerprint, the customer's trial of Pro is recorded; 0009
    downgrades to one row per fingerprint, and upgrades again."""
    engine = open_engine(db_url)
    with engine.connect() as conn:
        _migrate(conn, "0007")
        for statement in BEFORE_0009:
            conn.execute(text(statement))
        conn.commit()
    upgrade(engine)
    fp, ct = t.fingerprint_plan_trials, t.customer_trials
    old = sa.table("fingerprint_trials", sa.column("fingerprint"), sa.column("trial_at", DateTime))
    with engine.connect() as conn:
        found = conn.execute(select(fp.c.fingerprint, fp.c.plan_id).order_by(fp.c.plan_id))
        assert [tuple(r) for r in found] == [("fp_z", "annual"), ("fp_z", "pro")]
        columns = (ct.c.customer_internal_id, ct.c.entity_id, ct.c.plan_id, ct.c.trial_ends_at)
        found = conn.execute(select(*columns))
        assert [tuple(r) for r in found] == [(1, "", "pro", date(2026, 1, 19))]
        _migrate(conn, "0008", down=True)
        found = conn.execute(select(old.c.fingerprint, old.c.trial_at))
        assert [tuple(r) for r in found] == [("fp_z", datetime(2026, 1, 5))]
        assert "customer_trials" not in inspect(conn).get_table_names()
        _migrate(conn, "head")  # and up again: the fingerprint blocks both plans once more
        assert conn.execute(select(func.count()).select_from(fp)).scalar_one() == 2
    engine.dispose()
