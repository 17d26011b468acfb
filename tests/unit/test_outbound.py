"""CRM events from the table's stream: which records become which events (and which none), what an
event carries (never a contact or a secret), ids that stay the same when a record comes again,
the signature a receiver checks, and delivery: retries with backoff, a refusal dropped, and a
record that keeps failing handed back to the stream with nothing after it sent, so the CRM sees
every event once and in order. Deliveries go to the local CRM stand-in on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from boto3.dynamodb.types import TypeSerializer
from pydantic import ValidationError

from cascade import facts, outbound, prices
from cascade.local.crm import CrmStandIn
from cascade.local.lambdas import LocalContext
from cascade.models import WebhookIn
from cascade.outbound import Target

SECRET = "crm-shared-secret-0123456789"
PHONE, EMAIL, CODE = "+77011234567", "anna@example.com", "482915"
_ser = TypeSerializer()


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from cascade.settings import settings

    if "TABLE_NAME" not in os.environ:
        monkeypatch.setenv("TABLE_NAME", "unit")
    monkeypatch.setenv("CASCADE_CRM_ALLOW_LOOPBACK", "1")  # the CRM stand-in listens on loopback
    settings.cache_clear()
    yield
    monkeypatch.undo()
    settings.cache_clear()


@pytest.fixture(scope="module")
def crm_server() -> Iterator[CrmStandIn]:
    desk = CrmStandIn(secret=SECRET)
    desk.start()
    yield desk
    desk.stop()


@pytest.fixture
def crm(crm_server: CrmStandIn) -> CrmStandIn:
    crm_server.reset()
    return crm_server


# -- synthetic stream records, shaped as the stack writes the items ----------------------------------

_seq = iter(range(10**6, 10**7))


def _image(item: dict[str, Any]) -> dict[str, Any]:
    def dynamo(value: Any) -> Any:
        if isinstance(value, float):
            return Decimal(str(value))
        if isinstance(value, dict):
            return {k: dynamo(v) for k, v in value.items()}
        if isinstance(value, list):
            return [dynamo(v) for v in value]
        return value

    return {k: _ser.serialize(dynamo(v)) for k, v in item.items() if v is not None}


def record(name: str, new: dict[str, Any] | None = None, old: dict[str, Any] | None = None) -> dict[str, Any]:
    item = new or old or {}
    dynamodb: dict[str, Any] = {"Keys": _image({"pk": item["pk"], "sk": item["sk"]}),
                                "SequenceNumber": str(next(_seq)), "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        dynamodb["NewImage"] = _image(new)
    if old is not None:
        dynamodb["OldImage"] = _image(old)
    return {"eventID": dynamodb["SequenceNumber"], "eventName": name, "eventSource": "aws:dynamodb",
            "dynamodb": dynamodb}


def cascade(status: str = "running", secret_data: bool = False, **extra: Any) -> dict[str, Any]:
    scenario = {"id": "otp" if secret_data else "abandoned-cart", "correlation": "cart_id",
                "secret_data": ["code"] if secret_data else [], "success": ["read"]}
    return {"pk": "C#c_77", "sk": "C", "cascade_id": "c_77", "scenario_id": scenario["id"],
            "scenario_json": json.dumps(scenario), "scenario_version": 0, "status": status,
            "recipient": {"id": "cust-2002", "name": "Anna", "phone": PHONE, "email": EMAIL},
            "recipient_id": "cust-2002", "data_json": json.dumps({"cart_id": "cart-77", "courier_phone": PHONE}),
            "secret_blob": "c2VhbGVk" if secret_data else None, "event_type": "cart.abandoned",
            "correlation_value": "cart-77", "created_at": "2026-03-01T10:00:00.000Z",
            "updated_at": "2026-03-01T10:00:00.000Z",
            "steps": [{"index": 0, "channel": "email", "status": "pending"},
                      {"index": 1, "channel": "sms", "status": "pending"}], **extra}


def touch(kind: str, status: str, step: int = 0, channel: str = "email", at: str = "2026-03-01T10:00:01.000Z",
          **extra: Any) -> dict[str, Any]:
    item = facts.touch(cascade(), step, channel, kind, status, at=at, provider_message_id=f"pm-{step}", **extra)
    sk = f"T#{item['at']}#{item['cascade_id']}#{item['step']}#{item['kind']}#{item['status']}"
    return {"pk": "R#cust-2002", "sk": sk, **item}


def sent(step: int = 0, channel: str = "email", **extra: Any) -> dict[str, Any]:
    return touch("sent", "sent", step, channel, provider="ses", parts=1, price_u=100,
                 summary="Your cart is waiting - call +7 701 123 45 67 or write to anna@example.com", **extra)


def finished(status: str = "succeeded", reason: str = "read") -> dict[str, Any]:
    steps = [{"index": 0, "channel": "email", "status": "read", "provider_message_id": "pm-0",
              "sent_at": "2026-03-01T10:00:01.000Z"}, {"index": 1, "channel": "sms", "status": "pending"}]
    return cascade(status, stop_reason=reason, finished_at="2026-03-01T10:30:00.000Z", success_step=0, steps=steps,
                   secret_blob=None)


def lifecycle() -> list[dict[str, Any]]:
    """A cascade's records as the stream carries them: started, email sent, read, succeeded."""
    return [record("INSERT", cascade()),
            record("INSERT", sent()),
            record("INSERT", touch("signal", "read", at="2026-03-01T10:30:00.000Z", moved=True, **{"from": "sent"})),
            record("MODIFY", finished(), old=cascade())]


