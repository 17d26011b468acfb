"""Contacts never reach a log line in clear: not in messages, not in structured fields."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

PHONE = "+14155550177"
EMAIL = "private.person@example.org"


def test_a_whole_cascade_logs_no_phone_number_or_email_address(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    event = {"type": "cart.abandoned",
             "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "email": EMAIL, "phone": PHONE,
                           "consent": {"marketing": True}},
             "data": {"cart_id": "c-9", "cart_url": "https://shop.test/cart/9"}}
    cascade_id = api.start(event)
    sms = wait_for("the SMS (email timed out, Telegram skipped)",
                   lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "sms"], timeout=30)[0]
    api.simulate(sms["provider_message_id"], "replied", text="call me on +14155550177")
    wait_for("the stop", lambda: api.cascade(cascade_id)["status"] == "succeeded")
    ours = [r for r in caplog.records if r.name == "cascade"]
    assert any(getattr(r, "cascade_id", None) == cascade_id for r in ours), "the cascade was logged at all"
    for record in ours:
        text = f"{record.getMessage()} {record.__dict__}"
        assert PHONE not in text and EMAIL not in text, text


def test_messenger_voice_and_push_steps_log_no_contact_either(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = f"fcm-private-token-{uuid.uuid4().hex}"
    cart = api.start({"type": "cart.abandoned",
                      "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "email": EMAIL, "phone": PHONE,
                                    "whatsapp": PHONE, "consent": {"marketing": True}},
                      "data": {"cart_id": "c-10", "cart_url": "https://shop.test/cart/10"}})
    courier = api.start({"type": "courier.assigned",
                         "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "push_token": token, "phone": PHONE},
                         "data": {"delivery_id": "d-10", "delivery_date": "today", "time_window": "14-16",
                                  "courier_phone": "+14155550100"}})
    push = wait_for("the push", lambda: [m for m in api.outbox(courier) if m["channel"] == "push"], timeout=30)[0]
    api.simulate(push["provider_message_id"], "read")
    # Email, WhatsApp and SMS go unanswered; the robot call is answered and 1 is pressed.
    call = wait_for("the robot call", lambda: [m for m in api.outbox(cart) if m["channel"] == "voice"], timeout=60)[0]
    assert {m["channel"] for m in api.outbox(cart)} == {"email", "whatsapp", "sms", "voice"}
    api.simulate(call["provider_message_id"], "confirmed")
    wait_for("both stops", lambda: api.cascade(cart)["status"] == api.cascade(courier)["status"] == "succeeded")
    ours = [r for r in caplog.records if r.name == "cascade"]
    assert {getattr(r, "channel", None) for r in ours} >= {"whatsapp", "voice", "push"}, "those steps were logged"
    for record in ours:
        text = f"{record.getMessage()} {record.__dict__}"
        for secret in (PHONE, PHONE[1:], EMAIL, token):  # WhatsApp's API writes numbers without the +
            assert secret not in text, text
