"""The scenario API on the local stack: presets are the defaults, a saved scenario routes the next
event, an override changes new cascades while running ones finish on their version, and bad
scenarios are refused naming the step and field. Every saved scenario is deleted again."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack


def _custom(**changes: Any) -> dict[str, Any]:
    """A one-step SMS scenario with a trigger no other test uses."""
    tag = uuid.uuid4().hex[:8]
    body: dict[str, Any] = {
        "name": "Parcel lost", "trigger": f"parcel_{tag}.lost", "correlation": "parcel_id",
        "success": ["replied"],
        "steps": [{"channel": "sms", "wait": "2h",
                   "template": {"ru": "Посылка {{ data.parcel_id }} потерялась.",
                                "en": "Parcel {{ data.parcel_id }} is lost, we are on it."}}],
    }
    body.update(changes)
    return body


def _event(trigger: str, phone: str = "+14155550199", rid: str | None = None) -> dict[str, Any]:
    return {"type": trigger,
            "recipient": {"id": rid or f"cust-{uuid.uuid4().hex[:8]}", "phone": phone, "locale": "en"},
            "data": {"parcel_id": f"p-{uuid.uuid4().hex[:6]}"}}


def _put(api: Api, saved: list[str], scenario_id: str, body: dict[str, Any]) -> httpx.Response:
    resp = api.http.put(f"/v1/scenarios/{scenario_id}", json=body)
    if resp.status_code in (200, 201):
        saved.append(scenario_id)
    return resp


def _delivery_failed(order_id: str) -> dict[str, Any]:
    return {"type": "delivery.failed",
            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+14155550142", "locale": "en"},
            "data": {"order_id": order_id, "reschedule_url": "https://shop.test/r"}}


def test_the_list_shows_the_presets_and_each_reads_back(api: Api) -> None:
    resp = api.http.get("/v1/scenarios")
    assert resp.status_code == 200
    listed = {s["id"]: s for s in resp.json()["scenarios"]}
    assert {"delivery-failed", "abandoned-cart", "courier", "clinic"} <= set(listed)
    assert listed["delivery-failed"] == {"id": "delivery-failed", "name": "Delivery failed",
                                         "trigger": "delivery.failed", "purpose": "transactional",
                                         "version": 0, "source": "preset", "steps": 4}
    assert listed["abandoned-cart"]["purpose"] == "marketing"
    one = api.http.get("/v1/scenarios/delivery-failed").json()
    assert (one["id"], one["version"], one["source"]) == ("delivery-failed", 0, "preset")
    assert one["steps"][0]["channel"] == "sms" and one["steps"][0]["wait"] == 7200
    assert api.http.get("/v1/scenarios/no-such-scenario").status_code == 404
    assert httpx.get(f"{api.base}/v1/scenarios").status_code == 401  # the API key is required


def test_a_custom_scenario_starts_cascades_until_it_is_deleted(api: Api, saved: list[str]) -> None:
    scenario_id = f"lost-{uuid.uuid4().hex[:8]}"
    body = _custom()
    created = _put(api, saved, scenario_id, body)
    assert created.status_code == 201, created.text
    assert (created.json()["version"], created.json()["source"]) == (1, "custom")
    assert any(s["id"] == scenario_id for s in api.http.get("/v1/scenarios").json()["scenarios"])

    started = api.post_event(_event(body["trigger"]))
    assert started.status_code == 202, started.text
    assert started.json()["scenario"] == scenario_id
    cascade_id = started.json()["cascade_id"]
    sms = wait_for("the custom scenario's SMS", lambda: api.outbox(cascade_id))
    assert "is lost, we are on it" in sms[0]["text"]
    assert api.cascade(cascade_id)["scenario_version"] == 1

    updated = _put(api, saved, scenario_id, {**body, "id": scenario_id, "name": "Parcel lost (v2)"})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")

    assert api.http.delete(f"/v1/scenarios/{scenario_id}").status_code == 204
    gone = api.post_event(_event(body["trigger"]))
    assert gone.status_code == 422 and gone.json()["details"][0]["field"] == "type"
    assert api.http.get(f"/v1/scenarios/{scenario_id}").status_code == 404
    assert api.http.delete(f"/v1/scenarios/{scenario_id}").status_code == 404


def test_an_override_changes_new_cascades_while_a_running_one_keeps_its_version(api: Api, saved: list[str]) -> None:
    preset = api.http.get("/v1/scenarios/delivery-failed").json()
    first = _delivery_failed("1201")
    before = api.start(first)  # started on the preset

    # New words for the first two steps, and delivery.rescheduled no longer ends the cascade.
    changed = {**preset, "success": ["replied", "clicked", "confirmed"]}
    changed["steps"] = [dict(s) for s in preset["steps"]]
    for index, words in ((0, "New words: order {{ data.order_id }} missed you."),
                         (1, "New words again for {{ data.order_id }}.")):
        changed["steps"][index]["template"] = {**preset["steps"][index]["template"], "en": {"text": words}}
    resp = _put(api, saved, "delivery-failed", changed)  # carries version 0: the preset it was read from
    assert resp.status_code == 200, resp.text
    version = resp.json()["version"]
    assert resp.json()["source"] == "override" and version >= 1
    assert api.http.get("/v1/scenarios/delivery-failed").json()["version"] == version

    after = api.start(_delivery_failed("1202"))
    assert wait_for("the override's first SMS", lambda: api.outbox(after))[0]["text"] == \
        "New words: order 1202 missed you."
    assert api.cascade(after)["scenario_version"] == version
    # The cascade started before the save sends its next step in the words it started with.
    old = wait_for("the running cascade's second SMS", lambda: (m := api.outbox(before)) and len(m) >= 2 and m)
    assert old[0]["text"].startswith("We could not deliver your order 1201")
    assert old[1]["text"].startswith("Order 1201 is waiting for you")
    assert api.cascade(before)["scenario_version"] == 0
    # ... and still stops on its version's success event, which the override dropped.
    done = api.post_event({"type": "delivery.rescheduled", "recipient": first["recipient"],
                           "data": {"order_id": "1201"}})
    assert done.status_code == 202 and done.json()["stopped"] == [before], done.text
    api.http.post(f"/v1/cascades/{after}/cancel")

    assert api.http.delete("/v1/scenarios/delivery-failed").status_code == 204
    back = api.http.get("/v1/scenarios/delivery-failed").json()
    assert (back["version"], back["source"]) == (0, "preset")
    again = api.start(_delivery_failed("1203"))
    assert wait_for("the preset's SMS", lambda: api.outbox(again))[0]["text"].startswith("We could not deliver")
    api.http.post(f"/v1/cascades/{again}/cancel")


def test_a_stale_version_is_refused(api: Api, saved: list[str]) -> None:
    scenario_id = f"stale-{uuid.uuid4().hex[:8]}"
    body = _custom()
    assert _put(api, saved, scenario_id, body).status_code == 201
    assert _put(api, saved, scenario_id, {**body, "version": 1}).status_code == 200
    stale = _put(api, saved, scenario_id, {**body, "version": 1})
    assert stale.status_code == 409 and "version 2" in stale.json()["error"]


@pytest.mark.parametrize(("steps", "field"), [
    ([{"channel": "sms", "wait": "soon", "template": {"ru": "а", "en": "a"}}], "steps.0.wait"),
    ([{"channel": "sms", "wait": "1h", "template": {"ru": "а", "en": "a"}},
      {"channel": "sms", "wait": "1h", "template": {"en": "only English"}}], "steps.1.template"),
    ([{"channel": "sms", "wait": "1h", "template": {"ru": "а", "en": "a"}},
      {"channel": "sms", "wait": "1h", "template": {"ru": "а", "en": "a"}},
      {"channel": "sms", "wait": "1h", "template": {"ru": "Hello {{ data.parcel_id }", "en": "a"}}],
     "steps.2.template.ru"),
    ([{"channel": "sms", "wait": "1h", "template": {"ru": "Длинный текст SMS. " * 40, "en": "a"}}],
     "steps.0.template.ru"),
])
def test_an_invalid_scenario_is_refused_naming_the_step_and_field(api: Api, saved: list[str],
                                                                  steps: list[dict[str, Any]], field: str) -> None:
    scenario_id = f"bad-{uuid.uuid4().hex[:8]}"
    resp = _put(api, saved, scenario_id, _custom(steps=steps))
    assert resp.status_code == 422, resp.text
    assert field in [d["field"] for d in resp.json()["details"]]
    assert api.http.get(f"/v1/scenarios/{scenario_id}").status_code == 404  # nothing saved


def test_bad_requests_are_4xx(api: Api, saved: list[str]) -> None:
    mismatch = _put(api, saved, "lost-one", {**_custom(), "id": "lost-two"})
    assert mismatch.status_code == 422 and mismatch.json()["details"][0]["field"] == "id"
    not_json = api.http.put("/v1/scenarios/lost-one", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    huge = api.http.put("/v1/scenarios/lost-one", json={**_custom(), "description": "x" * 300_000})
    assert huge.status_code == 413
    assert httpx.put(f"{api.base}/v1/scenarios/lost-one", json=_custom()).status_code == 401
    assert httpx.delete(f"{api.base}/v1/scenarios/delivery-failed").status_code == 401
    assert api.http.delete("/v1/scenarios/delivery-failed").status_code == 404  # a preset with no override


def test_a_trigger_another_scenario_uses_is_refused(api: Api, saved: list[str]) -> None:
    clash = _put(api, saved, f"clash-{uuid.uuid4().hex[:8]}", _custom(trigger="delivery.failed"))
    assert clash.status_code == 409
    assert "delivery-failed" in clash.json()["error"]


def test_test_mode_messages_only_the_allow_listed_recipient(api: Api, saved: list[str]) -> None:
    scenario_id = f"trial-{uuid.uuid4().hex[:8]}"
    tester = f"tester-{uuid.uuid4().hex[:6]}"
    body = _custom(test_mode={"allow": [tester]})
    assert _put(api, saved, scenario_id, body).status_code == 201
    allowed = api.start(_event(body["trigger"], phone="+14155550111", rid=tester))
    other = api.start(_event(body["trigger"], phone="+14155550122"))
    assert wait_for("the tester's SMS", lambda: api.outbox(allowed))[0]["to"] == "+14155550111"
    skipped = wait_for("the other recipient's step to be skipped",
                       lambda: (s := api.cascade(other)["steps"][0])["status"] == "skipped" and s)
    assert skipped["reason"] == "test_mode"
    assert api.outbox(other) == []
    api.http.post(f"/v1/cascades/{allowed}/cancel")
