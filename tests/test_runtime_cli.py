"""`autumn-sync customer get-or-create`, `check` and `track`: JSON on stdout, `Error: …` and
exit code 1 on bad requests (never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from tests.conftest import run_cli
from tests.test_runtime import write
from tests.test_runtime_breakdown import FILE


@pytest.fixture
def db(db_url: str, tmp_path: Path) -> str:
    """A database with the runtime tests' catalog applied."""
    result = run_cli("apply", "-f", str(write(tmp_path)), "--auto-approve", db=db_url)
    assert result.exit_code == 0, result.output
    return db_url


def run_json(*args: str, db: str) -> dict[str, Any]:
    result = run_cli(*args, db=db)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_get_or_create_check_and_track(db: str) -> None:
    made = run_json("customer", "get-or-create", "--id", "u1", "--email", "u1@x.io", db=db)
    assert (made["id"], made["email"], made["managed"], made["outcome"]) == (
        "u1",
        "u1@x.io",
        False,
        "created",
    )
    assert [(p["plan_id"], p["version"], p["status"]) for p in made["plans"]] == [
        ("free", 1, "active")
    ]
    found = run_json("customer", "get-or-create", "--id", "u1", db=db)
    assert found["outcome"] == "found" and found["plans"] == made["plans"]

    tracked = run_json("track", "u1", "messages", "2.5", db=db)
    assert (tracked["charged_feature"], tracked["usage"], tracked["balance"]) == (
        "messages",
        2.5,
        97.5,
    )
    checked = run_json("check", "u1", "messages", "--required", "98", db=db)
    assert (checked["allowed"], checked["limit"], checked["usage"]) == (False, 100, 2.5)
    assert checked["next_reset"] is not None
    back = run_json("track", "u1", "messages", "-1", db=db)  # a negative value is not an option
    assert back["usage"] == 1.5


def test_track_with_an_idempotency_key(db: str) -> None:
    run_json("customer", "get-or-create", "--id", "u1", db=db)
    key = ("--idempotency-key", "req-1")
    first = run_json("track", "u1", "messages", "3", *key, db=db)
    assert (first["usage"], first["idempotency_key"], first["replayed"]) == (3, "req-1", False)
    again = run_json("track", "u1", "messages", "3", *key, db=db)
    assert (again["usage"], again["replayed"]) == (3, True)
    other = run_cli("track", "u1", "messages", "4", *key, db=db)
    assert other.exit_code == 1
    assert other.stderr.startswith("Error: idempotency key 'req-1' was used for another event")
    shown = run_json("show", "customer.u1", "--format", "json", db=db)
    assert [(e["feature_id"], e["value"], e["idempotency_key"]) for e in shown["usage_events"]] == [
        ("messages", 3, "req-1")
    ]


def test_check_and_track_for_an_entity(sqlite_url: str, tmp_path: Path) -> None:
    """Ann has 100 messages a month (free) and grants of 30 (until March) and 50; her entity
    eu has 20 of its own (seat), used first."""
    applied = run_cli("apply", "-f", str(write(tmp_path, FILE)), "--auto-approve", db=sqlite_url)
    assert applied.exit_code == 0, applied.output
    tracked = run_json("track", "ann", "messages", "25", "--entity", "eu", db=sqlite_url)
    assert (tracked["entity_id"], tracked["recorded"], tracked["dropped"]) == ("eu", 25, 0)
    assert [(b["source"], b["entity_id"], b["used"]) for b in tracked["breakdown"]] == [
        ("plan:seat", "eu", 20),
        ("plan:free", None, 5),
        ("grant:spring", None, 0),
        ("grant:welcome", None, 0),
    ]
    checked = run_json(
        "check", "ann", "messages", "--entity", "eu", "--required", "175", db=sqlite_url
    )
    assert (checked["entity_id"], checked["allowed"], checked["limit"], checked["balance"]) == (
        "eu",
        True,
        200,
        175,
    )
    assert run_json("check", "ann", "sso", "--entity", "eu", db=sqlite_url)["allowed"]
    assert not run_json("check", "ann", "sso", db=sqlite_url)["allowed"]
    own = run_json("check", "ann", "messages", db=sqlite_url)
    assert "entity_id" not in own and (own["limit"], own["usage"]) == (180, 5)
    unknown = run_cli("track", "ann", "messages", "1", "--entity", "eux", db=sqlite_url)
    assert (unknown.exit_code, unknown.stdout) == (1, "")
    assert unknown.stderr == "Error: customer 'ann' has no entity 'eux' (did you mean 'eu'?)\n"


