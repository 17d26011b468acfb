"""Contact hygiene without the stack: which provider answers mean "this contact is invalid", and
the contacts report's cursor (a made-up one is a 422 naming it, never a 5xx)."""

from __future__ import annotations

import base64
import json

import pytest

from cascade.channels.email import parse_ses_event
from cascade.channels.telegram import invalid_chat
from cascade.channels.twilio_api import send_error
from cascade.channels.twilio_sms import parse_message_event
from cascade.channels.viber import status_error
from cascade.channels.whatsapp import graph_error
from cascade.contacts import _decode, _encode, report_csv
from cascade.errors import FieldError, PermanentSendError


@pytest.mark.parametrize(("code", "invalid"), [(21211, "invalid_number"), (21614, "invalid_number"),
                                               (21217, "invalid_number"), (21610, None), (21612, None),
                                               (21606, None)])
def test_twilio_codes_that_mean_an_invalid_number(code: int, invalid: str | None) -> None:
    exc = send_error(400, {"code": code, "message": "The 'To' number +14155550100 is not valid"}, None, "twilio")
    assert isinstance(exc, PermanentSendError) and exc.invalid_contact == invalid
    assert "+1415" not in str(exc)  # Twilio's message quotes the number: only the code is kept


@pytest.mark.parametrize(("error_code", "invalid"), [("30005", "invalid_number"), ("30006", "invalid_number"),
                                                     ("30003", None), (None, None)])
def test_twilio_delivery_errors_that_mean_an_invalid_number(error_code: str | None, invalid: str | None) -> None:
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "undelivered",
              **({"ErrorCode": error_code} if error_code else {})}
    sig = parse_message_event(params)
    assert sig is not None and sig.signal == "failed" and sig.detail.get("invalid_contact") == invalid


def test_whatsapp_131026_is_an_invalid_contact_and_other_refusals_are_not() -> None:
    assert graph_error(400, {"error": {"code": 131026}}, "wa").invalid_contact == "not_on_whatsapp"  # type: ignore[attr-defined]
    assert graph_error(400, {"error": {"code": 131009}}, "wa").invalid_contact is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("status", "description", "invalid"), [
    (403, "Forbidden: bot was blocked by the user", "bot_blocked"),
    (403, "Forbidden: user is deactivated", "user_deactivated"),
    (400, "Bad Request: chat not found", "chat_not_found"),
    (400, "Bad Request: message text is empty", None),
    (401, "Unauthorized", None)])
def test_telegram_refusals_that_mean_the_chat_is_gone(status: int, description: str, invalid: str | None) -> None:
    assert invalid_chat(status, description) == invalid


def test_viber_not_subscribed_or_not_registered_is_invalid_and_rate_control_is_retried() -> None:
    assert status_error(6, "receiverNotSubscribed").invalid_contact == "not_subscribed"  # type: ignore[attr-defined]
    assert status_error(5, "receiverNotRegistered").invalid_contact == "not_registered"  # type: ignore[attr-defined]
    assert not isinstance(status_error(12, "tooManyRequests"), PermanentSendError)


def test_ses_hard_bounce_and_complaint() -> None:
    mail = {"messageId": "m-1"}
    bounce = parse_ses_event({"eventType": "Bounce", "mail": mail, "bounce": {"bounceType": "Permanent"}})
    complaint = parse_ses_event({"eventType": "Complaint", "mail": mail, "complaint": {}})
    soft = parse_ses_event({"eventType": "Bounce", "mail": mail, "bounce": {"bounceType": "Transient"}})
    assert bounce is not None and bounce.detail["invalid_contact"] == "hard_bounce"
    assert complaint is not None and complaint.detail["complaint"] is True and "invalid_contact" not in complaint.detail
    assert soft is None


def test_a_cursor_comes_back_as_it_went_and_a_made_up_one_is_refused() -> None:
    key = {"pk": {"S": "R#a"}, "sk": {"S": "CONTACT#email"}, "hl": {"S": "invalid"}, "hlk": {"S": "2026#a#email"}}
    assert _decode(_encode("invalid", key)) == ("invalid", key)
    assert _decode(_encode("inactive", None)) == ("inactive", None)
    forged = base64.urlsafe_b64encode(json.dumps({"state": "invalid", "key": {"pk": {"N": "1"}}}).encode()).decode()
    for bad in ("not-a-cursor", "", forged, _encode("stale", None)):
        with pytest.raises(FieldError) as err:
            _decode(bad)
        assert err.value.details[0]["field"] == "cursor"


def test_the_csv_keeps_spreadsheets_from_running_a_masked_phone_as_a_formula() -> None:
    text = report_csv({"items": [{"recipient_id": "=cmd()", "channel": "sms", "contact": "+7*******67",
                                  "state": "invalid", "reason": "invalid_number", "since": "2026-11-29T10:00:00Z",
                                  "sends_without_reaction": 0}]})
    assert text.splitlines()[1].startswith("'=cmd(),sms,'+7*******67,invalid")
