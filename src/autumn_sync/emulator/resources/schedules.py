"""Subscription schedules: create, retrieve, update, list, release, cancel.

A schedule is a list of phases, each with its items (`price`, `quantity`) and the time it
lasts: phase 1 starts at `start_date` (`now` or a future moment), each phase ends at its
`end_date`, after its `duration`, or, when it says neither, after one billing period of its
first price; the next phase starts where it ends. As Stripe does:

- a schedule starting in the future (`not_started`) makes its subscription when phase 1
  starts; one starting now makes it at once (`active`);
- `from_subscription` puts an existing subscription under a schedule whose one phase is what
  the subscription is now, for its current period;
- at a phase's end the subscription takes the next phase's items (an item keeps its id when
  its price stays), prorated as the phase's `proration_behavior` says; at the end of a billing
  period nothing is left to prorate, so a downgrade there is billed from the next invoice;
- after the last phase, `end_behavior` `release` (the default) leaves the subscription running
  on its own, `cancel` cancels it;
- an update replaces the phases, and the phase in force keeps its `start_date`;
- `release` detaches the subscription now, `cancel` cancels the schedule and its
  subscription now.
"""

from __future__ import annotations

from collections.abc import Callable

from autumn_sync.emulator import metadata
from autumn_sync.emulator.errors import invalid, refused
from autumn_sync.emulator.forms import from_mapping
from autumn_sync.emulator.listing import PAGING, all_of, equal_filter, list_response
from autumn_sync.emulator.params import Params
from autumn_sync.emulator.resources import lifecycle, subscriptions
from autumn_sync.emulator.resources import subscription_rules as rules
from autumn_sync.emulator.resources.charges import Slot, current_period, item_rows, snapshot
from autumn_sync.emulator.resources.subscription_items import apply_item_changes
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict, mapping
from autumn_sync.emulator.views import Expand, reference, register

CREATE_PARAMS = (
    "billing_mode",
    "customer",
    "end_behavior",
    "from_subscription",
    "metadata",
    "phases",
    "start_date",
)
UPDATE_PARAMS = ("end_behavior", "metadata", "phases", "proration_behavior")
PHASE_PARAMS = (
    "collection_method",
    "description",
    "discounts",
    "duration",
    "end_date",
    "invoice_settings",
    "items",
    "metadata",
    "proration_behavior",
    "start_date",
    "trial",
    "trial_end",
)
PHASE_ITEM_PARAMS = ("discounts", "metadata", "price", "quantity")
END_BEHAVIORS = ("cancel", "release")
LIVE = ("not_started", "active")
Step = Callable[[State, JsonDict], None]


def view(state: State, schedule: JsonDict, expand: Expand) -> JsonDict:
    """A schedule; `customer` and `subscription` expand."""
    expand.check(("customer", "subscription"))
    out = dict(schedule)
    out["metadata"] = mapping(schedule["metadata"])
    out["customer"] = reference(state, "customer", schedule["customer"], expand, "customer")
    out["subscription"] = reference(
        state, "subscription", schedule["subscription"], expand, "subscription"
    )
    return out


def create(call: Call) -> JsonDict:
    """POST /v1/subscription_schedules."""
    state, p = call.state, call.params
    p.check_known(CREATE_PARAMS)
    made = _from_subscription if p.has("from_subscription") else _scheduled
    return view(state, made(state, p), call.expand)


def _scheduled(state: State, p: Params) -> JsonDict:
    """A schedule from `customer`, `start_date` and `phases`."""
    customer_id = p.string("customer", required=True)
    assert customer_id is not None
    state.require("customer", customer_id, "customer", status=400)
    start = _start_date(state, p)
    rows = p.items("phases")
    if not rows:
        raise invalid("Missing required param: phases.", "phases", "parameter_missing")
    schedule = _blank(state, p, customer_id)
    schedule["phases"] = parse_phases(state, rows, start)
    state.add(schedule)
    if start <= state.now():
        begin(state, schedule)
    else:
        state.wake_at(start)
    return schedule


def _start_date(state: State, p: Params) -> int:
    text = p.string("start_date", required=True)
    if text == "now":
        return state.now()
    moment = p.integer("start_date")
    assert moment is not None
    return moment


