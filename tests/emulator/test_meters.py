"""Billing meters through the real `stripe` client: no delete, only display_name changes."""

from __future__ import annotations

import pytest
import stripe

from tests.emulator.helpers import make_meter, seen


def test_create_and_retrieve(client: stripe.StripeClient) -> None:
    meter = make_meter(client, "messages")
    assert meter.id.startswith("mtr_")
    assert (meter.object, meter.status, meter.livemode) == ("billing.meter", "active", False)
    assert meter.default_aggregation.formula == "sum"
    assert meter.customer_mapping.to_dict() == {
        "event_payload_key": "stripe_customer_id",
        "type": "by_id",
    }
    assert meter.value_settings.event_payload_key == "value"
    assert meter.status_transitions.deactivated_at is None
    assert client.v1.billing.meters.retrieve(meter.id).event_name == "messages"


def test_only_display_name_changes(client: stripe.StripeClient) -> None:
    meter = make_meter(client)
    renamed = client.v1.billing.meters.update(meter.id, params={"display_name": "Messages sent"})
    assert renamed.display_name == "Messages sent"
    for change in ({"event_name": "other"}, {"default_aggregation": {"formula": "count"}}):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.billing.meters.update(meter.id, params=change)  # type: ignore[arg-type]
        error = seen(caught.value)
        assert (error.status, error.code) == (400, "parameter_unknown")
    assert client.v1.billing.meters.retrieve(meter.id).event_name == "messages"


def test_deactivate_and_reactivate(client: stripe.StripeClient) -> None:
    meter = make_meter(client)
    inactive = client.v1.billing.meters.deactivate(meter.id)
    assert inactive.status == "inactive"
    assert isinstance(inactive.status_transitions.deactivated_at, int)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meters.deactivate(meter.id)
    active = client.v1.billing.meters.reactivate(meter.id)
    assert (active.status, active.status_transitions.deactivated_at) == ("active", None)


def test_meters_cannot_be_deleted(client: stripe.StripeClient) -> None:
    meter = make_meter(client)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.raw_request("delete", f"/v1/billing/meters/{meter.id}")
    assert seen(caught.value).status == 404
    assert client.v1.billing.meters.retrieve(meter.id).status == "active"


def test_event_names_are_unique(client: stripe.StripeClient) -> None:
    make_meter(client, "messages")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        make_meter(client, "messages")
    assert seen(caught.value).param == "event_name"


def test_list_by_status(client: stripe.StripeClient) -> None:
    kept, stopped = make_meter(client, "kept"), make_meter(client, "stopped")
    client.v1.billing.meters.deactivate(stopped.id)
    listed = client.v1.billing.meters.list(params={"status": "active"})
    assert [m.id for m in listed.data] == [kept.id]
    assert listed.url == "/v1/billing/meters"
    assert len(client.v1.billing.meters.list().data) == 2
