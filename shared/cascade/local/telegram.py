"""A local Telegram Bot API: sendMessage, answerCallbackQuery, setWebhook, getWebhookInfo, getMe —
and the webhook Updates a real bot receives, sent with the secret token header.

Like the Bot API it takes a method's parameters as JSON, as a form (what python-telegram-bot sends),
as multipart (aiogram) or in the query string; object parameters (``reply_markup``...) come
JSON-serialized in a form. Errors have Telegram's shape: ``{"ok": false, "error_code", "description"}``
(400 ``chat not found``, 403 ``bot was blocked by the user``)."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx

from cascade.local.faults import FAULTS
from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer, StandIn, invalid

# Parameters of object type: JSON-serialized when sent as a form or multipart.
_OBJECT_PARAMS = {"reply_markup", "link_preview_options", "entities", "reply_parameters", "allowed_updates"}


def _error(code: int, description: str) -> Answer:
    return json_answer(code, {"ok": False, "error_code": code, "description": description})


class BadRequest(ValueError):
    """The parameters cannot be read (Telegram's 400)."""


def read_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """A Bot API method's parameters from the query string and a JSON, form or multipart body."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        pass
    elif kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                params[name] = payload.decode("utf-8", "replace")
    else:  # application/json, or no content type at all: Telegram tries JSON
        try:
            parsed = json.loads(body)
        except ValueError:
            raise BadRequest("Bad Request: can't parse JSON") from None
        if not isinstance(parsed, dict):
            raise BadRequest("Bad Request: parameters must be a JSON object")
        params.update(parsed)
    for key in _OBJECT_PARAMS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise BadRequest(f"Bad Request: can't parse {key} JSON object") from None
    return params


def _chat_id(value: Any) -> int | None:
    """A private chat's id (an integer, or its digits in a form); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value or None
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value) or None
    return None


