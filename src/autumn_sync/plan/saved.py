"""A saved plan (`plan --out PLANFILE`): the exact `ChangePlan` as JSON, with what it was made
against, so that `apply PLANFILE` applies those changes or refuses a stale plan.

The JSON is tagged so that it decodes into the very records it was made from: a record is
`{"@": "Plan", ...fields}`, and the values JSON lacks are tagged too (`{"@decimal": "2.50"}`,
`@date`, `@datetime`, `@tuple`, `@frozenset`, `@dict`, `@enum`). Only record classes of
`autumn_sync.model` and `autumn_sync.plan` can be named, so a plan file cannot make the
reader build anything else. Pure: text in, text out; the command line reads and writes files.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from autumn_sync import __version__
from autumn_sync.model import customers, records, state, stripe
from autumn_sync.plan import changes, plan

FORMAT = "autumn-sync saved plan"
FORMAT_VERSION = 1
_MODULES = (records, customers, state, stripe, changes, plan)


class SavedPlanError(Exception):
    """The file is not a saved plan this version can apply; the message says why."""


@dataclass(frozen=True)
class SavedPlan:
    """A plan and what it was made against: the billing file (path and sha256), the
    database (a digest of its URL without password), and the `--target`s that limited it."""

    plan: plan.ChangePlan
    file_path: str
    file_sha256: str
    database: str
    targets: tuple[str, ...] = ()
    created_at: str = ""
    version: str = __version__


def _classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in _MODULES:
        for name, value in vars(module).items():
            ours = isinstance(value, type) and value.__module__ == module.__name__
            if ours and (dataclasses.is_dataclass(value) or issubclass(value, enum.Enum)):
                found[name] = value
    return found


_CLASSES = _classes()


def encode(value: Any) -> Any:
    """`value` as JSON-able data, tagged so that `decode` gives back an equal value."""
    if isinstance(value, enum.Enum):  # first: a StrEnum is a str too
        return {"@enum": type(value).__name__, "value": value.value}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"@": type(value).__name__, **fields}
    return _encode_value(value)


def _encode_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"@decimal": str(value)}
    if isinstance(value, datetime):
        return {"@datetime": value.isoformat()}
    if isinstance(value, date):
        return {"@date": value.isoformat()}
    if isinstance(value, tuple):
        return {"@tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, frozenset):
        return {"@frozenset": sorted((encode(v) for v in value), key=_sort_key)}
    if isinstance(value, dict):
        return {"@dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot save a {type(value).__name__} in a plan")


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def decode(data: Any) -> Any:
    """The value `encode` made `data` from (raises `SavedPlanError` for unknown tags)."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "@" in data:
        return _record(data)
    if "@enum" in data:
        return _class(data["@enum"])(data["value"])
    if len(data) != 1:
        raise SavedPlanError(f"unknown value {sorted(data)}")
    ((tag, payload),) = data.items()
    return _decode_tagged(tag, payload)


def _decode_tagged(tag: str, payload: Any) -> Any:
    simple: dict[str, Callable[[str], Any]] = {
        "@decimal": Decimal,
        "@datetime": datetime.fromisoformat,
        "@date": date.fromisoformat,
    }
    if tag in simple:
        return simple[tag](payload)
    if tag == "@tuple":
        return tuple(decode(v) for v in payload)
    if tag == "@frozenset":
        return frozenset(decode(v) for v in payload)
    if tag == "@dict":
        return {decode(k): decode(v) for k, v in payload}
    raise SavedPlanError(f"unknown value tag {tag!r}")


def _record(data: dict[str, Any]) -> Any:
    cls = _class(data["@"])
    values = {k: decode(v) for k, v in data.items() if k != "@"}
    try:
        return cls(**values)
    except TypeError as exc:
        raise SavedPlanError(f"a {cls.__name__} in the file does not fit: {exc}") from None


def _class(name: str) -> type:
    try:
        return _CLASSES[name]
    except KeyError:
        raise SavedPlanError(f"unknown record type {name!r}") from None


def dumps(saved: SavedPlan) -> str:
    """The saved plan as text: a header a person can read, the tagged plan, and a sha256 of
    the rest (so a file edited by hand or cut short is refused)."""
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "autumn_sync_version": saved.version,
        "created_at": saved.created_at,
        "file": {"path": saved.file_path, "sha256": saved.file_sha256},
        "database": saved.database,
        "targets": list(saved.targets),
        "summary": dataclasses.asdict(saved.plan.summary()),
        "checksum": saved.plan.checksum(),
        "plan": encode(saved.plan),
    }
    signed = {**body, "sha256": _sha(_canonical(body))}
    return json.dumps(signed, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def loads(text: str) -> SavedPlan:
    """The saved plan in `text` (raises `SavedPlanError` when it is not one, was edited,
    or was made by another version of autumn-sync)."""
    body = _parse(text)
    found = body.pop("sha256", None)
    if found != _sha(_canonical(body)):
        raise SavedPlanError("the saved plan was edited or is incomplete (its sha256 differs)")
    if body.get("autumn_sync_version") != __version__:
        raise SavedPlanError(
            f"the plan was saved by autumn-sync {body.get('autumn_sync_version')}; this is "
            f"{__version__}: plan again with this version"
        )
    change_plan = decode(body["plan"])
    if not isinstance(change_plan, plan.ChangePlan) or change_plan.checksum() != body["checksum"]:
        raise SavedPlanError("the saved plan does not hold the plan its checksum names")
    return SavedPlan(
        plan=change_plan,
        file_path=body["file"]["path"],
        file_sha256=body["file"]["sha256"],
        database=body["database"],
        targets=tuple(body["targets"]),
        created_at=body["created_at"],
        version=body["autumn_sync_version"],
    )


def is_saved_plan(text: str) -> bool:
    """Whether `text` is a plan autumn-sync saved (any version of the format)."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("format") == FORMAT


def _parse(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise SavedPlanError("not a saved plan (make one with `autumn-sync plan --out PLANFILE`)")
    if body.get("format_version") != FORMAT_VERSION:
        raise SavedPlanError(f"saved plan format {body.get('format_version')} is not supported")
    return body


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
