"""The order-status, appointment and return presets end to end on the local stack.

Times in the events are on the cascade's clock: the test stack's clock starts the session at
10:00 UTC and runs 14400x (tests/conftest.py). Recipients have no time zone (UTC), so the
appointment reminders (SMS, which keep quiet hours) fall in the daytime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import CLOCK_SHIFT_S, TIME_SCALE, Api, wait_for

pytestmark = pytest.mark.stack


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def cascade_clock_now() -> datetime:
    """What a cascade started now reads on its clock."""
    return (datetime.now(UTC) + timedelta(seconds=CLOCK_SHIFT_S)).replace(microsecond=0)


def cascade_time(view: dict[str, Any], real: str) -> datetime:
    """A real timestamp of this cascade as its own (accelerated, shifted) clock read it."""
    start = _t(view["created_at"])
    return start + timedelta(seconds=CLOCK_SHIFT_S) + (_t(real) - start) * TIME_SCALE


def person(**contacts: Any) -> dict[str, Any]:
    return {"id": f"cust-{uuid.uuid4().hex[:8]}", **contacts}


def finished(api: Api, cascade_id: str) -> dict[str, Any] | None:
    view = api.cascade(cascade_id)
    return view if view["status"] != "running" else None


def step_is(api: Api, cascade_id: str, index: int, *statuses: str) -> dict[str, Any] | None:
    view = api.cascade(cascade_id)
    return view if view["steps"][index]["status"] in statuses else None


# -- order-status ---------------------------------------------------------------------------------


def test_order_shipped_sends_one_sms_with_the_track_number_and_nothing_else(api: Api) -> None:
    cascade_id = api.start({"type": "order.shipped", "recipient": person(email="o@example.com", phone="+77015550111"),
                            "data": {"order_id": "5001", "track_number": "RA123456789KZ"}})
    view = wait_for("the cascade to end", lambda: finished(api, cascade_id), timeout=30)
    assert view["status"] == "exhausted"
    messages = api.outbox(cascade_id)
    assert [(m["channel"], m["to"]) for m in messages] == [("sms", "+77015550111")]
    assert "RA123456789KZ" in messages[0]["text"] and "5001" in messages[0]["text"]
    # The other statuses' messages are skipped at once by their condition (no email for this event).
    assert [(s["channel"], s["status"], s["reason"]) for s in view["steps"]] == [
        ("email", "skipped", "condition"), ("email", "skipped", "condition"), ("sms", "sent", None),
        ("sms", "skipped", "condition")]


def test_order_confirmed_is_an_email_with_the_details(api: Api) -> None:
    cascade_id = api.start({"type": "order.confirmed", "recipient": person(email="o@example.com", locale="en"),
                            "data": {"order_id": "5002", "total": "$42.00"}})
    email = wait_for("the email", lambda: api.outbox(cascade_id))[0]
    assert email["channel"] == "email" and email["subject"] == "Order 5002 is confirmed"
    assert "$42.00" in email["text"]
    api.simulate(email["provider_message_id"], "read")
    view = wait_for("the stop", lambda: finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "read")
    assert len(api.outbox(cascade_id)) == 1


# -- appointment ----------------------------------------------------------------------------------


def book(api: Api, hours_ahead: float) -> tuple[str, datetime, dict[str, Any]]:
    at = cascade_clock_now() + timedelta(hours=hours_ahead)
    event = {"type": "appointment.booked", "recipient": person(phone="+77015550122", locale="en"),
             "data": {"appointment_id": f"ap-{uuid.uuid4().hex[:6]}", "appointment_at": _iso(at),
                      "place": "City Clinic"}}
    return api.start(event), at, event


def cancel_appointment(api: Api, event: dict[str, Any], cascade_id: str) -> None:
    resp = api.post_event({"type": "appointment.cancelled", "recipient": {"id": event["recipient"]["id"]},
                           "data": {"appointment_id": event["data"]["appointment_id"]}})
    assert resp.status_code == 202 and resp.json()["stopped"] == [cascade_id]
    view = api.cascade(cascade_id)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "event:appointment.cancelled")


def test_appointment_booked_30_h_ahead_confirms_now_and_reminds_24_h_before(api: Api) -> None:
    cascade_id, at, event = book(api, 30)
    confirmation = wait_for("the confirmation", lambda: api.outbox(cascade_id))[0]
    assert confirmation["channel"] == "sms" and "Reply RESCHEDULE" in confirmation["text"]
    # The time as a person reads it (the recipient has no time zone: the scenario's, UTC).
    human = f"{at:%B} {at.day}, {at.hour % 12 or 12}:{at:%M} {'AM' if at.hour < 12 else 'PM'}"
    assert "City Clinic" in confirmation["text"] and human in confirmation["text"], confirmation["text"]
    # The 24 h reminder waits for its time, scheduled from the appointment's own time.
    held = wait_for("the 24 h reminder to be scheduled", lambda: step_is(api, cascade_id, 1, "deferred", "sent"))
    step = held["steps"][1]
    if step["status"] == "deferred":
        assert step["reason"] == "scheduled" and _t(step["not_before"]) == at - timedelta(hours=24)
    view = wait_for("the 24 h reminder", lambda: step_is(api, cascade_id, 1, "sent"), timeout=30)
    reminder = wait_for("its message", lambda: [m for m in api.outbox(cascade_id) if m["step"] == 1])[0]
    assert reminder["text"].startswith("Reminder: your appointment is on")
    assert cascade_time(view, reminder["sent_at"]) >= at - timedelta(hours=24)  # not a minute early
    assert view["steps"][2]["status"] in ("pending", "deferred")  # the 2 h one is still to come
    cancel_appointment(api, event, cascade_id)


def test_appointment_booked_10_h_ahead_skips_the_24_h_reminder_and_sends_the_2_h_one(api: Api) -> None:
    cascade_id, at, event = book(api, 10)
    wait_for("the confirmation", lambda: api.outbox(cascade_id))
    view = wait_for("the 2 h reminder", lambda: step_is(api, cascade_id, 2, "sent"), timeout=30)
    assert (view["steps"][1]["status"], view["steps"][1]["reason"]) == ("skipped", "past")
    messages = wait_for("its message", lambda: (m := api.outbox(cascade_id)) and m[-1]["step"] == 2 and m)
    assert [m["step"] for m in messages] == [0, 2]
    assert messages[1]["text"].startswith("See you soon")
    assert cascade_time(view, messages[1]["sent_at"]) >= at - timedelta(hours=2)
    cancel_appointment(api, event, cascade_id)


def test_a_reply_to_the_confirmation_ends_the_appointment_cascade(api: Api) -> None:
    cascade_id, _, _ = book(api, 30)
    confirmation = wait_for("the confirmation", lambda: api.outbox(cascade_id))[0]
    api.simulate(confirmation["provider_message_id"], "replied", text="RESCHEDULE")
    view = wait_for("the stop", lambda: finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied:reschedule")
    assert (view["steps"][0]["reply"], view["steps"][0]["intent"]) == ("RESCHEDULE", "reschedule")


# -- return ---------------------------------------------------------------------------------------


def test_a_return_is_confirmed_and_a_refund_stops_it_with_its_own_message(api: Api) -> None:
    who = person(email="r@example.com", locale="ru")
    return_id = f"ret-{uuid.uuid4().hex[:6]}"
    deadline = cascade_clock_now() + timedelta(days=5)
    requested = api.start({"type": "return.requested", "recipient": who,
                           "data": {"return_id": return_id, "return_deadline": _iso(deadline)}})
    confirmation = wait_for("the confirmation", lambda: api.outbox(requested))[0]
    assert confirmation["channel"] == "email" and confirmation["subject"] == f"Заявка на возврат {return_id} принята"
    held = wait_for("the deadline reminder to be scheduled", lambda: step_is(api, requested, 1, "deferred"))
    assert _t(held["steps"][1]["not_before"]) == deadline - timedelta(days=2)

    resp = api.post_event({"type": "refund.issued", "recipient": who,
                           "data": {"return_id": return_id, "amount": "12 990 ₸"}})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["stopped"] == [requested] and body["scenario"] == "return"
    view = api.cascade(requested)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "event:refund.issued")
    refund = wait_for("the refund message", lambda: api.outbox(body["cascade_id"]))[0]
    assert refund["channel"] == "email" and "12 990 ₸" in refund["text"] and return_id in refund["text"]
    steps = api.cascade(body["cascade_id"])["steps"]
    assert [(s["status"], s["reason"]) for s in steps[:2]] == [("skipped", "condition"), ("skipped", "condition")]
    assert [m["step"] for m in api.outbox(requested)] == [0]  # the reminder never went out
    api.http.post(f"/v1/cascades/{body['cascade_id']}/cancel")
