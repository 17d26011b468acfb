"""The operator task: the last resort, a human at a call centre or in a CRM. The task goes to the
desk's URL with the full context (who, why, what was already sent and when), and the desk reports
the call's outcome back on ``POST /webhooks/operator``: ``confirmed``, ``replied`` or ``failed``.

Both directions are signed with the shared ``operator_secret``:
``X-Cascade-Timestamp: <unix seconds>`` and
``X-Cascade-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``.
The timestamp is inside the signature, so a captured request cannot be replayed after
:data:`TOLERANCE_SECONDS`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade import wording
from cascade.channels.base import Channel, Outgoing, Sent, Signal, http_call, http_status_error
from cascade.errors import FieldError, NotFound, PermanentSendError, SignatureInvalid, ValidationFailed

if TYPE_CHECKING:
    import httpx

    from cascade.settings import Settings
    from cascade.webhooks import WebhookRequest

TIMESTAMP_HEADER = "X-Cascade-Timestamp"
SIGNATURE_HEADER = "X-Cascade-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300
OUTCOMES = ("confirmed", "replied", "failed")
# What the operator sees of the recipient (the phone is what they call).
RECIPIENT_FIELDS = ("id", "name", "phone", "email", "locale", "timezone")


# -- signing ----------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``"<timestamp>.<raw body>"`` keyed with the shared secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(headers: dict[str, str], body: bytes, secret: str, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise :class:`SignatureInvalid` unless the raw body carries our signature, made within
    ``tolerance`` seconds of ``now`` (either way: a clock ahead is as suspect as a replay)."""
    lower = {k.lower(): v for k, v in headers.items()}
    given = lower.get(SIGNATURE_HEADER.lower(), "").strip()
    stamp = lower.get(TIMESTAMP_HEADER.lower(), "").strip()
    if not secret or not given or not stamp.isdigit():
        raise SignatureInvalid("operator: signature or timestamp missing")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise SignatureInvalid("operator: timestamp outside the tolerance")
    # Several comma-separated signatures are accepted while a secret is being rotated.
    expected = signature(secret, stamp, body).encode()
    if not any(hmac.compare_digest(part.strip().encode(), expected) for part in given.split(",")):
        raise SignatureInvalid("operator: signature does not match")


# -- the task ---------------------------------------------------------------------------------------


def task_id(cascade_id: str, step: int) -> str:
    """Our id for the task: one per cascade step, so a retried send is the same task to the desk."""
    return f"op_{cascade_id}_{step}"


