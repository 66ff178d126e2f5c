"""Safety rails of the command line: the database must be named, every failure is explained,
and nothing surprises (issue 14)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from autumn_sync.cli.common import parse_duration
from autumn_sync.cli.main import GlobalOptions, cli, globals_first
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


# -- Every failure explained -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "module", "shown", "install"),
    [
        (
            "postgresql+psycopg://u:secret@127.0.0.1:1/billing",
            "psycopg",
            "postgresql+psycopg://u:***@127.0.0.1:1/billing",
            "pip install 'autumn-sync[postgresql]' (psycopg)",
        ),
        (
            "postgres://u@127.0.0.1:1/billing",
            "psycopg",
            "postgresql+psycopg://u@127.0.0.1:1/billing",
            "pip install 'autumn-sync[postgresql]' (psycopg)",
        ),
        (
            "mysql://root@127.0.0.1:1/billing",
            "pymysql",
            "mysql+pymysql://root@127.0.0.1:1/billing",
            "pip install 'autumn-sync[mysql]' (PyMySQL)",
        ),
        (
            "mysql+mysqldb://root@127.0.0.1:1/billing",
            "MySQLdb",
            "mysql+mysqldb://root@127.0.0.1:1/billing",
            "pip install mysqlclient, or use mysql+pymysql:// with pip install "
            "'autumn-sync[mysql]'",
        ),
    ],
)
def test_a_missing_driver_names_what_to_install(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    module: str,
    shown: str,
    install: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    result = run_cli("plan", "-f", EXAMPLE, db=url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the database driver {module} for {shown} is not installed: {install}.\n"
    )


@pytest.mark.parametrize(
    ("url", "understood"),
    [
        ("postgres://u@127.0.0.1:1/billing", "postgresql+psycopg://u@127.0.0.1:1/billing"),
        ("postgresql://u@127.0.0.1:1/billing", "postgresql+psycopg://u@127.0.0.1:1/billing"),
        ("mysql://root@127.0.0.1:1/billing", "mysql+pymysql://root@127.0.0.1:1/billing"),
        ("mariadb://root@127.0.0.1:1/billing", "mariadb+pymysql://root@127.0.0.1:1/billing"),
    ],
)
def test_a_url_without_a_driver_gets_the_installed_one(
    workdir: Path, url: str, understood: str
) -> None:
    result = run_cli("plan", "-f", EXAMPLE, db=url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot open database {understood}: "), result.stderr
    assert "Can't load plugin" not in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("30", 30.0), ("2.5", 2.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0)],
)
def test_durations_take_seconds_minutes_and_hours(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5m", "1h", "30s", "30"])
def test_lock_timeout_accepts_a_duration(sqlite_url: str, tmp_path: Path, text: str) -> None:
    saved = tmp_path / "plan.json"
    result = run_cli(
        "plan", "-f", EXAMPLE, "--out", str(saved), "--lock-timeout", text, db=sqlite_url
    )
    assert result.exit_code == 0, result.output
    assert saved.exists()


@pytest.mark.parametrize("text", ["5x", "-1", "m", "1.5.2s", "inf", "nan", "5 minutes"])
def test_lock_timeout_refuses_what_is_not_a_duration(sqlite_url: str, text: str) -> None:
    result = run_cli(
        "apply", "-f", EXAMPLE, "--auto-approve", "--lock-timeout", text, db=sqlite_url
    )
    assert result.exit_code == 1
    assert (
        f"Invalid value for '--lock-timeout': {text!r} is not a duration: use seconds (30, 2.5) "
        "or a number with s, m or h (30s, 5m, 1h)." in result.stderr
    )


# -- No surprises ----------------------------------------------------------------------------


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_global_options_may_follow_the_command(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'after.db'}"
    result = _invoke("plan", "-f", EXAMPLE, "--no-color", "-v", "--database-url", url)
    assert result.exit_code == 0, result.output
    assert (workdir / "after.db").exists()
    assert not (workdir / "autumn-sync.db").exists()
    assert "INFO autumn_sync.database.engine: database sqlite:///" in result.stderr
    assert "Plan: 17 to add" in result.stdout


def test_global_options_after_a_nested_command_and_with_equals(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'nested.db'}"
    result = _invoke(
        "customer", "get-or-create", "--id", "user_9", f"--database-url={url}", "--no-color"
    )
    assert result.exit_code == 0, result.output
    assert (workdir / "nested.db").exists()


def test_what_follows_a_double_dash_is_left_alone() -> None:
    options = GlobalOptions(flags={"--no-color", "-v"}, valued={"--database-url"})
    args = ["plan", "-vv", "--database-url", "u", "-f", "x", "--", "--no-color"]
    assert globals_first(args, options) == [
        "-vv",
        "--database-url",
        "u",
        "plan",
        "-f",
        "x",
        "--",
        "--no-color",
    ]
    assert globals_first(["--no-color", "plan"], options) == ["--no-color", "plan"]