def _blank(state: State, p: Params, customer_id: str) -> JsonDict:
    return {
        "id": state.new_id("subscription_schedule"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "flexible", "updated_at": state.now()},
        "canceled_at": None,
        "completed_at": None,
        "created": state.now(),
        "current_phase": None,
        "customer": customer_id,
        "customer_account": None,
        "default_settings": _default_settings(),
        "end_behavior": p.string("end_behavior", choices=END_BEHAVIORS) or "release",
        "livemode": False,
        "metadata": metadata.merged({}, p),
        "pause_schedules": [],
        "phases": [],
        "released_at": None,
        "released_subscription": None,
        "status": "not_started",
        "subscription": None,
        "test_clock": None,
    }


def _default_settings() -> JsonDict:
    return {
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": "automatic",
        "billing_thresholds": None,
        "collection_method": None,
        "default_payment_method": None,
        "description": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "days_until_due": None,
            "issuer": {"type": "self"},
        },
        "on_behalf_of": None,
        "transfer_data": None,
    }


def parse_phases(state: State, rows: list[Params], start: int) -> list[JsonDict]:
    """The phases sent, each starting where the one before ends."""
    phases: list[JsonDict] = []
    for row in rows:
        row.check_known(PHASE_PARAMS)
        phase = _phase(state, row, start)
        phases.append(phase)
        start = int(str(phase["end_date"]))
    return phases


def _phase(state: State, row: Params, start: int) -> JsonDict:
    items = [_phase_item(state, item) for item in row.items("items")]
    if not items:
        raise invalid(f"Missing required param: {row.name('items')}.", row.name("items"))
    first = state.require("price", str(items[0]["price"]))
    end = _phase_end(row, start, first)
    trial_end = end if row.boolean("trial") is True else row.integer("trial_end")
    days = None
    settings = row.sub("invoice_settings")
    if settings is not None:
        settings.check_known(("days_until_due",))
        days = settings.integer("days_until_due", minimum=0)
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "automatic_tax": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": row.string(
            "collection_method", choices=("charge_automatically", "send_invoice")
        ),
        "currency": first["currency"],
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": row.string("description") or None,
        "discounts": _phase_discounts(state, row),
        "end_date": end,
        "invoice_settings": None if days is None else _invoice_settings(days),
        "items": items,
        "metadata": metadata.merged({}, row),
        "on_behalf_of": None,
        "proration_behavior": row.string(
            "proration_behavior", choices=lifecycle.PRORATION_BEHAVIORS
        )
        or "create_prorations",
        "start_date": start,
        "transfer_data": None,
        "trial": row.boolean("trial") is True,
        "trial_end": trial_end,
    }


def _invoice_settings(days: int) -> JsonDict:
    return {"account_tax_ids": None, "days_until_due": days, "issuer": None}


def _phase_item(state: State, row: Params) -> JsonDict:
    row.check_known(PHASE_ITEM_PARAMS)
    price = rules.item_price(state, row)
    return {
        "billing_thresholds": None,
        "discounts": [],
        "metadata": metadata.merged({}, row),
        "plan": price["id"],
        "price": price["id"],
        "quantity": rules.item_quantity(row, price),
        "tax_rates": [],
    }


def _phase_end(row: Params, start: int, price: JsonDict) -> int:
    """`end_date`, or `start` plus `duration`, or one billing period of the first price."""
    if row.has("end_date") and row.has("duration"):
        raise invalid(
            "You may only specify one of these parameters: duration, end_date.",
            row.name("end_date"),
        )
    end = row.integer("end_date")
    duration = row.sub("duration")
    if duration is not None:
        duration.check_known(("interval", "interval_count"))
        unit = duration.string("interval", required=True, choices=("day", "week", "month", "year"))
        count = duration.integer("interval_count", minimum=1) or 1
        assert unit is not None
        end = rules.add_interval(start, unit, count)
    if end is None:
        end = rules.period_end(price, start)
    if end <= start:
        raise invalid("A phase must end after it starts.", row.name("end_date"))
    return end


def _phase_discounts(state: State, row: Params) -> list[JsonDict]:
    """The phase's `discounts` rows, checked (they become discounts when the phase starts)."""
    found: list[JsonDict] = []
    for index, sent in enumerate(row.items("discounts")):
        sent.check_known(rules.DISCOUNT_PARAMS)
        entry: JsonDict = dict.fromkeys(rules.DISCOUNT_PARAMS)
        for key in rules.DISCOUNT_PARAMS:
            value = sent.string(key)
            if value is not None:
                entry[key] = value
        if entry["coupon"] is not None:
            name = f"{row.name('discounts')}[{index}][coupon]"
            state.require("coupon", str(entry["coupon"]), name, status=400)
        found.append(entry)
    return found


