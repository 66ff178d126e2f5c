"""Where the commands write: `echo` prints text as the terminal's encoding can show it. A
symbol of the tool's own (`→`, `…`, `×`, `⚠️`) that the encoding lacks becomes its ASCII
form (`->`, `...`, `x`, `!`); any other character it lacks (in a name from the billing file)
becomes `?`. Output never fails on an encoding (`PYTHONIOENCODING=cp1252`, `ascii`)."""

from __future__ import annotations

import codecs
import io
import sys
from typing import TextIO

import click

ASCII_SYMBOLS = {
    "→": "->",
    "←": "<-",
    "↔": "<->",
    "…": "...",
    "·": "-",
    "×": "x",
    "–": "-",
    "—": "--",
    "≥": ">=",
    "≤": "<=",
    "⚠": "!",
    "\ufe0f": "",  # the variation selector that makes ⚠ an emoji
    "✓": "ok",
    "✗": "x",
    "§": "S",
}
FALLBACK = "autumn-sync-ascii"  # the codec error handler that writes them


def _ascii_symbols(error: UnicodeError) -> tuple[str, int]:
    """The codec error handler: ASCII for the symbols in `ASCII_SYMBOLS`, `?` for others."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    missing = error.object[error.start : error.end]
    return "".join(ASCII_SYMBOLS.get(char, "?") for char in missing), error.end


codecs.register_error(FALLBACK, _ascii_symbols)


def printable(text: str, encoding: str | None) -> str:
    """`text` with every character `encoding` lacks replaced as above."""
    if not encoding:
        return text
    try:
        return text.encode(encoding, FALLBACK).decode(encoding)
    except LookupError:  # an encoding Python does not know
        return text


def echo(message: str = "", err: bool = False, nl: bool = True) -> None:
    """`click.echo`, with `message` made printable on stdout (or stderr when `err`)."""
    stream = sys.stderr if err else sys.stdout
    click.echo(printable(message, getattr(stream, "encoding", None)), err=err, nl=nl)


def never_fail_on_encoding(*streams: TextIO) -> None:
    """Make writes to `streams` that bypass `echo` (logs, prompts, the progress bar) use the
    same fallback rather than raise on a character their encoding lacks."""
    for stream in streams:
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=FALLBACK)
