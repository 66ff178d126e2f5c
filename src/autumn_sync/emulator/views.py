"""Presenting stored objects as Stripe responds with them, including `expand[]`.

Each kind registers a view function that copies the stored object, drops fields Stripe hides
unless expanded (price `tiers`, coupon `applies_to`), and replaces expandable ids by the
objects they name. An `Expand` carries the requested paths (`data.tiers`, `product`,
`items.data.price.product`) down the nesting; a path no view consumes is an error, as in
Stripe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from autumn_sync.emulator.errors import invalid
from autumn_sync.emulator.store import JsonDict, State

MAX_EXPAND_DEPTH = 4


class Expand:
    """The expansion paths that apply at one level of a response."""

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self.paths = [path.split(".") for path in paths if path]
        if any(len(parts) > MAX_EXPAND_DEPTH + 1 for parts in self.paths):
            raise invalid(f"Expansions may be at most {MAX_EXPAND_DEPTH} levels deep.", "expand")

    def has(self, name: str) -> bool:
        """Whether some path starts with `name`."""
        return any(parts[0] == name for parts in self.paths)

    def sub(self, name: str) -> Expand:
        """The paths below `name`."""
        found = Expand()
        found.paths = [parts[1:] for parts in self.paths if parts[0] == name and len(parts) > 1]
        return found

    def check(self, allowed: Iterable[str]) -> None:
        """Refuse paths whose first step is not one of `allowed`."""
        names = set(allowed)
        for parts in self.paths:
            if parts[0] not in names:
                raise invalid(
                    f"Cannot expand '{'.'.join(parts)}': '{parts[0]}' is not an expandable "
                    "property here.",
                    "expand",
                )


View = Callable[[State, JsonDict, Expand], JsonDict]
_VIEWS: dict[str, View] = {}


def register(kind: str, view: View) -> None:
    """Register how objects of `kind` are presented."""
    _VIEWS[kind] = view


def present(state: State, obj: JsonDict, expand: Expand | None = None) -> JsonDict:
    """The object as Stripe would return it, with `expand` applied."""
    exp = expand or Expand()
    view = _VIEWS.get(str(obj["object"]))
    if view is None or obj.get("deleted"):
        exp.check(())
        return dict(obj)
    return view(state, obj, exp)


def reference(state: State, kind: str, object_id: object, expand: Expand, name: str) -> object:
    """An id field, replaced by the object it names when `name` is expanded."""
    if not expand.has(name) or object_id is None:
        expand.sub(name).check(())
        return object_id
    target = state.find(kind, str(object_id))
    if target is None:
        return object_id
    return present(state, target, expand.sub(name))


def without_hidden(obj: JsonDict, hidden: Iterable[str], expand: Expand) -> JsonDict:
    """A shallow copy of `obj` without the hidden fields that were not expanded."""
    out = dict(obj)
    for name in hidden:
        if expand.has(name):
            expand.sub(name).check(())
        else:
            out.pop(name, None)
    return out


def deleted(obj: JsonDict) -> JsonDict:
    """The short answer to a delete: id, object and `deleted: true`."""
    return {"id": obj["id"], "object": obj["object"], "deleted": True}