class TelegramStandIn(StandIn):
    name: ClassVar[str] = "telegram"
    channels: ClassVar[tuple[str, ...]] = ("telegram",)

    def __init__(self, bot_token: str | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.bot_token = bot_token or f"{secrets.randbelow(10**9)}:local-{secrets.token_hex(8)}"
        self.secret_token = secrets.token_hex(16)  # what we give setWebhook
        self.username = "cascade_local_bot"
        self.first_name = "Cascade (local)"
        prefix = self.bot_token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 1
        self.blocked: set[int] = set()  # chats whose customer blocked the bot
        self.messages: list[dict[str, Any]] = []
        self.answered: list[str] = []
        self.webhook_url = ""
        self.webhook_secret = ""
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()

    # -- wiring ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        return {"TelegramApiBase": self.url, "TelegramBotUsername": self.username}

    def secrets(self) -> dict[str, str]:
        return {"telegram_bot_token": self.bot_token, "telegram_webhook_secret": self.secret_token}

    def connect(self, stack: Any) -> None:
        super().connect(stack)
        # What an operator does once after `sam deploy`: point the bot's webhook at the API.
        httpx.post(f"{self.url}/bot{self.bot_token}/setWebhook",
                   json={"url": f"{stack.url}/webhooks/telegram", "secret_token": self.secret_token,
                         "allowed_updates": ["message", "callback_query", "my_chat_member"]}, timeout=10)

    def outbox(self) -> list[dict[str, Any]]:
        return [{"channel": "telegram", "provider_message_id": f"{m['chat']['id']}:{m['message_id']}",
                 "to": str(m["chat"]["id"]), "subject": None, "text": m["text"]} for m in list(self.messages)]

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal = request.get("signal")
        original = self.find(message["provider_message_id"])
        if original is None:
            return invalid("provider_message_id", "not a message this bot sent")
        if signal in ("read", "confirmed"):
            if not (original.get("reply_markup") or {}).get("inline_keyboard"):
                return invalid("signal", f"this message has no button to press for {signal!r}; "
                                         "simulate replied (a text) or blocked instead")
            resp = self.press_button(original, signal)
        elif signal == "replied":
            resp = self.reply(original, str(request.get("text") or "Thanks!"))
        elif signal == "blocked":
            resp = self.block(original["chat"]["id"])
        else:
            return invalid("signal", f"Telegram reports no {signal!r} to bots; read (button), confirmed, replied "
                                     "or blocked (the customer blocks the bot)")
        return json_answer(200 if resp.status_code == 200 else 502,
                           {"ok": resp.status_code == 200, "channel": "telegram", "signal": signal})

    def open_link(self, link: str, who: str) -> Answer | None:
        if not link.startswith("https://t.me/"):
            return None
        if not who.lstrip("-").isdigit():
            return invalid("as", "the chat id (digits) of the customer opening the link")
        try:
            resp = self.open_deep_link(link, who)
        except LookupError as exc:
            return invalid("open_link", str(exc))
        return json_answer(200 if resp.status_code == 200 else 502, {"ok": resp.status_code == 200})

    # -- the Bot API ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        prefix = f"/bot{self.bot_token}/"
        if not path.startswith(prefix):
            return _error(401, "Unauthorized")
        api_method = path[len(prefix):]
        try:
            params = read_params(query, headers.get("content-type", ""), body)
        except BadRequest as exc:
            return _error(400, str(exc))
        if api_method == "getMe":
            return json_answer(200, {"ok": True, "result": self.me()})
        if api_method == "setWebhook":
            self.webhook_url, self.webhook_secret = str(params.get("url", "")), str(params.get("secret_token", ""))
            return json_answer(200, {"ok": True, "result": True, "description": "Webhook was set"})
        if api_method == "deleteWebhook":
            self.webhook_url = self.webhook_secret = ""
            return json_answer(200, {"ok": True, "result": True, "description": "Webhook was deleted"})
        if api_method == "getWebhookInfo":
            return json_answer(200, {"ok": True, "result": {
                "url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": 0,
                "max_connections": 40, "ip_address": "127.0.0.1",
                "allowed_updates": ["message", "callback_query", "my_chat_member"]}})
        if api_method == "answerCallbackQuery":
            if not params.get("callback_query_id"):
                return _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
            self.answered.append(str(params["callback_query_id"]))
            return json_answer(200, {"ok": True, "result": True})
        if api_method == "sendMessage":
            return self._send_message(params)
        return _error(404, "Not Found")

    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def me(self) -> dict[str, Any]:
        """getMe: the bot's User, with what only getMe tells."""
        return {**self.bot_user(), "can_join_groups": False, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    def _send_message(self, params: dict[str, Any]) -> Answer:
        fault = FAULTS.take("telegram")
        if fault == "timeout":
            FAULTS.stall()  # the client has given up by now; nothing is sent
            return _error(504, "Gateway Timeout")
        if fault == "500":
            return _error(500, "Internal Server Error")
        if fault == "429":
            return json_answer(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                     "parameters": {"retry_after": 1}})
        if fault == "reject":
            return _error(403, "Forbidden: bot was blocked by the user")
        if params.get("chat_id") in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        chat_id, text = _chat_id(params["chat_id"]), params.get("text")
        if chat_id is None:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup is not None and not isinstance(markup, dict):
            return _error(400, "Bad Request: can't parse reply keyboard markup JSON object")
        with self._lock:
            message: dict[str, Any] = {
                "message_id": next(self._ids), "from": self.bot_user(),
                "chat": {"id": chat_id, "first_name": "Customer", "type": "private"}, "date": int(time.time()),
                "text": text}
            if markup is not None:
                message["reply_markup"] = markup
            self.messages.append(message)
        return json_answer(200, {"ok": True, "result": message})

    def find(self, provider_message_id: str) -> dict[str, Any] | None:
        chat, _, mid = provider_message_id.partition(":")
        return next((m for m in self.messages if str(m["chat"]["id"]) == chat and str(m["message_id"]) == mid), None)

    # -- what the customer does -----------------------------------------------------------------

    def press_button(self, message: dict[str, Any], signal: str | None = None) -> httpx.Response:
        buttons = [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        wanted = [b for b in buttons if signal is None or b.get("callback_data") == f"sig:{signal}"] or buttons
        if not wanted:
            raise LookupError("the message has no button to press")
        chat = message["chat"]
        return self._deliver({"callback_query": {
            "id": str(next(self._ids)), "from": {"id": chat["id"], "is_bot": False, "first_name": "Customer"},
            "message": message, "chat_instance": "local", "data": wanted[0]["callback_data"]}})

    def reply(self, message: dict[str, Any], text: str) -> httpx.Response:
        chat = message["chat"]
        return self._deliver({"message": {
            "message_id": next(self._ids), "date": int(time.time()), "chat": chat,
            "from": {"id": chat["id"], "is_bot": False, "first_name": "Customer"}, "text": text,
            "reply_to_message": message}})

    def block(self, chat_id: int) -> httpx.Response:
        """The customer blocks the bot: Telegram sends the bot a ``my_chat_member`` update (``member`` →
        ``kicked``), and later sends to that chat fail with 403."""
        with self._lock:
            self.blocked.add(int(chat_id))
        bot = self.bot_user()
        now = int(time.time())
        return self._deliver({"my_chat_member": {
            "chat": {"id": int(chat_id), "first_name": "Customer", "type": "private"},
            "from": {"id": int(chat_id), "is_bot": False, "first_name": "Customer"}, "date": now,
            "old_chat_member": {"user": bot, "status": "member"},
            "new_chat_member": {"user": bot, "status": "kicked", "until_date": 0}}})

    def open_deep_link(self, link: str, chat_id: str) -> httpx.Response:
        """The customer opens ``https://t.me/<bot>?start=<token>``: the bot receives ``/start <token>``."""
        prefix = f"https://t.me/{self.username}?start="
        if not link.startswith(prefix):
            raise LookupError(f"not a deep link to this bot ({prefix}…)")
        chat = {"id": int(chat_id), "type": "private"}
        with self._lock:
            self.blocked.discard(int(chat_id))  # opening the bot again unblocks it
        return self._deliver({"message": {
            "message_id": next(self._ids), "date": int(time.time()), "chat": chat,
            "from": {"id": int(chat_id), "is_bot": False, "first_name": "Customer"},
            "text": f"/start {link[len(prefix):]}", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})

    def _deliver(self, update: dict[str, Any]) -> httpx.Response:
        if not self.webhook_url:
            raise LookupError("no webhook set (setWebhook was never called)")
        update = {"update_id": next(self._ids), **update}
        return httpx.post(self.webhook_url, json=update, timeout=30,
                          headers={"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret})


__all__ = ["TelegramStandIn"]
