"""Telegram through the Bot API (httpx). Bots get no read receipts: an inline button press,
a reply, or a click on a tracked link is what tells us the customer saw the message.

A customer who blocks the bot sends a ``my_chat_member`` update whose new status is ``kicked``: that
is an opt-out of Telegram (as a STOP reply is), and a cascade waiting on a Telegram message moves on
at once."""

from __future__ import annotations

import hmac
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, Field, ValidationError

from cascade.channels.base import Channel, Outgoing, Sent, Signal
from cascade.errors import PermanentSendError, RetryableSendError, SignatureInvalid, ValidationFailed

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name
_CALLBACK_PREFIX = "sig:"


class TelegramChannel(Channel):
    name: ClassVar[str] = "telegram"
    provider: ClassVar[str] = "telegram"
    max_length: ClassVar[int] = 4096

    def __init__(self, http: httpx.Client, api_base: str, bot_token: str) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.bot_token = bot_token

    def __repr__(self) -> str:  # never print the token
        return f"TelegramChannel(api_base={self.api_base!r}, bot_token='***')"

    def call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.bot_token:
            raise PermanentSendError("telegram: bot token is not configured")
        try:
            resp = self.http.post(f"{self.api_base}/bot{self.bot_token}/{method}", json=payload)
        except httpx.TimeoutException as exc:
            raise RetryableSendError(f"telegram {method}: timeout") from exc
        except httpx.TransportError as exc:
            raise RetryableSendError(f"telegram {method}: {type(exc).__name__}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code == 200 and body.get("ok"):
            result = body.get("result")
            return result if isinstance(result, dict) else {"result": result}
        description = str(body.get("description") or resp.reason_phrase)
        if resp.status_code == 429:
            retry_after = (body.get("parameters") or {}).get("retry_after")
            raise RetryableSendError(f"telegram {method}: 429 {description}", retry_after=retry_after)
        if resp.status_code >= 500:
            raise RetryableSendError(f"telegram {method}: {resp.status_code} {description}")
        # 400 chat not found, 403 bot blocked by the user, 401 bad token: trying again won't help.
        raise PermanentSendError(f"telegram {method}: {resp.status_code} {description}",
                                 invalid_contact=invalid_chat(resp.status_code, description))

    def send(self, message: Outgoing) -> Sent:
        payload: dict[str, Any] = {"chat_id": message.to, "text": message.text,
                                   "link_preview_options": {"is_disabled": True}}
        if message.buttons:
            payload["reply_markup"] = {"inline_keyboard": [[
                {"text": label, "callback_data": f"{_CALLBACK_PREFIX}{signal}"} for label, signal in message.buttons
            ]]}
        result = self.call("sendMessage", payload)
        chat_id = str((result.get("chat") or {}).get("id", message.to))
        return Sent(provider_message_id=f"{chat_id}:{result['message_id']}", chat_id=chat_id)

    def say(self, chat_id: str, text: str) -> None:
        """A bot reply outside any cascade (a binding confirmed, an opt-out acknowledged)."""
        self.call("sendMessage", {"chat_id": chat_id, "text": text})

    def answer_callback(self, callback_query_id: str, text: str | None = None) -> None:
        payload: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            payload["text"] = text
        self.call("answerCallbackQuery", payload)


def invalid_chat(status: int, description: str) -> str | None:
    """Whether a refusal says the chat itself is gone for this bot: blocked (403 "bot was blocked
    by the user"), a deleted account (403 "user is deactivated"), or no such chat (400)."""
    text = description.casefold()
    if status == 403 and "blocked" in text:
        return "bot_blocked"
    if status == 403 and "deactivated" in text:
        return "user_deactivated"
    if status == 400 and "chat not found" in text:
        return "chat_not_found"
    return None


def check_secret(headers: dict[str, str], expected: str) -> None:
    """Telegram sends the secret given to setWebhook in X-Telegram-Bot-Api-Secret-Token."""
    given = {k.lower(): v for k, v in headers.items()}.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureInvalid("telegram: secret token missing or wrong")


class _Chat(BaseModel):
    id: int
    type: str | None = None


class _Quoted(BaseModel):
    message_id: int
    chat: _Chat | None = None


class _User(BaseModel):
    language_code: str | None = None  # the language of the customer's Telegram app


class _Message(_Quoted):
    text: str | None = None
    from_: _User | None = Field(default=None, alias="from")
    reply_to_message: _Quoted | None = None


class _CallbackQuery(BaseModel):
    id: str
    data: str | None = None
    message: _Quoted | None = None


class _Member(BaseModel):
    status: str  # creator, administrator, member, restricted, left, kicked


class _MemberUpdated(BaseModel):
    chat: _Chat
    new_chat_member: _Member


class _Update(BaseModel):
    """The parts of a Bot API Update we read; the rest is ignored."""

    update_id: int | None = None
    message: _Message | None = None
    callback_query: _CallbackQuery | None = None
    my_chat_member: _MemberUpdated | None = None


def blocked_chat(raw: Any) -> str | None:
    """The chat id when the update says the customer blocked the bot (``my_chat_member``, ``kicked``)."""
    try:
        member = _Update.model_validate(raw).my_chat_member
    except ValidationError:
        return None
    if not member or member.new_chat_member.status != "kicked" or member.chat.type not in (None, "private"):
        return None  # a group removing the bot is not a customer opting out
    return str(member.chat.id)


def opt_out(chat_id: str) -> None:
    """The customer blocked the bot: an opt-out of Telegram for the recipient we last wrote to in that
    chat (every purpose, until consent is granted again). The message keeps its status with reason
    ``opted_out`` and a cascade waiting on it moves on at once."""
    from cascade import consent
    from cascade.observability import logger
    from cascade.store import default_store

    store = default_store()
    ref = store.get_last_chat_message("telegram", chat_id)
    cascade = store.get(str(ref["cascade_id"])) if ref else None
    if ref is None or cascade is None:
        logger.info("telegram bot blocked in a chat we never wrote to")
        return
    consent.opt_out(str(ref.get("recipient_id") or cascade["recipient"]["id"]), "telegram", "blocked", store,
                    cascade=cascade, step=int(ref["step"]), provider_message_id=ref.get("provider_message_id"))


def start_token(raw: Any) -> tuple[str, str, str | None] | None:
    """(chat id, token, the app's language) when the update is ``/start <token>`` from a binding
    deep link."""
    try:
        message = _Update.model_validate(raw).message
    except ValidationError:
        return None
    if not message or not message.chat or not message.text or not message.text.startswith("/start "):
        return None
    token = message.text.split(" ", 1)[1].strip()
    language = message.from_.language_code if message.from_ else None
    return (str(message.chat.id), token, language) if token else None


def reply_quietly(chat_id: str, text: str) -> None:
    """Send a bot reply; one that cannot go out is logged, not raised (what it answers is done)."""
    from cascade.channels import channel
    from cascade.errors import SendError
    from cascade.observability import logger

    try:
        channel("telegram").say(chat_id, text)  # type: ignore[attr-defined]
    except SendError as exc:
        logger.warning("telegram reply not sent", error=str(exc))


def parse_update(raw: Any) -> Signal | None:
    """A webhook Update → a signal: a button press, or a text reply. A malformed update is a 422."""
    try:
        update = _Update.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None
    callback = update.callback_query
    if callback:
        msg = callback.message
        chat_id = str(msg.chat.id) if msg and msg.chat else None
        data = callback.data or ""
        signal = data[len(_CALLBACK_PREFIX):] if data.startswith(_CALLBACK_PREFIX) else "read"
        if signal not in {"read", "confirmed", "replied"}:
            signal = "read"
        return Signal(channel="telegram", signal=signal,
                      provider_message_id=f"{chat_id}:{msg.message_id}" if msg and chat_id else None,
                      chat_id=chat_id, detail={"callback_query_id": callback.id})
    message = update.message
    if message and message.text is not None and message.chat:
        if message.text.startswith("/start"):
            return None
        chat_id = str(message.chat.id)
        quoted = message.reply_to_message
        pmid = f"{chat_id}:{quoted.message_id}" if quoted else None
        return Signal(channel="telegram", signal="replied", provider_message_id=pmid, chat_id=chat_id,
                      text=message.text)
    return None


__all__ = ["SECRET_HEADER", "TelegramChannel", "blocked_chat", "check_secret", "opt_out", "parse_update",
           "reply_quietly", "start_token"]
