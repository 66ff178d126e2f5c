"""Meter events and their summaries through the real `stripe` client: what Stripe accepts,
refuses and de-duplicates, how meters aggregate, and the meter-event rate limit."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from autumn_sync.emulator import Emulator
from tests.emulator.helpers import make_meter, make_paying_customer, seen

DAY = 86400


@pytest.fixture
def customer(client: stripe.StripeClient) -> Any:
    return make_paying_customer(client, "jane@example.com")


def report(client: stripe.StripeClient, customer: str, value: object, **extra: Any) -> Any:
    """One `messages` event for `customer` (the default payload keys)."""
    payload = {"stripe_customer_id": customer, "value": str(value)}
    params = {"event_name": "messages", "payload": payload, **extra}
    return client.v1.billing.meter_events.create(params=params)


def summaries(client: stripe.StripeClient, meter: str, **params: Any) -> Any:
    return client.v1.billing.meters.event_summaries.list(meter, params=params)


def minute(emu: Emulator) -> int:
    """The start of the current minute (summaries take minute-aligned bounds)."""
    now = emu.clock.now()
    return now - now % 60


def total(client: stripe.StripeClient, emu: Emulator, meter: str, customer: str) -> int:
    """The customer's usage over the last 40 days and the next hour."""
    start = minute(emu) - 40 * DAY
    listed = summaries(
        client, meter, customer=customer, start_time=start, end_time=start + 41 * DAY
    )
    assert len(listed.data) == 1
    return int(listed.data[0].aggregated_value)


