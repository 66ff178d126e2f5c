"""Writing the file `plan --out` names without ever replacing what autumn-sync did not write:
not the billing file, not the database, not a file it did not save, not through a link."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from autumn_sync.plan.saved import is_saved_plan

Ours = Callable[[Path], bool]


class OutError(Exception):
    """The file cannot be written there; the message says why. Nothing was written."""


def check_replaceable(out: Path, protected: dict[str, Path], ours: Ours) -> None:
    """Raise `OutError` unless writing `out` is safe: it does not exist, or it is a regular
    file (not a link) that `ours` recognises and none of `protected` (named by what it is:
    "the billing file")."""
    for what, path in protected.items():
        if _same(out, path):
            raise OutError(f"--out {out} is {what}; save the plan to another file")
    if not os.path.lexists(out):
        return
    if out.is_symlink():
        raise OutError(f"cannot write the saved plan {out}: it is a link; name a file")
    if out.is_dir():
        raise OutError(f"cannot write the saved plan {out}: it is a folder")
    if not out.is_file() or not ours(out):
        raise OutError(
            f"cannot write the saved plan {out}: it exists and is not a plan autumn-sync "
            "saved, which is all --out replaces; remove it or save the plan to another file"
        )


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_new(out: Path, text: str, check: Callable[[], None]) -> None:
    """Write `text` to `out` whole or not at all: into a temporary file of a new name in the
    same folder (never one that already exists: a planted link is not followed), then renamed
    over `out` once `check` passes again (raises `OutError`, `OSError`)."""
    temporary = out.with_name(f".{out.name}.{secrets.token_hex(6)}.partial")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        check()
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def is_saved_plan_file(path: Path) -> bool:
    """Whether the file at `path` is a plan autumn-sync saved (read only if it may be one)."""
    try:
        with path.open("rb") as stream:
            if stream.read(1) != b"{":
                return False
            return is_saved_plan((b"{" + stream.read()).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return False
