"""WhatsApp end to end: the cart reminder reaches a customer without Telegram on WhatsApp, as the
approved template outside the 24 h window and as free text inside it; Meta's statuses and the
customer's messages arrive as signed webhooks and move the cascade."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import phonenumbers
import pytest

from tests.conftest import LONG_WAIT_HOURS, TIME_SCALE, Api, long_waits, wait_for

pytestmark = pytest.mark.stack

FREE_TEXT = "We sent you an email, but it may have landed in spam. Your cart is still waiting:"


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


@pytest.fixture
def wa(stack: Any) -> Any:
    return stack.standin("whatsapp")


def _number() -> str:
    """A fresh, valid number per test: each customer's window is their own."""
    while True:
        number = f"+1415{200 + secrets.randbelow(800)}{secrets.randbelow(10**4):04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


def _cart(number: str, email: bool = False, phone: bool = True) -> dict[str, Any]:
    recipient: dict[str, Any] = {"id": f"cust-{uuid.uuid4().hex[:8]}", "locale": "en", "whatsapp": number,
                                 "consent": {"marketing": True}}
    if email:
        recipient["email"] = "sam@example.com"
    if phone:
        recipient["phone"] = number
    return {"type": "cart.abandoned", "recipient": recipient,
            "data": {"cart_id": f"cart-{uuid.uuid4().hex[:6]}", "cart_url": "https://shop.test/cart/77"}}


def _whatsapp(api: Api, cascade_id: str, count: int = 1) -> list[dict[str, Any]]:
    return list(wait_for("the WhatsApp message", lambda: len(found := [
        m for m in api.outbox(cascade_id) if m["channel"] == "whatsapp"]) >= count and found, timeout=30))


def _step(api: Api, cascade_id: str, index: int, *statuses: str) -> dict[str, Any]:
    return dict(wait_for(f"step {index} to be {'/'.join(statuses)}",
                         lambda: (v := api.cascade(cascade_id))["steps"][index]["status"] in statuses and v))


def _sent_to(wa: Any, number: str) -> list[dict[str, Any]]:
    """Everything the Cloud API accepted for this number, refused or not."""
    return [m for m in list(wa.messages) if m["wa_id"] == number.lstrip("+")]


def _hours_between(a: str, b: str) -> float:
    t = [datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in (a, b)]
    return (t[1] - t[0]) * TIME_SCALE / 3600


def _cancel(api: Api, cascade_id: str) -> None:
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


@pytest.mark.parametrize("wrote_before", [False, True], ids=["never-wrote", "wrote-before-the-email-wait"])
def test_after_the_email_the_reminder_goes_out_on_whatsapp_as_the_approved_template(
        api: Api, wa: Any, wrote_before: bool) -> None:
    number = _number()
    if wrote_before:
        # A message before the cascade opens the window, but the email's 24 h wait outlasts it.
        assert wa.customer_writes(number, "Hi! Is the blue one back in stock?").status_code == 200
    cascade_id = api.start(_cart(number, email=True, phone=False))
    message = _whatsapp(api, cascade_id)[0]
    assert message["to"] == number
    assert message["text"].startswith("[cart_reminder] http")
    assert "/r/" in message["text"] and "shop.test" not in message["text"]  # the parameter's link is tracked
    payload = _sent_to(wa, number)[-1]["payload"]
    assert payload["type"] == "template" and payload["to"] == number.lstrip("+")
    assert payload["template"]["name"] == "cart_reminder" and payload["template"]["language"] == {"code": "en"}
    assert payload["biz_opaque_callback_data"] == f"{cascade_id}:1"
    view = _step(api, cascade_id, 1, "delivered")  # Meta's sent, then delivered statuses
    assert view["steps"][0]["status"] == "sent" and view["steps"][1]["channel"] == "whatsapp"
    assert view["steps"][1]["provider_message_id"] == message["provider_message_id"]
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["email", "whatsapp"]
    _cancel(api, cascade_id)


def test_a_customer_who_wrote_within_24_hours_gets_the_free_text(api: Api, wa: Any) -> None:
    number = _number()
    assert wa.customer_writes(number, "Hello, I have a question about my order").status_code == 200
    cascade_id = api.start(_cart(number))  # no email: the WhatsApp step comes at once
    message = _whatsapp(api, cascade_id)[0]
    assert message["text"].startswith(FREE_TEXT) and "/r/" in message["text"]
    payload = _sent_to(wa, number)[-1]["payload"]
    assert payload["type"] == "text" and payload["text"]["preview_url"] is False
    assert payload["biz_opaque_callback_data"] == f"{cascade_id}:1"
    assert _step(api, cascade_id, 1, "delivered")["status"] == "running"
    _cancel(api, cascade_id)


