"""POST /v1/signals: an app or the business reports a signal it observed itself."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack


def _delivery() -> dict:
    return {"type": "delivery.failed", "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+77011234567"},
            "data": {"order_id": "S-1", "reschedule_url": "https://shop.test/r/S-1"}}


def test_a_reported_reply_on_a_message_stops_its_cascade(api: Api) -> None:
    cascade_id = api.start(_delivery())
    sms = wait_for("the SMS", lambda: api.outbox(cascade_id))[0]
    resp = api.http.post("/v1/signals", json={"provider_message_id": sms["provider_message_id"], "signal": "replied"})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["stop_reason"]) == ("succeeded", "replied")
    assert resp.json()["steps"][0]["status"] == "replied"


def test_a_signal_that_is_not_a_success_moves_the_step_but_the_cascade_runs_on(api: Api) -> None:
    cascade_id = api.start(_delivery())
    wait_for("the SMS", lambda: api.outbox(cascade_id))
    resp = api.http.post("/v1/signals", json={"cascade_id": cascade_id, "signal": "delivered"})
    assert resp.status_code == 200
    assert resp.json()["status"] == "running" and resp.json()["steps"][0]["status"] == "delivered"
    # A reported click on the cascade applies to its latest sent step and is a success.
    resp = api.http.post("/v1/signals", json={"cascade_id": cascade_id, "signal": "clicked"})
    assert (resp.json()["status"], resp.json()["stop_reason"]) == ("succeeded", "clicked")


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"signal": "read"}, 422, "body"),
    ({"cascade_id": "c_x", "signal": "opened"}, 422, "signal"),
    ({"provider_message_id": "no-such-message", "signal": "read"}, 404, None),
    ({"cascade_id": "c_doesnotexist", "signal": "read"}, 404, None),
])
def test_bad_signal_reports_are_refused(api: Api, body: dict, status: int, field: str | None) -> None:
    resp = api.http.post("/v1/signals", json=body)
    assert resp.status_code == status, resp.text
    if field:
        assert field in [d["field"] for d in resp.json()["details"]]


def test_reporting_needs_the_api_key(api: Api) -> None:
    import httpx

    assert httpx.post(f"{api.base}/v1/signals", json={"cascade_id": "c_x", "signal": "read"}).status_code == 401
