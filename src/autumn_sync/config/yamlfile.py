"""YAML loading that keeps where every key and value is, and rejects duplicate keys.

`load_yaml` returns the plain data plus a `Marks` index from a path (a tuple of keys and list
indexes, the same shape pydantic uses for error locations) to 1-based line and column. Floats
are read as `Decimal` so money is exact from the first byte.
"""

from __future__ import annotations

import re
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


_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# With aliases expanded, a file of nested aliases can explode. A file without aliases holds
# fewer values than characters, so the limit grows with the text (large customer lists).
MAX_VALUES = 100_000
_KEY_KINDS = {bool: "boolean", int: "number", float: "number", Decimal: "number"}


class _Builder:
    def __init__(self, marks: Marks, limit: int = MAX_VALUES) -> None:
        self.marks = marks
        self.limit = limit
        self.loader = _Loader("")
        self.problems: list[Problem] = []
        self.count = 0
        self.open: set[int] = set()  # the collections being built: an alias to one loops

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.marks.values[path] = _start(node)
        self.count += 1
        if self.count > self.limit:
            line, column = _start(node)
            message = f"the file has over {self.limit} values (with aliases expanded)"
            raise ConfigError([Problem(self.marks.file, line, column, message)])
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self._scalar(node)
        if id(node) in self.open:
            self._report(node, "this mapping or list contains an alias to itself: remove it")
            return None
        if node.tag not in _COLLECTION_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self._report(node, f"remove the tag {tag!r}: the file uses plain YAML only")
        self.open.add(id(node))
        try:
            return self._collection(node, path)
        finally:
            self.open.discard(id(node))

    def _scalar(self, node: yaml.Node) -> Any:
        """The value of a scalar; one YAML reads as an impossible date (`2026-02-30`) is left
        as its text, for the file's model to report where a date is wanted."""
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError:
            return node.value

    def _collection(self, node: yaml.MappingNode | yaml.SequenceNode, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]

    def _report(self, node: yaml.Node, message: str) -> None:
        line, column = _start(node)
        self.problems.append(Problem(self.marks.file, line, column, message))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        self.loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key is None:
                continue
            if key in result:
                first, _ = self.marks.keys[(*path, key)]
                self._report(
                    key_node,
                    f"duplicate key {key!r} (already at line {first}): "
                    "each key may appear only once",
                )
                continue
            self.marks.keys[(*path, key)] = _start(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, node: yaml.Node) -> str | None:
        """The key as text; a key YAML reads as a number, boolean or null is reported (and
        its text used), a key that is a list or mapping is reported and skipped."""
        if not isinstance(node, yaml.ScalarNode):
            self._report(node, "a key must be plain text, not a list or mapping")
            return None
        key = self.loader.construct_object(node, deep=True)
        if isinstance(key, str):
            return key
        if key is None:
            self._report(node, "this key is empty: give it a name")
            return None
        kind = _KEY_KINDS.get(type(key), type(key).__name__)
        self._report(node, f"quote the key '{node.value}': unquoted, YAML reads it as a {kind}")
        return str(node.value)


def load_yaml(text: str, file: str) -> tuple[Any, Marks, list[Problem]]:
    """Parse `text`; raise `ConfigError` for a syntax error. Duplicate keys and the like are
    returned as problems (the first occurrence is kept) so the rest of the file can still be
    checked."""
    marks = Marks(file)
    try:
        node = _compose(text)
        if node is None:
            return None, marks, []
        builder = _Builder(marks, max(MAX_VALUES, len(text)))
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, 1, 1, f"invalid YAML: {exc}")]) from None
    return data, marks, builder.problems


def _compose(text: str) -> yaml.Node | None:
    """The node tree of `text`, by libyaml when it is there (ten times faster); a file it
    rejects is parsed again by PyYAML, whose error messages `_syntax_problem` knows."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=_Loader)


_UNCLOSED = {
    "while parsing a flow mapping": "this '{' is never closed: add the missing '}'",
    "while parsing a flow sequence": "this '[' is never closed: add the missing ']'",
    "while scanning a quoted scalar": "this quoted text is never closed: add the closing quote",
}


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    """A readable problem for a YAML syntax error, at the place to fix."""
    problem, context = exc.problem or "", exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    at_end = "stream end" in problem or "end of stream" in problem
    if at_end and exc.context_mark is not None and context in _UNCLOSED:
        mark, message = exc.context_mark, _UNCLOSED[context]
    else:
        message = _syntax_message(problem, context, exc.context_mark)
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(file, line, column, f"invalid YAML: {message}")


def _syntax_message(problem: str, context: str, context_mark: yaml.Mark | None) -> str:
    if problem == "but found another document":
        return "the file holds more than one YAML document ('---'): keep only one"
    if "'\\t'" in problem or "tab character" in problem:
        return "a tab cannot indent a line: indent with spaces"
    if problem.startswith("expected <block end>"):
        return "this line does not line up with the block above it: check its indentation"
    if problem.startswith("mapping values are not allowed here"):
        return (
            "unexpected ':' here: check the indentation of this line, "
            "and quote a value that contains ': '"
        )
    unclosed = re.match(r"expected ',' or '(.)', but got ", problem)
    if unclosed and context_mark is not None:
        opening = {"}": "{", "]": "["}.get(unclosed[1], "")
        return (
            f"a ',' or '{unclosed[1]}' is missing before this: the '{opening}' at line "
            f"{context_mark.line + 1}, column {context_mark.column + 1} is not closed"
        )
    message = problem.replace("'<stream end>'", "the end of the file").replace(
        "end of stream", "end of the file"
    )
    if context and context_mark is not None:
        where = context.removeprefix("while parsing ").removeprefix("while scanning ")
        message += f" (in {where} that starts at line {context_mark.line + 1})"
    return message
