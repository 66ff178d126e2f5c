"""The command line as a user drives it: exit codes, output, confirmation, destroys, import."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autumn_sync.cli.output import printable
from tests.conftest import EXAMPLES, run_cli
from tests.helpers import add_customers

EXAMPLE = str(EXAMPLES / "billing.yaml")


def _without(path: Path, section: str, key: str) -> str:
    document = yaml.safe_load(Path(EXAMPLE).read_text())
    del document[section][key]
    for reward in document.get("rewards", {}).values():
        reward["plans"] = [p for p in reward.get("plans", []) if p != key]
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_validate_accepts_the_example() -> None:
    result = run_cli("validate", "-f", EXAMPLE)
    assert result.exit_code == 0
    assert result.stdout == f"{EXAMPLE} is valid: 7 features, 4 plans, 2 rewards, 2 customers.\n"


def test_plan_apply_replan_on_every_database(db_url: str) -> None:
    first = run_cli("plan", "-f", EXAMPLE, "--detailed-exitcode", db=db_url)
    assert first.exit_code == 2
    assert (
        first.output.splitlines()[-1] == "Plan: 17 to add, 0 to change, 0 to archive, 0 to destroy."
    )
    applied = run_cli("apply", "-f", EXAMPLE, "--auto-approve", db=db_url)
    assert applied.exit_code == 0, applied.output
    assert "Apply complete! 17 added, 0 changed, 0 archived, 0 destroyed." in applied.output
    again = run_cli("plan", "-f", EXAMPLE, "--detailed-exitcode", db=db_url)
    assert again.exit_code == 0
    assert again.stdout == "No changes. The billing database matches the configuration.\n"


def test_plan_json_is_shaped_like_terraforms(sqlite_url: str) -> None:
    result = run_cli("plan", "-f", EXAMPLE, "--format", "json", db=sqlite_url)
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["format_version"] == "1.2"
    assert document["summary"] == {"add": 17, "change": 0, "archive": 0, "destroy": 0}
    pro = next(r for r in document["resource_changes"] if r["address"] == "plan.pro")
    assert pro["type"] == "plan" and pro["name"] == "pro"
    assert pro["change"]["actions"] == ["create"]
    assert pro["change"]["before"] is None
    assert pro["change"]["after"]["price"] == {"amount": 20, "interval": "month"}


def test_no_change_json_lists_no_ops(sqlite_url: str) -> None:
    run_cli("apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url)
    document = json.loads(run_cli("plan", "-f", EXAMPLE, "--format", "json", db=sqlite_url).stdout)
    actions = {r["address"]: r["change"]["actions"] for r in document["resource_changes"]}
    assert len(actions) == 17  # settings, 7 features, 4 plans, 2 rewards, 2 customers, 1 balance
    assert set(map(tuple, actions.values())) == {("no-op",)}


def test_markdown_has_a_headline(sqlite_url: str) -> None:
    result = run_cli("plan", "-f", EXAMPLE, "--format", "markdown", db=sqlite_url)
    assert result.stdout.startswith(
        "<!-- autumn-sync-plan -->\n"
        "### autumn-sync plan: 17 to add, 0 to change, 0 to archive, 0 to destroy\n"
    )


def test_apply_without_terminal_needs_auto_approve(sqlite_url: str) -> None:
    result = run_cli("apply", "-f", EXAMPLE, db=sqlite_url)
    assert result.exit_code == 1
    assert "re-run with --auto-approve" in result.stderr
    assert run_cli("plan", "-f", EXAMPLE, "--detailed-exitcode", db=sqlite_url).exit_code == 2


def test_destroy_is_refused_without_allow_destroy(sqlite_url: str, tmp_path: Path) -> None:
    run_cli("apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url)
    smaller = _without(tmp_path / "billing.yaml", "rewards", "welcome5")
    refused = run_cli("apply", "-f", smaller, "--auto-approve", db=sqlite_url)
    assert refused.exit_code == 1
    assert "the plan destroys reward.welcome5" in refused.stderr
    assert "- reward.welcome5 (destroy)" in refused.output
    assert run_cli("plan", "-f", smaller, "--detailed-exitcode", db=sqlite_url).exit_code == 2
    allowed = run_cli("apply", "-f", smaller, "--auto-approve", "--allow-destroy", db=sqlite_url)
    assert allowed.exit_code == 0
    assert "reward.welcome5: destroyed" in allowed.output


def test_archive_is_not_a_destroy(sqlite_url: str, tmp_path: Path) -> None:
    from autumn_sync.database.engine import connect

    run_cli("apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url)
    add_customers(connect(sqlite_url), "free", 3)
    smaller = _without(tmp_path / "billing.yaml", "plans", "free")
    result = run_cli("apply", "-f", smaller, "--auto-approve", db=sqlite_url)
    assert result.exit_code == 0, result.output + result.stderr
    assert "~ plan.free (archive: 3 customers stay on it)" in result.output
    assert "plan.free: archived" in result.output
    assert "0 archived" not in result.output


def test_import_round_trips(db_url: str, tmp_path: Path) -> None:
    run_cli("apply", "-f", EXAMPLE, "--auto-approve", db=db_url)
    out = tmp_path / "imported.yaml"
    result = run_cli("import", "--out", str(out), db=db_url)
    assert result.exit_code == 0, result.stderr
    assert run_cli("validate", "-f", str(out)).exit_code == 0
    replan = run_cli("plan", "-f", str(out), "--detailed-exitcode", db=db_url)
    assert replan.exit_code == 0, replan.output


def test_import_never_overwrites_without_force(sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "mine.yaml"
    out.write_text("precious: true\n")
    result = run_cli("import", "--out", str(out), db=sqlite_url)
    assert result.exit_code == 1
    assert out.read_text() == "precious: true\n"
    assert run_cli("import", "--out", str(out), "--force", db=sqlite_url).exit_code == 0
    assert out.read_text().startswith("# Written by `autumn-sync import`")


def test_unusable_database_url_is_a_clear_error(tmp_path: Path) -> None:
    url = "postgresql+psycopg://billing:s3cret@127.0.0.1:1/nowhere"
    result = run_cli("plan", "-f", EXAMPLE, db=url)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot open database postgresql+psycopg://billing:***@")
    assert "s3cret" not in result.output + result.stderr


def test_unknown_driver_is_a_clear_error() -> None:
    result = run_cli("plan", "-f", EXAMPLE, db="nosuchdb://x")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot use database URL nosuchdb://x")


def _script() -> str:
    found = shutil.which("autumn-sync", path=os.path.dirname(sys.executable))
    assert found, "the autumn-sync console script is not installed"
    return found


def test_console_script_runs_the_readme_job(tmp_path: Path) -> None:
    done = subprocess.run(
        [_script(), "plan", "-f", EXAMPLE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Plan: 17 to add" in done.stdout
    assert (tmp_path / "autumn-sync.db").exists()


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_output_falls_back_to_ascii_symbols(tmp_path: Path, sqlite_url: str, encoding: str) -> None:
    run_cli("apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url)
    renamed = tmp_path / "billing.yaml"
    text = Path(EXAMPLE).read_text(encoding="utf-8")
    renamed.write_text(text.replace("name: Pro\n", "name: Pro ☂\n", 1), encoding="utf-8")
    done = subprocess.run(
        [_script(), "--database-url", sqlite_url, "plan", "-f", str(renamed)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": encoding},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b'name: "Pro" -> "Pro ?"' in done.stdout
    assert b"Traceback" not in done.stderr


def test_printable_keeps_what_the_encoding_has() -> None:
    assert printable("a → b…", "cp1252") == "a -> b…"
    assert printable("a → b… ⚠️ Café", "ascii") == "a -> b... ! Caf?"
    assert printable("a → b", "utf-8") == "a → b"


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("answer", "applied"), [("y", True), ("n", False)])
def test_apply_asks_on_a_terminal(tmp_path: Path, answer: str, applied: bool) -> None:
    import pty

    primary, secondary = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen(
        [_script(), "apply", "-f", EXAMPLE],
        cwd=tmp_path,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    output = _read_until(primary, b"Apply these changes? [y/N]: ")
    os.write(primary, f"{answer}\n".encode())
    output += _read_until(primary, None)
    assert process.wait(timeout=30) == (0 if applied else 1)
    os.close(primary)
    text = output.decode()
    assert "Plan: 17 to add" in text
    assert ("Apply complete!" in text) is applied
    assert ("Apply cancelled. Nothing was changed." in text) is not applied


def _read_until(fd: int, marker: bytes | None, timeout: float = 30.0) -> bytes:
    data = b""
    while marker is None or marker not in data:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_import_to_an_unwritable_place_is_a_clear_error(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli("import", "--out", str(tmp_path / "missing" / "x.yaml"), db=sqlite_url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot write {tmp_path / 'missing' / 'x.yaml'}: ")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--format", "bogus"),
        ("plan", "--detailed-exitcode", "--nope"),
        ("bogus",),
        ("apply", "--lock-timeout", "-1"),
        ("customer", "get-or-create", "--bad"),
    ],
    ids=" ".join,
)
def test_usage_errors_exit_1_not_2(args: tuple[str, ...], sqlite_url: str) -> None:
    """Exit 2 says "changes present" (plan --detailed-exitcode) or "drift found": a mistyped
    command line must not read as either."""
    result = run_cli(*args, db=sqlite_url)
    assert result.exit_code == 1
    assert "Error: " in result.output


def test_plan_out_never_overwrites_the_billing_file_or_a_folder(
    tmp_path: Path, sqlite_url: str
) -> None:
    billing = tmp_path / "billing.yaml"
    billing.write_text(Path(EXAMPLE).read_text(encoding="utf-8"), encoding="utf-8")
    same = run_cli("plan", "-f", str(billing), "--out", str(billing), db=sqlite_url)
    assert same.exit_code == 1
    assert "is the billing file itself" in same.output
    assert billing.read_text(encoding="utf-8") == Path(EXAMPLE).read_text(encoding="utf-8")
    folder = tmp_path / "plans"
    folder.mkdir()
    into_folder = run_cli("plan", "-f", str(billing), "--out", str(folder), db=sqlite_url)
    assert into_folder.exit_code == 1
    assert f"cannot write the saved plan {folder}" in into_folder.output
    # Refused before planning: nothing was written anywhere, not even the database.
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "billing.yaml",
        "plans",
    ]
    from_folder = run_cli("apply", str(folder), db=sqlite_url)
    assert from_folder.exit_code == 1
    assert f"cannot read the saved plan {folder}" in from_folder.output


# `plan --out` never replaces what autumn-sync did not write: the SQLite database, the billing
# file under another name (a hard link), a file of the user's, nor anything through a link.


def _applied_example(tmp_path: Path, db: str) -> Path:
    billing = tmp_path / "billing.yaml"
    billing.write_text(Path(EXAMPLE).read_text(encoding="utf-8"), encoding="utf-8")
    assert run_cli("apply", "-f", str(billing), "--auto-approve", db=db).exit_code == 0
    return billing


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_plan_out_never_replaces_the_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTUMN_SYNC_DATABASE_URL", raising=False)
    billing = _applied_example(tmp_path, "")
    before = _files(tmp_path)
    assert "autumn-sync.db" in before
    for out in ("autumn-sync.db", str(tmp_path / "autumn-sync.db")):
        result = run_cli("plan", "-f", str(billing), "--out", out)
        assert result.exit_code == 1
        assert f"Error: --out {out} is the billing database; save the plan to another file" in (
            result.output
        )
    explicit = f"sqlite:///{tmp_path / 'autumn-sync.db'}"
    result = run_cli("plan", "-f", str(billing), "--out", "autumn-sync.db", db=explicit)
    assert "is the billing database" in result.output
    assert _files(tmp_path) == before
    assert "user_123" in run_cli("show", "customers", db=explicit).output


def test_plan_out_never_replaces_a_hard_link_to_the_billing_file(
    tmp_path: Path, sqlite_url: str
) -> None:
    billing = _applied_example(tmp_path, sqlite_url)
    link = tmp_path / "reviewed.plan"
    os.link(billing, link)
    before = _files(tmp_path)
    result = run_cli("plan", "-f", str(billing), "--out", str(link), db=sqlite_url)
    assert result.exit_code == 1
    assert f"Error: --out {link} is the billing file itself" in result.output
    assert _files(tmp_path) == before


def test_plan_out_replaces_only_a_plan_it_saved(tmp_path: Path, sqlite_url: str) -> None:
    billing = _applied_example(tmp_path, sqlite_url)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n", encoding="utf-8")
    refused = run_cli("plan", "-f", str(billing), "--out", str(notes), db=sqlite_url)
    assert refused.exit_code == 1
    assert (
        f"Error: cannot write the saved plan {notes}: it exists and is not a plan autumn-sync "
        "saved, which is all --out replaces; remove it or save the plan to another file"
    ) in refused.output
    assert notes.read_text(encoding="utf-8") == "my notes\n"
    planfile = tmp_path / "reviewed.plan"
    for _ in range(2):  # a plan saved before is replaced
        saved = run_cli("plan", "-f", str(billing), "--out", str(planfile), db=sqlite_url)
        assert saved.exit_code == 0, saved.output
    assert sorted(p.name for p in tmp_path.iterdir() if ".partial" in p.name) == []


def test_plan_out_follows_no_link(tmp_path: Path, sqlite_url: str) -> None:
    billing = _applied_example(tmp_path, sqlite_url)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    # A link planted where an older version wrote its temporary file is not followed.
    (tmp_path / ".reviewed.plan.partial").symlink_to(victim)
    planfile = tmp_path / "reviewed.plan"
    assert run_cli("plan", "-f", str(billing), "--out", str(planfile), db=sqlite_url).exit_code == 0
    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert (tmp_path / ".reviewed.plan.partial").is_symlink()
    # A link at --out itself is refused, whatever it points to.
    link = tmp_path / "link.plan"
    link.symlink_to(planfile)
    refused = run_cli("plan", "-f", str(billing), "--out", str(link), db=sqlite_url)
    assert refused.exit_code == 1
    assert f"Error: cannot write the saved plan {link}: it is a link; name a file" in (
        refused.output
    )
    assert link.is_symlink() and victim.read_text(encoding="utf-8") == "keep me\n"
