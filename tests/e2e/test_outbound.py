"""CRM events on the local stack: with the local CRM registered (PUT /v1/webhooks), a cascade's
start, every message sent, the customer's reply and the end reach the CRM as they happen, in
order, signed with the registered secret and free of contacts; a CRM that fails for a while still
gets each event exactly once; a forged or unsigned delivery is refused by the receiver's check;
and the registration itself is validated, shown without its secret, and removable."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

ALL_TYPES = ["cascade.started", "step.sent", "signal", "cascade.finished"]


@pytest.fixture
def crm(stack: Any) -> Any:
    return stack.standin("crm")


@pytest.fixture
def registered(api: Api, crm: Any) -> Iterator[Any]:
    assert api.http.delete("/local/crm").status_code in (200, 204)  # nothing another test left behind
    resp = api.http.put("/v1/webhooks", json={"url": crm.endpoint, "secret": crm.secret})
    assert resp.status_code == 200, resp.text
    yield crm
    assert api.http.delete("/v1/webhooks").status_code == 204


def delivery_failed() -> tuple[str, dict[str, Any]]:
    phone = f"+7701{uuid.uuid4().int % 10**7:07d}"
    recipient_id = f"cust-{uuid.uuid4().hex[:8]}"
    return phone, {"type": "delivery.failed", "recipient": {"id": recipient_id, "name": "Анна", "phone": phone},
                   "data": {"order_id": f"O-{uuid.uuid4().hex[:6]}",
                            "reschedule_url": "https://shop.test/orders/r"}}


def crm_view(api: Api, cascade_id: str) -> dict[str, Any]:
    resp = api.http.get("/local/crm", params={"cascade_id": cascade_id})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def events_until_finished(api: Api, cascade_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        events = crm_view(api, cascade_id)["events"]
        return events if any(e["type"] == "cascade.finished" for e in events) else None

    return list(wait_for("cascade.finished at the CRM", done, timeout=timeout))


def reply_to_second_sms(api: Api, cascade_id: str) -> list[dict[str, Any]]:
    """Let the first SMS go unanswered (2 h: half a second here), answer the second."""
    sms = wait_for("the second SMS", lambda: (m := api.outbox(cascade_id)) and len(m) >= 2 and m, timeout=30)
    assert api.simulate(sms[1]["provider_message_id"], "replied", text="ПЕРЕНОС").status_code == 200
    view = wait_for("the stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied")
    return list(sms[:2])


def test_a_cascade_reaches_the_crm_as_it_happens_signed_and_in_order(api: Api, registered: Any) -> None:
    crm = registered
    phone, event = delivery_failed()
    cascade_id = api.start(event)
    sms = reply_to_second_sms(api, cascade_id)
    events = events_until_finished(api, cascade_id)
    assert [(e["type"], e.get("step"), e.get("status")) for e in events] == [
        ("cascade.started", None, "running"),
        ("step.sent", 0, "sent"),
        ("step.sent", 1, "sent"),
        ("signal", 1, "replied"),
        ("cascade.finished", None, "succeeded"),
    ]
    started, first, second, reply, done = events
    assert all(e["cascade_id"] == cascade_id and e["scenario"] == "delivery-failed"
               and e["recipient_id"] == event["recipient"]["id"] for e in events)
    assert started["correlation"] == {"order_id": event["data"]["order_id"]}
    assert [first["provider_message_id"], second["provider_message_id"]] == [m["provider_message_id"] for m in sms]
    assert first["channel"] == "sms" and first["cost"] > 0 and first["currency"]
    assert reply["reply"] == "ПЕРЕНОС" and reply["provider_message_id"] == sms[1]["provider_message_id"]
    view = api.cascade(cascade_id)
    assert done["stop_reason"] == "replied" and done["success_step"] == 1
    assert done["created_at"] == view["finished_at"]
    assert [s["status"] for s in done["steps"]] == [s["status"] for s in view["steps"]]
    # Each event came once, with its own id; nothing of the customer's contacts travelled.
    assert len({e["id"] for e in events}) == 5
    deliveries = crm_view(api, cascade_id)["deliveries"]
    assert [d["event_id"] for d in deliveries] == [e["id"] for e in events]
    assert all(d["status"] == 200 for d in deliveries)
    # Every signature is the documented one: HMAC-SHA256 over "<timestamp>.<raw body>" with the secret.
    for delivery, sent_event in zip(deliveries, events, strict=True):
        assert json.loads(delivery["body"]) == sent_event
        assert delivery["signature"] == _sign(crm.secret, delivery["body"].encode(),
                                              int(delivery["timestamp"]))["x-cascade-signature"]
        assert abs(time.time() - int(delivery["timestamp"])) < 60
    for body in map(json.dumps, events):
        assert phone not in body and phone[1:] not in body
    assert not crm.refused


def test_a_crm_that_fails_twice_gets_each_event_exactly_once(api: Api, registered: Any) -> None:
    _, event = delivery_failed()
    armed = api.http.post("/local/crm", json={"fail": 2, "recipient_id": event["recipient"]["id"]})
    assert armed.status_code == 200, armed.text
    cascade_id = api.start(event)
    reply_to_second_sms(api, cascade_id)
    events = events_until_finished(api, cascade_id)
    assert [e["type"] for e in events] == ["cascade.started", "step.sent", "step.sent", "signal", "cascade.finished"]
    deliveries = crm_view(api, cascade_id)["deliveries"]
    assert [d["status"] for d in deliveries[:3]] == [500, 500, 200]
    assert len({d["event_id"] for d in deliveries[:3]}) == 1  # the same event, tried again


def test_a_crm_that_fails_after_storing_keeps_each_event_once_in_order(api: Api, registered: Any) -> None:
    # Four failures outlast one invocation's three tries: the stream hands the record back and a
    # new invocation rebuilds the same event (same id) from it; the CRM had kept it already.
    _, event = delivery_failed()
    armed = api.http.post("/local/crm", json={"fail": 4, "recipient_id": event["recipient"]["id"],
                                              "after_storing": True, "status": 503})
    assert armed.status_code == 200, armed.text
    cascade_id = api.start(event)
    reply_to_second_sms(api, cascade_id)
    events = events_until_finished(api, cascade_id, timeout=45)
    assert [e["type"] for e in events] == ["cascade.started", "step.sent", "step.sent", "signal", "cascade.finished"]
    deliveries = crm_view(api, cascade_id)["deliveries"]
    assert [d["status"] for d in deliveries[:5]] == [503, 503, 503, 503, 200]
    assert {d["event_id"] for d in deliveries[:5]} == {events[0]["id"]}
    later = [d["event_id"] for d in deliveries[5:]]
    assert later == [e["id"] for e in events[1:]]  # nothing overtook the failing event


def _sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-cascade-timestamp": str(timestamp),
            "x-cascade-signature": f"v1={mac}"}


@pytest.mark.parametrize("forgery", ["unsigned", "wrong secret", "tampered body", "stale timestamp"])
def test_a_forged_delivery_is_refused_by_the_receivers_check(crm: Any, forgery: str) -> None:
    event_id = f"evt_forged_{uuid.uuid4().hex[:8]}"
    body = json.dumps({"id": event_id, "type": "cascade.finished", "cascade_id": "c_x", "status": "succeeded"}).encode()
    now = int(time.time())
    headers = {
        "unsigned": {"content-type": "application/json"},
        "wrong secret": _sign("not-the-crm-secret-123", body, now),
        "tampered body": _sign(crm.secret, body.replace(b"succeeded", b"failed"), now),
        "stale timestamp": _sign(crm.secret, body, now - 301),
    }[forgery]
    resp = httpx.post(crm.endpoint, content=body, headers=headers, timeout=10)
    assert resp.status_code == 401
    assert event_id not in crm.events
    # The same event, signed as documented, is taken.
    assert httpx.post(crm.endpoint, content=body, headers=_sign(crm.secret, body, now), timeout=10).status_code == 200
    assert event_id in crm.events


def test_the_registration_is_shown_without_its_secret_and_can_be_removed(api: Api, crm: Any) -> None:
    assert api.http.delete("/v1/webhooks").status_code == 204
    assert api.http.get("/v1/webhooks").status_code == 404
    resp = api.http.put("/v1/webhooks", json={"url": crm.endpoint, "secret": crm.secret,
                                              "events": ["cascade.finished", "cascade.started"]})
    assert resp.status_code == 200, resp.text
    shown = resp.json()
    assert shown["url"] == crm.endpoint and shown["secret_set"] is True
    assert shown["events"] == ["cascade.started", "cascade.finished"]
    assert crm.secret not in resp.text
    got = api.http.get("/v1/webhooks")
    assert got.status_code == 200 and got.json() == shown and crm.secret not in got.text
    try:
        # Only the registered types go out.
        _, event = delivery_failed()
        cascade_id = api.start(event)
        api.http.post(f"/v1/cascades/{cascade_id}/cancel")
        events = events_until_finished(api, cascade_id)
        assert [e["type"] for e in events] == ["cascade.started", "cascade.finished"]
    finally:
        assert api.http.delete("/v1/webhooks").status_code == 204
    assert api.http.get("/v1/webhooks").status_code == 404
    # With nothing registered, nothing is sent.
    _, event = delivery_failed()
    cascade_id = api.start(event)
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    time.sleep(1.0)
    assert crm_view(api, cascade_id)["deliveries"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "http://crm.example.com/hook", "secret": "s" * 32}, "url"),
    ({"url": "not a url", "secret": "s" * 32}, "url"),
    ({"secret": "s" * 32}, "url"),
    ({"url": "https://crm.example.com/hook", "secret": "too-short"}, "secret"),
    ({"url": "https://crm.example.com/hook"}, "secret"),
    ({"url": "https://crm.example.com/hook", "secret": "s" * 32, "events": ["cascade.paused"]}, "events.0"),
    ({"url": "https://crm.example.com/hook", "secret": "s" * 32, "events": []}, "events"),
    ({"url": "https://crm.example.com/hook", "secret": "s" * 32, "format": "xml"}, "format"),
])
def test_a_bad_registration_is_a_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    resp = api.http.put("/v1/webhooks", json=body)
    assert resp.status_code == 422, resp.text
    assert [d["field"] for d in resp.json()["details"]] == [field]
    assert "s" * 32 not in resp.text  # a rejected secret is not echoed either


def test_a_registration_is_read_as_json_whatever_the_content_type(api: Api, crm: Any) -> None:
    # curl -d sends a form's content type: the body is still the JSON it carries.
    body = json.dumps({"url": crm.endpoint, "secret": crm.secret})
    resp = api.http.put("/v1/webhooks", content=body,
                        headers={"content-type": "application/x-www-form-urlencoded"})
    try:
        assert resp.status_code == 200, resp.text
        assert resp.json()["secret_set"] is True and crm.secret not in resp.text
    finally:
        assert api.http.delete("/v1/webhooks").status_code == 204
    broken = api.http.put("/v1/webhooks", content=body[:-1].encode())
    assert broken.status_code == 400 and crm.secret not in broken.text