def _from_subscription(state: State, p: Params) -> JsonDict:
    """A schedule whose one phase is the subscription as it is, for its current period."""
    for name in ("customer", "phases", "start_date"):
        if p.has(name):
            raise invalid(
                f"You cannot set {name} together with from_subscription.", "from_subscription"
            )
    sub_id = p.string("from_subscription")
    assert sub_id is not None
    sub = state.require("subscription", sub_id, "from_subscription", status=400)
    if sub["schedule"] is not None:
        raise refused(
            f"The subscription {sub_id} is already managed by a schedule.", "from_subscription"
        )
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise refused(f"The subscription {sub_id} has ended.", "from_subscription")
    start, end = current_period(state, sub)
    schedule = _blank(state, p, str(sub["customer"]))
    schedule["phases"] = [_phase_of(state, sub, start, end)]
    schedule.update(
        status="active",
        subscription=sub["id"],
        current_phase={"end_date": end, "start_date": start},
    )
    state.add(schedule)
    sub["schedule"] = schedule["id"]
    state.wake_at(end)
    return schedule


def _phase_of(state: State, sub: JsonDict, start: int, end: int) -> JsonDict:
    """The phase describing a subscription as it is."""
    items = [
        {
            "billing_thresholds": None,
            "discounts": [],
            "metadata": mapping(item["metadata"]),
            "plan": item["price"],
            "price": item["price"],
            "quantity": item["quantity"],
            "tax_rates": [],
        }
        for item in item_rows(state, sub)
    ]
    discounts = sub["discounts"] if isinstance(sub["discounts"], list) else []
    days = sub["days_until_due"]
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "automatic_tax": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": sub["collection_method"],
        "currency": sub["currency"],
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": sub["description"],
        "discounts": [{"coupon": None, "discount": d, "promotion_code": None} for d in discounts],
        "end_date": end,
        "invoice_settings": _invoice_settings(days) if isinstance(days, int) else None,
        "items": items,
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": "create_prorations",
        "start_date": start,
        "transfer_data": None,
        "trial": False,
        "trial_end": sub["trial_end"] if sub["status"] == "trialing" else None,
    }


def begin(state: State, schedule: JsonDict) -> None:
    """Phase 1 starts: make the subscription."""
    phase = as_dict(_phases(schedule)[0])
    params = _subscription_params(schedule, phase)
    sub = subscriptions.open_subscription(state, Params(from_mapping(params)))
    sub["schedule"] = schedule["id"]
    schedule.update(
        status="active",
        subscription=sub["id"],
        current_phase={"end_date": phase["end_date"], "start_date": phase["start_date"]},
    )
    state.wake_at(int(str(phase["end_date"])))


def _subscription_params(schedule: JsonDict, phase: JsonDict) -> dict[str, object]:
    """The creation parameters of the subscription phase 1 describes (without a payment
    method, its first invoice stays open and the subscription `incomplete`)."""
    params: dict[str, object] = {
        "customer": schedule["customer"],
        "items": [
            {"price": item["price"], "quantity": item["quantity"]}
            for item in (as_dict(i) for i in _list(phase["items"]))
        ],
        "metadata": mapping(phase["metadata"]),
        "payment_behavior": "default_incomplete",
        "discounts": [_sent(d) for d in _list(phase["discounts"])],
    }
    if phase["collection_method"] is not None:
        params["collection_method"] = phase["collection_method"]
    settings = as_dict(phase["invoice_settings"])
    if settings.get("days_until_due") is not None:
        params["days_until_due"] = settings["days_until_due"]
    if isinstance(phase["trial_end"], int):
        params["trial_end"] = phase["trial_end"]
    return params


def _sent(discount: object) -> dict[str, object]:
    """A stored phase discount as the `discounts` row that names it."""
    return {key: value for key, value in as_dict(discount).items() if value is not None}


def phase_slots(state: State, sub: JsonDict | None, phase: JsonDict) -> list[Slot]:
    """The phase's items as slots (an item of `sub` with the same price keeps its id)."""
    held = {str(i["price"]): str(i["id"]) for i in item_rows(state, sub)} if sub else {}
    slots = []
    for item in (as_dict(i) for i in _list(phase["items"])):
        price = state.require("price", str(item["price"]))
        item_id = held.get(str(price["id"])) or state.new_id("subscription_item")
        quantity = item["quantity"] if isinstance(item["quantity"], int) else None
        slots.append(Slot(item_id, price, quantity))
    return slots


