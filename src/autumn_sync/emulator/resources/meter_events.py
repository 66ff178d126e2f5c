"""Meter events (`POST /v1/billing/meter_events`) and their summaries
(`GET /v1/billing/meters/{id}/event_summaries`), and the usage a meter aggregates.

Recording an event (Stripe's API reference and its guide "Record usage for billing with the
API"):

- `event_name` names an active meter; the payload carries the customer under the meter's
  `customer_mapping.event_payload_key` (default `stripe_customer_id`) and the value under
  `value_settings.event_payload_key` (default `value`), as strings; the value is a whole
  number, negative ones included (they correct earlier usage);
- `timestamp` (default: now) must lie within the past 35 days and at most 5 minutes ahead;
- `identifier` (default: generated) is unique for a rolling period of at least 24 hours, which
  the emulator keeps to exactly 24 hours: a repeat inside it is refused, as Stripe does, with
  a 400 `An event already exists with identifier <id>.` (no error code, not to be retried)
  and has no effect. A retry under the same `Idempotency-Key` is replayed instead.

Stripe validates part of an event asynchronously and reports failures later with codes such
as `no_meter`, `archived_meter`, `meter_event_customer_not_found`, `meter_event_invalid_value`,
`timestamp_too_far_in_past`; the emulator refuses those at once, under those codes, so a test
sees the mistake (an unknown customer is `No such customer`, as Stripe answers it).

Aggregation (a meter's `default_aggregation.formula`): `sum` adds the values, `count` counts
the events, `last` takes the value of the latest event. A meter with an `event_time_window`
(`hour`/`day`, pre-aggregated ingestion) keeps, in each UTC hour or day, only the event
received last. Usage over a time range takes the events whose timestamp is in [start, end).

Summaries cover [start_time, end_time) for one customer: one summary, or one per hour or day
with `value_grouping_window` (newest first, empty windows included with 0), bounds aligned to
the minute (to the hour, to the UTC day, with a grouping window).
"""

from __future__ import annotations

import hashlib
import re

from autumn_sync.emulator.errors import StripeError, invalid, missing_param, no_such
from autumn_sync.emulator.listing import DEFAULT_LIMIT, MAX_LIMIT
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict

CREATE_PARAMS = ("event_name", "identifier", "payload", "timestamp")
SUMMARY_PARAMS = (
    "customer",
    "end_time",
    "ending_before",
    "limit",
    "start_time",
    "starting_after",
    "value_grouping_window",
)
DAY = 86400
HOUR = 3600
MINUTE = 60
PAST_DAYS = 35
FUTURE_SECONDS = 5 * MINUTE
IDENTIFIER_WINDOW = DAY
MAX_IDENTIFIER = 100
WINDOWS = {"hour": HOUR, "day": DAY}
WHOLE = re.compile(r"-?\d+")


