"""WhatsApp through the Cloud API (httpx).

A business may write free text only inside the 24 h customer-service window (the customer's last
message to us is less than 24 h old); outside it only an approved template goes out. We record
every inbound message's time per (hashed) number and pick free text or the step's template before
sending. The window is measured in cascade time: 24 h on AWS, ``24 h / CASCADE_TIME_SCALE`` on the
local stack, whose stand-in counts it the same way, so a sped-up cascade meets a closed window
exactly where a real one would.

Meta reports ``sent``/``delivered``/``read``/``failed`` per message and the customer's messages on
one webhook, signed with ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body, keyed with the app
secret). A free text that meets a closed window anyway (error 131047, answered at once or, as the
Cloud API usually does, as a ``failed`` status) is replaced by the step's template, once."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade.channels.base import Channel, Outgoing, Sent, Signal, http_call
from cascade.errors import PermanentSendError, RetryableSendError, SendError, SignatureInvalid, ValidationFailed

if TYPE_CHECKING:
    import httpx

    from cascade.settings import Settings
    from cascade.store import CascadeStore
    from cascade.webhooks import WebhookRequest

WINDOW_SECONDS = 24 * 3600
SIGNATURE_HEADER = "x-hub-signature-256"
REENGAGEMENT_REQUIRED = 131047  # more than 24 h since the customer last wrote: only a template may go out
NOT_ON_WHATSAPP = 131026  # message undeliverable: the number is not a WhatsApp user (the contact is invalid)
# Graph/Cloud API codes worth another try: unknown/temporary errors, throughput and pair rate limits.
RETRYABLE_CODES = {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 133004}
# How the message goes out, decided by prepare() and kept in the message's context.
MODE_KEY = "whatsapp_send"


class ReengagementRequired(PermanentSendError):
    """131047: the customer-service window is closed for free text."""


class WhatsAppChannel(Channel):
    name: ClassVar[str] = "whatsapp"
    provider: ClassVar[str] = "whatsapp-cloud"
    max_length: ClassVar[int] = 4096

    def __init__(self, http: httpx.Client, api_base: str, phone_number_id: str, access_token: str,
                 time_scale: float = 1.0) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        self.time_scale = time_scale

    def __repr__(self) -> str:  # never print the token
        return f"WhatsAppChannel(api_base={self.api_base!r}, phone_number_id={self.phone_number_id!r}, access_token='***')"

    def prepare(self, message: Outgoing, store: CascadeStore) -> Outgoing:
        """Free text inside the customer-service window, the step's template outside it."""
        from cascade.planning import hashed

        last = store.get_last_inbound(self.name, hashed(message.to))
        mode = "text" if window_open(last, time.time(), self.time_scale) else "template"
        if mode == "template" and not message.context.get("whatsapp_template"):
            raise PermanentSendError("whatsapp: the 24 h window is closed and the step has no template")
        return replace(message, context={**message.context, MODE_KEY: mode})

    def send(self, message: Outgoing) -> Sent:
        has_template = bool(message.context.get("whatsapp_template"))
        mode = message.context.get(MODE_KEY) or ("template" if has_template else "text")
        if mode == "template":
            return self.post(template_payload(message), message.to)
        try:
            return self.post(text_payload(message), message.to)
        except ReengagementRequired:
            if not has_template:
                raise
            # The window closed after all (our record and Meta's clock disagree at its edge).
            return self.post(template_payload(message), message.to)

    def post(self, payload: dict[str, Any], to: str) -> Sent:
        """POST /{phone_number_id}/messages; the answer's wamid is the provider message id."""
        if not self.access_token:
            raise PermanentSendError("whatsapp: access token is not configured (whatsapp_access_token)")
        if not self.phone_number_id:
            raise PermanentSendError("whatsapp: phone number id is not configured (WhatsAppPhoneNumberId)")
        what = f"whatsapp {payload['type']}"
        resp = http_call(self.http, "POST", f"{self.api_base}/{self.phone_number_id}/messages", what, json=payload,
                         headers={"Authorization": f"Bearer {self.access_token}"})
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code == 200 and isinstance(body, dict):
            messages = body.get("messages") or []
            if messages and isinstance(messages[0], dict) and messages[0].get("id"):
                return Sent(provider_message_id=str(messages[0]["id"]), chat_id=to)
            raise RetryableSendError(f"{what}: the answer names no message id")
        raise graph_error(resp.status_code, body, what, resp.headers.get("retry-after"))