def advance(state: State, schedule: JsonDict) -> None:
    """The phase in force ends: the next one takes over, or the schedule ends."""
    sub = state.find("subscription", str(schedule["subscription"]))
    if sub is None or sub["status"] in ("canceled", "incomplete_expired"):
        schedule.update(status="canceled", canceled_at=state.now(), current_phase=None)
        return
    ends = int(str(as_dict(schedule["current_phase"])["end_date"]))
    upcoming = [as_dict(p) for p in _phases(schedule) if int(str(as_dict(p)["start_date"])) >= ends]
    if not upcoming:
        _finish(state, schedule, sub)
        return
    phase = upcoming[0]
    apply_phase(state, sub, phase, str(phase["proration_behavior"]))
    schedule["current_phase"] = {"end_date": phase["end_date"], "start_date": phase["start_date"]}
    state.wake_at(int(str(phase["end_date"])))


def apply_phase(state: State, sub: JsonDict, phase: JsonDict, behavior: str) -> None:
    """Give the subscription the phase's items (an item whose price stays keeps its id)."""
    before = snapshot(state, sub)
    rows: list[dict[str, object]] = []
    held = {str(item["price"]): str(item["id"]) for item in item_rows(state, sub)}
    wanted = [as_dict(i) for i in _list(phase["items"])]
    prices = {str(item["price"]) for item in wanted}
    for item in wanted:
        row: dict[str, object] = {"price": item["price"]}
        if item["quantity"] is not None:
            row["quantity"] = item["quantity"]
        if str(item["price"]) in held:
            row["id"] = held[str(item["price"])]
        rows.append(row)
    rows += [
        {"id": item_id, "deleted": True} for price, item_id in held.items() if price not in prices
    ]
    form = Params(from_mapping({"items": rows}))
    apply_item_changes(state, sub, form.items("items"))
    if phase["collection_method"] is not None:
        sub["collection_method"] = phase["collection_method"]
    discounts = [_sent(d) for d in _list(phase["discounts"])]
    if discounts:
        sent = Params(from_mapping({"discounts": discounts}))
        sources = rules.discount_sources(state, sent, str(sub["customer"]), sub)
        sub["discounts"] = rules.add_discounts(state, sources, sub)
    lifecycle.items_changed(state, sub, before, behavior, state.now())
    if isinstance(phase["trial_end"], int) and phase["trial_end"] > state.now():
        lifecycle.move_trial(state, sub, int(phase["trial_end"]))
    lifecycle.watch(state, sub)


def _finish(state: State, schedule: JsonDict, sub: JsonDict) -> None:
    """After the last phase: release the subscription, or cancel it."""
    now = state.now()
    if schedule["end_behavior"] == "cancel":
        lifecycle.cancel(state, sub)
        schedule.update(status="completed", completed_at=now, current_phase=None)
        return
    release_now(state, schedule, sub)


def release_now(state: State, schedule: JsonDict, sub: JsonDict | None) -> None:
    """Detach the subscription, which goes on by itself."""
    schedule.update(
        status="released",
        released_at=state.now(),
        released_subscription=schedule["subscription"],
        subscription=None,
        current_phase=None,
    )
    if sub is not None:
        sub["schedule"] = None


def next_step(state: State, schedule: JsonDict) -> tuple[int, Step] | None:
    """When the schedule next changes by itself, and what happens then."""
    if schedule["status"] == "not_started":
        return int(str(as_dict(_phases(schedule)[0])["start_date"])), begin
    if schedule["status"] == "active" and schedule["current_phase"] is not None:
        return int(str(as_dict(schedule["current_phase"])["end_date"])), advance
    return None


def phase_at(phases: list[JsonDict], moment: int) -> JsonDict | None:
    """The phase in force at `moment` (None after the last one)."""
    for phase in phases:
        if int(str(phase["start_date"])) <= moment < int(str(phase["end_date"])):
            return phase
    return None


def _phases(schedule: JsonDict) -> list[object]:
    return _list(schedule["phases"])


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def retrieve(call: Call) -> JsonDict:
    """GET /v1/subscription_schedules/{id}."""
    schedule = call.state.require("subscription_schedule", call.arg("id"))
    call.params.check_known(())
    return view(call.state, schedule, call.expand)


