"""Viber: signed callbacks (the sample events in events/ are signed with SAMPLE_TOKEN), what each
event means, how send answers are judged, and the keyboard and binding link we produce."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cascade.channels.base import Outgoing
from cascade.channels.viber import (
    ViberChannel,
    check_signature,
    keyboard,
    parse_event,
    signature,
    status_error,
    to_signal,
    welcome,
)
from cascade.errors import FieldError, PermanentSendError, RetryableSendError, SignatureInvalid, ValidationFailed

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_TOKEN = "sample-viber-auth-token"  # what the samples are signed with
SAMPLES = sorted(p.name for p in EVENTS.glob("webhooks-viber-*.json"))


def _sample(name: str) -> tuple[dict[str, str], bytes]:
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return {k.lower(): v for k, v in event["headers"].items()}, event["body"].encode()


def _parsed(name: str) -> Any:
    return parse_event(json.loads(_sample(name)[1]))


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_carries_a_valid_signature(name: str) -> None:
    headers, body = _sample(name)
    check_signature(headers, body, SAMPLE_TOKEN)


def test_a_missing_forged_or_stale_signature_is_refused() -> None:
    headers, body = _sample("webhooks-viber-seen.json")
    for bad_headers, bad_body, token in [
        ({}, body, SAMPLE_TOKEN),  # unsigned
        ({"x-viber-content-signature": signature(body, "someone-else")}, body, SAMPLE_TOKEN),  # forged
        (headers, body.replace(b"seen", b"failed"), SAMPLE_TOKEN),  # the body changed after signing
        (headers, body, ""),  # no token configured: nothing is trusted
    ]:
        with pytest.raises(SignatureInvalid):
            check_signature(bad_headers, bad_body, token)


def test_seen_is_a_read_signal_for_that_message_token() -> None:
    sig = to_signal(_parsed("webhooks-viber-seen.json"))
    assert sig is not None
    assert (sig.channel, sig.signal, sig.provider_message_id) == ("viber", "read", "5491266184665523145")
    assert sig.chat_id is None  # a receipt for a message we never sent must not hit another one


def test_failed_is_a_failed_signal_with_vibers_reason() -> None:
    sig = to_signal(_parsed("webhooks-viber-failed.json"))
    assert sig is not None and (sig.signal, sig.provider_message_id) == ("failed", "5491266184665523145")
    assert sig.detail["desc"] == "failure description"


def test_a_text_message_is_a_reply_from_the_senders_chat() -> None:
    sig = to_signal(_parsed("webhooks-viber-message.json"))
    assert sig is not None
    assert (sig.signal, sig.text, sig.chat_id, sig.provider_message_id) == ("replied", "ПЕРЕНОС", "01234567890A=", None)
    assert sig.detail["tracking_data"] == "c_9f2a:0"


def test_a_keyboard_press_is_the_buttons_signal() -> None:
    sig = to_signal(_parsed("webhooks-viber-keyboard.json"))
    assert sig is not None and (sig.signal, sig.chat_id) == ("confirmed", "01234567890A=")
    # Typing "sig:" by hand with an unknown signal is just a reply.
    typed = parse_event({"event": "message", "sender": {"id": "u1"}, "message": {"type": "text", "text": "sig:pay"}})
    assert to_signal(typed).signal == "replied"  # type: ignore[union-attr]


def test_conversation_started_carries_the_binding_token_and_the_user() -> None:
    event = _parsed("webhooks-viber-conversation-started.json")
    assert event.context == "Zm9yLXRoZS1zYW1wbGUtb25seS0xMjM0NTY3OA"
    assert event.user is not None and (event.user.id, event.user.language) == ("01234567890A=", "ru")
    assert to_signal(event) is None


def test_unsubscribed_names_the_user_who_left() -> None:
    event = _parsed("webhooks-viber-unsubscribed.json")
    assert event.user_id == "01234567890A=" and to_signal(event) is None  # handled on its own: see opt_out


def test_set_webhooks_check_is_no_signal() -> None:
    assert to_signal(_parsed("webhooks-viber-webhook.json")) is None


@pytest.mark.parametrize(("raw", "field"), [
    ({"event": "seen", "user_id": "u"}, "message_token"),
    ({"event": "message", "sender": {"id": "u"}}, "message"),
    ({"event": "message", "sender": {"name": "x"}, "message": {"type": "text"}}, "sender.id"),
    ({"event": "conversation_started", "context": "t"}, "user"),
    ({"event": "unsubscribed"}, "user_id"),
    ({"timestamp": 1}, "event"),
    ([1, 2], "body"),
])
def test_a_malformed_event_names_the_field(raw: Any, field: str) -> None:
    with pytest.raises((FieldError, ValidationFailed)) as caught:
        parse_event(raw)
    assert isinstance(caught.value, (FieldError, ValidationFailed))
    assert caught.value.details[0]["field"] == field


def test_an_unknown_event_parses_and_is_ignored() -> None:
    assert to_signal(parse_event({"event": "client_status", "timestamp": 1})) is None


@pytest.mark.parametrize(("status", "kind"), [
    (12, RetryableSendError), (5, PermanentSendError), (6, PermanentSendError), (7, PermanentSendError),
    (10, PermanentSendError), (11, PermanentSendError), (2, PermanentSendError), (99, PermanentSendError),
    (None, PermanentSendError)])
def test_viber_statuses_are_judged(status: Any, kind: type) -> None:
    assert isinstance(status_error(status, None), kind)


def test_buttons_become_a_reply_keyboard() -> None:
    kb = keyboard([("Подтверждаю", "confirmed"), ("Перенести", "replied")])
    assert kb["Type"] == "keyboard"
    assert [(b["ActionType"], b["ActionBody"], b["Text"], b["Columns"]) for b in kb["Buttons"]] == [
        ("reply", "sig:confirmed", "Подтверждаю", 3), ("reply", "sig:replied", "Перенести", 3)]


def test_the_welcome_speaks_the_users_language_and_needs_a_sender_name() -> None:
    ru = welcome("ru", "Клиника Архимед, отделение кардиологии")
    assert ru is not None and ru["text"].startswith("Спасибо") and len(ru["sender"]["name"]) == 28
    assert welcome("en", "Clinic")["text"].startswith("Thank you")  # type: ignore[index]
    assert welcome("ru", "") is None


@pytest.fixture
def viber() -> Iterator[Any]:
    """The local Viber stand-in on its own (no stack): a real HTTP API to send to."""
    from cascade.local.viber import ViberStandIn

    standin = ViberStandIn()
    standin.start()
    yield standin
    standin.stop()


def _message(to: str, buttons: list[tuple[str, str]] | None = None) -> Outgoing:
    return Outgoing(cascade_id="c_1", step=0, to=to, text="Напоминаем о приёме", buttons=buttons or [])


def test_send_hands_the_message_to_a_subscriber_and_keeps_the_token(viber: Any) -> None:
    import httpx

    viber.subscribers.add("user-1=")
    channel = ViberChannel(httpx.Client(timeout=5), f"{viber.url}/pa", viber.auth_token, "Cascade")
    sent = channel.send(_message("user-1=", [("Confirm", "confirmed")]))
    on_phone = viber.find(sent.provider_message_id)
    assert on_phone is not None and on_phone["receiver"] == "user-1=" and on_phone["tracking_data"] == "c_1:0"
    assert on_phone["keyboard"]["Buttons"][0]["ActionBody"] == "sig:confirmed"
    assert sent.provider_message_id.isdigit() and sent.chat_id == "user-1="
    with pytest.raises(PermanentSendError, match="receiverNotSubscribed"):
        channel.send(_message("stranger="))
    with pytest.raises(PermanentSendError, match="invalidAuthToken"):
        ViberChannel(httpx.Client(timeout=5), f"{viber.url}/pa", "wrong", "Cascade").send(_message("user-1="))
    with pytest.raises(PermanentSendError, match="sender name"):
        ViberChannel(httpx.Client(timeout=5), f"{viber.url}/pa", viber.auth_token, "").send(_message("user-1="))


@pytest.mark.parametrize(("mode", "retry_after"), [("500", None), ("429", 1.0)])
def test_a_viber_server_error_or_throttle_is_retryable(viber: Any, mode: str, retry_after: float | None) -> None:
    import httpx

    from cascade.local.faults import FAULTS

    viber.subscribers.add("user-1=")
    channel = ViberChannel(httpx.Client(timeout=5), f"{viber.url}/pa", viber.auth_token, "Cascade")
    FAULTS.set("viber", mode, 1)
    try:
        with pytest.raises(RetryableSendError) as caught:
            channel.send(_message("user-1="))
    finally:
        FAULTS.clear()
    assert caught.value.retry_after == retry_after
    assert viber.messages == []


def test_a_viber_binding_link_needs_the_chat_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.binding import deep_link
    from cascade.settings import settings

    monkeypatch.setenv("TABLE_NAME", os.environ.get("TABLE_NAME", "unit"))
    monkeypatch.setenv("VIBER_CHAT_URI", "")
    settings.cache_clear()
    try:
        with pytest.raises(FieldError) as caught:
            deep_link("r1", "viber", store=object())  # type: ignore[arg-type]
    finally:
        monkeypatch.undo()
        settings.cache_clear()
    assert caught.value.details[0]["field"] == "channel"
