"""Channel adapters understand their providers' real payloads (the sample events in events/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.channels.email import parse_ses_event, to_html
from cascade.channels.sms import parse_inbound_sms
from cascade.channels.telegram import blocked_chat, check_secret, parse_update
from cascade.errors import SignatureInvalid

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _sns_message(name: str) -> dict:
    return json.loads(json.loads((EVENTS / name).read_text())["Records"][0]["Sns"]["Message"])


def test_an_ses_open_event_is_a_read_signal_for_that_email() -> None:
    sig = parse_ses_event(_sns_message("aws-events-ses-open.json"))
    assert sig is not None
    assert (sig.channel, sig.signal) == ("email", "read")
    assert sig.provider_message_id == "010001812345abcd-11111111-2222-3333-4444-555555555555-000000"


@pytest.mark.parametrize(("kind", "extra", "signal"), [
    ("Click", {"click": {"link": "https://x.test"}}, "clicked"), ("Delivery", {}, "delivered"),
    ("Bounce", {"bounce": {"bounceType": "Permanent"}}, "failed"), ("Bounce", {"bounce": {"bounceType": "Transient"}}, None),
    ("Send", {}, None),
])
def test_ses_event_types(kind, extra, signal) -> None:  # type: ignore[no-untyped-def]
    sig = parse_ses_event({"eventType": kind, "mail": {"messageId": "m-1"}, **extra})
    assert (sig.signal if sig else None) == signal


def test_an_inbound_sms_is_a_reply_to_the_message_it_answers() -> None:
    sig = parse_inbound_sms(_sns_message("aws-events-inbound-sms.json"))
    assert sig is not None
    assert (sig.signal, sig.text, sig.provider_message_id) == ("replied", "RESCHEDULE", "68fae169-3cf0-42dc-9a79-8d80256abeb5")


def test_a_telegram_button_press_names_the_message_and_its_signal() -> None:
    event = json.loads((EVENTS / "telegram-webhook-button.json").read_text())
    sig = parse_update(json.loads(event["body"]))
    assert sig is not None
    assert (sig.signal, sig.provider_message_id) == ("read", "123456789:1000")
    assert sig.detail["callback_query_id"] == "4382bfdwdsb323b2d9"


def test_a_telegram_text_reply_without_a_quote_belongs_to_the_chat() -> None:
    sig = parse_update({"update_id": 1, "message": {"message_id": 5, "chat": {"id": 42}, "text": "ok"}})
    assert sig is not None and sig.provider_message_id is None and sig.chat_id == "42"
    assert parse_update({"update_id": 2, "message": {"message_id": 6, "chat": {"id": 42}, "text": "/start abc"}}) is None


def test_the_telegram_secret_header_must_match() -> None:
    check_secret({"X-Telegram-Bot-Api-Secret-Token": "s3cret"}, "s3cret")
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "nope"}):
        with pytest.raises(SignatureInvalid):
            check_secret(headers, "s3cret")
    with pytest.raises(SignatureInvalid):  # an unconfigured secret refuses everything
        check_secret({"X-Telegram-Bot-Api-Secret-Token": ""}, "")


def test_email_html_escapes_text_and_links_urls() -> None:
    page = to_html("Hi <b>\nhttps://api.test/r/abc")
    assert "&lt;b&gt;" in page and '<a href="https://api.test/r/abc">' in page


def test_a_customer_blocking_the_bot_is_a_my_chat_member_update_naming_the_chat() -> None:
    event = json.loads((EVENTS / "telegram-webhook-blocked.json").read_text())
    update = json.loads(event["body"])
    assert blocked_chat(update) == "123456789"
    assert parse_update(update) is None  # not a button press or a reply
    update["my_chat_member"]["new_chat_member"]["status"] = "member"  # unblocked again: not an opt-out
    assert blocked_chat(update) is None
    update["my_chat_member"]["new_chat_member"]["status"] = "kicked"
    update["my_chat_member"]["chat"] = {"id": -100123, "type": "group", "title": "Staff"}
    assert blocked_chat(update) is None  # a group removing the bot is no customer's opt-out
    button = json.loads(json.loads((EVENTS / "telegram-webhook-button.json").read_text())["body"])
    assert blocked_chat(button) is None
