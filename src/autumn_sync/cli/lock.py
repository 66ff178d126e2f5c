"""`autumn-sync force-unlock LOCK_ID`: release the billing database's lock when the run
holding it is gone or hung."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from sqlalchemy.exc import SQLAlchemyError

from autumn_sync.cli.common import fail
from autumn_sync.database.engine import DatabaseError
from autumn_sync.database.lock import LockError, LockInfo
from autumn_sync.database.lock import force_unlock as release

if TYPE_CHECKING:
    from autumn_sync.cli.common import Options


@click.command("force-unlock")
@click.argument("lock_id")
@click.pass_obj
def force_unlock(options: Options, lock_id: str) -> None:
    """Release the lock LOCK_ID (named in the message of a run that found the database
    locked) when the run holding it is gone or hung: its database session is ended
    (PostgreSQL, MariaDB) or its lock file removed (SQLite). Nothing else is changed; a run
    still going on loses the lock, so make sure it is not."""
    try:
        info = release(options.engine(), lock_id)
    except (LockError, DatabaseError) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database error: {str(exc).splitlines()[0]}")
    click.echo(released(info))


def released(info: LockInfo) -> str:
    """The line saying the lock `info` describes is released."""
    return f"Lock {info.lock_id} (held by {info.describe()}) released."