def update(call: Call) -> JsonDict:
    """POST /v1/subscription_schedules/{id}: phases (the current one keeps its start),
    `end_behavior`, `metadata`."""
    state, p = call.state, call.params
    schedule = state.require("subscription_schedule", call.arg("id"))
    p.check_known(UPDATE_PARAMS)
    if schedule["status"] not in LIVE:
        raise refused(
            f"You cannot update a subscription schedule that is {schedule['status']}.", "id"
        )
    changes: JsonDict = {"metadata": metadata.merged(mapping(schedule["metadata"]), p)}
    if p.has("end_behavior"):
        changes["end_behavior"] = p.string("end_behavior", choices=END_BEHAVIORS)
    behavior = p.string("proration_behavior", choices=lifecycle.PRORATION_BEHAVIORS)
    rows = p.items("phases")
    if rows:
        changes["phases"] = _new_phases(state, schedule, rows)
    schedule.update(changes)
    if rows:
        _phases_changed(state, schedule, behavior)
    return view(state, schedule, call.expand)


def _new_phases(state: State, schedule: JsonDict, rows: list[Params]) -> list[JsonDict]:
    """The phases sent on update: the first starts where the schedule's current (or first)
    phase starts, which cannot move."""
    current = as_dict(schedule["current_phase"]) or as_dict(_phases(schedule)[0])
    start = int(str(current["start_date"]))
    sent = rows[0].integer("start_date")
    if sent is not None and sent != start:
        raise invalid("The current phase's start_date cannot change.", rows[0].name("start_date"))
    return parse_phases(state, rows, start)


def _phases_changed(state: State, schedule: JsonDict, behavior: str | None) -> None:
    """New phases of a running schedule: the phase in force now applies at once."""
    if schedule["status"] == "not_started":
        state.wake_at(int(str(as_dict(_phases(schedule)[0])["start_date"])))
        return
    sub = state.find("subscription", str(schedule["subscription"]))
    phase = phase_at([as_dict(p) for p in _phases(schedule)], state.now())
    if sub is None or phase is None:
        return
    schedule["current_phase"] = {"end_date": phase["end_date"], "start_date": phase["start_date"]}
    apply_phase(state, sub, phase, behavior or str(phase["proration_behavior"]))
    state.wake_at(int(str(phase["end_date"])))


def release(call: Call) -> JsonDict:
    """POST /v1/subscription_schedules/{id}/release."""
    state, p = call.state, call.params
    p.check_known(("preserve_cancel_date",))
    schedule = _live(state, call.arg("id"))
    sub = state.find("subscription", str(schedule["subscription"]))
    release_now(state, schedule, sub)
    return view(state, schedule, call.expand)


def cancel(call: Call) -> JsonDict:
    """POST /v1/subscription_schedules/{id}/cancel: the subscription is canceled too."""
    state, p = call.state, call.params
    p.check_known(("invoice_now", "prorate"))
    schedule = _live(state, call.arg("id"))
    sub = state.find("subscription", str(schedule["subscription"]))
    if sub is not None and sub["status"] not in ("canceled", "incomplete_expired"):
        lifecycle.cancel(state, sub)
    schedule.update(status="canceled", canceled_at=state.now(), current_phase=None)
    return view(state, schedule, call.expand)


def _live(state: State, schedule_id: str) -> JsonDict:
    schedule = state.require("subscription_schedule", schedule_id)
    if schedule["status"] not in LIVE:
        raise refused(
            f"The subscription schedule is {schedule['status']}; only a not started or "
            "active schedule can be released or canceled.",
            "id",
        )
    return schedule


def list_schedules(call: Call) -> JsonDict:
    """GET /v1/subscription_schedules by `customer` and `scheduled` (not started yet)."""
    p = call.params
    p.check_known((*PAGING, "customer", "scheduled"))
    scheduled = p.boolean("scheduled")
    matches = all_of(
        equal_filter(p, "customer"),
        lambda s: scheduled is None or (s["status"] == "not_started") is scheduled,
    )
    return list_response(
        call.state, "subscription_schedule", p, "/v1/subscription_schedules", call.expand, matches
    )


register("subscription_schedule", view)

ROUTES = [
    Route("POST", "/v1/subscription_schedules", create),
    Route("GET", "/v1/subscription_schedules", list_schedules),
    Route("GET", "/v1/subscription_schedules/{id}", retrieve),
    Route("POST", "/v1/subscription_schedules/{id}", update),
    Route("POST", "/v1/subscription_schedules/{id}/release", release),
    Route("POST", "/v1/subscription_schedules/{id}/cancel", cancel),
]
