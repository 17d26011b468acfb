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
Cloud API usually does, as a ``failed`` status) is replaced by the step's template, once.

Customers who adopt a WhatsApp username (2026) may arrive with no phone number: their messages carry
``from_user_id`` (the business-scoped user id, BSUID) instead of ``from``, statuses
``recipient_user_id`` and ``contacts[].user_id``. A status that names both our message and a BSUID
teaches us that BSUID's chat, so the customer's later message finds the message it answers. A signed
webhook is always answered 200: an entry we cannot use is logged and skipped (Meta would retry the
whole batch on a 4xx and then drop it, with every status in it)."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cascade.channels.base import Channel, Outgoing, Sent, Signal, http_call
from cascade.errors import PermanentSendError, RetryableSendError, SendError, SignatureInvalid

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
# The Graph API version the channel calls unless told otherwise (WhatsAppApiVersion); Meta keeps each
# version for about two years.
API_VERSION = "v26.0"
_VERSION_SEGMENT = re.compile(r"/v\d+\.\d+$")


class ReengagementRequired(PermanentSendError):
    """131047: the customer-service window is closed for free text."""


class WhatsAppChannel(Channel):
    name: ClassVar[str] = "whatsapp"
    provider: ClassVar[str] = "whatsapp-cloud"
    max_length: ClassVar[int] = 4096

    def __init__(self, http: httpx.Client, api_base: str, phone_number_id: str, access_token: str,
                 time_scale: float = 1.0, api_version: str = API_VERSION) -> None:
        self.http = http
        self.api_base = graph_base(api_base, api_version)
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


def graph_base(api_base: str, api_version: str = API_VERSION) -> str:
    """The Cloud API root with its Graph version: ``https://graph.facebook.com`` + ``v26.0``. A base
    that already ends in a version (``.../v21.0``, as configured before the version was a setting) is
    kept as it is."""
    base = api_base.rstrip("/")
    return base if _VERSION_SEGMENT.search(base) else f"{base}/{api_version.strip('/')}"


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
                           provider_secret.get("whatsapp_access_token", ""), cfg.time_scale,
                           cfg.whatsapp_api_version)


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
    recipient_id: str | None = None  # the phone number, when we sent to one
    recipient_user_id: str | None = None  # the customer's BSUID (or from the value's contacts)
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
    sender: str | None = Field(default=None, alias="from")  # absent for a customer with a username
    from_user_id: str | None = None  # the customer's BSUID
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

    @model_validator(mode="after")
    def _someone(self) -> InboundMessage:
        if not self.sender and not self.from_user_id:
            raise ValueError("names no sender: neither from nor from_user_id")
        return self

    @property
    def chat(self) -> str:
        """Who wrote: ``+<number>``, or the BSUID when the number is withheld."""
        return f"+{digits(self.sender)}" if self.sender else str(self.from_user_id)


class _Contact(_Model):
    wa_id: str | None = None
    user_id: str | None = None


@dataclass
class Notification:
    """The statuses and messages of a Cloud API webhook that we can use, and where the ones we
    could not use were (with why)."""

    found_statuses: list[Status] = dc_field(default_factory=list)
    found_messages: list[InboundMessage] = dc_field(default_factory=list)
    skipped: list[str] = dc_field(default_factory=list)

    def statuses(self) -> list[Status]:
        return self.found_statuses

    def messages(self) -> list[InboundMessage]:
        return self.found_messages


def _items(parent: Any, key: str) -> list[Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, list) else []


def parse_notification(raw: Any) -> Notification:
    """A signed webhook body → :class:`Notification`. Each status and message is read on its own:
    one that lacks what we need is listed in ``skipped`` and the rest still count."""
    note = Notification()
    if not isinstance(raw, dict) or not isinstance(raw.get("entry"), list):
        note.skipped.append("entry: not a list of entries")
        return note
    for e, entry in enumerate(raw["entry"]):
        for c, change in enumerate(_items(entry, "changes")):
            value = change.get("value") if isinstance(change, dict) else None
            where = f"entry[{e}].changes[{c}].value"
            contacts = [known for x in _items(value, "contacts") if (known := _contact(x)) is not None]
            for kind, model, target in (("statuses", Status, note.found_statuses),
                                        ("messages", InboundMessage, note.found_messages)):
                for n, item in enumerate(_items(value, kind)):
                    try:
                        parsed = model.model_validate(item)
                    except ValidationError as exc:
                        first = exc.errors()[0]
                        field = ".".join(str(x) for x in first["loc"]) or kind
                        note.skipped.append(f"{where}.{kind}[{n}].{field}: {first['msg']}")
                        continue
                    target.append(_with_user_id(parsed, contacts))  # type: ignore[arg-type]
    return note


def _contact(raw: Any) -> _Contact | None:
    try:
        return _Contact.model_validate(raw)
    except ValidationError:
        return None  # a contact we cannot read names nobody


def _with_user_id(item: Status | InboundMessage, contacts: list[_Contact]) -> Status | InboundMessage:
    """The BSUID of the status's or message's customer, from ``contacts`` when the item has none."""
    if isinstance(item, Status):
        if item.recipient_user_id:
            return item
        phone, field = item.recipient_id, "recipient_user_id"
    else:
        if item.from_user_id:
            return item
        phone, field = item.sender, "from_user_id"
    match = [x for x in contacts if x.user_id and (phone is None or x.wa_id is None or x.wa_id == phone)]
    if len(match) == 1 or (match and len(contacts) == 1):
        return item.model_copy(update={field: match[0].user_id})
    return item


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
                  chat_id=message.chat, text=message.words, detail={"message_type": message.type})