def test_an_event_is_recorded_and_summed(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_meter(client)
    event = report(client, customer.id, 25, identifier="evt-1")
    assert (event.object, event.event_name, event.identifier) == (
        "billing.meter_event",
        "messages",
        "evt-1",
    )
    assert event.payload.to_dict() == {"stripe_customer_id": customer.id, "value": "25"}
    assert event.timestamp == emu.clock.now()
    generated = report(client, customer.id, 5)
    assert generated.identifier and generated.identifier != "evt-1"
    assert total(client, emu, meter.id, customer.id) == 30


def test_a_repeated_identifier_is_refused_and_counted_once(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_meter(client)
    report(client, customer.id, 800, identifier="usage:jane:1")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        report(client, customer.id, 800, identifier="usage:jane:1")
    error = seen(caught.value)
    assert (error.status, error.type, error.code) == (400, "invalid_request_error", None)
    assert error.message == "An event already exists with identifier usage:jane:1."
    assert caught.value.headers is not None
    assert caught.value.headers["Stripe-Should-Retry"] == "false"
    assert total(client, emu, meter.id, customer.id) == 800
    # the uniqueness window is a rolling 24 hours
    emu.clock.advance(DAY)
    report(client, customer.id, 1, identifier="usage:jane:1")
    assert total(client, emu, meter.id, customer.id) == 801


def test_a_retry_with_the_same_idempotency_key_is_replayed(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_meter(client)
    options: stripe.RequestOptions = {"idempotency_key": "report-1"}
    params: Any = {
        "event_name": "messages",
        "identifier": "usage:jane:2",
        "payload": {"stripe_customer_id": customer.id, "value": "7"},
    }
    client.v1.billing.meter_events.create(params=params, options=options)
    again = client.v1.billing.meter_events.create(params=params, options=options)
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert total(client, emu, meter.id, customer.id) == 7


CUSTOMER_KEY = "payload[stripe_customer_id]"
OURS = {"stripe_customer_id": "CUS", "value": "3"}  # CUS: the test's customer
INVALID = [
    ({"event_name": "unknown", "payload": OURS}, "event_name", "no_meter"),
    ({"payload": {"value": "3"}}, CUSTOMER_KEY, "meter_event_no_customer_defined"),
    ({"payload": {**OURS, "stripe_customer_id": "cus_nobody"}}, CUSTOMER_KEY, "resource_missing"),
    ({"payload": {**OURS, "value": "many"}}, "payload[value]", "meter_event_invalid_value"),
    ({"payload": {**OURS, "value": "1.5"}}, "payload[value]", "meter_event_invalid_value"),
    ({"payload": {"stripe_customer_id": "CUS"}}, "payload[value]", "meter_event_invalid_value"),
    ({"payload": OURS, "timestamp": 6 * 60}, "timestamp", "timestamp_in_future"),
    ({"payload": OURS, "quantity": 3}, "quantity", "parameter_unknown"),
]


@pytest.mark.parametrize(("change", "param", "code"), INVALID)
def test_invalid_events_are_refused(
    client: stripe.StripeClient,
    emu: Emulator,
    customer: Any,
    change: dict[str, Any],
    param: str,
    code: str,
) -> None:
    meter = make_meter(client)
    payload = {k: customer.id if v == "CUS" else v for k, v in change["payload"].items()}
    params: dict[str, Any] = {"event_name": "messages", **change, "payload": payload}
    if "timestamp" in change:  # seconds from now
        params["timestamp"] = emu.clock.now() + change["timestamp"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.billing.meter_events.create(params=params)  # type: ignore[arg-type]
    error = seen(caught.value)
    assert (error.status, error.param, error.code) == (400, param, code)
    assert total(client, emu, meter.id, customer.id) == 0


def test_a_timestamp_36_days_old_is_refused_35_days_is_not(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_meter(client)
    now = emu.clock.now()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        report(client, customer.id, 4, timestamp=now - 36 * DAY)
    error = seen(caught.value)
    assert (error.param, error.code) == ("timestamp", "timestamp_too_far_in_past")
    assert error.message.startswith("The event timestamp cannot be more than 35 days in past.")
    report(client, customer.id, 4, timestamp=now - 35 * DAY + 60)
    report(client, customer.id, 1, timestamp=now + 4 * 60)
    assert total(client, emu, meter.id, customer.id) == 5


def test_an_inactive_meter_takes_no_events(client: stripe.StripeClient, customer: Any) -> None:
    meter = make_meter(client)
    client.v1.billing.meters.deactivate(meter.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        report(client, customer.id, 1)
    assert (seen(caught.value).param, seen(caught.value).code) == ("event_name", "archived_meter")


def test_payload_keys_follow_the_meter(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = client.v1.billing.meters.create(
        params={
            "display_name": "Tokens",
            "event_name": "tokens",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "account", "type": "by_id"},
            "value_settings": {"event_payload_key": "tokens"},
        }
    )
    params: Any = {"event_name": "tokens", "payload": {"account": customer.id, "tokens": "12"}}
    client.v1.billing.meter_events.create(params=params)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        wrong: Any = {
            "event_name": "tokens",
            "payload": {"stripe_customer_id": customer.id, "value": "12"},
        }
        client.v1.billing.meter_events.create(params=wrong)
    assert seen(caught.value).param == "payload[account]"
    assert total(client, emu, meter.id, customer.id) == 12


def make_formula_meter(client: stripe.StripeClient, formula: str, **extra: Any) -> Any:
    params = {
        "display_name": formula,
        "event_name": "messages",
        "default_aggregation": {"formula": formula},
        **extra,
    }
    return client.v1.billing.meters.create(params=params)


@pytest.mark.parametrize(("formula", "expected"), [("sum", 10), ("count", 3), ("last", 2)])
def test_formulas(
    client: stripe.StripeClient, emu: Emulator, customer: Any, formula: str, expected: int
) -> None:
    meter = make_formula_meter(client, formula)
    now = emu.clock.now()
    report(client, customer.id, 5, timestamp=now - 120)
    report(client, customer.id, 2, timestamp=now - 60)  # the latest timestamp
    report(client, customer.id, 3, timestamp=now - 180)  # sent last, but earlier
    assert total(client, emu, meter.id, customer.id) == expected


def test_a_pre_aggregated_meter_keeps_the_last_event_of_each_window(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_formula_meter(client, "sum", event_time_window="hour")
    hour = emu.clock.now() - emu.clock.now() % 3600
    report(client, customer.id, 40, timestamp=hour - 3600 + 10)
    report(client, customer.id, 50, timestamp=hour - 3600 + 20)  # replaces 40
    report(client, customer.id, 30, timestamp=hour - 3600 + 5)  # received last: replaces 50
    report(client, customer.id, 7, timestamp=hour - 7200)  # another hour
    assert total(client, emu, meter.id, customer.id) == 37


def test_events_of_other_customers_do_not_count(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_meter(client)
    other = make_paying_customer(client, "joe@example.com")
    report(client, customer.id, 5)
    report(client, other.id, 9)
    assert total(client, emu, meter.id, customer.id) == 5
    assert total(client, emu, meter.id, other.id) == 9


def test_hourly_summaries_newest_first_and_paged(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_meter(client)
    hour = emu.clock.now() - emu.clock.now() % 3600
    report(client, customer.id, 15, timestamp=hour - 3600 + 60)
    report(client, customer.id, 10, timestamp=hour - 3 * 3600)
    params = {"customer": customer.id, "start_time": hour - 3 * 3600, "end_time": hour}
    listed = summaries(client, meter.id, **params, value_grouping_window="hour", limit=2)
    assert [(s.start_time, s.end_time, s.aggregated_value) for s in listed.data] == [
        (hour - 3600, hour, 15),
        (hour - 7200, hour - 3600, 0),
    ]
    assert (listed.has_more, listed.url) == (True, f"/v1/billing/meters/{meter.id}/event_summaries")
    assert listed.data[0].object == "billing.meter_event_summary"
    assert listed.data[0].meter == meter.id
    rest = summaries(
        client, meter.id, **params, value_grouping_window="hour", starting_after=listed.data[1].id
    )
    assert [(s.start_time, s.aggregated_value) for s in rest.data] == [(hour - 3 * 3600, 10)]
    assert rest.has_more is False
    whole = summaries(client, meter.id, **params)
    assert [s.aggregated_value for s in whole.data] == [25]


def test_summary_bounds_must_be_aligned(
    client: stripe.StripeClient, emu: Emulator, customer: Any
) -> None:
    meter = make_meter(client)
    # an hour boundary: `start + 60` is then never one (a start counted from the minute was,
    # when the test ran in the last minute of an hour)
    start = minute(emu) - minute(emu) % 3600 - 3600
    for params in (
        {"start_time": start + 1, "end_time": start + 3600},
        {"start_time": start + 60, "end_time": start + 3660, "value_grouping_window": "hour"},
        {"start_time": start + 3600, "end_time": start},
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            summaries(client, meter.id, customer=customer.id, **params)
        assert seen(caught.value).status == 400
    with pytest.raises(stripe.InvalidRequestError) as caught:
        summaries(client, meter.id, start_time=start, end_time=start + 60)
    assert seen(caught.value).code == "parameter_missing"


def test_meter_event_rate_limit_answers_429_and_retries_succeed() -> None:
    with Emulator(seed=1, meter_event_rate_limit=2) as emu:
        client = emu.client()
        customer = make_paying_customer(client, "jane@example.com")
        make_meter(client)
        accepted = 0
        with pytest.raises(stripe.RateLimitError) as caught:
            for index in range(20):
                report(client, customer.id, 1, identifier=f"burst-{index}")
                accepted += 1
        error = seen(caught.value)
        assert (error.status, error.code) == (429, "rate_limit")
        assert emu.requests.entries()[-1].outcome == "rate_limited"
        # other endpoints are not limited
        for _ in range(10):
            client.v1.customers.list()

        patient = emu.client(max_network_retries=5)
        for index in range(6):
            report(patient, customer.id, 1, identifier=f"steady-{index}")
        assert emu.requests.count("POST", "/v1/billing/meter_events") > accepted + 6
        meter = client.v1.billing.meters.list().data[0]
        assert total(client, emu, meter.id, customer.id) == accepted + 6
        emu.configure(meter_event_rate_limit=None)
        for index in range(20):
            report(client, customer.id, 1, identifier=f"free-{index}")