def test_track_overage_is_capped_unless_allowed(db: str) -> None:
    """Jane's Pro has 1000 messages a month, pay-per-use beyond; its item buys at most 50
    more (max_purchase)."""
    pi = t.plan_items
    engine = connect(db)
    with engine.begin() as conn:
        mine = (pi.c.plan_id == "pro") & (pi.c.feature_id == "messages")
        conn.execute(update(pi).where(mine).values(max_purchase=50))
    engine.dispose()
    first = run_json("track", "jane", "messages", "1030", db=db)
    assert (first["recorded"], first["dropped"], first["overage"]) == (1030, 0, 30)
    capped = run_json("track", "jane", "messages", "30", "--overage", "cap", db=db)
    assert (capped["recorded"], capped["dropped"], capped["overage"], capped["balance"]) == (
        20,
        10,
        50,
        -50,
    )
    allowed = run_json("track", "jane", "messages", "5", "--overage", "allow", db=db)
    assert (allowed["recorded"], allowed["dropped"], allowed["overage"]) == (5, 0, 55)
    assert allowed["max_purchase"] == 50


def test_claiming_a_pre_provisioned_customer(db: str) -> None:
    claimed = run_json(
        "customer", "get-or-create", "--id", "acme_1", "--email", "billing@acme.com", db=db
    )
    assert (claimed["outcome"], claimed["name"], claimed["managed"]) == (
        "claimed",
        "Acme Corp",
        True,
    )
    images = run_json("check", "acme_1", "images", "--required", "10", db=db)
    assert (images["allowed"], images["credit_system"], images["needed"]) == (True, "credits", 40)
    assert run_json("check", "acme_1", "sso", db=db) == {
        "customer_id": "acme_1",
        "feature_id": "sso",
        "allowed": True,
        "required": 1,
        "type": "boolean",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check", "nobody", "messages"), "Error: no customer with id 'nobody'"),
        (("check", "jane", "nope"), "Error: no feature 'nope' in the catalog"),
        (("check", "jane", "messages", "--required", "x"), "Error: required must be a number"),
        (("track", "jane", "sso", "1"), "Error: feature 'sso' is boolean"),
        (("track", "jane", "messages", "1e-13"), "Error: value has more than 12 decimal"),
        (("track", "jane", "messages", "1e18"), "Error: value is too large"),
        (("track", "jane", "messages", "inf"), "Error: value must be a finite number"),
        (("customer", "get-or-create", "--id", ""), "Error: a customer id must not be empty"),
        (("check", "jane", "mesages"), "Error: no feature 'mesages' in the catalog (did you mean"),
        (("check", "jnae", "messages"), "Error: no customer with id 'jnae' (did you mean 'jane'?)"),
        (("check", "jane", "messages", "--required", "-5"), "Error: required must be 0 or more"),
        (("check", "jane", "messages", "--entity", "eu"), "Error: customer 'jane' has no entity"),
        (("track", "jane", "messages", "1", "--entity", ""), "Error: an entity id must be 1 to"),
        (("customer", "get-or-create", "--id", "a b"), "Error: invalid customer id 'a b'"),
        (
            ("customer", "get-or-create", "--id", "ab", "--email", "ab"),
            "Error: invalid email 'ab'",
        ),
    ],
)
def test_bad_requests_exit_1_with_a_message(
    sqlite_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    applied = run_cli("apply", "-f", str(write(tmp_path)), "--auto-approve", db=sqlite_url)
    assert applied.exit_code == 0
    result = run_cli(*args, db=sqlite_url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr


def test_an_unknown_overage_mode_is_a_usage_error(sqlite_url: str) -> None:
    result = run_cli("track", "jane", "messages", "1", "--overage", "sometimes", db=sqlite_url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error: Invalid value for '--overage': 'sometimes' is not one of 'cap', 'allow'." in (
        result.stderr
    )


def test_an_unusable_database_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = run_cli("check", "a", "b", db="nosuchdriver://x")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot use database URL")
