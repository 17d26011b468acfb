"""Contact hygiene without the stack: which provider answers mean "this contact is invalid", and
the contacts report's cursor (a made-up one is a 422 naming it, never a 5xx)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from cascade import aggregate
from cascade.channels.email import parse_ses_event
from cascade.channels.telegram import invalid_chat
from cascade.channels.twilio_api import send_error
from cascade.channels.twilio_sms import parse_message_event
from cascade.channels.viber import status_error
from cascade.channels.whatsapp import graph_error
from cascade.contacts import _decode, _encode, mark_invalid, report_csv, screen
from cascade.errors import FieldError, PermanentSendError
from cascade.store import CascadeStore


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


# -- the counts the aggregator keeps (a real moto table) -------------------------------------------


@pytest.fixture
def counted(store: CascadeStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[CascadeStore]:
    from cascade.settings import settings

    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("INACTIVE_AFTER_SENDS", "3")
    settings.cache_clear()
    yield store
    settings.cache_clear()


def _count(store: CascadeStore, marker: str, event: str, at: str) -> bool:
    contact = {"recipient_id": "r1", "channel": "email", "at": at, "event": event}
    return aggregate.apply(aggregate.Change(marker, "s", "2026-11-29", {"x": 1}, None, contact), store)


def test_sends_without_a_reaction_make_the_contact_inactive_and_a_reaction_clears_it(counted: CascadeStore) -> None:
    for n in range(3):
        assert _count(counted, f"send-{n}", "sent", f"2026-11-29T10:0{n}:00Z")
    assert not _count(counted, "send-2", "sent", "2026-11-29T10:02:00Z")  # a replayed record counts nothing
    item = counted.contact_health("r1")["email"]
    assert (item["sends"], item["hl"], item["inactive_since"]) == (3, "inactive", "2026-11-29T10:02:00Z")
    assert _count(counted, "read-1", "reaction", "2026-11-29T11:00:00Z")
    item = counted.contact_health("r1")["email"]
    assert item["sends"] == 0 and "hl" not in item and "inactive_since" not in item


def test_a_send_whose_record_comes_after_a_later_reaction_is_not_counted(counted: CascadeStore) -> None:
    assert _count(counted, "read-1", "reaction", "2026-11-29T10:00:05Z")
    assert _count(counted, "send-1", "sent", "2026-11-29T10:00:01Z")  # the send the customer read
    assert counted.contact_health("r1")["email"]["sends"] == 0
    assert _count(counted, "send-2", "sent", "2026-11-29T10:30:00Z")
    assert counted.contact_health("r1")["email"]["sends"] == 1


def test_a_contact_marked_invalid_is_lifted_by_another_value_only(counted: CascadeStore) -> None:
    recipient = {"id": "r1", "email": "old@example.com"}
    assert mark_invalid(counted, "r1", "email", "old@example.com", "hard_bounce")
    assert not mark_invalid(counted, "r1", "email", "old@example.com", "hard_bounce")  # once
    item = counted.contact_health("r1")["email"]
    assert (item["hl"], item["contact"]) == ("invalid", "ol***@example.com")
    assert "old@example.com" not in str(item)
    assert screen(counted, recipient, ["email"]).invalid("email")
    assert not screen(counted, {**recipient, "email": "new@example.com"}, ["email"]).invalid("email")
    item = counted.contact_health("r1")["email"]
    assert "invalid_hash" not in item and "hl" not in item and item["contact"] == "ne***@example.com"
