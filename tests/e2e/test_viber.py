"""Viber end to end on the local stack: the clinic reminder goes to a bot subscriber through the
REST bot API stand-in, and Viber's signed callbacks (seen, keyboard presses, replies, failures,
unsubscribes, binding links) steer the cascade."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import LONG_WAIT_HOURS, TIME_SCALE, Api, long_waits, wait_for

pytestmark = pytest.mark.stack

VIBER_WAIT_HOURS = 6  # the clinic preset's first step


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


def _visit(viber_id: str | None = None, **recipient: Any) -> dict[str, Any]:
    who: dict[str, Any] = {"id": f"pat-{uuid.uuid4().hex[:8]}", "name": "Анна", "locale": "ru",
                           "email": "anna@example.com", **recipient}
    if viber_id:
        who["viber_id"] = viber_id
    return {"type": "visit.reminder", "recipient": {k: v for k, v in who.items() if v is not None},
            "data": {"visit_id": f"v-{uuid.uuid4().hex[:6]}", "visit_at": "12 марта, 10:30",
                     "clinic_name": "Архимед", "address": "ул. Ленина, 5", "doctor": "Иванова А. П."}}


def _viber_user() -> str:
    """A Viber user id as Viber makes them (base64)."""
    return base64.b64encode(os.urandom(16)).decode()


def _subscriber(stack: Any) -> str:
    uid = _viber_user()
    assert stack.standin("viber").subscribe(uid).status_code == 200
    return uid


def _sent(api: Api, cascade_id: str, channel: str) -> dict[str, Any]:
    return wait_for(f"the {channel} step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == channel],
                    timeout=30)[0]


def _hours_between(a: str, b: str) -> float:
    t = [datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in (a, b)]
    return (t[1] - t[0]) * TIME_SCALE / 3600


def _cancel(api: Api, cascade_id: str) -> None:
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def _signed_post(api: Api, stack: Any, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Viber-Content-Signature"] = signature
    return httpx.post(f"{stack.url}/webhooks/viber", content=body, headers=headers, timeout=30)


def _sign(stack: Any, body: bytes) -> str:
    return hmac.new(stack.standin("viber").auth_token.encode(), body, hashlib.sha256).hexdigest()


def test_the_reminder_reaches_the_subscriber_with_a_confirm_button(api: Api, stack: Any) -> None:
    uid = _subscriber(stack)
    cascade_id = api.start(_visit(uid))
    msg = _sent(api, cascade_id, "viber")
    assert msg["to"] == uid
    for detail in ("12 марта, 10:30", "Архимед", "ул. Ленина, 5", "Иванова А. П.", "Анна"):
        assert detail in msg["text"]
    on_phone = stack.standin("viber").find(msg["provider_message_id"])
    assert on_phone["tracking_data"] == f"{cascade_id}:0"
    assert [(b["Text"], b["ActionType"], b["ActionBody"]) for b in on_phone["keyboard"]["Buttons"]] == [
        ("Подтверждаю", "reply", "sig:confirmed")]
    # A delivery receipt moves the step on but is no reason to stop.
    assert api.simulate(msg["provider_message_id"], "delivered").status_code == 200
    view = wait_for("the step to be delivered", lambda: (v := api.cascade(cascade_id))["steps"][0]["status"]
                    == "delivered" and v)
    assert view["status"] == "running" and view["steps"][0]["provider_message_id"] == msg["provider_message_id"]
    _cancel(api, cascade_id)


@pytest.mark.parametrize(("signal", "extra", "step_status", "reason"), [
    ("read", {}, "read", "read"), ("confirmed", {}, "confirmed", "confirmed"),
    ("replied", {"text": "ПЕРЕНОС"}, "replied", "replied:reschedule")])
def test_seen_a_confirm_press_or_a_reply_stops_the_reminder_and_nothing_goes_out_after(
        api: Api, stack: Any, signal: str, extra: dict[str, Any], step_status: str, reason: str) -> None:
    cascade_id = api.start(_visit(_subscriber(stack)))
    msg = _sent(api, cascade_id, "viber")
    resp = api.simulate(msg["provider_message_id"], signal, **extra)
    assert resp.status_code == 200, resp.text
    view = wait_for("the cascade to stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", reason)
    assert view["steps"][0]["status"] == step_status
    time.sleep(VIBER_WAIT_HOURS * 3600 / TIME_SCALE + 1.5)  # past Viber's timer: the email would be due by now
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["viber"]


def test_a_failed_receipt_escalates_to_email_at_once(api: Api, stack: Any, saved: list[str]) -> None:
    # The Viber step waits 400 h (100 s here): "at once" is told from its timer on a busy machine.
    cascade_id = api.start({**_visit(_subscriber(stack)), "type": long_waits(api, saved, "clinic", 0)})
    msg = _sent(api, cascade_id, "viber")
    assert api.simulate(msg["provider_message_id"], "failed").status_code == 200
    email = _sent(api, cascade_id, "email")
    view = api.cascade(cascade_id)
    assert view["steps"][0]["status"] == "failed" and view["status"] == "running"
    assert email["to"] == "anna@example.com" and email["subject"] == "Напоминание о приёме: 12 марта, 10:30"
    assert _hours_between(msg["sent_at"], email["sent_at"]) < LONG_WAIT_HOURS / 2  # not after Viber's timer
    _cancel(api, cascade_id)


@pytest.mark.parametrize("how", ["never subscribed", "provider refuses"])
def test_a_user_who_is_not_subscribed_gets_email_at_once(api: Api, stack: Any, how: str, saved: list[str]) -> None:
    trigger = long_waits(api, saved, "clinic", 0)  # Viber waits 100 s here: "at once" is well before it
    if how == "never subscribed":
        uid = _viber_user()  # the bot may not write to them
    else:
        uid = _subscriber(stack)
        assert api.http.post("/local/faults", json={"channel": "viber", "mode": "reject"}).status_code == 200
    cascade_id = api.start({**_visit(uid), "type": trigger})
    email = _sent(api, cascade_id, "email")
    view = api.cascade(cascade_id)
    assert view["steps"][0]["status"] == "failed"
    assert "receiverNotSubscribed" in view["steps"][0]["reason"]
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["email"]
    assert _hours_between(view["created_at"], email["sent_at"]) < LONG_WAIT_HOURS / 2
    _cancel(api, cascade_id)


@pytest.mark.parametrize("mode", ["500", "429"])
def test_a_passing_viber_error_is_retried_and_the_reminder_goes_out_once(api: Api, stack: Any, mode: str,
                                                                         saved: list[str]) -> None:
    uid = _subscriber(stack)
    trigger = long_waits(api, saved, "clinic", 0)  # retries stay within the step's timer: a long one
    assert api.http.post("/local/faults", json={"channel": "viber", "mode": mode, "count": 1}).status_code == 200
    cascade_id = api.start({**_visit(uid), "type": trigger})
    view = wait_for("the Viber step to be sent",
                    lambda: (v := api.cascade(cascade_id))["steps"][0]["status"] == "sent" and v)
    # The outbox names a message's cascade once its record is written, a moment after the step says sent.
    assert [m["channel"] for m in wait_for("the message", lambda: api.outbox(cascade_id))] == ["viber"]
    assert view["status"] == "running"
    _cancel(api, cascade_id)


def test_forged_or_unsigned_callbacks_are_refused_and_change_nothing(api: Api, stack: Any) -> None:
    cascade_id = api.start(_visit(_subscriber(stack)))
    msg = _sent(api, cascade_id, "viber")
    seen = json.dumps({"event": "seen", "timestamp": int(time.time() * 1000), "chat_hostname": "SN-CHAT-01_",
                       "message_token": int(msg["provider_message_id"]), "user_id": msg["to"]}).encode()
    forged = hmac.new(b"not-the-auth-token", seen, hashlib.sha256).hexdigest()
    for signature in (None, "", forged, _sign(stack, seen + b" ")):
        resp = _signed_post(api, stack, seen, signature)
        assert resp.status_code in (401, 403), resp.text
        assert "Traceback" not in resp.text
    view = api.cascade(cascade_id)
    assert view["status"] == "running" and view["steps"][0]["status"] == "sent"
    # Signed but malformed: the field at fault is named; nothing changes either.
    assert _signed_post(api, stack, b"{not json", _sign(stack, b"{not json")).status_code == 400
    bad = json.dumps({"event": "seen", "user_id": msg["to"]}).encode()
    resp = _signed_post(api, stack, bad, _sign(stack, bad))
    assert resp.status_code == 422 and resp.json()["details"][0]["field"] == "message_token"
    # An event we have no use for is acknowledged and ignored.
    other = json.dumps({"event": "client_status", "timestamp": 1}).encode()
    assert _signed_post(api, stack, other, _sign(stack, other)).status_code == 200
    assert api.cascade(cascade_id)["status"] == "running"
    # The genuine callback, signed by Viber, does count.
    assert _signed_post(api, stack, seen, _sign(stack, seen)).status_code == 200
    assert wait_for("the cascade to stop", lambda: api.cascade(cascade_id)["stop_reason"] == "read")


def test_a_user_who_unsubscribes_is_opted_out_of_viber_and_later_reminders_skip_it(api: Api, stack: Any) -> None:
    uid = _subscriber(stack)
    rid = f"patient-{uuid.uuid4().hex[:8]}"
    cascade_id = api.start(_visit(uid, id=rid))
    _sent(api, cascade_id, "viber")
    assert stack.standin("viber").unsubscribe(uid).status_code == 200
    _sent(api, cascade_id, "email")  # the cascade moved on at once
    step = api.cascade(cascade_id)["steps"][0]
    assert step["status"] == "sent" and step["reason"] == "opted_out"
    viber = api.http.get(f"/v1/recipients/{rid}/consent").json()["channels"]["viber"]
    assert viber["opted_out"] is True and viber["opted_out_via"] == "unsubscribed"
    _cancel(api, cascade_id)
    # A later reminder to the same patient does not try Viber at all: email goes out at once.
    later = api.start(_visit(uid, id=rid))
    _sent(api, later, "email")
    assert api.cascade(later)["steps"][0]["status"] == "skipped"
    assert api.cascade(later)["steps"][0]["reason"] == "opted_out"
    assert [m["channel"] for m in api.outbox(later)] == ["email"]
    _cancel(api, later)


def test_a_stop_reply_is_confirmed_in_the_patients_language(api: Api, stack: Any) -> None:
    # Given a Russian-speaking patient reminded on Viber
    uid = _subscriber(stack)
    cascade_id = api.start(_visit(uid))
    message = _sent(api, cascade_id, "viber")
    # When they answer СТОП
    assert api.simulate(message["provider_message_id"], "replied", text="СТОП").status_code == 200
    # Then the bot confirms the opt-out in Russian, outside the cascade
    said = wait_for("the bot's answer", lambda: [m["text"] for m in api.outbox() if m["channel"] == "viber"
                                                 and m["to"] == uid and not m["cascade_id"]])
    assert said == ["Вы отписались: сообщений от нас здесь больше не будет. Чтобы вернуться, отправьте СТАРТ."]
    _cancel(api, cascade_id)


def test_a_silent_patient_is_reminded_on_viber_then_email_a_call_and_sms_and_a_reply_ends_it(
        api: Api, stack: Any) -> None:
    cascade_id = api.start(_visit(_subscriber(stack), phone="+77011234567"))
    sms = _sent(api, cascade_id, "sms")
    sent = api.outbox(cascade_id)
    assert [m["channel"] for m in sent] == ["viber", "email", "voice", "sms"]
    # Each step waited out the one before: Viber 6 h, email 3 h, the unanswered call 1 h.
    for (a, b), hours in zip(itertools.pairwise(sent), (6, 3, 1), strict=True):
        assert _hours_between(a["sent_at"], b["sent_at"]) >= hours * 0.9, (a["channel"], b["channel"])
    assert "нажмите 1" in sent[2]["text"] and "ПЕРЕНОС" in sms["text"]
    assert api.simulate(sms["provider_message_id"], "replied", text="ПЕРЕНОС").status_code == 200
    view = wait_for("the cascade to stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied:reschedule")


def _viber_user_reached(api: Api, rid: str) -> str:
    """Start a clinic reminder for ``rid`` carrying no Viber id; return whom its Viber step reached."""
    cascade_id = api.start(_visit(id=rid))
    msg = _sent(api, cascade_id, "viber")
    _cancel(api, cascade_id)
    return str(msg["to"])


def test_an_opened_binding_link_binds_the_viber_user_for_later_reminders(api: Api, stack: Any) -> None:
    rid, uid = f"pat-{uuid.uuid4().hex[:8]}", _viber_user()
    resp = api.http.post(f"/v1/recipients/{rid}/bind/viber")
    assert resp.status_code == 200, resp.text
    link = resp.json()["link"]
    assert link.startswith("viber://pa?chatURI=cascadelocal&context=") and resp.json()["expires_at"]
    assert api.http.post("/local/simulate", json={"open_link": link, "as": uid}).status_code == 200
    # The customer sees the bot's welcome in the chat (in English: nothing says otherwise).
    assert any(m["to"] == uid and m["channel"] == "viber" and m["text"].startswith("Thank you!")
               for m in api.outbox())
    assert _viber_user_reached(api, rid) == uid  # the event carried no viber_id


def test_the_welcome_speaks_the_language_the_link_was_made_for(api: Api) -> None:
    # Given a link made for a Russian-speaking patient whose Viber app is in English
    rid, uid = f"pat-{uuid.uuid4().hex[:8]}", _viber_user()
    link = api.http.post(f"/v1/recipients/{rid}/bind/viber", params={"locale": "ru"}).json()["link"]
    # When they open it
    assert api.http.post("/local/simulate", json={"open_link": link, "as": uid}).status_code == 200
    # Then the welcome is in Russian
    welcome = [m["text"] for m in api.outbox() if m["to"] == uid and m["channel"] == "viber"]
    assert welcome == ["Спасибо! Чат подключён: напоминания и уведомления будут приходить сюда. "
                       "Чтобы подписаться, отправьте любое сообщение."]


def test_a_used_or_made_up_viber_token_binds_nothing(api: Api) -> None:
    first, second = (f"pat-{uuid.uuid4().hex[:8]}" for _ in range(2))
    owner, stranger = _viber_user(), _viber_user()
    link = api.http.post(f"/v1/recipients/{first}/bind/viber").json()["link"]
    assert api.http.post("/local/simulate", json={"open_link": link, "as": owner}).status_code == 200
    # Someone else opens the same link later: nothing changes for anyone.
    api.http.post("/local/simulate", json={"open_link": link, "as": stranger})
    assert _viber_user_reached(api, first) == owner
    # A made-up token binds nothing: a recipient with no contact at all is still refused.
    api.http.post("/local/simulate", json={"open_link": "viber://pa?chatURI=cascadelocal&context=made-up-token",
                                           "as": stranger})
    resp = api.post_event({**_visit(), "recipient": {"id": second}})
    assert resp.status_code == 422
