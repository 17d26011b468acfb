"""Outbound events for the business's CRM: what happens to its customers, as it happens.

The business registers one URL and a secret (``PUT /v1/webhooks``; item ``WEBHOOK`` / ``CONFIG``,
the secret sealed with the stack's KMS key, never shown again). The table's stream carries every
fact to the outbound function, which turns four kinds of change into events:

=====================================================  ====================
stream record                                          event
=====================================================  ====================
cascade item (``C#<id>`` / ``C``) INSERT               ``cascade.started``
touch (``T#…``) INSERT, kind ``sent``                  ``step.sent``
touch INSERT, kind ``signal``                          ``signal``
cascade item MODIFY whose status leaves ``running``    ``cascade.finished``
=====================================================  ====================

Everything else (skipped and failed steps, step updates, other items) is ignored. An event names
the cascade, scenario, recipient id, step and channel, never a contact: no phone number, e-mail
address, secret data (an OTP code) or reply text of a scenario with secret data; a message summary
or a reply has phone numbers and e-mail addresses blanked out.

**Ids.** An event's ``id`` is derived from the record's logical identity (table key, event type,
status), so the same fact read again — a retried batch, a replayed stream — is the same event, and
the receiver drops what it has already seen.

**Signature.** ``X-Cascade-Timestamp: <unix seconds>`` and ``X-Cascade-Signature: v1=<hex
HMAC-SHA256(secret, "<timestamp>.<raw body>")>`` (the operator desk's scheme); the receiver
recomputes it over the raw body and refuses timestamps more than 5 minutes off.

**Delivery** (its HTTP side is :mod:`cascade.channels.crm`). Records are delivered one at a time,
in stream order. Each gets :data:`ATTEMPTS`
tries with capped exponential backoff (honouring ``Retry-After``); a 4xx other than 408 and 429
is the receiver refusing the event for good: logged and dropped. A record still failing after its
tries is reported in ``batchItemFailures`` and nothing after it is attempted, so the event source
mapping retries from exactly that record and the receiver still sees events in order. Delivery is
at least once; the ids make it exactly once for a receiver that dedups. Logs carry the receiver's
host and path only (no query string, no credentials) and never the secret."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cascade.channels.crm import (
    ATTEMPTS,
    BACKOFF_CAP_S,
    BACKOFF_S,
    USER_AGENT,
    backoff,
    body_of,
    crm_client,
    deliver,
    safe_url,
    signed_headers,
    worst_case_seconds,
)
from cascade.errors import FieldError, NotFound, ValidationFailed
from cascade.models import OUTBOUND_EVENT_TYPES, WebhookIn, WebhookView
from cascade.observability import logger
from cascade.store import CascadeStore, default_store, now_iso, stream_image

if TYPE_CHECKING:
    from cascade.channels.crm import HttpClient

_ENCRYPTION_CONTEXT = {"purpose": "crm-webhook"}


# -- registration (PUT/GET/DELETE /v1/webhooks) ---------------------------------------------------


def parse(raw: Any) -> WebhookIn:
    """The PUT's JSON body → :class:`WebhookIn`; a 422 naming each field at fault (never its value)."""
    from urllib.parse import urlsplit

    from pydantic import ValidationError

    from cascade.channels.crm import allow_loopback, host_problem

    try:
        body = WebhookIn.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(list(exc.errors())) from None
    # Checked again before every delivery (DNS can change): see cascade.channels.crm.
    problem = host_problem(urlsplit(body.url).hostname or "", allow_loopback())
    if problem is not None:
        raise FieldError("url", f"must reach a public address: {problem}")
    return body


def register(body: WebhookIn, store: CascadeStore | None = None) -> WebhookView:
    """Store the one registration (replacing any earlier one), its secret sealed with KMS."""
    store = store or default_store()
    config = {"url": body.url, "events": list(body.events), "secret_blob": _seal(body.secret),
              "updated_at": now_iso()}
    store.put_webhook(config)
    logger.info("crm webhook registered", url=safe_url(body.url), events=config["events"])
    return _view(config)


def registration(store: CascadeStore | None = None) -> WebhookView:
    config = (store or default_store()).get_webhook()
    if config is None:
        raise NotFound("no webhook is registered")
    return _view(config)


def unregister(store: CascadeStore | None = None) -> None:
    (store or default_store()).delete_webhook()
    logger.info("crm webhook removed")