def test_a_free_text_refused_for_the_closed_window_is_replaced_by_the_template_once(api: Api, wa: Any) -> None:
    number = _number()
    assert wa.customer_writes(number, "Hi").status_code == 200
    wa.close_window(number)  # Meta counts the window as closed; our record still says open
    cascade_id = api.start(_cart(number))
    template = _whatsapp(api, cascade_id)[0]
    assert template["text"].startswith("[cart_reminder] ")
    refused = _sent_to(wa, number)[0]
    assert refused["type"] == "text" and refused["refused"]  # accepted, then reported failed with 131047
    assert [m["type"] for m in _sent_to(wa, number)] == ["text", "template"]
    view = _step(api, cascade_id, 1, "delivered")
    assert view["status"] == "running" and view["steps"][1]["provider_message_id"] == template["provider_message_id"]
    # Meta delivers webhooks again when in doubt: the same failure changes nothing more.
    assert wa.status(refused, "failed", 131047).status_code == 200
    view = api.cascade(cascade_id)
    assert view["status"] == "running" and view["steps"][1]["status"] == "delivered"
    assert [s["status"] for s in view["steps"][2:]] == ["pending"] * (len(view["steps"]) - 2)
    assert [m["type"] for m in _sent_to(wa, number)] == ["text", "template"]
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["whatsapp"]
    _cancel(api, cascade_id)


def test_read_stops_the_cascade_and_nothing_goes_out_after(api: Api) -> None:
    cascade_id = api.start(_cart(_number()))
    message = _whatsapp(api, cascade_id)[0]
    assert api.simulate(message["provider_message_id"], "read").status_code == 200
    view = wait_for("the stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "read")
    assert view["steps"][1]["status"] == "read"
    time.sleep(6 * 3600 / TIME_SCALE + 1)  # past the WhatsApp step's 6 h: the SMS would be due by now
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["whatsapp"]


@pytest.mark.parametrize("quoting", [True, False], ids=["quoting-the-message", "plain-message"])
def test_a_customer_reply_stops_the_cascade_as_replied(api: Api, stack: Any, wa: Any, quoting: bool) -> None:
    number = _number()
    event = _cart(number)
    cascade_id = api.start(event)
    message = _whatsapp(api, cascade_id)[0]
    _step(api, cascade_id, 1, "delivered")  # it reached the phone; the customer answers
    if quoting:
        resp = api.simulate(message["provider_message_id"], "replied", text="Is the discount still on?")
    else:
        resp = wa.customer_writes(number, "Is the discount still on?")
    assert resp.status_code == 200
    view = wait_for("the stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied")
    assert view["steps"][1]["status"] == "replied"
    touches = api.http.get(f"/v1/recipients/{event['recipient']['id']}/timeline").json()["touches"]
    assert ("whatsapp", "replied") in [(t["channel"], t["status"]) for t in touches if t["kind"] == "signal"]


def test_a_failed_status_escalates_to_sms_at_once(api: Api, saved: list[str]) -> None:
    # The WhatsApp step waits 400 h (100 s here): "at once" is told from its timer on a busy machine.
    cascade_id = api.start({**_cart(_number()), "type": long_waits(api, saved, "abandoned-cart", 1)})
    message = _whatsapp(api, cascade_id)[0]
    assert api.simulate(message["provider_message_id"], "failed", code=131049).status_code == 200
    sms = wait_for("the SMS", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "sms"])[0]
    view = api.cascade(cascade_id)
    assert view["steps"][1]["status"] == "failed" and view["status"] == "running"
    assert _hours_between(message["sent_at"], sms["sent_at"]) < LONG_WAIT_HOURS / 2  # not after the step's timer
    _cancel(api, cascade_id)


def test_an_undeliverable_number_fails_the_step_and_the_sms_follows(api: Api) -> None:
    assert api.http.post("/local/faults", json={"channel": "whatsapp", "mode": "reject"}).status_code == 200
    cascade_id = api.start(_cart(_number()))
    sms = wait_for("the SMS", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "sms"])
    view = api.cascade(cascade_id)
    assert view["steps"][1]["status"] == "failed" and "131026" in view["steps"][1]["reason"]
    assert len(sms) == 1 and not [m for m in api.outbox(cascade_id) if m["channel"] == "whatsapp"]
    _cancel(api, cascade_id)


@pytest.mark.parametrize("mode", ["500", "429"])
def test_a_passing_cloud_api_error_is_retried_and_the_message_goes_out_once(api: Api, wa: Any, mode: str,
                                                                          saved: list[str]) -> None:
    number = _number()
    trigger = long_waits(api, saved, "abandoned-cart", 1)  # retries stay within the step's timer: a long one
    assert api.http.post("/local/faults", json={"channel": "whatsapp", "mode": mode, "count": 1}).status_code == 200
    cascade_id = api.start({**_cart(number), "type": trigger})
    view = _step(api, cascade_id, 1, "sent", "delivered")
    assert view["status"] == "running"
    assert len(_whatsapp(api, cascade_id)) == 1 and len(_sent_to(wa, number)) == 1
    _cancel(api, cascade_id)


