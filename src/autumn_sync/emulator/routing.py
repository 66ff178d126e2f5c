"""Endpoints: a handler per (method, path template), and the call context handlers receive."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from autumn_sync.emulator.params import Params
from autumn_sync.emulator.store import JsonDict, State
from autumn_sync.emulator.views import Expand


@dataclass
class Call:
    """One API call as a handler sees it (the state lock is held while it runs)."""

    state: State
    params: Params
    path: dict[str, str]
    expand: Expand

    def arg(self, name: str) -> str:
        """A value taken from the URL path, e.g. the object id."""
        return self.path[name]


Handler = Callable[[Call], JsonDict]


@dataclass(frozen=True)
class Route:
    """An endpoint: method, path template such as `/v1/prices/{id}`, and its handler."""

    method: str
    template: str
    handler: Handler

    def pattern(self) -> re.Pattern[str]:
        """The template as a regular expression with one named group per `{name}`."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        return re.compile(regex)


class Router:
    """Finds the route for a method and path."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = [(route, route.pattern()) for route in routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route answering `method` on `path`, and the values taken from the path."""
        for route, pattern in self._routes:
            found = pattern.fullmatch(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    def template_for(self, method: str, path: str) -> str:
        """The template that `path` matches, or the path itself (for the request log)."""
        for route, pattern in self._routes:
            if pattern.fullmatch(path):
                return route.template
        return path
