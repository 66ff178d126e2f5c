"""Logging: what autumn-sync does at its I/O boundaries, on stderr when asked for.

Every module logs to its own logger under `autumn_sync` (`logging.getLogger(__name__)`);
nothing is shown unless `configure` is called (the command line does, from `-v`/`--verbose`
and `AUTUMN_SYNC_LOG`). At INFO: Stripe requests (method, path, status, duration, retries),
lock waits, journal replays, SQL statement counts per stage; at DEBUG also list pages,
idempotency keys and what each stage read.

Secrets never reach the output: the filter replaces every secret it was given (the Stripe
key, the database password) and anything shaped like a Stripe secret key or a URL password.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import TextIO

ROOT = "autumn_sync"
ENV_VAR = "AUTUMN_SYNC_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
MASK = "***"
_STRIPE_KEY = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<password>[^@\s]+)@")


class Redact(logging.Filter):
    """Masks the given secrets, Stripe keys and URL passwords in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        return True

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = _STRIPE_KEY.sub(MASK, text)
        return _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}:{MASK}@", text)


def level_for(verbosity: int, setting: str | None) -> int | None:
    """The level `-v` given `verbosity` times asks for (1: INFO, 2 or more: DEBUG), else the
    one `AUTUMN_SYNC_LOG` names; None when neither asks for logs."""
    if verbosity >= 2:
        return logging.DEBUG
    if verbosity == 1:
        return logging.INFO
    if setting:
        return LEVELS.get(setting.strip().lower(), logging.INFO)
    return None


def configure(
    verbosity: int = 0, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Show autumn-sync's logs on `stream` (stderr) at the level asked for (see `level_for`),
    with `secrets` masked. Calling it again replaces the earlier configuration."""
    root = logging.getLogger(ROOT)
    for handler in list(root.handlers):
        if getattr(handler, "_autumn_sync", False):
            root.removeHandler(handler)
    level = level_for(verbosity, os.environ.get(ENV_VAR))
    if level is None:
        root.setLevel(logging.WARNING)
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._autumn_sync = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redact(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
