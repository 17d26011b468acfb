"""Mobile push through SNS platform endpoints, on the courier preset: the device gets the
notification with the cascade in its data, the app's "opened" report stops the cascade, a dead
endpoint fails the step for good, and a passing SNS error is retried."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cascade.planning import real_seconds
from tests.conftest import TIME_SCALE, Api, long_waits, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


@pytest.fixture
def phone_app(stack: Any) -> Any:
    return stack.standin("push")


def courier_event(token: str, **recipient: Any) -> dict[str, Any]:
    contacts = {"email": "sam@example.com", "phone": "+14155550123", **recipient}
    return {"type": "courier.assigned",
            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "name": "Sam", "locale": "en", "push_token": token,
                          **{k: v for k, v in contacts.items() if v is not None}},
            "data": {"delivery_id": f"d-{uuid.uuid4().hex[:6]}", "delivery_date": "12 December",
                     "time_window": "14:00-16:00", "courier_name": "Ivan", "courier_phone": "+77010000000"}}


def new_token() -> str:
    return f"fcm-{uuid.uuid4().hex}"


def notifications(phone_app: Any, token: str) -> list[dict[str, Any]]:
    return [d for d in phone_app.delivered() if d["token"] == token]


def test_a_push_reaches_the_registered_device_with_title_body_and_the_cascade(api: Api, phone_app: Any) -> None:
    token = new_token()
    cascade_id = api.start(courier_event(token))
    shown = wait_for("the notification", lambda: notifications(phone_app, token))
    assert len(shown) == 1
    fcm = shown[0]["fcm"]
    # The step's subject is the title; the body carries the date, the window and the courier's contact.
    assert fcm["notification"]["title"] == "Your courier arrives on 12 December, 14:00-16:00"
    assert fcm["notification"]["body"] == ("Ivan brings your order on 12 December, 14:00-16:00. "
                                           "Courier's phone: +77010000000")
    assert fcm["data"] == {"cascade_id": cascade_id, "step": "0"}
    # One message, a payload per platform: iOS devices get the same alert and cascade.
    envelope = json.loads(shown[0]["raw"])
    apns = json.loads(envelope["APNS"])
    assert apns["aps"]["alert"] == fcm["notification"] and apns["cascade_id"] == cascade_id
    assert json.loads(envelope["APNS_SANDBOX"]) == apns and envelope["default"] == fcm["notification"]["body"]
    # The token became an enabled endpoint of the platform application.
    sns = boto3.client("sns")
    attributes = sns.get_endpoint_attributes(EndpointArn=shown[0]["endpoint_arn"])["Attributes"]
    assert attributes["Token"] == token and attributes["Enabled"] == "true"
    view = wait_for("the step", lambda: (v := api.cascade(cascade_id))["steps"][0]["status"] == "sent" and v)
    assert view["steps"][0]["provider_message_id"] == shown[0]["message_id"]  # the SNS MessageId
    # The outbox names a message's cascade once its record is written, a moment after the step says sent.
    sent = wait_for("the push in the outbox", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "push"])
    assert [(m["to"], m["subject"]) for m in sent] == [(token, fcm["notification"]["title"])]
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_the_apps_opened_report_stops_the_courier_cascade_and_nothing_goes_out_after(
        api: Api, phone_app: Any) -> None:
    token = new_token()
    cascade_id = api.start(courier_event(token))
    shown = wait_for("the notification", lambda: notifications(phone_app, token))[0]
    # The user opens it: the app calls POST /v1/signals with the cascade id from the payload.
    resp = phone_app.open_notification(shown["message_id"], "read")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["stop_reason"]) == ("succeeded", "read")
    assert resp.json()["steps"][0]["status"] == "read"
    # Past the push's timer (30 m: 1 s here, after which the email would go out at once, as the
    # Viber step has no contact): nothing else reaches the customer.
    time.sleep(real_seconds(1800, TIME_SCALE) + 2)
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["push"]
    # The steps it never reached say so, for good (the Viber step has no contact: skipped, if a busy
    # machine let the push's 1 s timer run out before the open arrived).
    statuses = [s["status"] for s in api.cascade(cascade_id)["steps"]]
    assert statuses[0] == "read" and statuses[1] in ("not_sent", "skipped") and statuses[2:] == ["not_sent"] * 2


def test_an_app_reports_opens_and_taps_but_not_failures(api: Api, phone_app: Any) -> None:
    token = new_token()
    cascade_id = api.start(courier_event(token))
    shown = wait_for("the notification", lambda: notifications(phone_app, token))[0]
    resp = api.simulate(shown["message_id"], "failed")
    assert resp.status_code == 422
    assert [d["field"] for d in resp.json()["details"]] == ["signal"]
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


@pytest.mark.parametrize("how", ["uninstalled", "endpoint-disabled-on-publish"])
def test_a_dead_endpoint_fails_the_push_for_good_and_the_email_goes_out_at_once(
        api: Api, phone_app: Any, how: str) -> None:
    token = new_token()
    if how == "uninstalled":
        # The device got a first push; then the app was removed and FCM told SNS the token is dead.
        first = api.start(courier_event(token))
        wait_for("the first notification", lambda: notifications(phone_app, token))
        api.http.post(f"/v1/cascades/{first}/cancel")
        phone_app.uninstall(token)
    else:
        # SNS refuses the publish itself: EndpointDisabled.
        api.http.post("/local/faults", json={"channel": "push", "mode": "reject", "count": 1})
    before = len(notifications(phone_app, token))
    cascade_id = api.start(courier_event(token))  # no viber_id: the Viber step is skipped
    view = wait_for("the email step", lambda: (v := api.cascade(cascade_id))["steps"][2]["status"] == "sent" and v)
    assert view["steps"][0]["status"] == "failed"
    assert "disabled" in view["steps"][0]["reason"].lower()
    assert view["steps"][1]["status"] == "skipped"
    assert len(notifications(phone_app, token)) == before  # nothing reached the device
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["email"]
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


@pytest.mark.parametrize("mode", ["500", "429"])
def test_a_passing_sns_error_is_retried_and_the_push_goes_out_once(api: Api, phone_app: Any, mode: str,
                                                                  saved: list[str]) -> None:
    trigger = long_waits(api, saved, "courier", 0)  # retries stay within the step's timer: a long one
    resp = api.http.post("/local/faults", json={"channel": "push", "mode": mode, "count": 1})
    assert resp.status_code == 200
    token = new_token()
    cascade_id = api.start({**courier_event(token), "type": trigger})
    view = wait_for("the push step", lambda: (v := api.cascade(cascade_id))["steps"][0]["status"] in ("sent", "failed")
                    and v)
    assert view["steps"][0]["status"] == "sent", view["steps"][0]
    assert len(notifications(phone_app, token)) == 1
    assert api.http.get("/local/faults").json()["faults"] == {}  # the fault was used up by the first try
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
