"""Twilio end to end: the robot call (TwiML spoken in the recipient's language, keys as signals,
call outcomes as failures) and Twilio SMS (delivery receipts, replies), every webhook signed
with X-Twilio-Signature; the four-step abandoned cart ends with a confirmed call."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import LONG_WAIT_HOURS, TIME_SCALE, Api, long_waits, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module", autouse=True)
def twilio_sms(stack: Any) -> Iterator[None]:
    """SMS goes through Twilio in this module (as with SmsProvider=twilio), through SNS again after."""
    stack.use_sms_provider("twilio")
    yield
    stack.use_sms_provider("sns")


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


@pytest.fixture
def twilio(stack: Any) -> Any:
    return stack.standin("twilio")


def _phone() -> str:
    return f"+1415555{uuid.uuid4().int % 10**4:04d}"


def _cart(locale: str = "en", **contacts: Any) -> dict[str, Any]:
    """Only a phone by default: email and Telegram are skipped, the SMS goes out, then the call."""
    recipient = {"id": f"cust-{uuid.uuid4().hex[:8]}", "name": "Sam", "locale": locale, "phone": _phone(),
                 "consent": {"marketing": True}, **contacts}
    return {"type": "cart.abandoned", "recipient": recipient,
            "data": {"cart_id": f"cart-{uuid.uuid4().hex[:6]}", "cart_url": "https://shop.test/cart/77"}}


def _delivery_failed(locale: str = "ru") -> dict[str, Any]:
    return {"type": "delivery.failed",
            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "locale": locale, "phone": _phone()},
            "data": {"order_id": uuid.uuid4().hex[:6], "reschedule_url": "https://shop.test/orders/1/reschedule"}}


def _hours(a: str, b: str) -> float:
    t = [datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in (a, b)]
    return (t[1] - t[0]) * TIME_SCALE / 3600


def _finished(api: Api, cascade_id: str) -> dict[str, Any] | None:
    view = api.cascade(cascade_id)
    return view if view["status"] != "running" else None


def _sent(api: Api, cascade_id: str, channel: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(f"the {channel} message", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == channel],
                    timeout=timeout)[0]


def _step(api: Api, cascade_id: str, index: int, status: str) -> dict[str, Any]:
    return wait_for(f"step {index} to be {status}",
                    lambda: (v := api.cascade(cascade_id))["steps"][index]["status"] == status and v)


def _fault(api: Api, channel: str, mode: str, count: int | None = None) -> None:
    body: dict[str, Any] = {"channel": channel, "mode": mode, **({"count": count} if count else {})}
    assert api.http.post("/local/faults", json=body).status_code == 200


# -- the robot call -------------------------------------------------------------------------------

def test_the_call_speaks_the_recipients_language_and_pressing_1_confirms(api: Api, twilio: Any) -> None:
    event = _cart(locale="ru")
    cascade_id = api.start(event)
    sms = _sent(api, cascade_id, "sms")
    call = _sent(api, cascade_id, "voice")
    assert sms["to"] == call["to"] == event["recipient"]["phone"]
    assert call["provider_message_id"].startswith("CA")
    assert call["text"].startswith("Здравствуйте, Sam! Это автоматический звонок")
    placed = twilio.calls[call["provider_message_id"]]
    assert placed["language"] == "ru-RU" and 'numDigits="1"' in placed["twiml"]
    assert placed["gather"]["action"] == f"{api.base}/webhooks/twilio/voice?locale=ru"
    assert api.simulate(call["provider_message_id"], "confirmed").status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "confirmed")
    assert (view["steps"][3]["status"], view["steps"][3]["reply"], view["steps"][3]["intent"]) == ("confirmed", "1", "confirm")
    assert placed["pressed"] == ["1"] and placed["heard"] == ["Спасибо, ваш ответ получен. До свидания."]
    assert placed["callbacks"][-1] == "completed"


def test_a_ukrainian_customer_hears_the_whole_call_in_ukrainian(api: Api, twilio: Any) -> None:
    # Given a cart cascade for a Ukrainian speaker that reaches the robot call
    cascade_id = api.start(_cart(locale="uk"))
    call = _sent(api, cascade_id, "voice")
    placed = twilio.calls[call["provider_message_id"]]
    # Then the call's own words around the script are Ukrainian, in a Ukrainian voice
    said = [(say.text, say.get("language")) for say in ET.fromstring(placed["twiml"]).iter("Say")]  # noqa: S314
    assert [text for text, _ in said[1:]] == ["Ще раз.", call["text"], "Ми не почули відповіді. До побачення."]
    assert {language for _, language in said} == {"uk-UA"}
    # And so are the thanks after a key
    assert api.simulate(call["provider_message_id"], "confirmed").status_code == 200
    wait_for("the stop", lambda: _finished(api, cascade_id))
    assert placed["heard"] == ["Дякуємо, вашу відповідь отримано. До побачення."]


def test_pressing_2_is_a_reply_with_that_key(api: Api, twilio: Any) -> None:
    cascade_id = api.start(_cart())
    call = _sent(api, cascade_id, "voice")
    assert "If you would like help to finish your order, press 1 and we will call you back." in call["text"]
    assert api.simulate(call["provider_message_id"], "replied", text="2").status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied")
    placed = twilio.calls[call["provider_message_id"]]
    assert placed["pressed"] == ["2"] and placed["heard"] == ["Thank you, your answer has been received. Goodbye."]


def test_an_answered_call_is_delivered_and_the_cascade_waits_for_a_key(api: Api) -> None:
    cascade_id = api.start(_cart())
    call = _sent(api, cascade_id, "voice")
    assert api.simulate(call["provider_message_id"], "delivered").status_code == 200
    view = _step(api, cascade_id, 3, "delivered")
    assert view["status"] == "running"
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


@pytest.mark.parametrize("ending", ["busy", "no-answer"])
def test_a_call_nobody_takes_fails_and_the_last_step_closes_at_once(api: Api, ending: str, saved: list[str]) -> None:
    # The call step waits 400 h (100 s here): "at once" is told from its timer on a busy machine.
    cascade_id = api.start({**_cart(), "type": long_waits(api, saved, "abandoned-cart", 3)})
    call = _sent(api, cascade_id, "voice")
    assert api.simulate(call["provider_message_id"], "failed", text=ending).status_code == 200
    view = wait_for("the cascade to end", lambda: _finished(api, cascade_id))
    assert view["steps"][3]["status"] == "failed" and view["steps"][3]["reason"] == "provider_reported"
    # Nothing is left to try: it ends now, not after the call step's wait.
    assert (view["status"], view["stop_reason"]) == ("exhausted", None)
    assert _hours(call["sent_at"], view["finished_at"]) < LONG_WAIT_HOURS / 2


def test_a_forged_or_unsigned_twilio_webhook_is_refused_and_changes_nothing(api: Api, twilio: Any) -> None:
    cascade_id = api.start(_cart())
    call = _sent(api, cascade_id, "voice")
    url = f"{api.base}/webhooks/twilio/voice?locale=en"
    params = {"AccountSid": twilio.account_sid, "CallSid": call["provider_message_id"], "CallStatus": "in-progress",
              "Digits": "1", "From": twilio.from_number, "To": call["to"]}
    for headers in ({}, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
                    {"X-Twilio-Signature": twilio.sign(f"{api.base}/webhooks/twilio/sms", params)},  # another URL
                    {"X-Twilio-Signature": twilio.sign(url, {**params, "Digits": "2"})}):  # other parameters
        assert httpx.post(url, data=params, headers=headers).status_code == 403, headers
    sms_params = {"From": call["to"], "To": twilio.from_number, "Body": "STOP", "MessageSid": "SM" + "0" * 32}
    assert httpx.post(f"{api.base}/webhooks/twilio/sms", data=sms_params).status_code == 403
    view = api.cascade(cascade_id)
    assert view["status"] == "running" and view["steps"][3]["status"] == "sent"
    assert view["steps"][2]["status"] == "sent"
    # The same request, signed as Twilio signs it, is heard.
    resp = httpx.post(url, data=params, headers={"X-Twilio-Signature": twilio.sign(url, params)})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/xml")
    assert "<Hangup" in resp.text
    assert wait_for("the stop", lambda: _finished(api, cascade_id))["stop_reason"] == "confirmed"


def test_the_four_step_abandoned_cart_ends_with_a_confirmed_robot_call(api: Api) -> None:
    event = _cart(email="sam@example.com", telegram_chat_id=str(uuid.uuid4().int % 10**9))
    cascade_id = api.start(event)
    call = _sent(api, cascade_id, "voice", timeout=60)  # nobody reacted to the email, Telegram or SMS
    assert api.simulate(call["provider_message_id"], "confirmed").status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "confirmed")
    assert [s["status"] for s in view["steps"]] == ["sent", "sent", "sent", "confirmed"]
    sent = api.outbox(cascade_id)
    assert [m["channel"] for m in sent] == ["email", "telegram", "sms", "voice"]
    # Each step waited out the one before: 24 h, 6 h, then 2 h.
    assert _hours(sent[0]["sent_at"], sent[1]["sent_at"]) >= 24 * 0.9
    assert _hours(sent[2]["sent_at"], sent[3]["sent_at"]) >= 2 * 0.9


# -- Twilio SMS ---------------------------------------------------------------------------------

def test_a_twilio_delivery_receipt_marks_the_sms_delivered(api: Api, twilio: Any) -> None:
    cascade_id = api.start(_delivery_failed())
    sms = _sent(api, cascade_id, "sms")
    assert sms["provider_message_id"].startswith("SM") and "Не смогли доставить заказ" in sms["text"]
    assert wait_for("the sent callback", lambda: "sent" in twilio.messages[sms["provider_message_id"]]["callbacks"])
    assert api.simulate(sms["provider_message_id"], "delivered").status_code == 200
    view = _step(api, cascade_id, 0, "delivered")
    assert view["status"] == "running"
    assert api.simulate(sms["provider_message_id"], "read").status_code == 422  # SMS never reports reads
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


@pytest.mark.parametrize("text", ["ПЕРЕНОС", "RESCHEDULE"])
def test_an_inbound_twilio_reply_stops_delivery_failed(api: Api, twilio: Any, text: str) -> None:
    event = _delivery_failed()
    cascade_id = api.start(event)
    sms = _sent(api, cascade_id, "sms")
    assert api.simulate(sms["provider_message_id"], "replied", text=text).status_code == 200
    view = wait_for("the stop", lambda: _finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied")
    assert "replied" in [s["status"] for s in view["steps"]]
    assert twilio.inbound[-1]["from"] == event["recipient"]["phone"] and twilio.inbound[-1]["text"] == text


def test_stop_opts_out_of_sms_and_twilio_then_refuses_that_number(api: Api, twilio: Any) -> None:
    event = _delivery_failed(locale="en")
    phone = event["recipient"]["phone"]
    cascade_id = api.start(event)
    sms = _sent(api, cascade_id, "sms")
    assert api.simulate(sms["provider_message_id"], "replied", text="STOP").status_code == 200
    # Not a success reply: the recipient is opted out of SMS, so the cascade's SMS steps are skipped.
    view = wait_for("the end", lambda: _finished(api, cascade_id))
    assert view["status"] == "exhausted" and view["steps"][0]["reason"] == "opted_out"
    assert (view["steps"][2]["status"], view["steps"][2]["reason"]) == ("skipped", "opted_out")
    # Twilio opted the number out too: another customer record with that number (no opt-out of
    # ours) has its SMS refused for good (21610), and the call follows.
    cart = _cart()
    cart["recipient"]["phone"] = phone
    cart_id = api.start(cart)
    view = _step(api, cart_id, 2, "failed")
    assert "21610" in view["steps"][2]["reason"]
    _sent(api, cart_id, "voice")
    api.http.post(f"/v1/cascades/{cart_id}/cancel")


def test_an_undelivered_sms_fails_its_step_and_the_call_follows(api: Api) -> None:
    cascade_id = api.start(_cart())
    sms = _sent(api, cascade_id, "sms")
    assert api.simulate(sms["provider_message_id"], "failed").status_code == 200
    view = _step(api, cascade_id, 2, "failed")
    assert view["steps"][2]["reason"] == "provider_reported"
    _sent(api, cascade_id, "voice")
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


# -- faults ---------------------------------------------------------------------------------------

def test_a_twilio_429_on_the_call_is_retried_and_it_goes_out_once(api: Api) -> None:
    _fault(api, "voice", "429", count=1)
    cascade_id = api.start(_cart())
    view = _step(api, cascade_id, 3, "sent")
    assert len([m for m in api.outbox(cascade_id) if m["channel"] == "voice"]) == 1
    assert view["status"] == "running"
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_a_twilio_429_on_an_sms_is_retried_and_it_goes_out_once(api: Api) -> None:
    cascade_id = api.start(_delivery_failed())
    _sent(api, cascade_id, "sms")
    # The second SMS (22 h to wait, room for Retry-After) meets the throttling.
    _fault(api, "sms", "429", count=1)
    view = _step(api, cascade_id, 1, "sent")
    assert len(api.outbox(cascade_id)) == 2
    assert view["status"] == "running"
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_a_refused_twilio_sms_escalates_to_the_call_at_once(api: Api, saved: list[str]) -> None:
    # The cart cascade with a 400 h SMS wait (2 h is half a real second here: too close to tell
    # "at once" from "after the wait" on a busy machine).
    trigger = long_waits(api, saved, "abandoned-cart", 2)
    _fault(api, "sms", "reject")
    event = {**_cart(), "type": trigger}
    cascade_id = api.start(event)
    call = _sent(api, cascade_id, "voice")
    view = api.cascade(cascade_id)
    assert view["steps"][2]["status"] == "failed" and "21211" in view["steps"][2]["reason"]
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["voice"]
    touches = api.http.get(f"/v1/recipients/{event['recipient']['id']}/timeline").json()["touches"]
    failed = next(t for t in touches if (t["channel"], t["kind"]) == ("sms", "failed"))
    # Not after the SMS step's wait.
    assert _hours(failed["at"], call["sent_at"]) < LONG_WAIT_HOURS / 2
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_a_refused_call_on_the_last_step_closes_the_cascade_at_once(api: Api, saved: list[str]) -> None:
    trigger = long_waits(api, saved, "abandoned-cart", 3)  # the call waits 400 h (100 s here)
    _fault(api, "voice", "reject")
    cascade_id = api.start({**_cart(), "type": trigger})
    sms = _sent(api, cascade_id, "sms")
    view = wait_for("the cascade to end", lambda: _finished(api, cascade_id))
    assert view["status"] == "exhausted"
    assert view["steps"][3]["status"] == "failed" and "21211" in view["steps"][3]["reason"]
    assert _hours(sms["sent_at"], view["finished_at"]) < LONG_WAIT_HOURS / 2  # the SMS's 2 h, not the call's wait
