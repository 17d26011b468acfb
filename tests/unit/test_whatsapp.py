"""WhatsApp: signed webhooks (the samples in events/ are signed with SAMPLE_SECRET), Meta's
verification handshake, what each status and inbound message means, the 24 h window, and how the
Cloud API's answers are judged (against the local stand-in, a real HTTP server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.channels.base import Outgoing
from cascade.channels.whatsapp import (
    REENGAGEMENT_REQUIRED,
    ReengagementRequired,
    WhatsAppChannel,
    check_signature,
    graph_base,
    graph_error,
    parse_notification,
    reply_signal,
    signature,
    status_signal,
    template_payload,
    text_payload,
    verify_subscription,
    window_open,
)
from cascade.errors import PermanentSendError, RetryableSendError, SignatureInvalid

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_SECRET = "sample-whatsapp-app-secret"
WAMID = "wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
POSTS = sorted(p.name for p in EVENTS.glob("webhooks-whatsapp-*.json") if p.name != "webhooks-whatsapp-verify.json")


def _event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text(encoding="utf-8")))


def _sample(name: str) -> tuple[dict[str, str], bytes]:
    event = _event(name)
    return {k.lower(): v for k, v in event["headers"].items()}, event["body"].encode()


def _parsed(name: str) -> Any:
    return parse_notification(json.loads(_sample(name)[1]))


@pytest.mark.parametrize("name", POSTS)
def test_every_sample_carries_a_valid_signature(name: str) -> None:
    headers, body = _sample(name)
    check_signature(headers, body, SAMPLE_SECRET)


def test_a_missing_forged_or_stale_signature_is_refused() -> None:
    headers, body = _sample("webhooks-whatsapp-read.json")
    for bad_headers, bad_body, secret in [
        ({}, body, SAMPLE_SECRET),  # unsigned
        ({"x-hub-signature-256": signature(body, "someone-else")}, body, SAMPLE_SECRET),  # forged
        ({"x-hub-signature-256": signature(body, SAMPLE_SECRET)[7:]}, body, SAMPLE_SECRET),  # no "sha256=" prefix
        (headers, body.replace(b'"read"', b'"failed"'), SAMPLE_SECRET),  # the body changed after signing
        (headers, body, ""),  # no app secret configured: nothing is trusted
    ]:
        with pytest.raises(SignatureInvalid):
            check_signature(bad_headers, bad_body, secret)


def test_the_verification_handshake_echoes_the_challenge_only_for_our_verify_token() -> None:
    query = dict(parse_qsl(_event("webhooks-whatsapp-verify.json")["rawQueryString"]))
    assert verify_subscription(query, "sample-verify-token") == "1158201444"
    assert verify_subscription(query, "another-token") is None
    assert verify_subscription({**query, "hub.mode": "unsubscribe"}, "sample-verify-token") is None
    assert verify_subscription(query, "") is None  # no verify token configured: no handshake succeeds


@pytest.mark.parametrize(("name", "signal", "code"), [
    ("webhooks-whatsapp-delivered.json", "delivered", None), ("webhooks-whatsapp-read.json", "read", None),
    ("webhooks-whatsapp-failed.json", "failed", 131026),
    ("webhooks-whatsapp-reengagement.json", "failed", REENGAGEMENT_REQUIRED)])
def test_a_status_is_a_signal_for_that_wamid_carrying_the_step_identity(name: str, signal: str, code: int | None) -> None:
    note = _parsed(name)
    assert note.messages() == []
    (status,) = note.statuses()
    sig = status_signal(status)
    assert sig is not None
    assert (sig.channel, sig.signal, sig.provider_message_id) == ("whatsapp", signal, WAMID)
    assert sig.chat_id is None  # a status for a message we never sent must not hit another one
    assert sig.detail["biz_opaque_callback_data"] == "c_9f2a3b4c5d6e7f8091a2b3c4:1"
    assert sig.detail.get("error_code") == code


def test_sent_tells_nothing_new() -> None:
    raw = json.loads(_sample("webhooks-whatsapp-delivered.json")[1])
    raw["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "sent"
    assert status_signal(parse_notification(raw).statuses()[0]) is None


def test_a_text_quoting_our_message_is_a_reply_to_it_with_the_text() -> None:
    (message,) = _parsed("webhooks-whatsapp-text.json").messages()
    assert message.timestamp == 1795428120  # when the customer wrote: the start of the 24 h window
    sig = reply_signal(message)
    assert (sig.signal, sig.provider_message_id, sig.chat_id, sig.text) == (
        "replied", WAMID, "+14155550123", "Is the discount still on?")


def test_a_template_quick_reply_is_a_reply_with_the_buttons_text() -> None:
    sig = reply_signal(_parsed("webhooks-whatsapp-button.json").messages()[0])
    assert (sig.signal, sig.text, sig.detail["message_type"]) == ("replied", "Stop promotions", "button")


def test_a_message_quoting_nothing_belongs_to_the_senders_number() -> None:
    note = parse_notification({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [
        {"from": "77011234567", "id": "wamid.x", "timestamp": "1795428000", "type": "interactive",
         "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Yes"}}}]}}]}]})
    sig = reply_signal(note.messages()[0])
    assert (sig.provider_message_id, sig.chat_id, sig.text) == (None, "+77011234567", "Yes")


@pytest.mark.parametrize(("raw", "field"), [
    ({"entry": "x"}, "entry"),
    ({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": [{"status": "read"}]}}]}]},
     "entry[0].changes[0].value.statuses[0].id"),
    ({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [
        {"id": "wamid.x", "timestamp": "1", "type": "text"}]}}]}]}, "entry[0].changes[0].value.messages[0]"),
    ({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [
        {"from": "1", "id": "wamid.x", "timestamp": "yesterday", "type": "text"}]}}]}]},
     "entry[0].changes[0].value.messages[0].timestamp"),
    ([1, 2], "entry"),
    ({"entry": [{"changes": [{"value": {"contacts": [{"user_id": {"x": 1}}, 7], "statuses": [{"status": "read"}]}}]}]},
     "entry[0].changes[0].value.statuses[0].id"),
])
def test_an_unusable_part_of_a_notification_is_skipped_and_named(raw: Any, field: str) -> None:
    note = parse_notification(raw)
    assert note.statuses() == [] and note.messages() == []
    assert len(note.skipped) == 1 and note.skipped[0].startswith(field)


def test_a_message_from_a_customer_with_a_username_has_no_number_but_a_user_id() -> None:
    note = parse_notification({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "contacts": [{"profile": {"name": "Sam", "username": "@sam"}, "user_id": "US.13491208655302741918"}],
        "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.x", "timestamp": "1", "type": "text",
                      "text": {"body": "Yes"}}],
        "statuses": [{"id": "wamid.y", "status": "read", "timestamp": "1"}]}}]}]})
    (message,) = note.messages()
    assert (message.sender, message.chat) == (None, "US.13491208655302741918")
    assert reply_signal(message).chat_id == "US.13491208655302741918"
    assert note.statuses()[0].recipient_user_id == "US.13491208655302741918"  # from the value's contacts


def test_the_window_lasts_24_hours_of_cascade_time() -> None:
    now = 1_800_000_000.0
    assert not window_open(None, now)
    assert window_open(int(now) - 23 * 3600, now)
    assert not window_open(int(now) - 24 * 3600, now)
    # The local stack runs 14400 cascade seconds per real second: 24 h there is 6 s.
    assert window_open(int(now) - 5, now, 14400) and not window_open(int(now) - 6, now, 14400)


def _message(**context: Any) -> Outgoing:
    return Outgoing(cascade_id="c_1", step=1, to="+14155550123", text="Your cart is still waiting",
                    context={"whatsapp_template": {"name": "cart_reminder", "language": "en",
                                                   "params": ["https://api.test/r/abc"]}, **context})


def test_free_text_and_template_payloads_have_the_cloud_api_shape() -> None:
    assert text_payload(_message()) == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "14155550123", "type": "text",
        "biz_opaque_callback_data": "c_1:1", "text": {"preview_url": False, "body": "Your cart is still waiting"}}
    assert template_payload(_message())["template"] == {
        "name": "cart_reminder", "language": {"code": "en"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "https://api.test/r/abc"}]}]}
    with pytest.raises(PermanentSendError):
        template_payload(Outgoing(cascade_id="c_1", step=1, to="+1", text="x"))


@pytest.mark.parametrize(("status", "code", "kind"), [
    (400, 130429, RetryableSendError), (400, 131056, RetryableSendError), (400, 80007, RetryableSendError),
    (500, 1, RetryableSendError), (503, 2, RetryableSendError), (429, None, RetryableSendError),
    (502, None, RetryableSendError), (400, 131026, PermanentSendError), (400, 131051, PermanentSendError),
    (400, 131009, PermanentSendError), (400, 100, PermanentSendError), (401, 190, PermanentSendError),
    (400, 131030, PermanentSendError), (400, 131047, ReengagementRequired)])
def test_graph_errors_are_judged_by_their_code(status: int, code: int | None, kind: type) -> None:
    body = {"error": {"message": f"(#{code}) something", "type": "OAuthException", "code": code, "fbtrace_id": "A1"}}
    error = graph_error(status, body if code is not None else None, "whatsapp text")
    assert type(error) is kind
    assert (str(code) in str(error)) if code is not None else str(status) in str(error)


@pytest.fixture
def wa() -> Iterator[Any]:
    """The local Cloud API on its own (no stack, so no webhooks): a real HTTP API to send to."""
    from cascade.local.whatsapp import WhatsAppStandIn

    standin = WhatsAppStandIn()
    standin.approved = {"cart_reminder": 1}
    standin.start()
    yield standin
    standin.stop()


def _channel(wa: Any, token: str | None = None) -> WhatsAppChannel:
    return WhatsAppChannel(httpx.Client(timeout=5), f"{wa.url}/v21.0", wa.phone_number_id,
                           wa.access_token if token is None else token)


def test_send_posts_the_template_and_keeps_the_wamid(wa: Any) -> None:
    sent = _channel(wa).send(_message(whatsapp_send="template"))
    accepted = wa.find(sent.provider_message_id)
    assert sent.provider_message_id.startswith("wamid.") and accepted is not None
    assert accepted["payload"]["template"]["name"] == "cart_reminder" and accepted["wa_id"] == "14155550123"
    assert accepted["biz_opaque_callback_data"] == "c_1:1"
    assert wa.outbox()[0]["text"] == "[cart_reminder] https://api.test/r/abc"


@pytest.mark.parametrize("version", ["v26.0", "v30.0"])
def test_the_graph_api_version_is_a_setting_and_the_cloud_api_takes_any(wa: Any, version: str) -> None:
    from cascade.settings import Settings

    channel = WhatsAppChannel(httpx.Client(timeout=5), wa.url, wa.phone_number_id, wa.access_token,
                              api_version=version)
    assert channel.api_base == f"{wa.url}/{version}"
    assert wa.find(channel.send(_message(whatsapp_send="template")).provider_message_id) is not None
    assert Settings.model_validate({"TABLE_NAME": "t", "WHATSAPP_API_VERSION": "v30.0"}).whatsapp_api_version == "v30.0"
    assert Settings.model_validate({"TABLE_NAME": "t"}).whatsapp_api_base == "https://graph.facebook.com"
    with pytest.raises(ValueError, match="WHATSAPP_API_VERSION"):
        Settings.model_validate({"TABLE_NAME": "t", "WHATSAPP_API_VERSION": "26"})
    assert graph_base("https://graph.facebook.com/v21.0/", "v26.0") == "https://graph.facebook.com/v21.0"  # as before


def test_the_cloud_api_refuses_what_it_would_refuse(wa: Any) -> None:
    with pytest.raises(PermanentSendError, match="190"):
        _channel(wa, token="EAAG-wrong").send(_message())
    unknown = _message(whatsapp_send="template", whatsapp_template={"name": "no_such", "language": "en", "params": []})
    with pytest.raises(PermanentSendError, match="132001"):
        _channel(wa).send(unknown)
    with pytest.raises(PermanentSendError, match="100"):
        _channel(wa).send(Outgoing(cascade_id="c_1", step=1, to="+14155550123", text=" "))
    assert wa.messages == []


@pytest.mark.parametrize(("mode", "kind", "code"), [("500", RetryableSendError, "code 2"),
                                                    ("429", RetryableSendError, "130429"),
                                                    ("reject", PermanentSendError, "131026")])
def test_injected_faults_answer_as_the_cloud_api(wa: Any, mode: str, kind: type, code: str) -> None:
    from cascade.local.faults import FAULTS

    FAULTS.set("whatsapp", mode, 1)
    try:
        with pytest.raises(kind, match=code):
            _channel(wa).send(_message(whatsapp_send="template"))
    finally:
        FAULTS.clear()
    assert wa.messages == []


def test_a_free_text_refused_at_once_with_131047_goes_out_as_the_template() -> None:
    asked: list[dict[str, Any]] = []

    def cloud_api(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        asked.append(payload)
        if payload["type"] == "text":
            return httpx.Response(400, json={"error": {"message": "(#131047) Re-engagement message",
                                                       "type": "OAuthException", "code": 131047, "fbtrace_id": "A1"}})
        return httpx.Response(200, json={"messaging_product": "whatsapp", "contacts": [
            {"input": "14155550123", "wa_id": "14155550123"}], "messages": [{"id": "wamid.T"}]})

    channel = WhatsAppChannel(httpx.Client(transport=httpx.MockTransport(cloud_api)), "https://graph.test/v21.0",
                              "106540352242922", "EAAG-token")
    assert channel.send(_message(whatsapp_send="text")).provider_message_id == "wamid.T"
    assert [p["type"] for p in asked] == ["text", "template"]
    no_template = Outgoing(cascade_id="c_1", step=1, to="+14155550123", text="hi", context={"whatsapp_send": "text"})
    with pytest.raises(ReengagementRequired):
        channel.send(no_template)
    assert "EAAG-token" not in repr(channel)


def test_the_username_sample_is_a_reply_from_a_bsuid_with_no_number() -> None:
    (message,) = _parsed("webhooks-whatsapp-username.json").messages()
    sig = reply_signal(message)
    assert (message.sender, sig.chat_id, sig.text) == (None, "US.13491208655302741918", "Is the discount still on?")


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["entry", "changes", "value", "statuses", "messages", "contacts", "id",
                                          "status", "from", "from_user_id", "user_id", "wa_id", "timestamp",
                                          "type", "text", "body", "recipient_id", "errors", "code"]),
                         inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_signed_json_is_read_without_an_error(raw: Any) -> None:
    note = parse_notification(raw)  # never raises: what cannot be used is skipped
    assert all(m.sender or m.from_user_id for m in note.messages())
