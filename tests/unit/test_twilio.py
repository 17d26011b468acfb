"""Twilio's webhooks as API Gateway delivers them (the samples in events/, signed for a known auth
token and URL): the signature check, and what each request means for a cascade."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from cascade import http
from cascade.channels.twilio_api import send_error, verified_params
from cascade.channels.twilio_sms import parse_message_event
from cascade.channels.voice import parse_call_event, speech, twiml
from cascade.errors import FieldError, PermanentSendError, RetryableSendError
from cascade.local.twilio import spoken
from cascade.webhooks import WebhookRequest

EVENTS = Path(__file__).resolve().parents[2] / "events"
TOKEN = "0123456789abcdef0123456789abcdef"  # the auth token the samples are signed with
SAMPLES = ("webhooks-twilio-voice-gather.json", "webhooks-twilio-voice-status.json",
           "webhooks-twilio-sms-status.json", "webhooks-twilio-sms-inbound.json")


def _event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text(encoding="utf-8")))


def _request(event: dict[str, Any]) -> WebhookRequest:
    """As ``cascade.webhooks.request_of`` builds it, with no public URL configured."""
    query = event.get("rawQueryString") or ""
    return WebhookRequest(method="POST", path=event["rawPath"],
                          url=http.base_url(event) + event["rawPath"] + (f"?{query}" if query else ""),
                          headers=http.headers_of(event), query=dict(parse_qsl(query)),
                          body=http.raw_body(event, 256 * 1024))


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_carries_a_valid_twilio_signature(name: str) -> None:
    params = verified_params(_request(_event(name)), TOKEN)
    assert params is not None and params["AccountSid"].startswith("AC")


@pytest.mark.parametrize("name", SAMPLES)
def test_a_wrong_token_a_changed_body_or_no_header_fails_the_check(name: str) -> None:
    event = _event(name)
    assert verified_params(_request(event), "f" * 32) is None
    assert verified_params(_request(event), "") is None
    tampered = {**event, "body": event["body"].replace("To=", "To=%2B1", 1)}
    assert verified_params(_request(tampered), TOKEN) is None
    unsigned = {**event, "headers": {k: v for k, v in event["headers"].items() if k != "x-twilio-signature"}}
    assert verified_params(_request(unsigned), TOKEN) is None
    elsewhere = {**event, "rawPath": event["rawPath"] + "-other"}  # signed for another URL
    assert verified_params(_request(elsewhere), TOKEN) is None
    not_utf8 = {**event, "body": "//79", "isBase64Encoded": True}  # bytes ff fe fd
    assert verified_params(_request(not_utf8), TOKEN) is None


def test_pressing_1_on_the_call_confirms_and_the_action_knows_the_language() -> None:
    request = _request(_event("webhooks-twilio-voice-gather.json"))
    sig = parse_call_event(request.form())
    assert sig is not None
    assert (sig.channel, sig.signal, sig.text) == ("voice", "confirmed", "1")
    assert sig.provider_message_id == "CA9f8e7d6c5b4a9f8e7d6c5b4a76543210"
    assert request.query == {"locale": "ru"}


@pytest.mark.parametrize(("params", "signal", "text"), [
    ({"Digits": "2", "CallStatus": "in-progress"}, "replied", "2"),
    ({"Digits": "#", "CallStatus": "in-progress"}, "replied", "#"),
    ({"Digits": "", "CallStatus": "in-progress"}, None, None),  # a Gather that timed out is not "answered"
    ({"CallStatus": "in-progress"}, "delivered", None),  # the answered event
    ({"CallStatus": "no-answer"}, "failed", None),
    ({"CallStatus": "failed"}, "failed", None),
    ({"CallStatus": "canceled"}, "failed", None),
    ({"CallStatus": "initiated"}, None, None),
    ({"CallStatus": "ringing"}, None, None),
    ({"CallStatus": "completed"}, None, None),
])
def test_call_events(params: dict[str, str], signal: str | None, text: str | None) -> None:
    sig = parse_call_event({"CallSid": "CA1", **params})
    assert (sig.signal if sig else None, sig.text if sig else None) == (signal, text)


def test_a_busy_line_fails_the_call() -> None:
    sig = parse_call_event(_request(_event("webhooks-twilio-voice-status.json")).form())
    assert sig is not None and (sig.signal, sig.detail) == ("failed", {"call_status": "busy"})


def test_a_call_event_without_a_call_sid_is_bad_input() -> None:
    with pytest.raises(FieldError) as err:
        parse_call_event({"CallStatus": "busy"})
    assert err.value.details[0]["field"] == "CallSid"


def test_a_delivery_receipt_names_the_message() -> None:
    sig = parse_message_event(_request(_event("webhooks-twilio-sms-status.json")).form())
    assert sig is not None
    assert (sig.channel, sig.signal, sig.provider_message_id) == ("sms", "delivered",
                                                                  "SM1a2b3c4d5e6f1a2b3c4d5e6fabcdef01")


def test_an_inbound_sms_is_a_reply_from_that_number_with_its_text() -> None:
    sig = parse_message_event(_request(_event("webhooks-twilio-sms-inbound.json")).form())
    assert sig is not None
    assert (sig.signal, sig.text, sig.chat_id, sig.provider_message_id) == ("replied", "ПЕРЕНОС", "+14155550123", None)


@pytest.mark.parametrize(("status", "signal"), [("undelivered", "failed"), ("failed", "failed"), ("sent", None),
                                                ("queued", None), ("delivered", "delivered")])
def test_message_statuses(status: str, signal: str | None) -> None:
    sig = parse_message_event({"MessageSid": "SM1", "MessageStatus": status, "SmsStatus": status, "ErrorCode": "30003"})
    assert (sig.signal if sig else None) == signal


def test_stop_arrives_as_a_reply_and_notes_the_opt_out() -> None:
    sig = parse_message_event({"MessageSid": "SM2", "SmsStatus": "received", "From": "+14155550123", "Body": "STOP",
                               "OptOutType": "STOP"})
    assert sig is not None and (sig.signal, sig.text, sig.detail["opt_out"]) == ("replied", "STOP", "STOP")


def test_the_call_speaks_the_text_twice_in_the_recipients_language_and_takes_one_key() -> None:
    xml = twiml("Нажмите 1. Корзина: https://api.test/r/abc", "ru", "https://api.test/webhooks/twilio/voice")
    plays = spoken(xml)
    assert plays["text"] == "Нажмите 1. Корзина:"  # links cannot be heard
    assert plays["language"] == "ru-RU"
    assert plays["gather"] == {"action": "https://api.test/webhooks/twilio/voice?locale=ru", "method": "POST",
                               "num_digits": 1}
    assert xml.count("Нажмите 1.") == 2 and "Мы не услышали ответа" in xml
    assert speech("en") == ("en-US", "Polly.Joanna") and speech("en-GB") == ("en-US", "Polly.Joanna")
    assert speech("de-DE") == ("de-DE", None)


@pytest.mark.parametrize(("locale", "language", "repeat", "goodbye"), [
    ("ru", "ru-RU", "Ещё раз.", "Мы не услышали ответа. До свидания."),
    ("uk", "uk-UA", "Ще раз.", "Ми не почули відповіді. До побачення."),
    ("kk", "ru-RU", "Тағы бір рет.", "Біз жауап естімедік. Сау болыңыз."),  # no Kazakh voice: the Russian one reads it
    ("en-GB", "en-US", "Let me say that once more.", "We did not hear a key press. Goodbye."),
])
def test_what_the_call_says_around_the_script_is_in_the_recipients_language(
        locale: str, language: str, repeat: str, goodbye: str) -> None:
    xml = twiml("SCRIPT", locale, "https://api.test/webhooks/twilio/voice")
    said = [(say.text, say.get("language")) for say in ET.fromstring(xml).iter("Say")]  # noqa: S314 - our own TwiML
    assert said == [("SCRIPT", language), (repeat, language), ("SCRIPT", language), (goodbye, language)]


@pytest.mark.parametrize(("status", "body", "retry_after", "kind", "hint"), [
    (429, {"code": 20429, "message": "Too Many Requests"}, "1", RetryableSendError, 1.0),
    (503, {"code": 20503, "message": "Service Unavailable"}, None, RetryableSendError, None),
    (500, {}, None, RetryableSendError, None),
    (400, {"code": 21211, "message": "Invalid 'To' Phone Number: +1415555"}, None, PermanentSendError, None),
    (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}, None, PermanentSendError, None),
    (400, {"code": 13224, "message": "Invalid phone number"}, None, PermanentSendError, None),
    (401, {"code": 20003, "message": "Authenticate"}, None, PermanentSendError, None),
])
def test_twilio_errors_are_classified_without_quoting_the_number(status: int, body: dict[str, Any],
                                                                 retry_after: str | None, kind: type, hint: Any) -> None:
    error = send_error(status, {**body, "status": status}, retry_after, "twilio calls")
    assert isinstance(error, kind)
    assert getattr(error, "retry_after", None) == hint
    assert "+1415555" not in str(error) and (str(body["code"]) in str(error) if body else True)


def test_the_signed_url_includes_the_query_string() -> None:
    event = _event("webhooks-twilio-voice-gather.json")
    moved = {**event, "rawQueryString": urlencode({"locale": "en"})}
    assert verified_params(_request(moved), TOKEN) is None