def _view(config: dict[str, Any]) -> WebhookView:
    return WebhookView(url=config["url"], events=config["events"], secret_set=bool(config.get("secret_blob")),
                       updated_at=config["updated_at"])


def _seal(secret: str) -> str:
    from cascade.aws import client
    from cascade.secret_data import SecretKeyMissing
    from cascade.settings import settings

    key_arn = settings().secret_key_arn
    if not key_arn:
        raise SecretKeyMissing("SECRET_KEY_ARN is not set: refusing to store the webhook secret in clear")
    blob = client("kms").encrypt(KeyId=key_arn, Plaintext=secret.encode(),
                                 EncryptionContext=_ENCRYPTION_CONTEXT)["CiphertextBlob"]
    return base64.b64encode(blob).decode()


_opened: dict[str, str] = {}  # sealed secret → secret, per container (one KMS call per registration)


def _open(blob: str) -> str:
    from cascade.aws import client

    if blob not in _opened:
        plain = client("kms").decrypt(CiphertextBlob=base64.b64decode(blob),
                                      EncryptionContext=_ENCRYPTION_CONTEXT)["Plaintext"]
        _opened.clear()
        _opened[blob] = plain.decode()
    return _opened[blob]


# -- stream records → events -------------------------------------------------------------------------

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s\-().]{0,2}\d){9,14}(?!\w)")


def redact(text: str | None) -> str | None:
    """Free text (a message summary, a reply) with e-mail addresses and phone numbers blanked out."""
    if text is None:
        return None
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


def event_id(pk: str, sk: str, event_type: str, status: str = "") -> str:
    """Deterministic: the same fact (a replayed stream record) is the same event."""
    return "evt_" + hashlib.sha256(f"{pk}|{sk}|{event_type}|{status}".encode()).hexdigest()[:32]


def _image(record: dict[str, Any], which: str) -> dict[str, Any]:
    return stream_image((record.get("dynamodb") or {}).get(which)) or {}


def event_for(record: dict[str, Any]) -> dict[str, Any] | None:
    """The event a stream record (as Lambda delivers it) stands for, or None if it is none of ours."""
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    pk, sk = str((keys.get("pk") or {}).get("S", "")), str((keys.get("sk") or {}).get("S", ""))
    name = record.get("eventName")
    if pk.startswith("C#") and sk == "C":
        new = _image(record, "NewImage")
        if name == "INSERT" and new:
            return _started(pk, sk, new)
        old = _image(record, "OldImage")
        if name == "MODIFY" and old.get("status") == "running" and new.get("status") not in (None, "running"):
            return _finished(pk, sk, new)
        return None
    if sk.startswith("T#") and name == "INSERT":
        touch = _image(record, "NewImage")
        if touch.get("kind") == "sent":
            return _sent(pk, sk, touch)
        if touch.get("kind") == "signal":
            return _signal(pk, sk, touch)
    return None


def _base(event_type: str, ident: str, created_at: Any, cascade_id: Any, scenario: Any,
          recipient_id: Any) -> dict[str, Any]:
    return {"id": ident, "type": event_type, "created_at": created_at, "cascade_id": cascade_id,
            "scenario": scenario, "recipient_id": recipient_id}


def _recipient_id(item: dict[str, Any], pk: str = "") -> Any:
    return item.get("recipient_id") or (item.get("recipient") or {}).get("id") or pk.removeprefix("R#") or None


def _started(pk: str, sk: str, cascade: dict[str, Any]) -> dict[str, Any]:
    try:
        correlation_key = cascade.get("correlation_key") or json.loads(cascade.get("scenario_json") or "{}").get(
            "correlation")
    except ValueError:
        correlation_key = None
    event = _base("cascade.started", event_id(pk, sk, "cascade.started"), cascade.get("created_at"),
                  cascade.get("cascade_id"), cascade.get("scenario_id"), _recipient_id(cascade))
    event.update({
        "status": cascade.get("status"), "scenario_version": cascade.get("scenario_version"),
        "event_type": cascade.get("event_type"), "arm": cascade.get("arm"),
        "correlation": ({correlation_key: cascade.get("correlation_value")}
                        if correlation_key and cascade.get("correlation_value") is not None else None),
        "steps": [{"index": s.get("index"), "channel": s.get("channel")} for s in cascade.get("steps") or []],
    })
    return _compact(event)