def window_open(last_inbound: int | None, now: float, time_scale: float = 1.0) -> bool:
    """Is the customer-service window open? It lasts 24 h (cascade time) from the customer's last message."""
    return last_inbound is not None and now - last_inbound < WINDOW_SECONDS / time_scale


def digits(number: str) -> str:
    """The Cloud API takes phone numbers as digits (country code first, no "+")."""
    return "".join(ch for ch in number if ch.isdigit())


def _base(message: Outgoing, kind: str) -> dict[str, Any]:
    # biz_opaque_callback_data comes back in every status webhook: the step this message belongs to.
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": digits(message.to),
            "type": kind, "biz_opaque_callback_data": f"{message.cascade_id}:{message.step}"}


def text_payload(message: Outgoing) -> dict[str, Any]:
    return {**_base(message, "text"), "text": {"preview_url": False, "body": message.text}}


def template_payload(message: Outgoing) -> dict[str, Any]:
    tpl = message.context.get("whatsapp_template") or {}
    if not tpl.get("name"):
        raise PermanentSendError("whatsapp: the step has no template for a closed 24 h window")
    template: dict[str, Any] = {"name": tpl["name"], "language": {"code": tpl.get("language") or message.locale}}
    params = [str(p) for p in tpl.get("params") or []]
    if params:
        template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}]
    return {**_base(message, "template"), "template": template}


def graph_error(status: int, body: Any, what: str, retry_after: Any = None) -> Exception:
    """A Graph API error answer → retryable (throttling, temporary trouble, 429/5xx) or permanent
    (undeliverable, invalid parameter, bad token, number not allowed, ...); 131047 has its own class."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    text = f"{what}: HTTP {status}" + (f" code {code}" if code is not None else "") + \
        (f" {str(error['message'])[:120]}" if error.get("message") else "")
    if code == REENGAGEMENT_REQUIRED:
        return ReengagementRequired(text)
    if status == 429 or status >= 500 or code in RETRYABLE_CODES:
        try:
            hint = float(retry_after) if retry_after not in (None, "") else None
        except (TypeError, ValueError):
            hint = None
        return RetryableSendError(text, retry_after=hint)
    return PermanentSendError(text, invalid_contact="not_on_whatsapp" if code == NOT_ON_WHATSAPP else None)


def build(cfg: Settings, provider_secret: dict[str, str]) -> WhatsAppChannel:
    from cascade.channels import http_client

    return WhatsAppChannel(http_client(), cfg.whatsapp_api_base, cfg.whatsapp_phone_number_id,
                           provider_secret.get("whatsapp_access_token", ""), cfg.time_scale)


# -- webhooks -------------------------------------------------------------------------------------


def signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(headers: dict[str, str], body: bytes, app_secret: str) -> None:
    """Meta signs the raw body with the app secret (checked before anything is parsed)."""
    given = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "").strip()
    if not app_secret or not given or not hmac.compare_digest(given.encode(), signature(body, app_secret).encode()):
        raise SignatureInvalid("whatsapp: X-Hub-Signature-256 missing or wrong")


def verify_subscription(query: dict[str, str], verify_token: str) -> str | None:
    """Meta's GET handshake when the webhook is registered: the challenge to echo, or None (→ 403)."""
    given = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not verify_token or \
            not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    return query.get("hub.challenge", "")


class _Model(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, populate_by_name=True)


class _Error(_Model):
    code: int
    title: str | None = None
    message: str | None = None


class Status(_Model):
    id: str
    status: str
    timestamp: int | None = None
    recipient_id: str | None = None
    biz_opaque_callback_data: str | None = None
    errors: list[_Error] = Field(default_factory=list)


class _Quoted(_Model):
    id: str | None = None


class _Text(_Model):
    body: str


class _Button(_Model):
    text: str | None = None
    payload: str | None = None


