"""POST /v1/events: bad input gets a clear 4xx naming the field; duplicates start one cascade."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack


def delivery_event(**recipient: Any) -> dict[str, Any]:
    rid = f"cust-{uuid.uuid4().hex[:8]}"
    return {"type": "delivery.failed", "recipient": {"id": rid, "locale": "en", "phone": "+77011234567", **recipient},
            "data": {"order_id": "A-1", "reschedule_url": "https://shop.test/reschedule/A-1"}}


def test_no_or_wrong_key_is_401(api: Api) -> None:
    assert httpx.post(f"{api.base}/v1/events", json=delivery_event()).status_code == 401
    wrong = httpx.post(f"{api.base}/v1/events", json=delivery_event(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert httpx.get(f"{api.base}/v1/cascades/c_x").status_code == 401


def test_malformed_json_is_400(api: Api) -> None:
    resp = api.http.post("/v1/events", content=b'{"type": ', headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert "JSON" in resp.json()["error"]


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda e: e["recipient"].update(phone="+7701"), "recipient.phone"),
    (lambda e: e["recipient"].update(phone="87011234567"), "recipient.phone"),
    (lambda e: e["recipient"].update(email="not-an-email"), "recipient.email"),
    (lambda e: e["recipient"].pop("id"), "recipient.id"),
    (lambda e: e.pop("recipient"), "recipient"),
    (lambda e: e["data"].pop("reschedule_url"), "data.reschedule_url"),
    (lambda e: e["data"].pop("order_id"), "data.order_id"),
    (lambda e: e.update(type="parcel.teleported"), "type"),
    (lambda e: e.update(type="NOT A TYPE"), "type"),
    (lambda e: e.update(scenario="no-such-scenario"), "scenario"),
    (lambda e: e["recipient"].update(timezone="Mars/Olympus"), "recipient.timezone"),
    (lambda e: e.update(surprise=1), "surprise"),
])
def test_invalid_events_are_422_naming_the_field(api: Api, mutate, field) -> None:  # type: ignore[no-untyped-def]
    event = delivery_event()
    mutate(event)
    resp = api.post_event(event)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"]
    assert field in [d["field"] for d in body["details"]], body


def test_a_recipient_with_no_contact_for_any_step_is_422(api: Api) -> None:
    event = delivery_event()
    event["recipient"].pop("phone")
    resp = api.post_event(event)
    assert resp.status_code == 422
    assert resp.json()["details"][0]["field"] == "recipient"


def test_a_body_over_256_kb_is_413(api: Api) -> None:
    event = delivery_event()
    event["data"]["blob"] = "x" * (257 * 1024)
    assert api.post_event(event).status_code == 413


def test_concurrent_duplicates_start_one_cascade_and_send_once(api: Api) -> None:
    event = delivery_event()
    event["idempotency_key"] = f"dup-{uuid.uuid4()}"
    answers = api.post_together(event)
    assert [a.status_code for a in answers] == [202] * 8
    ids = {a.json()["cascade_id"] for a in answers}
    assert len(ids) == 1
    cascade_id = ids.pop()
    wait_for("the first SMS", lambda: api.outbox(cascade_id))
    # A later duplicate answers the same, and still nothing is sent twice.
    assert api.post_event(event).json()["cascade_id"] == cascade_id
    first = [m for m in api.outbox(cascade_id) if m["step"] == 0]
    assert len(first) == 1
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_reusing_an_idempotency_key_for_another_event_is_409(api: Api) -> None:
    event = delivery_event()
    event["idempotency_key"] = f"k-{uuid.uuid4()}"
    cascade_id = api.start(event)
    event["data"]["order_id"] = "B-2"
    resp = api.post_event(event)
    assert resp.status_code == 409
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_unknown_cascade_is_404(api: Api) -> None:
    assert api.http.get("/v1/cascades/c_doesnotexist").status_code == 404
    assert api.http.post("/v1/cascades/c_doesnotexist/cancel").status_code == 404


def test_the_api_describes_itself(api: Api) -> None:
    doc = httpx.get(f"{api.base}/openapi.json").json()
    assert {"/v1/events", "/v1/cascades/{cascade_id}", "/v1/recipients/{recipient_id}/timeline"} <= set(doc["paths"])
    assert "recipient" in doc["components"]["schemas"]["EventIn"]["properties"]
    page = httpx.get(f"{api.base}/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