# -- mapping ---------------------------------------------------------------------------------------------


def test_a_cascades_records_become_started_sent_signal_finished() -> None:
    events = [outbound.event_for(r) for r in lifecycle()]
    assert [e["type"] for e in events if e] == ["cascade.started", "step.sent", "signal", "cascade.finished"]
    started, step_sent, signal, done = (e for e in events if e)
    for event in events:
        assert event is not None
        assert {"id", "type", "created_at", "cascade_id", "scenario", "recipient_id"} <= set(event)
        assert (event["cascade_id"], event["scenario"], event["recipient_id"]) == ("c_77", "abandoned-cart",
                                                                                     "cust-2002")
    assert started["correlation"] == {"cart_id": "cart-77"}
    assert started["event_type"] == "cart.abandoned"
    assert started["steps"] == [{"index": 0, "channel": "email"}, {"index": 1, "channel": "sms"}]
    assert started["created_at"] == "2026-03-01T10:00:00.000Z"
    assert {k: step_sent[k] for k in ("step", "channel", "status", "provider_message_id", "provider", "parts")} == {
        "step": 0, "channel": "email", "status": "sent", "provider_message_id": "pm-0", "provider": "ses", "parts": 1}
    assert step_sent["cost"] == 0.0001 and step_sent["currency"] == prices.currency()
    assert {k: signal[k] for k in ("step", "channel", "status", "previous_status", "moved")} == {
        "step": 0, "channel": "email", "status": "read", "previous_status": "sent", "moved": True}
    assert {k: done[k] for k in ("status", "stop_reason", "success_step", "created_at")} == {
        "status": "succeeded", "stop_reason": "read", "success_step": 0, "created_at": "2026-03-01T10:30:00.000Z"}
    assert done["steps"][0] == {"index": 0, "channel": "email", "status": "read", "provider_message_id": "pm-0",
                                "sent_at": "2026-03-01T10:00:01.000Z"}


@pytest.mark.parametrize("status", ["exhausted", "expired", "cancelled", "failed"])
def test_every_way_a_cascade_ends_is_a_finished_event_with_its_status(status: str) -> None:
    event = outbound.event_for(record("MODIFY", finished(status, status), old=cascade()))
    assert event is not None and event["type"] == "cascade.finished" and event["status"] == status


