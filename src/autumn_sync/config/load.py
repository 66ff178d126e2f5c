"""From a billing file to the desired `State`, collecting every problem on the way.

Each feature, plan and reward is validated on its own, so one broken entry does not hide the
problems of the others; the whole-file checks then run on the valid entries, treating the ids
of broken ones as known (no false "unknown feature" for a feature that merely has a typo).
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from autumn_sync.config.checks import FileView, check_file
from autumn_sync.config.convert import to_state
from autumn_sync.config.customer_checks import check_customers
from autumn_sync.config.errors import problems_from, show
from autumn_sync.config.format import (
    ID_PATTERN,
    ID_RULE,
    BillingFile,
    CustomerSpec,
    FileShape,
    SettingsSpec,
)
from autumn_sync.config.problems import ConfigError, Problem
from autumn_sync.config.yamlfile import Marks, load_yaml
from autumn_sync.model.state import State

SECTIONS = ("features", "plans", "rewards")


def load_file(path: str | FsPath) -> State:
    """Read, validate and convert the file at `path`; raise `ConfigError` with every problem."""
    name = str(path)
    try:
        data = FsPath(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(name, 1, 1, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, 1, 1, f"cannot read the file: {exc}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([_not_utf8(name, data, exc)]) from None
    return load_text(text, name)


def _not_utf8(name: str, data: bytes, exc: UnicodeDecodeError) -> Problem:
    """Where the first byte that is not UTF-8 is, as a line and a column (in characters)."""
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    column = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
    byte = data[exc.start]
    return Problem(
        name,
        line,
        column,
        f"the file is not UTF-8 text (byte 0x{byte:02x} here): save it as UTF-8",
    )


def load_text(text: str, name: str = "<text>") -> State:
    """Validate and convert YAML `text`; `name` is used in problem locations."""
    data, marks, problems = load_yaml(text, name)
    if not isinstance(data, dict):
        raise ConfigError([*problems, _not_a_mapping(data, marks)])
    ctx = _validate(data, marks, problems)
    if ctx is not None:
        problems.extend(check_file(ctx))
        problems.extend(check_customers(ctx))
    if problems or ctx is None:
        raise ConfigError(problems)
    return to_state(ctx.spec)


def _not_a_mapping(data: Any, marks: Marks) -> Problem:
    if data is None:
        return Problem(marks.file, 1, 1, "the file is empty: start it with 'version: 1'")
    found = "a list" if isinstance(data, list) else show(data)
    return marks.problem(
        (),
        f"the top level must be a mapping ('version: 1', then features, plans, rewards), "
        f"not {found}",
    )


def _validate(data: dict[str, Any], marks: Marks, problems: list[Problem]) -> FileView | None:
    """Validate the outline, then every entry of every section on its own. A broken outline
    does not stop the entries from being checked, unless the version is one this tool does
    not read."""
    opaque: frozenset[str] = frozenset()
    try:
        shape = FileShape.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, data, FileShape, marks))
        if any(d["loc"] == ("version",) and d["type"] != "missing" for d in exc.errors()):
            return None
        shape, opaque = _salvage(data)
    fields: dict[str, Any] = {"version": shape.version, "settings": shape.settings}
    broken: dict[str, set[str]] = {}
    for section in SECTIONS:
        model = BillingFile.entry_model(section)
        entries = getattr(shape, section)
        valid, bad = _entries(section, entries, model, marks, problems)
        fields[section], broken[section] = valid, bad
    indexes, fields["customers"] = _customers(shape.customers, marks, problems)
    spec = BillingFile.model_construct(**fields)
    return FileView(spec, marks, broken, opaque, customer_index=indexes)


def _salvage(data: dict[str, Any]) -> tuple[FileShape, frozenset[str]]:
    """The usable parts of a file whose outline is broken, and the parts whose ids cannot be
    known (a section that is not a mapping, or missing while some top-level key is unknown:
    perhaps a misspelt section). References into those are not reported."""
    sections = {s: data[s] for s in SECTIONS if isinstance(data.get(s), dict)}
    opaque = {s for s in SECTIONS if s in data and s not in sections}
    if set(data) - set(FileShape.model_fields):
        opaque |= {s for s in SECTIONS if s not in data}
    try:
        settings = SettingsSpec.model_validate(data.get("settings", {}))
    except ValidationError:
        settings = SettingsSpec.model_construct(currency="")
        opaque.add("settings")
    fields: dict[str, Any] = {"version": data.get("version"), "settings": settings, **sections}
    if isinstance(data.get("customers"), list):
        fields["customers"] = data["customers"]
    return FileShape.model_construct(**fields), frozenset(opaque)


def _entries(
    section: str,
    entries: dict[str, Any],
    model: type[BaseModel],
    marks: Marks,
    problems: list[Problem],
) -> tuple[dict[str, BaseModel], set[str]]:
    """The valid entries of a section, and the ids of the others."""
    valid: dict[str, BaseModel] = {}
    bad: set[str] = set()
    for key, value in entries.items():
        if not ID_PATTERN.fullmatch(key):
            bad.add(key)
            problems.append(
                marks.problem((section, key), f"invalid id {key!r}: {ID_RULE}", key=True)
            )
        try:
            entry = model.model_validate(value)
        except ValidationError as exc:
            bad.add(key)
            problems.extend(problems_from(exc, value, model, marks, prefix=(section, key)))
            continue
        if key not in bad:
            valid[key] = entry
    return valid, bad


def _customers(
    entries: list[Any], marks: Marks, problems: list[Problem]
) -> tuple[tuple[int, ...], list[CustomerSpec]]:
    """The valid customers (a list, each validated on its own) and their places in it."""
    valid, indexes = [], []
    model = BillingFile.entry_model("customers")
    for index, value in enumerate(entries):
        try:
            valid.append(CustomerSpec.model_validate(value))
        except ValidationError as exc:
            problems.extend(problems_from(exc, value, model, marks, prefix=("customers", index)))
            continue
        indexes.append(index)
    return tuple(indexes), valid