def test_the_verification_handshake_needs_the_verify_token(api: Api, wa: Any) -> None:
    url = "/webhooks/whatsapp"
    good = api.http.get(url, params={"hub.mode": "subscribe", "hub.verify_token": wa.verify_token,
                                     "hub.challenge": "1158201444"})
    assert (good.status_code, good.text) == (200, "1158201444")
    bad = api.http.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert bad.status_code == 403 and "1" not in bad.text.replace("403", "")
    assert api.http.get(url, params={"hub.challenge": "1"}).status_code == 403


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "forged"])
def test_a_webhook_without_a_valid_signature_is_refused_and_changes_nothing(
        api: Api, stack: Any, wa: Any, signature: str | None) -> None:
    number = _number()
    cascade_id = api.start(_cart(number))
    message = _whatsapp(api, cascade_id)[0]
    before = _step(api, cascade_id, 1, "delivered")
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": wa.business_account_id, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "statuses": [
            {"id": message["provider_message_id"], "status": "read", "timestamp": str(int(time.time())),
             "recipient_id": number.lstrip("+")}]}}]}]})
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Hub-Signature-256"] = signature
    resp = httpx.post(f"{stack.url}/webhooks/whatsapp", content=body, headers=headers, timeout=30)
    assert resp.status_code in (401, 403)
    after = api.cascade(cascade_id)
    assert after["status"] == "running" and after["steps"] == before["steps"]
    _cancel(api, cascade_id)


def _signed(stack: Any, wa: Any, value: dict[str, Any]) -> httpx.Response:
    """A webhook as Meta sends it, signed with the app secret."""
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": wa.business_account_id, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", **value}}]}]}).encode()
    sig = "sha256=" + hmac.new(wa.app_secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{stack.url}/webhooks/whatsapp", content=body, timeout=30,
                      headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})


def test_a_customer_with_a_username_writes_without_a_number_and_the_reply_ends_the_cascade(api: Api, wa: Any) -> None:
    number = _number()
    event = _cart(number)
    cascade_id = api.start(event)
    message = _whatsapp(api, cascade_id)[0]
    _step(api, cascade_id, 1, "delivered")  # Meta's statuses name the customer's BSUID as well as the number
    bsuid = wa.adopt_username(number, "sam.shops")
    # The customer writes (not quoting our message): the webhook has from_user_id and no "from".
    assert wa.customer_writes(number, "Is the discount still on?").status_code == 200
    view = wait_for("the stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied")
    assert view["steps"][1]["status"] == "replied"
    assert view["steps"][1]["provider_message_id"] == message["provider_message_id"]
    touches = api.http.get(f"/v1/recipients/{event['recipient']['id']}/timeline").json()["touches"]
    assert ("whatsapp", "replied") in [(t["channel"], t["status"]) for t in touches if t["kind"] == "signal"]
    assert bsuid not in json.dumps(touches)  # matched by the BSUID, not shown
    # Their message opened the 24 h window for their number: the next reminder is free text.
    again = api.start(_cart(number))
    assert _whatsapp(api, again)[0]["text"].startswith(FREE_TEXT)
    assert _sent_to(wa, number)[-1]["payload"]["type"] == "text"
    _cancel(api, again)


def test_a_signed_batch_with_an_unusable_part_is_answered_200_and_the_rest_counts(
        api: Api, stack: Any, wa: Any) -> None:
    number = _number()
    cascade_id = api.start(_cart(number))
    message = _whatsapp(api, cascade_id)[0]
    _step(api, cascade_id, 1, "delivered")
    now = str(int(time.time()))
    resp = _signed(stack, wa, {
        "contacts": [{"profile": {"name": "Sam", "username": "sam.shops"}, "user_id": "US.42424242424242424242"}],
        "statuses": [
            {"status": "delivered", "timestamp": now},  # no id: cannot be matched to anything
            # read, and no phone number at all: only the customer's BSUID
            {"id": message["provider_message_id"], "status": "read", "timestamp": now,
             "recipient_user_id": "US.42424242424242424242"}],
        "messages": [{"id": "wamid.nobody", "timestamp": now, "type": "text", "text": {"body": "?"}}],  # no sender
    })
    assert resp.status_code == 200, resp.text
    view = wait_for("the stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "read")
    assert view["steps"][1]["status"] == "read"


def test_local_simulate_plays_a_reply_from_a_customer_with_a_username(api: Api, wa: Any, saved: list[str]) -> None:
    number = _number()
    # A long WhatsApp timer: the preset's 6 h is 1.5 s here, which a busy machine can overrun before the send.
    cascade_id = api.start({**_cart(number), "type": long_waits(api, saved, "abandoned-cart", 1)})
    message = _whatsapp(api, cascade_id)[0]
    assert api.simulate(message["provider_message_id"], "replied", text="Yes", username="").status_code == 422
    resp = api.simulate(message["provider_message_id"], "replied", text="Yes", username="sam.shops")
    assert resp.status_code == 200 and wa.usernames[number.lstrip("+")] == "sam.shops"
    view = wait_for("the stop", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied")