class _Choice(_Model):
    id: str | None = None
    title: str | None = None


class _Interactive(_Model):
    type: str
    button_reply: _Choice | None = None
    list_reply: _Choice | None = None


class InboundMessage(_Model):
    sender: str = Field(alias="from")
    id: str
    timestamp: int
    type: str
    text: _Text | None = None
    button: _Button | None = None
    interactive: _Interactive | None = None
    context: _Quoted | None = None

    @property
    def words(self) -> str | None:
        """What the customer wrote or tapped (a text, a template's quick reply, an interactive choice)."""
        if self.text:
            return self.text.body
        if self.button:
            return self.button.text or self.button.payload
        if self.interactive:
            choice = self.interactive.button_reply or self.interactive.list_reply
            return choice.title if choice else None
        return None


class _Value(_Model):
    messaging_product: str | None = None
    statuses: list[Status] = Field(default_factory=list)
    messages: list[InboundMessage] = Field(default_factory=list)


class _Change(_Model):
    field: str | None = None
    value: _Value


class _Entry(_Model):
    id: str | None = None
    changes: list[_Change] = Field(default_factory=list)


class Notification(_Model):
    """The parts of a Cloud API webhook we read; the rest is ignored."""

    object: str
    entry: list[_Entry] = Field(default_factory=list)

    def statuses(self) -> list[Status]:
        return [s for e in self.entry for c in e.changes for s in c.value.statuses]

    def messages(self) -> list[InboundMessage]:
        return [m for e in self.entry for c in e.changes for m in c.value.messages]


def parse_notification(raw: Any) -> Notification:
    """A webhook body → :class:`Notification`. A malformed one is a 422 naming the field."""
    try:
        return Notification.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None


_STATUS_SIGNALS = {"delivered": "delivered", "read": "read", "failed": "failed"}  # "sent" tells nothing new


def status_signal(status: Status) -> Signal | None:
    signal = _STATUS_SIGNALS.get(status.status)
    if signal is None:
        return None
    detail: dict[str, Any] = {"biz_opaque_callback_data": status.biz_opaque_callback_data}
    if status.errors:
        detail["error_code"] = status.errors[0].code
        if status.errors[0].code == NOT_ON_WHATSAPP:
            detail["invalid_contact"] = "not_on_whatsapp"
    return Signal(channel="whatsapp", signal=signal, provider_message_id=status.id, detail=detail)


def reply_signal(message: InboundMessage) -> Signal:
    """The customer wrote: about the message they quoted, or else the last one sent to their number."""
    return Signal(channel="whatsapp", signal="replied", provider_message_id=message.context.id if message.context else None,
                  chat_id=f"+{digits(message.sender)}", text=message.words, detail={"message_type": message.type})


def webhook(request: WebhookRequest) -> dict[str, Any]:
    """GET: Meta's verification handshake. POST: check the signature on the raw body, then act."""
    from cascade import http
    from cascade.aws import secret
    from cascade.settings import settings

    provider_secret = secret(settings().provider_secret_arn)
    if request.method == "GET":
        challenge = verify_subscription(request.query, provider_secret.get("whatsapp_verify_token", ""))
        if challenge is None:
            return http.respond(403, {"error": "hub.mode or hub.verify_token does not match"})
        return http.respond_text(200, challenge)
    check_signature(request.headers, request.body, provider_secret.get("whatsapp_app_secret", ""))
    handle(parse_notification(request.json()))
    return http.respond(200, {"ok": True})


def handle(note: Notification) -> None:
    """Act on a verified notification: inbound messages open the window and are replies; statuses
    are receipts, and a 131047 failure brings the step's template instead."""
    from cascade import contacts, signals
    from cascade.planning import hashed
    from cascade.store import default_store

    store = default_store()
    for message in note.messages():
        # The customer's own send time (never in the future) starts the 24 h window.
        store.put_last_inbound("whatsapp", hashed(f"+{digits(message.sender)}"), min(message.timestamp, int(time.time())))
        signals.receive(reply_signal(message), store)
    for status in note.statuses():
        sig = status_signal(status)
        if sig is None:
            continue
        reengage = sig.signal == "failed" and sig.detail.get("error_code") == REENGAGEMENT_REQUIRED
        ref = locate(status, store, early=reengage)
        if ref is None:
            continue
        if reengage and send_template_instead(status, ref, store):
            continue
        contacts.heard(sig, ref, store)
        signals.apply(str(ref["cascade_id"]), int(ref["step"]), sig.signal, store, status.id)


