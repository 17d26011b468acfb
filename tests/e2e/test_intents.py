"""Reply intents on the local stack: a reply ends a cascade only when it means what the scenario
waits for. The appointment preset waits for a reschedule (ПЕРЕНОС in every Cyrillic locale,
RESCHEDULE in English): "Спасибо!" is kept on the timeline and sent to the CRM, and the
reminders still go out. A call's key press is an intent too (the clinic: 1 confirms, 2 moves the
visit), and a pressed 1 is ``confirmed``, not a reply."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import CLOCK_SHIFT_S, Api, wait_for

pytestmark = pytest.mark.stack


def _book(api: Api, locale: str, hours_ahead: float = 30) -> tuple[str, dict[str, Any]]:
    at = datetime.now(UTC) + timedelta(seconds=CLOCK_SHIFT_S, hours=hours_ahead)
    event = {"type": "appointment.booked",
             "recipient": {"id": f"pat-{uuid.uuid4().hex[:8]}", "phone": "+77015550123", "locale": locale},
             "data": {"appointment_id": f"ap-{uuid.uuid4().hex[:6]}",
                      "appointment_at": at.isoformat(timespec="seconds").replace("+00:00", "Z")}}
    return api.start(event), event


def _message(api: Api, cascade_id: str, step: int) -> dict[str, Any]:
    return dict(wait_for(f"step {step}'s message",
                         lambda: [m for m in api.outbox(cascade_id) if m["step"] == step], timeout=30)[0])


def _finished(api: Api, cascade_id: str) -> dict[str, Any] | None:
    view = api.cascade(cascade_id)
    return view if view["status"] != "running" else None


@pytest.fixture
def crm(api: Api, stack: Any) -> Iterator[Any]:
    crm = stack.standin("crm")
    assert api.http.put("/v1/webhooks", json={"url": crm.endpoint, "secret": crm.secret}).status_code == 200
    yield crm
    assert api.http.delete("/v1/webhooks").status_code == 204


def test_thanks_keeps_the_reminders_going_and_reschedule_ends_the_cascade(api: Api, crm: Any) -> None:
    cascade_id, event = _book(api, "ru")
    confirmation = _message(api, cascade_id, 0)
    assert "ПЕРЕНОС" in confirmation["text"]
    assert api.simulate(confirmation["provider_message_id"], "replied", text="Спасибо!").status_code == 200
    view = wait_for("the reply on the step", lambda: (v := api.cascade(cascade_id))["steps"][0].get("reply") and v)
    assert view["status"] == "running"
    assert (view["steps"][0]["status"], view["steps"][0]["reply"], view["steps"][0]["intent"]) == (
        "replied", "Спасибо!", None)
    # The 24 h reminder still goes out.
    reminder = _message(api, cascade_id, 1)
    assert api.cascade(cascade_id)["status"] == "running"
    # A reschedule, in any case and with words around it, ends the cascade.
    assert api.simulate(reminder["provider_message_id"], "replied", text="перенос, пожалуйста").status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied:reschedule")
    assert (view["steps"][1]["reply"], view["steps"][1]["intent"]) == ("перенос, пожалуйста", "reschedule")
    # The customer card keeps both replies, each with its intent (or none).
    touches = api.http.get(f"/v1/recipients/{event['recipient']['id']}/timeline").json()["touches"]
    replies = [(t["text"], t.get("intent")) for t in touches if t["kind"] == "signal"]
    assert replies == [("Спасибо!", None), ("перенос, пожалуйста", "reschedule")]
    # The CRM got the reply that meant nothing to the scenario too: the clinic reads it.
    signals = wait_for("both replies at the CRM", lambda: (s := [
        e for e in api.http.get("/local/crm", params={"cascade_id": cascade_id}).json()["events"]
        if e["type"] == "signal"]) and len(s) == 2 and s)
    assert [(s["step"], s["reply"], s.get("intent")) for s in signals] == [
        (0, "Спасибо!", None), (1, "перенос, пожалуйста", "reschedule")]


@pytest.mark.parametrize("locale", ["uk", "kk"])
def test_the_seeds_perenos_reschedules_in_every_cyrillic_locale(api: Api, locale: str) -> None:
    cascade_id, _ = _book(api, locale)
    confirmation = _message(api, cascade_id, 0)
    assert api.simulate(confirmation["provider_message_id"], "replied", text="ПЕРЕНОС").status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied:reschedule")
    assert (view["steps"][0]["status"], view["steps"][0]["reply"], view["steps"][0]["intent"]) == (
        "replied", "ПЕРЕНОС", "reschedule")
    assert [m["step"] for m in api.outbox(cascade_id)] == [0]  # no reminder about a visit being moved


def _visit(api: Api) -> str:
    """The clinic preset for a patient reachable by phone only: Viber and email are skipped, the
    robot call goes out at once."""
    return api.start({"type": "visit.reminder",
                      "recipient": {"id": f"pat-{uuid.uuid4().hex[:8]}", "phone": "+77015550124", "locale": "en"},
                      "data": {"visit_id": f"v-{uuid.uuid4().hex[:6]}", "visit_at": "tomorrow 10:30",
                               "clinic_name": "City Clinic", "address": "1 Main St"}})


def test_pressing_1_on_the_call_is_confirmed_with_the_intent_confirm(api: Api) -> None:
    cascade_id = _visit(api)
    call = _message(api, cascade_id, 2)
    assert call["channel"] == "voice"
    assert api.simulate(call["provider_message_id"], "confirmed").status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "confirmed")
    assert (view["steps"][2]["status"], view["steps"][2]["reply"], view["steps"][2]["intent"]) == (
        "confirmed", "1", "confirm")


def test_pressing_2_on_the_call_is_the_intent_reschedule(api: Api) -> None:
    cascade_id = _visit(api)
    call = _message(api, cascade_id, 2)
    assert api.simulate(call["provider_message_id"], "replied", text="2").status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied:reschedule")
    assert (view["steps"][2]["status"], view["steps"][2]["intent"]) == ("replied", "reschedule")


def test_a_success_signal_naming_an_undefined_intent_is_refused_at_save(api: Api, saved: list[str]) -> None:
    body = api.http.get("/v1/scenarios/appointment").json()
    scenario = {k: v for k, v in body.items() if k not in ("id", "version", "source")}
    scenario["success"] = ["replied:reschedule", "replied:cancel"]
    resp = api.http.put(f"/v1/scenarios/intents-{uuid.uuid4().hex[:6]}", json=scenario)
    if resp.status_code in (200, 201):
        saved.append(resp.json()["id"])
    assert resp.status_code == 422, resp.text
    details = resp.json()["details"]
    assert [d["field"] for d in details] == ["success"]
    assert "replied:cancel" in details[0]["message"]