def webhook(request: WebhookRequest) -> dict[str, Any]:
    """GET: Meta's verification handshake. POST: check the signature on the raw body, then act."""
    from cascade import http
    from cascade.aws import secret
    from cascade.settings import settings

    provider_secret = secret(settings().provider_secret_arn)
    if request.method == "GET":
        challenge = verify_subscription(request.query, provider_secret.get("whatsapp_verify_token", ""))
        if challenge is None:
            return http.respond(403, http.error_body("hub.mode or hub.verify_token does not match"))
        return http.respond_text(200, challenge)
    check_signature(request.headers, request.body, provider_secret.get("whatsapp_app_secret", ""))
    # Signed by Meta: answered 200 whatever it holds (a 4xx would only bring the batch back, then lose it).
    handle(parse_notification(request.json()))
    return http.respond(200, {"ok": True})


def handle(note: Notification) -> None:
    """Act on a verified notification: inbound messages open the window and are replies; statuses
    are receipts, and a 131047 failure brings the step's template instead."""
    from cascade import contacts, signals
    from cascade.observability import logger
    from cascade.planning import hashed
    from cascade.store import default_store

    store = default_store()
    for where in note.skipped:
        logger.warning("whatsapp webhook part skipped", part=where)
    for message in note.messages():
        # The customer's own send time (never in the future) starts the 24 h window.
        contact = hashed(message.chat) if message.sender else _contact_of(message.chat, store)
        if contact:
            store.put_last_inbound("whatsapp", contact, min(message.timestamp, int(time.time())))
        signals.receive(reply_signal(message), store)
    for status in note.statuses():
        sig = status_signal(status)
        if sig is None:
            continue
        reengage = sig.signal == "failed" and sig.detail.get("error_code") == REENGAGEMENT_REQUIRED
        ref = locate(status, store, early=reengage)
        if ref is None:
            continue
        if status.recipient_user_id and sig.signal != "failed":  # it reached them: they may answer from there
            learn_user_id(status, ref, store)
        if reengage and send_template_instead(status, ref, store):
            continue
        contacts.heard(sig, ref, store)
        signals.apply(str(ref["cascade_id"]), int(ref["step"]), sig.signal, store, status.id)


def learn_user_id(status: Status, ref: dict[str, Any], store: CascadeStore) -> None:
    """The status names the customer's BSUID: their chat under that id is this message (unless a
    later one is already known), and the number we wrote to, for the 24 h window."""
    from cascade.planning import hashed

    chat = hashed(str(status.recipient_user_id))
    known = store.get_last_chat_message("whatsapp", chat)
    if known and known.get("provider_message_id") != status.id and \
            str(known.get("sent_at") or "") > str(ref.get("sent_at") or ""):
        return
    record = {**ref, "provider_message_id": status.id}
    if status.recipient_id:
        record["contact"] = hashed(f"+{digits(status.recipient_id)}")
    store.put_last_chat_message("whatsapp", chat, record)


def _contact_of(user_id: str, store: CascadeStore) -> str | None:
    """The (hashed) number we last wrote to the customer behind this BSUID, if a status told us."""
    from cascade.planning import hashed

    known = store.get_last_chat_message("whatsapp", hashed(user_id))
    return str(known["contact"]) if known and known.get("contact") else None


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
        sent = engine.send_with_retries(adapter, replace(message, context={**message.context, MODE_KEY: "template"}),
                                        lambda: engine.still_waiting_on(store, cascade_id, index))
    except engine.SendStopped:
        return True  # the cascade stopped or moved on before the template went out: nothing to do
    except SendError as exc:
        logger.warning("whatsapp template after 131047 failed", cascade_id=cascade_id, step=index, error=str(exc))
        return False
    now = now_iso()
    store.set_step(cascade_id, index, status="sent", only_from=("sending", "sent", "delivered"),
                   provider_message_id=sent.provider_message_id, sent_at=now, reason="131047: template sent")
    ref = {"cascade_id": cascade_id, "step": index, "recipient_id": cascade["recipient"]["id"], "sent_at": now}
    store.put_message("whatsapp", sent.provider_message_id, ref)
    store.put_last_chat_message("whatsapp", hashed(message.to), {**ref, "provider_message_id": sent.provider_message_id})
    from cascade.scenario_store import of_cascade

    secret = bool(of_cascade(cascade, store).secret_data)
    store.put_touch(cascade["recipient"]["id"], facts.touch(
        cascade, index, "whatsapp", "sent", "sent", at=now, provider_message_id=sent.provider_message_id,
        **facts.sent(adapter, message, secret)))
    logger.info("whatsapp template sent after 131047", cascade_id=cascade_id, step=index,
                provider_message_id=sent.provider_message_id)
    return True


__all__ = ["REENGAGEMENT_REQUIRED", "SIGNATURE_HEADER", "WINDOW_SECONDS", "InboundMessage", "Notification",
           "ReengagementRequired", "Status", "WhatsAppChannel", "build", "check_signature", "digits", "graph_base",
           "graph_error", "handle", "learn_user_id", "locate", "parse_notification", "reply_signal", "send_template_instead", "signature",
           "status_signal", "template_payload", "text_payload", "verify_subscription", "webhook", "window_open"]
