"""YAML loading that keeps where every key and value is, and rejects duplicate keys.

`load_yaml` returns the plain data plus a `Marks` index from a path (a tuple of keys and list
indexes, the same shape pydantic uses for error locations) to 1-based line and column. Floats
are read as `Decimal` so money is exact from the first byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from autumn_sync.config.problems import ConfigError, Problem

Path = tuple[str | int, ...]


@dataclass
class Marks:
    """Where each path's value (and, for mapping entries, its key) starts in the file."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: Path, key: bool = False) -> tuple[int, int]:
        """Location of `path`, or of its nearest known ancestor."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return table[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return (1, 1)

    def problem(self, path: Path, message: str, key: bool = False) -> Problem:
        line, column = self.at(path, key)
        return Problem(self.file, line, column, message)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose floats are Decimals (`.inf` stays a float infinity)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal | float:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    if text.lower().lstrip("+-") in (".inf", ".nan"):
        return float(text.lower().replace(".", "", 1))
    return Decimal(text)


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)


def _start(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, marks: Marks) -> None:
        self.marks = marks
        self.loader = _Loader("")
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.marks.values[path] = _start(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int) or isinstance(key, bool):
                key = str(key)
            if key in result:
                line, column = _start(key_node)
                self.problems.append(
                    Problem(self.marks.file, line, column, f"duplicate key {key!r}")
                )
                continue
            self.marks.keys[(*path, key)] = _start(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result


def load_yaml(text: str, file: str) -> tuple[Any, Marks, list[Problem]]:
    """Parse `text`; raise `ConfigError` for a syntax error. Duplicate keys are returned as
    problems (the first occurrence is kept) so the rest of the file can still be checked."""
    marks = Marks(file)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(file, line, column, f"invalid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, 1, 1, f"invalid YAML: {exc}")]) from None
    if node is None:
        return None, marks, []
    builder = _Builder(marks)
    try:
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(file, line, column, f"invalid YAML: {exc.problem}")]) from None
    return data, marks, builder.problems
