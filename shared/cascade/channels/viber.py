"""Viber through the REST bot API (httpx). A bot may only write to its subscribers; Viber
reports ``delivered``, ``seen`` (our ``read``) and ``failed`` per message, the customer's replies and
keyboard presses as ``message`` events, and a binding deep link as ``conversation_started``.

Every callback is signed: ``X-Viber-Content-Signature`` is the hex HMAC-SHA256 of the raw body
keyed with the bot's auth token."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from cascade.channels.base import Channel, Outgoing, Sent, Signal, http_call, http_status_error
from cascade.errors import FieldError, PermanentSendError, RetryableSendError, SignatureInvalid, ValidationFailed

if TYPE_CHECKING:
    import httpx

    from cascade.settings import Settings
    from cascade.webhooks import WebhookRequest

SIGNATURE_HEADER = "x-viber-content-signature"
AUTH_HEADER = "X-Viber-Auth-Token"
SENDER_NAME_MAX = 28  # Viber refuses longer sender names
_BUTTON_PREFIX = "sig:"
_BUTTON_SIGNALS = {"read", "confirmed", "replied"}

# Viber answers HTTP 200 with a status in the body; only rate control is worth another try.
# (receiver not registered / not subscribed, account blocked or suspended, no webhook set,
# no suitable device, bad or missing data: trying again will not help.)
STATUS_NAMES = {
    0: "ok", 1: "invalidUrl", 2: "invalidAuthToken", 3: "badData", 4: "missingData", 5: "receiverNotRegistered",
    6: "receiverNotSubscribed", 7: "publicAccountBlocked", 8: "publicAccountNotFound", 9: "publicAccountSuspended",
    10: "webhookNotSet", 11: "receiverNoSuitableDevice", 12: "tooManyRequests", 13: "apiVersionNotSupported",
    14: "incompatibleWithVersion", 15: "publicAccountNotAuthorized", 16: "inchatReplyMessageNotAllowed",
    17: "publicAccountIsNotInline", 18: "noPublicChat", 19: "cannotSendBroadcast", 20: "broadcastNotAllowed",
}
RETRYABLE_STATUSES = {12}
# Statuses that say this receiver cannot get our messages (the contact is marked invalid).
INVALID_RECEIVER = {5: "not_registered", 6: "not_subscribed"}


class ViberChannel(Channel):
    name: ClassVar[str] = "viber"
    provider: ClassVar[str] = "viber"
    max_length: ClassVar[int] = 7000

    def __init__(self, http: httpx.Client, api_base: str, auth_token: str, sender_name: str) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.auth_token = auth_token
        self.sender_name = sender_name[:SENDER_NAME_MAX]

    def __repr__(self) -> str:  # never print the token
        return f"ViberChannel(api_base={self.api_base!r}, auth_token='***')"

    def send(self, message: Outgoing) -> Sent:
        payload: dict[str, Any] = {
            "receiver": message.to, "min_api_version": 1, "sender": {"name": self.sender_name},
            "tracking_data": f"{message.cascade_id}:{message.step}", "type": "text", "text": message.text,
        }
        if message.buttons:
            payload["keyboard"] = keyboard(message.buttons)
        return Sent(provider_message_id=self._post(payload), chat_id=message.to)

    def say(self, to: str, text: str) -> None:
        """A bot reply outside any cascade (an opt-out acknowledged)."""
        self._post({"receiver": to, "min_api_version": 1, "sender": {"name": self.sender_name}, "type": "text",
                    "text": text})

    def _post(self, payload: dict[str, Any]) -> str:
        """``send_message``; returns the message token."""
        if not self.auth_token:
            raise PermanentSendError("viber: auth token is not configured (viber_auth_token)")
        if not self.sender_name:
            raise PermanentSendError("viber: sender name is not configured (ViberSenderName)")
        what = "viber send_message"
        resp = http_call(self.http, "POST", f"{self.api_base}/send_message", what, json=payload,
                         headers={AUTH_HEADER: self.auth_token})
        if resp.status_code != 200:
            raise http_status_error(resp.status_code, what, resp.headers.get("retry-after"))
        try:
            body = resp.json()
        except ValueError:
            raise RetryableSendError(f"{what}: the answer is not JSON") from None
        status = body.get("status") if isinstance(body, dict) else None
        if status == 0 and body.get("message_token") is not None:
            return str(body["message_token"])
        raise status_error(status, body.get("status_message") if isinstance(body, dict) else None, what)


def keyboard(buttons: list[tuple[str, str]]) -> dict[str, Any]:
    """Reply buttons: pressing one sends the bot a message whose text is ``sig:<signal>``."""
    columns = max(1, 6 // len(buttons))
    return {"Type": "keyboard", "DefaultHeight": False, "Buttons": [
        {"Columns": columns, "Rows": 1, "ActionType": "reply", "ActionBody": f"{_BUTTON_PREFIX}{signal}",
         "Text": label, "TextSize": "regular"} for label, signal in buttons]}


def status_error(status: Any, status_message: Any, what: str = "viber send_message") -> Exception:
    """A Viber error status: rate control (12) is retried, anything else is final."""
    name = STATUS_NAMES.get(status, str(status_message or "general error")) if isinstance(status, int) else "no status"
    if status in RETRYABLE_STATUSES:
        return RetryableSendError(f"{what}: status {status} {name}")
    return PermanentSendError(f"{what}: status {status} {name}",
                              invalid_contact=INVALID_RECEIVER.get(status) if isinstance(status, int) else None)


def build(cfg: Settings, provider_secret: dict[str, str]) -> ViberChannel:
    from cascade.channels import http_client

    return ViberChannel(http_client(), cfg.viber_api_base, provider_secret.get("viber_auth_token", ""),
                        cfg.viber_sender_name)


# -- callbacks ------------------------------------------------------------------------------------


def signature(body: bytes, auth_token: str) -> str:
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


def check_signature(headers: dict[str, str], body: bytes, auth_token: str) -> None:
    """The raw body must carry Viber's signature, made with our auth token (checked before parsing)."""
    given = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "").strip().lower()
    if not auth_token or not given or not hmac.compare_digest(given.encode(), signature(body, auth_token).encode()):
        raise SignatureInvalid("viber: content signature missing or wrong")


