"""Billing meters (/v1/billing/meters): create, retrieve, update, list, deactivate, reactivate.

Meters cannot be deleted (there is no such endpoint), and after creation only `display_name`
changes. The emulator keeps event names unique among all meters, deactivated ones included.
"""

from __future__ import annotations

from autumn_sync.emulator.errors import refused
from autumn_sync.emulator.listing import PAGING, equal_filter, list_response
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State
from autumn_sync.emulator.views import Expand, register

CREATE_PARAMS = (
    "customer_mapping",
    "default_aggregation",
    "display_name",
    "event_name",
    "event_time_window",
    "value_settings",
)
FORMULAS = ("count", "last", "sum")


def view(state: State, meter: JsonDict, expand: Expand) -> JsonDict:
    """A meter as Stripe shows it (nothing to expand)."""
    expand.check(())
    return {key: (dict(v) if isinstance(v, dict) else v) for key, v in meter.items()}


def create(call: Call) -> JsonDict:
    """POST /v1/billing/meters."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    aggregation = p.sub("default_aggregation", required=True)
    assert aggregation is not None
    aggregation.check_known(("formula",))
    formula = aggregation.string("formula", required=True, choices=FORMULAS)
    display_name = p.string("display_name", required=True)
    event_name = p.string("event_name", required=True)
    window = p.string("event_time_window", choices=("day", "hour"))
    mapping = _customer_mapping(call)
    value_key = _value_key(call)
    _check_event_name_free(state, str(event_name))
    now = state.now()
    meter: JsonDict = {
        "id": state.new_id("billing.meter"),
        "object": "billing.meter",
        "created": now,
        "customer_mapping": mapping,
        "default_aggregation": {"formula": formula},
        "display_name": display_name,
        "event_name": event_name,
        "event_time_window": window,
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": now,
        "value_settings": {"event_payload_key": value_key},
    }
    state.add(meter)
    return view(state, meter, call.expand)


def _customer_mapping(call: Call) -> JsonDict:
    mapping = call.params.sub("customer_mapping")
    if mapping is None:
        return {"event_payload_key": "stripe_customer_id", "type": "by_id"}
    mapping.check_known(("event_payload_key", "type"))
    key = mapping.string("event_payload_key", required=True)
    kind = mapping.string("type", required=True, choices=("by_id",))
    return {"event_payload_key": key, "type": kind}


def _value_key(call: Call) -> str:
    settings = call.params.sub("value_settings")
    if settings is None:
        return "value"
    settings.check_known(("event_payload_key",))
    key = settings.string("event_payload_key", required=True)
    assert key is not None
    return key


def _check_event_name_free(state: State, event_name: str) -> None:
    for meter in state.tables["billing.meter"].rows.values():
        if meter["event_name"] == event_name:
            raise refused(
                f"A billing meter ({meter['id']}) already uses the event name '{event_name}'.",
                "event_name",
            )


def retrieve(call: Call) -> JsonDict:
    """GET /v1/billing/meters/{id}."""
    meter = call.state.require("billing.meter", call.arg("id"))
    call.params.check_known(())
    return view(call.state, meter, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/billing/meters/{id}: only `display_name` can change."""
    state, p = call.state, call.params
    meter = state.require("billing.meter", call.arg("id"))
    p.check_known(("display_name",))
    if p.has("display_name"):
        p.require("display_name")
        meter.update(display_name=p.string("display_name"), updated=state.now())
    return view(state, meter, call.expand)


def deactivate(call: Call) -> JsonDict:
    """POST /v1/billing/meters/{id}/deactivate."""
    return _set_status(call, "inactive")


def reactivate(call: Call) -> JsonDict:
    """POST /v1/billing/meters/{id}/reactivate."""
    return _set_status(call, "active")


def _set_status(call: Call, status: str) -> JsonDict:
    state = call.state
    meter = state.require("billing.meter", call.arg("id"))
    call.params.check_known(())
    if meter["status"] == status:
        raise refused(f"This billing meter is already {status}.", "id")
    now = state.now()
    deactivated_at = now if status == "inactive" else None
    meter.update(status=status, status_transitions={"deactivated_at": deactivated_at}, updated=now)
    return view(state, meter, call.expand)


def list_meters(call: Call) -> JsonDict:
    """GET /v1/billing/meters, optionally by `status`."""
    p = call.params
    p.check_known((*PAGING, "status"))
    p.string("status", choices=("active", "inactive"))
    return list_response(
        call.state, "billing.meter", p, "/v1/billing/meters", call.expand, equal_filter(p, "status")
    )


register("billing.meter", view)

ROUTES = [
    Route("POST", "/v1/billing/meters", create),
    Route("GET", "/v1/billing/meters", list_meters),
    Route("GET", "/v1/billing/meters/{id}", retrieve),
    Route("POST", "/v1/billing/meters/{id}", update),
    Route("POST", "/v1/billing/meters/{id}/deactivate", deactivate),
    Route("POST", "/v1/billing/meters/{id}/reactivate", reactivate),
]
