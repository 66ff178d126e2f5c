"""Safety rails of the command line: the database must be named, every failure is explained,
and nothing surprises (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli

EXAMPLE = str(EXAMPLES / "billing.yaml")
ENV_URL = "AUTUMN_SYNC_DATABASE_URL"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, with no database URL in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_URL, raising=False)
    return tmp_path


# -- The database must be named ------------------------------------------------------------


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"], ["drift"]])
def test_an_empty_database_url_option_is_refused(workdir: Path, command: list[str]) -> None:
    result = run_cli("--database-url", "", *command, "-f", EXAMPLE)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the database URL is empty (--database-url=''): name the billing database "
        "with --database-url or AUTUMN_SYNC_DATABASE_URL.\n"
    )
    assert list(workdir.iterdir()) == []


def test_an_empty_database_url_variable_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_URL, "")
    result = run_cli("plan", "-f", EXAMPLE)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the database URL is empty (AUTUMN_SYNC_DATABASE_URL=''): name the billing "
        "database with --database-url or AUTUMN_SYNC_DATABASE_URL.\n"
    )
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("how", ["option", "variable"])
def test_a_stripe_key_without_a_database_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    key = ["--stripe-api-key", "sk_test_rails"] if how == "option" else []
    if how == "variable":
        monkeypatch.setenv("STRIPE_API_KEY", "sk_test_rails")
    result = run_cli(*key, "plan", "-f", EXAMPLE)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: a Stripe key is set but no billing database is named: name the billing "
        "database with --database-url or AUTUMN_SYNC_DATABASE_URL (the local "
        "sqlite:///autumn-sync.db is used only without Stripe).\n"
    )
    assert "sk_test_rails" not in result.output
    assert list(workdir.iterdir()) == []


def test_without_stripe_or_url_the_local_sqlite_file_is_used(workdir: Path) -> None:
    result = run_cli("plan", "-f", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert (workdir / "autumn-sync.db").exists()
