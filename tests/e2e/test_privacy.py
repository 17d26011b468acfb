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
             "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "email": EMAIL, "phone": PHONE},
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
