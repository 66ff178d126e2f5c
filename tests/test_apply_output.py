"""What `apply` prints while it works: on a terminal (a pseudo-terminal here) a progress bar
naming the change just applied, in colour unless NO_COLOR; without a terminal, one plain line
per change."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES

SCRIPT = str(Path(sys.executable).parent / "autumn-sync")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
DONE = re.compile(r"^[a-z_]+([.\[][^ ]*)?: (created|updated|archived|replaced|destroyed)$")


def on_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `autumn-sync ARGS` with a pseudo-terminal as its stdin, stdout and stderr."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [SCRIPT, *args], stdin=follower, stdout=follower, stderr=follower, env=env, cwd=cwd
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode()


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "STRIPE_API_KEY")}
    return {**env, "AUTUMN_SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", **extra}


def test_progress_bar_in_colour_on_a_terminal(tmp_path: Path) -> None:
    code, output = on_terminal(
        ["apply", "-f", str(EXAMPLES / "billing.yaml"), "--auto-approve"],
        environment(tmp_path),
        tmp_path,
    )
    assert code == 0, output
    assert COLOUR.search(output)
    plain = COLOUR.sub("", output)
    assert re.search(r"Applying +\[#+-*\] +\d+/17 +\S+: (created|updated)", plain)
    assert "17/17" in plain
    assert not [line for line in plain.splitlines() if DONE.match(line.strip())]
    assert "Apply complete! 17 added, 0 changed, 0 archived, 0 destroyed." in plain


def test_no_color_on_a_terminal_is_plain(tmp_path: Path) -> None:
    code, output = on_terminal(
        ["apply", "-f", str(EXAMPLES / "billing.yaml"), "--auto-approve"],
        environment(tmp_path, NO_COLOR="1"),
        tmp_path,
    )
    assert code == 0, output
    assert not COLOUR.search(output)
    assert "17/17" in output


def test_without_a_terminal_one_plain_line_per_change(tmp_path: Path) -> None:
    result = subprocess.run(
        [SCRIPT, "apply", "-f", str(EXAMPLES / "billing.yaml"), "--auto-approve"],
        env=environment(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not COLOUR.search(result.stdout)
    assert "Applying" not in result.stdout
    done = [line for line in result.stdout.splitlines() if DONE.match(line)]
    assert len(done) == 17
    assert done[0] == "settings: created"