class _User(BaseModel):
    id: str
    name: str | None = None
    language: str | None = None


class _Message(BaseModel):
    type: str
    text: str | None = None
    tracking_data: str | None = None


class Event(BaseModel):
    """The parts of a Viber callback we read; the rest is ignored."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    event: str
    timestamp: int | None = None
    message_token: str | None = None
    user_id: str | None = None
    desc: str | None = None
    sender: _User | None = None
    message: _Message | None = None
    user: _User | None = None
    context: str | None = None
    subscribed: bool | None = None


# Which fields each event we act on must carry (a 422 names the first one missing).
_NEEDS = {
    "delivered": ("message_token",), "seen": ("message_token",), "failed": ("message_token",),
    "message": ("sender", "message"), "conversation_started": ("user",), "subscribed": ("user",),
    "unsubscribed": ("user_id",),
}


def parse_event(raw: Any) -> Event:
    """A callback body → :class:`Event`. A malformed one is a 422 naming the field."""
    try:
        event = Event.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None
    for needed in _NEEDS.get(event.event, ()):
        if getattr(event, needed) in (None, ""):
            raise FieldError(needed, f"required in a {event.event!r} event")
    return event


_RECEIPTS = {"delivered": "delivered", "seen": "read", "failed": "failed"}


def to_signal(event: Event) -> Signal | None:
    """A message's receipt, a reply or a keyboard press → a signal; other events → None."""
    if event.event in _RECEIPTS:
        detail = {"desc": event.desc} if event.desc else {}
        # By message token only: a receipt for a message we did not send (a welcome) is no news.
        return Signal(channel="viber", signal=_RECEIPTS[event.event], provider_message_id=event.message_token,
                      detail=detail)
    if event.event == "message" and event.sender and event.message:
        text = event.message.text or ""
        tracking = {"tracking_data": event.message.tracking_data} if event.message.tracking_data else {}
        if text.startswith(_BUTTON_PREFIX) and text[len(_BUTTON_PREFIX):] in _BUTTON_SIGNALS:
            return Signal(channel="viber", signal=text[len(_BUTTON_PREFIX):], provider_message_id=None,
                          chat_id=event.sender.id, detail=tracking)
        # The sender id is the viber_id we wrote to: the reply belongs to the last message sent there.
        return Signal(channel="viber", signal="replied", provider_message_id=None, chat_id=event.sender.id,
                      text=text or None, detail={"message_type": event.message.type, **tracking})
    return None