def locate(status: Status, store: CascadeStore, early: bool = False) -> dict[str, Any] | None:
    """The step a status is about: by wamid, or by the step identity we sent as biz_opaque_callback_data
    (a status may overtake our own record of the send). A receipt for a step still being sent is
    dropped (it would overwrite the send's record), unless ``early``: a 131047 must not be lost."""
    from cascade.observability import logger

    ref = store.get_message(status.id, "whatsapp")
    if ref is None and status.biz_opaque_callback_data:
        cascade_id, _, step = status.biz_opaque_callback_data.rpartition(":")
        cascade = store.get(cascade_id) if cascade_id and step.isdigit() else None
        if cascade and int(step) < len(cascade["steps"]) and cascade["steps"][int(step)]["channel"] == "whatsapp" \
                and cascade["steps"][int(step)]["status"] not in (("pending",) if early else ("pending", "sending")):
            ref = {"cascade_id": cascade_id, "step": int(step)}
    if ref is None:
        logger.info("whatsapp status for an unknown message", status=status.status)
    return ref


def send_template_instead(status: Status, ref: dict[str, Any], store: CascadeStore) -> bool:
    """A free text refused for the closed window (131047): send the step's template once, if the
    cascade still waits on that step. True when the failure is taken care of (not the step's end)."""
    import json

    from cascade import engine, facts
    from cascade.channels import channel
    from cascade.observability import logger
    from cascade.planning import hashed
    from cascade.store import now_iso

    cascade_id, index = str(ref["cascade_id"]), int(ref["step"])
    cascade = store.get(cascade_id)
    if cascade is None:
        return False
    if cascade["steps"][index].get("fallback_from") == status.id:
        return True  # the same failure again (webhooks are retried): the template is already out
    if not store.claim_fallback(cascade_id, index, status.id):
        return False  # already fell back once, or the cascade moved on: an ordinary failure
    adapter = channel("whatsapp")
    try:
        message = engine.outgoing(store, cascade, index, adapter)
        sent = engine.send_with_retries(adapter, replace(message, context={**message.context, MODE_KEY: "template"}))
    except SendError as exc:
        logger.warning("whatsapp template after 131047 failed", cascade_id=cascade_id, step=index, error=str(exc))
        return False
    now = now_iso()
    store.set_step(cascade_id, index, status="sent", only_from=("sending", "sent", "delivered"),
                   provider_message_id=sent.provider_message_id, sent_at=now, reason="131047: template sent")
    ref = {"cascade_id": cascade_id, "step": index, "recipient_id": cascade["recipient"]["id"], "sent_at": now}
    store.put_message("whatsapp", sent.provider_message_id, ref)
    store.put_last_chat_message("whatsapp", hashed(message.to), {**ref, "provider_message_id": sent.provider_message_id})
    secret = bool(json.loads(cascade["scenario_json"]).get("secret_data"))
    store.put_touch(cascade["recipient"]["id"], facts.touch(
        cascade, index, "whatsapp", "sent", "sent", at=now, provider_message_id=sent.provider_message_id,
        **facts.sent(adapter, message, secret)))
    logger.info("whatsapp template sent after 131047", cascade_id=cascade_id, step=index,
                provider_message_id=sent.provider_message_id)
    return True


__all__ = ["REENGAGEMENT_REQUIRED", "SIGNATURE_HEADER", "WINDOW_SECONDS", "InboundMessage", "Notification",
           "ReengagementRequired", "Status", "WhatsAppChannel", "build", "check_signature", "digits", "graph_error",
           "handle", "locate", "parse_notification", "reply_signal", "send_template_instead", "signature",
           "status_signal", "template_payload", "text_payload", "verify_subscription", "webhook", "window_open"]