def _finished(pk: str, sk: str, cascade: dict[str, Any]) -> dict[str, Any]:
    status = str(cascade.get("status"))
    event = _base("cascade.finished", event_id(pk, sk, "cascade.finished", status),
                  cascade.get("finished_at") or cascade.get("updated_at"), cascade.get("cascade_id"),
                  cascade.get("scenario_id"), _recipient_id(cascade))
    event.update({
        "status": status, "stop_reason": cascade.get("stop_reason"), "success_step": cascade.get("success_step"),
        "started_at": cascade.get("created_at"),
        "steps": [_compact({"index": s.get("index"), "channel": s.get("channel"),
                            "status": "pending" if s.get("status") == "sending" else s.get("status"),
                            "provider_message_id": s.get("provider_message_id"), "sent_at": s.get("sent_at"),
                            # a step that never went out says why: the cascade's stop reason
                            "reason": s.get("reason") if s.get("status") == "not_sent" else None})
                  for s in cascade.get("steps") or []],
    })
    return _compact(event)


def _sent(pk: str, sk: str, touch: dict[str, Any]) -> dict[str, Any]:
    from cascade import facts, prices

    event = _touch_base("step.sent", pk, sk, touch)
    price_u = touch.get("price_u")
    event.update({"provider": touch.get("provider"), "parts": touch.get("parts"),
                  "cost": facts.amount(int(price_u)) if isinstance(price_u, int | float) else None,
                  "currency": prices.currency() if price_u is not None else None,
                  "summary": redact(touch.get("summary"))})
    return _compact(event)


def _signal(pk: str, sk: str, touch: dict[str, Any]) -> dict[str, Any]:
    event = _touch_base("signal", pk, sk, touch)
    event.update({"previous_status": touch.get("from"), "moved": touch.get("moved"),
                  "reply": redact(touch.get("text")), "intent": touch.get("intent")})
    return _compact(event)


def _touch_base(event_type: str, pk: str, sk: str, touch: dict[str, Any]) -> dict[str, Any]:
    status = str(touch.get("status") or "")
    event = _base(event_type, event_id(pk, sk, event_type, status), touch.get("at"), touch.get("cascade_id"),
                  touch.get("scenario"), _recipient_id(touch, pk))
    event.update({"step": touch.get("step"), "channel": touch.get("channel"), "status": status,
                  "provider_message_id": touch.get("provider_message_id")})
    return event


def _compact(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if v is not None}


@dataclass(frozen=True)
class Target:
    """Where events go: the registration, its secret opened."""

    url: str
    secret: str
    events: tuple[str, ...] = OUTBOUND_EVENT_TYPES


def target(store: CascadeStore | None = None) -> Target | None:
    """The registered webhook (None if there is none), read once per batch."""
    config = (store or default_store()).get_webhook()
    if not config or not config.get("url") or not config.get("secret_blob"):
        return None
    return Target(url=config["url"], secret=_open(config["secret_blob"]),
                  events=tuple(config.get("events") or OUTBOUND_EVENT_TYPES))


def handle(batch: dict[str, Any], context: Any = None, *, to: Target | None = None,
           http: HttpClient | None = None, sleep: Any = time.sleep) -> dict[str, Any]:
    """A batch of stream records → events to the registered URL (or ``to``), in order. Returns
    the partial batch response: the first record that could not be delivered (the mapping
    retries from it); nothing after it is attempted."""
    from cascade.settings import settings

    for record in batch.get("Records") or []:
        event = event_for(record)
        if event is None:
            continue
        to = to or target()
        if to is None:
            logger.debug("no crm webhook registered: events are not sent")
            return {"batchItemFailures": []}
        if event["type"] not in to.events:
            continue
        sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
        left_s = context.get_remaining_time_in_millis() / 1000 if context is not None else float("inf")
        if left_s < worst_case_seconds(settings().provider_timeout_seconds):
            logger.info("out of time: the rest of the batch comes again", event_id=event["id"])
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
        if deliver(event, to.url, to.secret, http or crm_client(), sleep) == "failed":
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}


__all__ = ["ATTEMPTS", "BACKOFF_CAP_S", "BACKOFF_S", "USER_AGENT", "Target", "backoff", "body_of", "deliver", "event_for", "event_id", "handle", "parse",
           "redact", "register", "registration", "safe_url", "signed_headers", "target", "unregister", "worst_case_seconds"]
