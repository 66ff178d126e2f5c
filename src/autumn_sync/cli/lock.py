"""`autumn-sync force-unlock LOCK_ID`: release the billing database's lock when the run
holding it is gone or hung."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from sqlalchemy.exc import SQLAlchemyError

from autumn_sync.cli.common import fail
from autumn_sync.cli.output import echo
from autumn_sync.database.engine import DatabaseError
from autumn_sync.database.lock import LockError, LockInfo, current_lock
from autumn_sync.database.lock import force_unlock as release

if TYPE_CHECKING:
    from autumn_sync.cli.common import Options


@click.command("force-unlock")
@click.argument("lock_id")
@click.option("--force", is_flag=True, help="Release without asking to type the lock id again.")
@click.pass_obj
def force_unlock(options: Options, lock_id: str, force: bool) -> None:
    """Release the lock LOCK_ID (named in the message of a run that found the database
    locked) when the run holding it is gone or hung: its database session is ended
    (PostgreSQL, MariaDB) or its lock file removed (SQLite). Nothing else is changed; a run
    still going on loses the lock, so make sure it is not. On a terminal it asks to type the
    lock id again; without one it needs --force."""
    try:
        engine = options.engine()
        held = current_lock(engine)
        if held is not None and held.lock_id == lock_id and not force:
            _confirm(held)
        info = release(engine, lock_id)
    except (LockError, DatabaseError) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database error: {str(exc).splitlines()[0]}")
    echo(released(info))


def on_terminal() -> bool:
    """Whether someone is at a terminal to answer."""
    return sys.stdin.isatty()


def _confirm(held: LockInfo) -> None:
    """Have the lock id typed again (a lock released by mistake lets two runs apply at
    once); without a terminal, fail and point at --force."""
    if not on_terminal():
        fail(
            f"no terminal to confirm on: re-run with --force to release lock {held.lock_id} "
            f"(held by {held.describe()})."
        )
    echo(
        f"Lock {held.lock_id} is held by {held.describe()}. If that run is still going, "
        "releasing its lock lets another run apply beside it.",
        err=True,
    )
    typed = click.prompt("Type the lock id to release it", default="", show_default=False)
    if typed.strip() != held.lock_id:
        fail(f"{typed.strip() or 'nothing'} is not {held.lock_id}: the lock was not released.")


def released(info: LockInfo) -> str:
    """The line saying the lock `info` describes is released."""
    return f"Lock {info.lock_id} (held by {info.describe()}) released."