@pytest.mark.parametrize("which", [
    "a step update of a running cascade", "an update of a finished cascade", "a skipped step", "a failed send",
    "a touch written again", "a cascade discarded", "a counter", "the webhook registration", "a message reference",
])
def test_other_records_are_no_event(which: str) -> None:
    moved_on = cascade(current_step=1)
    rec = {
        "a step update of a running cascade": record("MODIFY", moved_on, old=cascade()),
        "an update of a finished cascade": record("MODIFY", finished(), old=finished()),
        "a skipped step": record("INSERT", touch("skipped", "condition", step=1, channel="sms")),
        "a failed send": record("INSERT", touch("failed", "send_failed", step=1, channel="sms")),
        "a touch written again": record("MODIFY", sent(), old=sent()),
        "a cascade discarded": record("REMOVE", old=cascade()),
        "a counter": record("INSERT", {"pk": "AGG#abandoned-cart", "sk": "D#2026-03-01", "cascades": 1}),
        "the webhook registration": record("INSERT", {"pk": "WEBHOOK", "sk": "CONFIG", "url": "https://crm.test"}),
        "a message reference": record("INSERT", {"pk": "M#pm-0", "sk": "M", "cascade_id": "c_77"}),
    }[which]
    assert outbound.event_for(rec) is None


def test_no_contact_secret_or_secret_scenario_reply_reaches_an_event() -> None:
    otp = cascade(secret_data=True)
    reply = touch("signal", "replied", text=None, moved=True)  # signals keep no reply text for secret scenarios
    records = [record("INSERT", otp), record("INSERT", sent()), record("INSERT", reply),
               record("MODIFY", {**otp, "status": "expired", "stop_reason": "ttl"}, old=otp)]
    bodies = [outbound.body_of(e).decode() for e in map(outbound.event_for, records) if e]
    assert len(bodies) == 4
    for body in bodies:
        for value in (PHONE, "701 123 45 67", EMAIL, CODE, "c2VhbGVk", "courier_phone", "Anna"):
            assert value not in body
    assert "[phone]" in bodies[1] and "[email]" in bodies[1]  # the summary, blanked


def test_a_reply_is_passed_on_with_contacts_blanked() -> None:
    event = outbound.event_for(record("INSERT", touch("signal", "replied", text="RESCHEDULE, call 8 916 123-45-67")))
    assert event is not None and event["reply"] == "RESCHEDULE, call [phone]"
    assert outbound.redact("track RA123456789RU, code 4821") == "track RA123456789RU, code 4821"


# -- ids ------------------------------------------------------------------------------------------------------


def test_the_same_record_read_again_is_the_same_event() -> None:
    first = [outbound.event_for(r) for r in lifecycle()]
    again = [outbound.event_for(r) for r in lifecycle()]  # new sequence numbers, same facts
    assert first == again
    ids = [e["id"] for e in first if e]
    assert len(set(ids)) == 4 and all(i.startswith("evt_") for i in ids)


def test_different_facts_have_different_ids() -> None:
    read = outbound.event_for(record("INSERT", touch("signal", "read")))
    clicked = outbound.event_for(record("INSERT", touch("signal", "clicked")))
    later = outbound.event_for(record("INSERT", touch("signal", "read", at="2026-03-01T11:00:00.000Z")))
    assert read and clicked and later
    assert len({read["id"], clicked["id"], later["id"]}) == 3
    assert outbound.event_id("C#c_1", "C", "cascade.finished", "succeeded") != outbound.event_id(
        "C#c_1", "C", "cascade.finished", "cancelled")


# -- the signature ---------------------------------------------------------------------------------------------