def create(call: Call) -> JsonDict:
    """POST /v1/billing/meter_events: record one event for the meter that takes its name."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    event_name = str(p.string("event_name", required=True))
    payload_params = p.sub("payload", required=True)
    assert payload_params is not None
    payload = _payload(payload_params)
    meter = _active_meter(state, event_name)
    customer_id = _customer(state, meter, payload)
    value = _value(meter, payload)
    now = state.now()
    timestamp = _timestamp(p, now)
    identifier = _identifier(state, p, now)
    state.meter_identifiers[identifier] = now
    state.meter_events.setdefault(str(meter["id"]), []).append(
        {"customer": customer_id, "value": value, "timestamp": timestamp, "created": now}
    )
    return {
        "object": "billing.meter_event",
        "created": now,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": False,
        "payload": payload,
        "timestamp": timestamp,
    }


def _payload(p: Params) -> dict[str, str]:
    payload: dict[str, str] = {}
    for key in p.names():
        value = p.string(key)
        payload[key] = value if value is not None else ""
    return payload


def _active_meter(state: State, event_name: str) -> JsonDict:
    for meter in state.tables["billing.meter"].rows.values():
        if meter["event_name"] != event_name:
            continue
        if meter["status"] != "active":
            raise invalid(
                f"No active meter found for event_name '{event_name}': its meter "
                f"({meter['id']}) is inactive.",
                "event_name",
                "archived_meter",
            )
        return meter
    raise invalid(f"No active meter found for event_name '{event_name}'.", "event_name", "no_meter")


def _customer(state: State, meter: JsonDict, payload: dict[str, str]) -> str:
    key = str(as_dict(meter["customer_mapping"])["event_payload_key"])
    customer_id = payload.get(key, "")
    if not customer_id:
        raise invalid(
            f"Missing payload[{key}]: the meter {meter['id']} maps events to customers by '{key}'.",
            f"payload[{key}]",
            "meter_event_no_customer_defined",
        )
    customer = state.find("customer", customer_id)
    if customer is None or customer.get("deleted"):
        raise no_such("customer", customer_id, f"payload[{key}]", status=400)
    return customer_id


def _value(meter: JsonDict, payload: dict[str, str]) -> int:
    key = str(as_dict(meter["value_settings"])["event_payload_key"])
    if key not in payload:
        raise invalid(
            f"Missing payload[{key}]: the meter {meter['id']} reads the event's value from "
            f"'{key}'.",
            f"payload[{key}]",
            "meter_event_invalid_value",
        )
    text = payload[key].strip()
    if not WHOLE.fullmatch(text):
        raise invalid(
            f"Invalid payload[{key}]: '{payload[key]}' is not a whole number.",
            f"payload[{key}]",
            "meter_event_invalid_value",
        )
    return int(text)


def _timestamp(p: Params, now: int) -> int:
    timestamp = p.integer("timestamp")
    if timestamp is None:
        return now
    earliest = now - PAST_DAYS * DAY
    if timestamp < earliest:
        raise invalid(
            f"The event timestamp cannot be more than {PAST_DAYS} days in past. Expected a "
            f"timestamp greater than or equal to {earliest}.",
            "timestamp",
            "timestamp_too_far_in_past",
        )
    latest = now + FUTURE_SECONDS
    if timestamp > latest:
        raise invalid(
            "The event timestamp cannot be more than 5 minutes in the future. Expected a "
            f"timestamp less than or equal to {latest}.",
            "timestamp",
            "timestamp_in_future",
        )
    return timestamp


def _identifier(state: State, p: Params, now: int) -> str:
    identifier = p.string("identifier")
    if not identifier:
        return state.random_token()
    if len(identifier) > MAX_IDENTIFIER:
        raise invalid(
            f"Invalid identifier: must be at most {MAX_IDENTIFIER} characters.", "identifier"
        )
    seen = state.meter_identifiers.get(identifier)
    if seen is not None and now - seen < IDENTIFIER_WINDOW:
        raise StripeError(
            400,
            "invalid_request_error",
            f"An event already exists with identifier {identifier}.",
            headers={"Stripe-Should-Retry": "false"},
        )
    return identifier


def usage(state: State, meter_id: str, customer_id: str, start: int, end: int) -> int:
    """The meter's aggregate of the customer's events timestamped in [start, end)."""
    meter = state.find("billing.meter", meter_id)
    if meter is None or end <= start:
        return 0
    events = [
        event
        for event in state.meter_events.get(meter_id, [])
        if event["customer"] == customer_id and start <= int(str(event["timestamp"])) < end
    ]
    return _aggregate(meter, _pre_aggregated(meter, events))


def _pre_aggregated(meter: JsonDict, events: list[JsonDict]) -> list[JsonDict]:
    """With an `event_time_window`, only the last event received in each window counts."""
    size = WINDOWS.get(str(meter.get("event_time_window")))
    if size is None:
        return events
    kept: dict[int, JsonDict] = {}
    for event in events:  # in the order received: a later one replaces an earlier one
        moment = int(str(event["timestamp"]))
        kept[moment - moment % size] = event
    return [kept[window] for window in sorted(kept)]


def _aggregate(meter: JsonDict, events: list[JsonDict]) -> int:
    formula = as_dict(meter["default_aggregation"])["formula"]
    if formula == "count":
        return len(events)
    values = [int(str(event["value"])) for event in events]
    if formula == "last":
        if not events:
            return 0
        latest = max(range(len(events)), key=lambda i: (int(str(events[i]["timestamp"])), i))
        return values[latest]
    return sum(values)


def list_summaries(call: Call) -> JsonDict:
    """GET /v1/billing/meters/{id}/event_summaries."""
    state, p = call.state, call.params
    meter = state.require("billing.meter", call.arg("id"))
    p.check_known(SUMMARY_PARAMS)
    call.expand.check(())
    customer_id = str(p.string("customer", required=True))
    start, end = _required_time(p, "start_time"), _required_time(p, "end_time")
    window = p.string("value_grouping_window", choices=tuple(WINDOWS))
    step = WINDOWS[window] if window else MINUTE
    for name, moment in (("start_time", start), ("end_time", end)):
        _check_aligned(name, moment, step, window)
    if end <= start:
        raise invalid("end_time must be after start_time.", "end_time")
    state.require("customer", customer_id, "customer", status=400)
    bounds = [(start, end)] if window is None else _windows(start, end, step)
    summaries = [_summary(state, meter, customer_id, b) for b in reversed(bounds)]
    url = f"/v1/billing/meters/{meter['id']}/event_summaries"
    return _page(summaries, p, url)


def _required_time(p: Params, name: str) -> int:
    moment = p.integer(name)
    if moment is None:
        raise missing_param(name)
    return moment


def _check_aligned(name: str, moment: int, step: int, window: str | None) -> None:
    if moment % step == 0:
        return
    boundary = {None: "minute", "hour": "hour", "day": "UTC day"}[window]
    raise invalid(f"Invalid {name}: {moment} is not aligned with a {boundary} boundary.", name)


def _windows(start: int, end: int, step: int) -> list[tuple[int, int]]:
    return [(moment, min(moment + step, end)) for moment in range(start, end, step)]


def _summary(state: State, meter: JsonDict, customer_id: str, bounds: tuple[int, int]) -> JsonDict:
    key = f"{meter['id']}:{customer_id}:{bounds[0]}:{bounds[1]}".encode()
    return {
        "id": "mtrusg_" + hashlib.sha256(key).hexdigest()[:40],
        "object": "billing.meter_event_summary",
        "aggregated_value": usage(state, str(meter["id"]), customer_id, *bounds),
        "end_time": bounds[1],
        "livemode": False,
        "meter": meter["id"],
        "start_time": bounds[0],
    }


def _page(summaries: list[JsonDict], p: Params, url: str) -> JsonDict:
    """Cursor paging over computed summaries (newest first), as `listing` does for stored
    objects."""
    limit = p.integer("limit")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"Invalid limit: {limit}. It must be between 1 and {MAX_LIMIT}.", "limit")
    after, before = p.string("starting_after"), p.string("ending_before")
    if after and before:
        raise invalid("Send either starting_after or ending_before, not both.", "ending_before")
    ids = [str(s["id"]) for s in summaries]
    if before:
        end = _position(ids, before, "ending_before")
        page = summaries[max(end - limit, 0) : end]
        has_more = end - limit > 0
    else:
        begin = _position(ids, after, "starting_after") + 1 if after else 0
        page = summaries[begin : begin + limit]
        has_more = begin + limit < len(summaries)
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def _position(ids: list[str], cursor: str, param: str) -> int:
    if cursor not in ids:
        raise no_such("billing meter event summary", cursor, param, status=400)
    return ids.index(cursor)


ROUTES = [
    Route("POST", "/v1/billing/meter_events", create),
    Route("GET", "/v1/billing/meters/{id}/event_summaries", list_summaries),
]