def welcome(locale: str | None, sender_name: str) -> dict[str, Any] | None:
    """The welcome message Viber shows after a binding link was opened (needs a sender name), in
    the recipient's language."""
    from cascade import wording

    if not sender_name:
        return None
    return {"sender": {"name": sender_name[:SENDER_NAME_MAX]}, "type": "text",
            "text": wording.say("bound_viber", locale), "tracking_data": "bound"}


def webhook(request: WebhookRequest) -> dict[str, Any]:
    """POST /webhooks/viber: check the signature on the raw body, then act on the event."""
    from cascade import http
    from cascade.aws import secret
    from cascade.settings import settings

    cfg = settings()
    check_signature(request.headers, request.body, secret(cfg.provider_secret_arn).get("viber_auth_token", ""))
    event = parse_event(request.json())
    return http.respond(200, handle(event, cfg.viber_sender_name))


def handle(event: Event, sender_name: str) -> dict[str, Any]:
    """Act on a verified event; returns the body of our answer to Viber."""
    from cascade import binding, consent, signals
    from cascade.observability import logger, mask

    ok: dict[str, Any] = {"status": 0, "status_message": "ok"}
    if event.event == "conversation_started":
        assert event.user is not None
        if not event.context:
            return ok
        bound = binding.bind("viber", event.context, event.user.id, client_language=event.user.language)
        return (welcome(bound.locale, sender_name) or ok) if bound else ok
    if event.event == "unsubscribed":
        assert event.user_id is not None
        logger.info("viber user unsubscribed", user=mask(event.user_id))
        opt_out(event.user_id)
        return ok
    signal = to_signal(event)
    if signal is not None:
        acknowledgement = consent.acknowledgement(signal, signals.receive(signal))
        if acknowledgement and signal.chat_id:  # a STOP or START is confirmed in the chat
            _say_quietly(signal.chat_id, acknowledgement)
    elif event.event != "webhook":
        logger.info("viber event ignored", event=event.event)
    return ok


def _say_quietly(user_id: str, text: str) -> None:
    """A bot reply that cannot go out is logged, not raised: what it answers is done."""
    from cascade.channels import channel
    from cascade.errors import SendError
    from cascade.observability import logger

    try:
        channel("viber").say(user_id, text)  # type: ignore[attr-defined]
    except SendError as exc:
        logger.warning("viber reply not sent", error=str(exc))


def opt_out(user_id: str) -> None:
    """The user left the bot: an opt-out of Viber for the recipient we last wrote to there (every
    purpose, until consent is granted again). The message they left on keeps its status with reason
    ``opted_out`` and a cascade waiting on it moves on at once."""
    from cascade import consent, signals
    from cascade.store import default_store

    store = default_store()
    ref = signals.locate(Signal(channel="viber", signal="failed", provider_message_id=None, chat_id=user_id), store)
    if ref is None:
        return
    cascade = store.get(str(ref["cascade_id"]))
    if cascade is None:
        return
    consent.opt_out(str(ref.get("recipient_id") or cascade["recipient"]["id"]), "viber", "unsubscribed", store,
                    cascade=cascade, step=int(ref["step"]), provider_message_id=ref.get("provider_message_id"))


__all__ = ["AUTH_HEADER", "SIGNATURE_HEADER", "STATUS_NAMES", "Event", "ViberChannel", "build", "check_signature",
           "handle", "keyboard", "opt_out", "parse_event", "signature", "status_error", "to_signal", "webhook",
           "welcome"]
