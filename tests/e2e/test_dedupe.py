"""Duplicate triggers on the local stack: a shop's webhook that retries an event (no
idempotency_key) joins the running cascade of the same scenario, recipient and correlation value
instead of starting another; nothing is sent twice, also when the copies arrive together. A
scenario with ``dedupe: none`` starts a cascade per event, and once a cascade has ended the same
trigger starts a new one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack


def _delivery_failed() -> dict[str, Any]:
    return {"type": "delivery.failed",
            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+77011234567", "locale": "en"},
            "data": {"order_id": f"D-{uuid.uuid4().hex[:6]}", "reschedule_url": "https://shop.test/r/D"}}


def _first_sms(api: Api, cascade_id: str) -> list[dict[str, Any]]:
    wait_for("the first SMS", lambda: api.outbox(cascade_id))
    return [m for m in api.outbox(cascade_id) if m["step"] == 0]


def _sms_to(api: Api, recipient_id: str) -> list[dict[str, Any]]:
    """Every message the stack sent for this recipient's cascades (across cascades)."""
    touches = api.http.get(f"/v1/recipients/{recipient_id}/timeline").json()["touches"]
    return [t for t in touches if t["kind"] == "sent"]


def test_a_retried_trigger_joins_the_running_cascade_and_sends_nothing_twice(api: Api) -> None:
    event = _delivery_failed()
    first = api.post_event(event)
    assert first.status_code == 202, first.text
    cascade_id = first.json()["cascade_id"]
    assert "duplicate" not in first.json()
    _first_sms(api, cascade_id)
    again = api.post_event(event)  # the shop's webhook, retried
    assert again.status_code == 202, again.text
    assert again.json() == {"cascade_id": cascade_id, "scenario": "delivery-failed", "status": "running",
                            "duplicate": True}
    assert len(_first_sms(api, cascade_id)) == 1
    assert {t["cascade_id"] for t in _sms_to(api, event["recipient"]["id"])} == {cascade_id}
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_identical_triggers_posted_together_start_one_cascade(api: Api) -> None:
    event = _delivery_failed()
    answers = api.post_together(event)
    assert [a.status_code for a in answers] == [202] * 8, [a.text for a in answers]
    ids = {a.json()["cascade_id"] for a in answers}
    assert len(ids) == 1
    assert sorted(bool(a.json().get("duplicate")) for a in answers) == [False] + [True] * 7
    cascade_id = ids.pop()
    assert len(_first_sms(api, cascade_id)) == 1
    sent = wait_for("the touch of the SMS", lambda: _sms_to(api, event["recipient"]["id"]))
    assert [t["cascade_id"] for t in sent] == [cascade_id]
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_once_the_cascade_has_ended_the_same_trigger_starts_a_new_one(api: Api) -> None:
    event = _delivery_failed()
    first = api.start(event)
    _first_sms(api, first)
    assert api.http.post(f"/v1/cascades/{first}/cancel").status_code == 200
    again = api.post_event(event)
    assert again.status_code == 202, again.text
    assert again.json()["cascade_id"] != first and "duplicate" not in again.json()
    second = again.json()["cascade_id"]
    assert len(_first_sms(api, second)) == 1
    api.http.post(f"/v1/cascades/{second}/cancel")


def test_a_scenario_with_dedupe_none_starts_a_cascade_per_event(api: Api, saved: list[str]) -> None:
    tag = uuid.uuid4().hex[:8]
    scenario = {"name": "Every time", "trigger": f"ping_{tag}.sent", "correlation": "ping_id", "success": ["replied"],
                "dedupe": "none",
                "steps": [{"channel": "sms", "wait": "2h", "template": {"ru": "Пинг {{ data.ping_id }}",
                                                                        "en": "Ping {{ data.ping_id }}"}}]}
    resp = api.http.put(f"/v1/scenarios/every-{tag}", json=scenario)
    assert resp.status_code == 201, resp.text
    saved.append(f"every-{tag}")
    assert resp.json()["dedupe"] == "none"
    event = {"type": f"ping_{tag}.sent", "recipient": {"id": f"cust-{tag}", "phone": "+77011234567"},
             "data": {"ping_id": "p-1"}}
    one, two = api.start(event), api.start(event)
    assert one != two
    assert len(_first_sms(api, one)) == 1 and len(_first_sms(api, two)) == 1
    for cascade_id in (one, two):
        api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_an_unknown_dedupe_option_is_refused_naming_the_field(api: Api, saved: list[str]) -> None:
    body = api.http.get("/v1/scenarios/delivery-failed").json()
    scenario = {k: v for k, v in body.items() if k not in ("id", "version", "source")}
    resp = api.http.put(f"/v1/scenarios/dd-{uuid.uuid4().hex[:6]}", json={**scenario, "dedupe": "always"})
    if resp.status_code in (200, 201):
        saved.append(resp.json()["id"])
    assert resp.status_code == 422, resp.text
    assert [d["field"] for d in resp.json()["details"]] == ["dedupe"]
