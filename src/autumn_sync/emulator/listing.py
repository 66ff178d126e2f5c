"""List endpoints: Stripe's list object, cursor pagination and the `created` filter.

Objects come newest first. `limit` is 1..100 (default 10); `starting_after` gives the objects
created before the cursor, `ending_before` those created after it (the ones nearest the cursor,
still newest first); the two cursors are mutually exclusive. `has_more` says whether more
objects match beyond the page in the direction of travel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from autumn_sync.emulator.errors import invalid, no_such
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.store import KINDS, JsonDict, State
from autumn_sync.emulator.views import Expand, present

Predicate = Callable[[JsonDict], bool]
PAGING = ("limit", "starting_after", "ending_before", "created")
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def list_response(
    state: State,
    kind: str,
    params: Params,
    url: str,
    expand: Expand,
    matches: Predicate = lambda _: True,
) -> JsonDict:
    """A page of `kind` objects that satisfy `matches` and the `created` filter."""
    limit = _limit(params)
    keep = all_of(matches, created_filter(params))
    found: list[JsonDict] = []
    for obj in _candidates(state, kind, params):
        if keep(obj):
            found.append(obj)
            if len(found) > limit:
                break
    page = found[:limit]
    if params.has("ending_before"):
        page.reverse()
    return list_object(state, page, len(found) > limit, url, expand)


def list_object(
    state: State, objects: list[JsonDict], has_more: bool, url: str, expand: Expand
) -> JsonDict:
    """Stripe's list object around already chosen objects."""
    for parts in expand.paths:
        if parts[0] != "data":
            raise invalid("Expansions of a list must start with 'data.'.", "expand")
    inner = expand.sub("data")
    return {
        "object": "list",
        "data": [present(state, obj, inner) for obj in objects],
        "has_more": has_more,
        "url": url,
    }


def _limit(params: Params) -> int:
    limit = params.integer("limit")
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"Invalid limit: {limit}. It must be between 1 and {MAX_LIMIT}.", "limit")
    return limit


def _candidates(state: State, kind: str, params: Params) -> Iterator[JsonDict]:
    """Objects in the order to scan: newest first, or nearest-first after `ending_before`."""
    after = params.string("starting_after")
    before = params.string("ending_before")
    if after and before:
        raise invalid("Send either starting_after or ending_before, not both.", "ending_before")
    table = state.tables[kind]
    if before:
        return table.oldest_first(_cursor(state, kind, before, "ending_before"))
    if after:
        return table.newest_first(_cursor(state, kind, after, "starting_after"))
    return table.newest_first()


def _cursor(state: State, kind: str, object_id: str, param: str) -> int:
    seq = state.tables[kind].seq_of.get(object_id)
    if seq is None:
        raise no_such(KINDS[kind][1], object_id, param, status=400)
    return seq


def created_filter(params: Params) -> Predicate:
    """The `created` filter: an exact timestamp or a hash of gt/gte/lt/lte bounds."""
    if not params.has("created"):
        return lambda _: True
    exact = params.data.get("created")
    if isinstance(exact, str):
        moment = params.integer("created")
        return lambda obj: obj.get("created") == moment
    bounds = params.sub("created")
    assert bounds is not None
    bounds.check_known(("gt", "gte", "lt", "lte"))
    limits = {name: bounds.integer(name) for name in ("gt", "gte", "lt", "lte")}
    return lambda obj: _within(_int(obj.get("created")), limits)


def _within(value: int, limits: dict[str, int | None]) -> bool:
    checks = {
        "gt": lambda bound: value > bound,
        "gte": lambda bound: value >= bound,
        "lt": lambda bound: value < bound,
        "lte": lambda bound: value <= bound,
    }
    return all(bound is None or checks[name](bound) for name, bound in limits.items())


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def bool_filter(params: Params, name: str, field: str | None = None) -> Predicate:
    """Match objects whose `field` equals the boolean parameter `name`, when sent."""
    wanted = params.boolean(name)
    key = field or name
    return lambda obj: wanted is None or obj.get(key) is wanted


def equal_filter(params: Params, name: str, field: str | None = None) -> Predicate:
    """Match objects whose `field` equals the string parameter `name`, when sent."""
    wanted = params.string(name)
    key = field or name
    return lambda obj: wanted is None or obj.get(key) == wanted


def all_of(*predicates: Predicate) -> Predicate:
    """A predicate true when all of `predicates` are."""
    return lambda obj: all(predicate(obj) for predicate in predicates)
