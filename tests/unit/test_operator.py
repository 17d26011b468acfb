"""The operator desk: tasks and outcomes are signed both ways (the samples in events/ are signed
with SAMPLE_SECRET at SAMPLE_TIME), a stale or forged outcome is refused, an outcome becomes the
signal it names, and the task carries what the operator needs to make the call."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.channels.base import Outgoing
from cascade.channels.operator import (
    OperatorChannel,
    parse_outcome,
    signature,
    signed_headers,
    task,
    to_signal,
    verify,
)
from cascade.errors import FieldError, PermanentSendError, RetryableSendError, SignatureInvalid, ValidationFailed

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_SECRET = "sample-operator-secret"
SAMPLE_TIME = 1795428000  # the samples' X-Cascade-Timestamp
SAMPLES = sorted(p.name for p in EVENTS.glob("webhooks-operator-*.json"))
DESK_SECRET = "desk-secret"


def _sample(name: str) -> tuple[dict[str, str], bytes]:
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return {k.lower(): v for k, v in event["headers"].items()}, event["body"].encode()


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"task_id":"op_c_1_3","outcome":"confirmed"}'
    # Computed independently: printf '1700000000.<body>' | openssl dgst -sha256 -hmac desk-secret
    assert signature("desk-secret", 1700000000, body) == (
        "v1=8429399f66b2ec5e41437a086577a234bf98bd5c85c87bb37d2c59cbe3b202d2")
    headers = signed_headers("desk-secret", body, now=1700000000.7)
    assert headers == {"X-Cascade-Timestamp": "1700000000", "X-Cascade-Signature": signature("desk-secret", 1700000000, body)}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_carries_a_valid_signature(name: str) -> None:
    headers, body = _sample(name)
    verify(headers, body, SAMPLE_SECRET, now=SAMPLE_TIME + 5)


def test_three_samples_one_per_outcome() -> None:
    assert [parse_outcome(_sample(n)[1]).outcome for n in SAMPLES] == ["confirmed", "failed", "replied"]


@pytest.mark.parametrize("drift", [-300, 0, 299, 300])
def test_a_timestamp_within_five_minutes_is_accepted(drift: int) -> None:
    headers, body = _sample("webhooks-operator-confirmed.json")
    verify(headers, body, SAMPLE_SECRET, now=SAMPLE_TIME + drift)


@pytest.mark.parametrize("drift", [301, 3600, -301])
def test_a_stale_or_future_timestamp_is_refused(drift: int) -> None:
    headers, body = _sample("webhooks-operator-confirmed.json")
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify(headers, body, SAMPLE_SECRET, now=SAMPLE_TIME + drift)


def test_a_missing_forged_or_replayed_signature_is_refused() -> None:
    headers, body = _sample("webhooks-operator-confirmed.json")
    stamp = headers["x-cascade-timestamp"]
    later = str(SAMPLE_TIME + 60)
    for bad_headers, bad_body, secret in [
        ({}, body, SAMPLE_SECRET),  # unsigned
        ({"x-cascade-signature": headers["x-cascade-signature"]}, body, SAMPLE_SECRET),  # no timestamp
        ({"x-cascade-timestamp": stamp}, body, SAMPLE_SECRET),  # no signature
        ({**headers, "x-cascade-signature": signature("someone-else", stamp, body)}, body, SAMPLE_SECRET),  # forged
        (headers, body.replace(b"confirmed", b"failed"), SAMPLE_SECRET),  # the body changed after signing
        ({**headers, "x-cascade-timestamp": later}, body, SAMPLE_SECRET),  # a new timestamp on an old signature
        ({**headers, "x-cascade-timestamp": "soon"}, body, SAMPLE_SECRET),
        (headers, body, ""),  # no secret configured: nothing is trusted
    ]:
        with pytest.raises(SignatureInvalid):
            verify(bad_headers, bad_body, secret, now=SAMPLE_TIME)


def test_during_a_secret_rotation_either_signature_is_accepted() -> None:
    headers, body = _sample("webhooks-operator-failed.json")
    stamp = headers["x-cascade-timestamp"]
    both = f"{signature('the-old-secret', stamp, body)}, {headers['x-cascade-signature']}"
    verify({**headers, "x-cascade-signature": both}, body, SAMPLE_SECRET, now=SAMPLE_TIME)


@pytest.mark.parametrize(("name", "signal"), [("webhooks-operator-confirmed.json", "confirmed"),
                                              ("webhooks-operator-replied.json", "replied"),
                                              ("webhooks-operator-failed.json", "failed")])
def test_an_outcome_is_the_signal_it_names_for_our_task(name: str, signal: str) -> None:
    sig = to_signal(parse_outcome(_sample(name)[1]))
    assert (sig.channel, sig.signal, sig.provider_message_id) == ("operator", signal, "op_c_0123456789abcdef01234567_3")
    assert sig.text  # the operator's note travels with the signal


def test_an_outcome_that_is_not_json_is_a_400_like_every_other_body() -> None:
    from cascade.http import HttpError

    with pytest.raises(HttpError) as caught:
        parse_outcome(b"not json")
    assert caught.value.status == 400 and caught.value.body["details"][0]["field"] == "body"


@pytest.mark.parametrize(("body", "field"), [
    (b"[1, 2]", "body"),
    (b'{"outcome": "confirmed"}', "task_id"),
    (b'{"task_id": "", "outcome": "confirmed"}', "task_id"),
    (b'{"task_id": "op_c_1_3"}', "outcome"),
    (b'{"task_id": "op_c_1_3", "outcome": "reached"}', "outcome"),
    (b'{"task_id": "op_c_1_3", "outcome": "failed", "note": 5}', "note"),
])
def test_a_malformed_outcome_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises((FieldError, ValidationFailed)) as caught:
        parse_outcome(body)
    assert field in [d["field"] for d in caught.value.details]  # type: ignore[attr-defined]


def _message(**context: Any) -> Outgoing:
    history = [{"step": i, "channel": "sms", "status": "sent", "sent_at": f"2026-11-2{i}T10:00:00Z"} for i in range(3)]
    return Outgoing(
        cascade_id="c_abc", step=3, to="+77011234567", locale="ru", api_base="https://api.example.com",
        text="VIP-заказ 1001 не доставлен. Позвоните клиенту.",
        context={"recipient": {"id": "cust-1", "name": "Анна", "phone": "+77011234567", "locale": "ru",
                               "timezone": "Asia/Almaty", "telegram_chat_id": "42"},
                 "data": {"order_id": "1001", "priority": "vip"},
                 "scenario": {"id": "delivery-failed", "name": "Delivery failed", "purpose": "transactional"},
                 "history": history, **context})


def test_the_task_carries_who_why_what_was_sent_and_where_to_answer() -> None:
    body = task(_message(), now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    assert body["task_id"] == "op_c_abc_3"
    assert (body["cascade_id"], body["step"]) == ("c_abc", 3)
    assert body["scenario"] == {"id": "delivery-failed", "name": "Delivery failed"}
    # The script as the step rendered it: the scenario's name is in its own field, not glued on.
    assert body["reason"] == "VIP-заказ 1001 не доставлен. Позвоните клиенту."
    # Only what an operator needs of the recipient (no messenger ids).
    assert body["recipient"] == {"id": "cust-1", "name": "Анна", "phone": "+77011234567", "email": None,
                                 "locale": "ru", "timezone": "Asia/Almaty"}
    assert body["data"] == {"order_id": "1001", "priority": "vip"}
    assert [(h["channel"], h["status"], h["sent_at"]) for h in body["history"]] == [
        ("sms", "sent", "2026-11-20T10:00:00Z"), ("sms", "sent", "2026-11-21T10:00:00Z"),
        ("sms", "sent", "2026-11-22T10:00:00Z")]
    assert body["callback_url"] == "https://api.example.com/webhooks/operator"
    assert body["created_at"] == "2026-11-24T12:00:00Z"


def test_the_task_reads_in_the_customers_language_with_steps_from_1_and_local_times() -> None:
    body = task(_message(steps_total=4), now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    # The API's indexes stay; the person reads steps from 1.
    assert (body["step"], body["step_number"]) == (3, 4)
    assert [(h["step"], h["step_number"]) for h in body["history"]] == [(0, 1), (1, 2), (2, 3)]
    assert body["text"].splitlines() == [
        "Позвонить клиенту · Delivery failed · шаг 4 из 4",
        "Клиент: Анна, +77011234567",
        "Местное время клиента: 24 ноября, 17:00",  # Asia/Almaty is UTC+5
        "VIP-заказ 1001 не доставлен. Позвоните клиенту.",
        "Что уже было:",
        "Шаг 1 · SMS · отправлено · 20 ноября, 15:00",
        "Шаг 2 · SMS · отправлено · 21 ноября, 15:00",
        "Шаг 3 · SMS · отправлено · 22 ноября, 15:00",
    ]


@pytest.mark.parametrize(("locale", "first", "tried"), [
    ("uk", "Зателефонувати клієнту · Delivery failed · крок 4 з 4", "Крок 1 · SMS · надіслано · 20 листопада, 15:00"),
    ("en", "Call the customer · Delivery failed · step 4 of 4", "Step 1 · SMS · sent · November 20, 3:00 PM"),
    ("kk", "Клиентке қоңырау шалу · Delivery failed · 4 қадамның 4-қадамы", "1-қадам · SMS · жіберілді · 20 қараша, 15:00"),
])
def test_the_task_speaks_each_locale(locale: str, first: str, tried: str) -> None:
    message = dataclasses.replace(_message(steps_total=4), locale=locale)
    lines = task(message, now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC))["text"].splitlines()
    assert (lines[0], lines[5]) == (first, tried)


class _Desk:
    """The far end of the HTTP call (httpx's MockTransport): checks our signature like a CRM would."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status, self.headers = status, headers or {}
        self.received: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        stamp = request.headers["x-cascade-timestamp"]
        mac = hmac.new(b"desk-secret", stamp.encode() + b"." + request.content, hashlib.sha256).hexdigest()
        assert request.headers["x-cascade-signature"] == f"v1={mac}"
        assert request.headers["content-type"] == "application/json"
        self.received.append(json.loads(request.content))
        return httpx.Response(self.status, headers=self.headers, json={"ticket_id": "T-1"})


def _channel(desk: _Desk, url: str = "https://crm.example.com/tasks", secret: str = DESK_SECRET) -> OperatorChannel:
    return OperatorChannel(httpx.Client(transport=httpx.MockTransport(desk)), url, secret)


def test_an_accepted_task_keeps_our_task_id() -> None:
    desk = _Desk(201)
    sent = _channel(desk).send(_message())
    assert sent.provider_message_id == "op_c_abc_3"
    assert desk.received[0]["task_id"] == "op_c_abc_3"


@pytest.mark.parametrize(("status", "headers", "error", "retry_after"), [
    (429, {"retry-after": "1"}, RetryableSendError, 1.0),
    (500, {}, RetryableSendError, None),
    (503, {}, RetryableSendError, None),
    (400, {}, PermanentSendError, None),
    (401, {}, PermanentSendError, None),
    (404, {}, PermanentSendError, None),
])
def test_the_desks_refusals(status: int, headers: dict[str, str], error: type[Exception],
                            retry_after: float | None) -> None:
    with pytest.raises(error) as caught:
        _channel(_Desk(status, headers)).send(_message())
    assert getattr(caught.value, "retry_after", None) == retry_after


@pytest.mark.parametrize(("url", "secret"), [("", "desk-secret"), ("https://crm.example.com/tasks", "")])
def test_without_a_desk_or_a_secret_the_task_fails_for_good(url: str, secret: str) -> None:
    desk = _Desk(201)
    with pytest.raises(PermanentSendError):
        _channel(desk, url, secret).send(_message())
    assert desk.received == []


def test_the_channel_never_shows_its_secret() -> None:
    assert "desk-secret" not in repr(_channel(_Desk(201)))