def task(message: Outgoing, now: datetime | None = None) -> dict[str, Any]:
    """What the operator needs: who to call, why (the step's text, which is the script), the
    event's data, what was already sent and when, and where to report the outcome. ``step`` and
    each history entry's ``step`` are the API's indexes (from 0); ``step_number`` and ``text`` are
    for the person (steps from 1, times in the customer's zone, in the customer's language)."""
    ctx = message.context
    scenario = ctx.get("scenario") or {}
    recipient = ctx.get("recipient") or {}
    created = now or datetime.now(UTC)
    history = [{**h, "step_number": wording.step_number(h["step"])} for h in ctx.get("history") or []]
    body = {
        "task_id": task_id(message.cascade_id, message.step),
        "cascade_id": message.cascade_id,
        "step": message.step,
        "step_number": wording.step_number(message.step),
        "scenario": {"id": scenario.get("id"), "name": scenario.get("name")},
        "reason": message.text,
        "recipient": {k: recipient.get(k) for k in RECIPIENT_FIELDS} | {"phone": message.to},
        "locale": message.locale,
        "data": ctx.get("data") or {},
        "history": history,
        "callback_url": message.api_base.rstrip("/") + "/webhooks/operator",
        "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return body | {"text": task_text(body, ctx.get("steps_total"), created)}


def task_text(task: dict[str, Any], steps_total: int | None, now: datetime) -> str:
    """The task as the operator reads it, in the task's locale::

        Позвонить клиенту · Delivery failed · шаг 4 из 4
        Клиент: Анна, +77011234568
        Местное время клиента: 1 декабря, 10:00
        VIP-заказ 1002 не доставлен… (the script)
        Уже отправлено:
        Шаг 1 · SMS · отправлено · 29 ноября, 10:00
    """
    locale, recipient = task["locale"], task["recipient"]
    zone = recipient.get("timezone")
    number = task["step_number"]
    step = (wording.say("task_step", locale, n=number, total=steps_total) if steps_total
            else wording.say("task_step_line", locale, n=number))
    title = " · ".join(p for p in (wording.say("task_title", locale), task["scenario"].get("name") or "", step) if p)
    who = ", ".join(str(p) for p in (recipient.get("name"), recipient.get("phone")) if p)
    lines = [title, f"{wording.say('task_customer', locale)}: {who}",
             f"{wording.say('task_local_time', locale)}: {wording.human_time(now, locale, zone)}", task["reason"]]
    if task["history"]:
        lines.append(f"{wording.say('task_tried', locale)}:")
        lines += [" · ".join(p for p in (wording.say("task_step_line", locale, n=h["step_number"]),
                                         wording.channel_name(str(h["channel"]), locale),
                                         wording.status_name(str(h["status"]), locale),
                                         wording.human_time(h.get("sent_at"), locale, zone)) if p)
                  for h in task["history"]]
    return "\n".join(lines)


class OperatorChannel(Channel):
    name: ClassVar[str] = "operator"
    provider: ClassVar[str] = "operator-desk"
    max_length: ClassVar[int] = 4000  # a script a person reads before calling

    def __init__(self, http: httpx.Client, url: str, secret: str) -> None:
        self.http = http
        self.url = url
        self.secret = secret

    def __repr__(self) -> str:  # never print the secret
        return f"OperatorChannel(url={self.url!r}, secret='***')"

    def send(self, message: Outgoing) -> Sent:
        if not self.url:
            raise PermanentSendError("operator: no desk configured (OperatorUrl)")
        if not self.secret:
            raise PermanentSendError("operator: operator_secret is not configured")
        body = json.dumps(task(message), ensure_ascii=False, separators=(",", ":")).encode()
        what = "operator task"
        resp = http_call(self.http, "POST", self.url, what, content=body,
                         headers={"Content-Type": "application/json", **signed_headers(self.secret, body)})
        if not 200 <= resp.status_code < 300:
            raise http_status_error(resp.status_code, what, resp.headers.get("retry-after"))
        # The desk may answer with its own ticket id; the outcome comes back under our task id.
        return Sent(provider_message_id=task_id(message.cascade_id, message.step))


def build(cfg: Settings, provider_secret: dict[str, str]) -> OperatorChannel:
    from cascade.channels import http_client

    return OperatorChannel(http_client(), cfg.operator_url, provider_secret.get("operator_secret", ""))


# -- the outcome ------------------------------------------------------------------------------------


class Outcome(BaseModel):
    """The desk's report on one task."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    task_id: str = Field(min_length=1, max_length=300)
    outcome: Literal["confirmed", "replied", "failed"]
    note: str | None = Field(default=None, max_length=2000)


def parse_outcome(body: bytes) -> Outcome:
    """The raw body → :class:`Outcome`; anything malformed is a 422 naming the field."""
    from cascade.http import loads

    raw = loads(body)  # a 400 naming the problem for anything but strict JSON
    if not isinstance(raw, dict):
        raise FieldError("body", "must be a JSON object")
    try:
        return Outcome.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None


def to_signal(outcome: Outcome) -> Signal:
    return Signal(channel="operator", signal=outcome.outcome, provider_message_id=outcome.task_id,
                  text=outcome.note or None)


def webhook(request: WebhookRequest) -> dict[str, Any]:
    """POST /webhooks/operator: the signature first (a forged report changes nothing), then the outcome."""
    from cascade import http, signals
    from cascade.aws import secret
    from cascade.settings import settings

    verify(request.headers, request.body, secret(settings().provider_secret_arn).get("operator_secret", ""))
    outcome = parse_outcome(request.body)
    cascade_id = signals.receive(to_signal(outcome))
    if cascade_id is None:
        raise NotFound(f"no operator task {outcome.task_id!r}")
    return http.respond(200, {"ok": True, "task_id": outcome.task_id, "cascade_id": cascade_id})


__all__ = ["OUTCOMES", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "TOLERANCE_SECONDS", "OperatorChannel", "Outcome",
           "build", "parse_outcome", "signature", "signed_headers", "task", "task_id", "task_text", "to_signal", "verify",
           "webhook"]