def receiver_verifies(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """The README's receiver check, written out independently of the sending code."""
    timestamp = headers["x-cascade-timestamp"]
    if abs(now - int(timestamp)) > 300:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-cascade-signature"])


def test_a_delivery_is_signed_over_timestamp_and_body() -> None:
    event = outbound.event_for(lifecycle()[1])
    assert event is not None
    body = outbound.body_of(event)
    headers = outbound.signed_headers(SECRET, event, body, now=1_800_000_000.9)
    assert headers["x-cascade-timestamp"] == "1800000000"
    assert headers["x-cascade-event-id"] == event["id"]
    assert headers["x-cascade-event-type"] == "step.sent"
    assert receiver_verifies(SECRET, headers, body, now=1_800_000_100)
    assert not receiver_verifies("another-secret-0123", headers, body, now=1_800_000_100)
    assert not receiver_verifies(SECRET, headers, body.replace(b'"email"', b'"sms"'), now=1_800_000_100)
    assert not receiver_verifies(SECRET, headers, body, now=1_800_000_301)  # older than 5 minutes


def test_the_local_crm_checks_the_same_way() -> None:
    from cascade.local.crm import verify

    event = outbound.event_for(lifecycle()[0])
    assert event is not None
    body = outbound.body_of(event)
    headers = outbound.signed_headers(SECRET, event, body)
    assert verify(SECRET, headers, body) is None
    assert verify(SECRET, {**headers, "x-cascade-signature": "v1=" + "0" * 64}, body) == "bad signature"
    assert verify(SECRET, {k: v for k, v in headers.items() if k != "x-cascade-signature"}, body) == "unsigned"
    stale = outbound.signed_headers(SECRET, event, body, now=time.time() - 301)
    assert verify(SECRET, stale, body) == "stale timestamp"


def test_logs_name_the_receiver_without_credentials_or_query() -> None:
    assert outbound.safe_url("https://user:pw@crm.example.com:8443/hooks/cascade?token=abc#x") == (
        "https://crm.example.com:8443/hooks/cascade")


# -- delivery -------------------------------------------------------------------------------------------------


def test_a_failing_crm_is_retried_with_growing_waits(crm: CrmStandIn) -> None:
    event = outbound.event_for(lifecycle()[0])
    assert event is not None
    crm.fail(2)
    waits: list[float] = []
    with httpx.Client(timeout=5) as http:
        assert outbound.deliver(event, crm.endpoint, SECRET, http, sleep=waits.append) == "delivered"
    assert waits == [0.5, 1.0]
    assert [d["status"] for d in crm.deliveries] == [500, 500, 200]
    assert crm.received() == [event]


def test_throttling_waits_as_long_as_the_crm_asks_up_to_the_cap() -> None:
    assert outbound.backoff(1, retry_after="3") == 3.0
    assert outbound.backoff(1, retry_after="3600") == outbound.BACKOFF_CAP_S
    assert [outbound.backoff(a) for a in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 5.0]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_refusal_is_not_retried(crm: CrmStandIn, status: int) -> None:
    event = outbound.event_for(lifecycle()[0])
    assert event is not None
    crm.fail(5, status=status)
    with httpx.Client(timeout=5) as http:
        assert outbound.deliver(event, crm.endpoint, SECRET, http, sleep=lambda s: None) == "refused"
    assert len(crm.deliveries) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_transient_answer_is_retried(crm: CrmStandIn, status: int) -> None:
    event = outbound.event_for(lifecycle()[0])
    assert event is not None
    crm.fail(outbound.ATTEMPTS, status=status)
    with httpx.Client(timeout=5) as http:
        assert outbound.deliver(event, crm.endpoint, SECRET, http, sleep=lambda s: None) == "failed"
    assert len(crm.deliveries) == outbound.ATTEMPTS and crm.received() == []


def test_a_crm_that_is_down_is_a_failure_not_an_error() -> None:
    event = outbound.event_for(lifecycle()[0])
    assert event is not None
    with httpx.Client(timeout=1) as http:
        assert outbound.deliver(event, "http://127.0.0.1:9/events", SECRET, http, sleep=lambda s: None) == "failed"


def test_a_record_that_keeps_failing_goes_back_to_the_stream_with_nothing_after_it(crm: CrmStandIn) -> None:
    batch = {"Records": lifecycle()}
    to = Target(crm.endpoint, SECRET)
    crm.fail(outbound.ATTEMPTS)
    with httpx.Client(timeout=5) as http:
        # The started event fails three times: it and everything after it come back.
        answer = outbound.handle(batch, to=to, http=http, sleep=lambda s: None)
        assert answer == {"batchItemFailures": [{"itemIdentifier": batch["Records"][0]["dynamodb"]["SequenceNumber"]}]}
        assert crm.received() == [] and len(crm.deliveries) == outbound.ATTEMPTS
        # The mapping retries from that record: all four arrive, in order.
        assert outbound.handle(batch, to=to, http=http, sleep=lambda s: None) == {"batchItemFailures": []}
        types = [e["type"] for e in crm.received()]
        assert types == ["cascade.started", "step.sent", "signal", "cascade.finished"]
        # A replay of the whole batch is delivered again and kept once: same ids.
        assert outbound.handle(batch, to=to, http=http, sleep=lambda s: None) == {"batchItemFailures": []}
    assert [e["type"] for e in crm.received()] == types
    assert len([d for d in crm.deliveries if d["status"] == 200]) == 8


def test_a_failure_in_the_middle_hands_back_from_that_record(crm: CrmStandIn) -> None:
    records = lifecycle()
    to = Target(crm.endpoint, SECRET)
    with httpx.Client(timeout=5) as http:
        assert outbound.handle({"Records": records[:1]}, to=to, http=http) == {"batchItemFailures": []}
        crm.fail(outbound.ATTEMPTS)
        answer = outbound.handle({"Records": records[1:]}, to=to, http=http, sleep=lambda s: None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}
    assert [e["type"] for e in crm.received()] == ["cascade.started"]  # the signal was not sent ahead of it


def test_a_refused_event_is_dropped_and_the_rest_goes_on(crm: CrmStandIn) -> None:
    crm.fail(1, status=400)
    with httpx.Client(timeout=5) as http:
        answer = outbound.handle({"Records": lifecycle()}, to=Target(crm.endpoint, SECRET), http=http)
    assert answer == {"batchItemFailures": []}
    assert [e["type"] for e in crm.received()] == ["step.sent", "signal", "cascade.finished"]


def test_only_the_registered_event_types_are_sent(crm: CrmStandIn) -> None:
    to = Target(crm.endpoint, SECRET, events=("signal", "cascade.finished"))
    with httpx.Client(timeout=5) as http:
        outbound.handle({"Records": lifecycle()}, to=to, http=http)
    assert [e["type"] for e in crm.received()] == ["signal", "cascade.finished"]


def test_a_batch_short_of_time_hands_the_rest_back_unsent(crm: CrmStandIn) -> None:
    records = lifecycle()
    almost_out = LocalContext("outbound", "arn:aws:lambda:local:function:outbound", 256, timeout_s=2)
    with httpx.Client(timeout=5) as http:
        answer = outbound.handle({"Records": records}, almost_out, to=Target(crm.endpoint, SECRET), http=http)
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    assert crm.deliveries == []


def test_a_batch_of_other_records_needs_no_registration() -> None:
    quiet = {"Records": [record("MODIFY", cascade(current_step=1), old=cascade())]}
    assert outbound.handle(quiet) == {"batchItemFailures": []}  # no table read, nothing sent


# -- the registration's validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "http://crm.example.com/hook", "secret": SECRET}, "url"),
    ({"url": "ftp://crm.example.com/hook", "secret": SECRET}, "url"),
    ({"url": "crm.example.com/hook", "secret": SECRET}, "url"),
    ({"url": "https://crm.example.com/hook", "secret": "short"}, "secret"),
    ({"url": "https://crm.example.com/hook", "secret": "x" * 257}, "secret"),
    ({"url": "https://crm.example.com/hook", "secret": SECRET, "events": ["step.read"]}, "events.0"),
    ({"url": "https://crm.example.com/hook", "secret": SECRET, "events": []}, "events"),
    ({"secret": SECRET}, "url"),
])
def test_a_bad_registration_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        WebhookIn.model_validate(body)
    assert [".".join(str(p) for p in e["loc"]) for e in err.value.errors()] == [field]


def test_a_registration_defaults_to_every_event_and_plain_http_only_on_loopback() -> None:
    assert WebhookIn.model_validate({"url": "https://crm.example.com/h", "secret": SECRET}).events == [
        "cascade.started", "step.sent", "signal", "cascade.finished"]
    local = WebhookIn.model_validate({"url": "http://127.0.0.1:8123/events", "secret": SECRET,
                                      "events": ["signal", "cascade.started", "signal"]})
    assert local.events == ["cascade.started", "signal"]
    assert WebhookIn.model_validate({"url": "http://localhost/e", "secret": SECRET}).url == "http://localhost/e"
