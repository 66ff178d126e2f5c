"""From a billing file to the desired `State`, collecting every problem on the way.

Each feature, plan and reward is validated on its own, so one broken entry does not hide the
problems of the others; the whole-file checks then run on the valid entries, treating the ids
of broken ones as known (no false "unknown feature" for a feature that merely has a typo).
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from autumn_sync.config.checks import Context, check_file
from autumn_sync.config.convert import to_state
from autumn_sync.config.errors import problems_from
from autumn_sync.config.format import ID_PATTERN, ID_RULE, BillingFile, FileShape
from autumn_sync.config.problems import ConfigError, Problem
from autumn_sync.config.yamlfile import Marks, load_yaml
from autumn_sync.model.state import State

SECTIONS = ("features", "plans", "rewards")


def load_file(path: str | FsPath) -> State:
    """Read, validate and convert the file at `path`; raise `ConfigError` with every problem."""
    name = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(name, 1, 1, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, 1, 1, f"cannot read the file: {exc}")]) from None
    return load_text(text, name)


def load_text(text: str, name: str = "<text>") -> State:
    """Validate and convert YAML `text`; `name` is used in problem locations."""
    data, marks, problems = load_yaml(text, name)
    if not isinstance(data, dict):
        raise ConfigError(
            [*problems, Problem(name, 1, 1, "the file must be a mapping with 'version: 1'")]
        )
    spec, broken = _validate(data, marks, problems)
    if spec is not None:
        problems.extend(check_file(Context(spec, marks, broken)))
    if problems:
        raise ConfigError(problems)
    assert spec is not None
    return to_state(spec)


def _validate(
    data: dict[str, Any], marks: Marks, problems: list[Problem]
) -> tuple[BillingFile | None, dict[str, set[str]]]:
    """Validate the outline, then every entry of every section on its own."""
    try:
        shape = FileShape.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, data, FileShape, marks))
        return None, {}
    fields: dict[str, Any] = {"version": shape.version, "settings": shape.settings}
    broken: dict[str, set[str]] = {}
    for section in SECTIONS:
        model = BillingFile.entry_model(section)
        entries = getattr(shape, section)
        valid, bad = _entries(section, entries, model, marks, problems)
        fields[section], broken[section] = valid, bad
    return BillingFile.model_construct(**fields), broken


def _entries(
    section: str,
    entries: dict[str, Any],
    model: type[BaseModel],
    marks: Marks,
    problems: list[Problem],
) -> tuple[dict[str, BaseModel], set[str]]:
    valid: dict[str, BaseModel] = {}
    bad: set[str] = set()
    for key, value in entries.items():
        if not ID_PATTERN.fullmatch(key):
            bad.add(key)
            problems.append(
                marks.problem((section, key), f"invalid id {key!r}: {ID_RULE}", key=True)
            )
            continue
        try:
            valid[key] = model.model_validate(value)
        except ValidationError as exc:
            bad.add(key)
            problems.extend(problems_from(exc, value, model, marks, prefix=(section, key)))
    return valid, bad
