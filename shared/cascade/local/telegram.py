"""A local Telegram Bot API: sendMessage, answerCallbackQuery, setWebhook, getMe — and the
webhook Updates a real bot receives, sent with the secret token header."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from typing import Any, ClassVar

import httpx

from cascade.local.faults import FAULTS
from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer, StandIn, invalid


class TelegramStandIn(StandIn):
    name: ClassVar[str] = "telegram"
    channels: ClassVar[tuple[str, ...]] = ("telegram",)

    def __init__(self, bot_token: str | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.bot_token = bot_token or f"{secrets.randbelow(10**9)}:local-{secrets.token_hex(8)}"
        self.secret_token = secrets.token_hex(16)  # what we give setWebhook
        self.username = "cascade_local_bot"
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
                   json={"url": f"{stack.url}/webhooks/telegram", "secret_token": self.secret_token}, timeout=10)

    def outbox(self) -> list[dict[str, Any]]:
        return [{"channel": "telegram", "provider_message_id": f"{m['chat']['id']}:{m['message_id']}",
                 "to": str(m["chat"]["id"]), "subject": None, "text": m["text"]} for m in list(self.messages)]

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal = request.get("signal")
        original = self.find(message["provider_message_id"])
        if original is None:
            return invalid("provider_message_id", "not a message this bot sent")
        if signal in ("read", "confirmed"):
            resp = self.press_button(original, signal)
        elif signal == "replied":
            resp = self.reply(original, str(request.get("text") or "Thanks!"))
        else:
            return invalid("signal", f"Telegram reports no {signal!r} to bots; read (button), confirmed or replied")
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
            return json_answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        api_method = path[len(prefix):]
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            return json_answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse JSON"})
        if api_method == "getMe":
            return json_answer(200, {"ok": True, "result": {"id": 1, "is_bot": True, "username": self.username}})
        if api_method == "setWebhook":
            self.webhook_url, self.webhook_secret = params.get("url", ""), params.get("secret_token", "")
            return json_answer(200, {"ok": True, "result": True, "description": "Webhook was set"})
        if api_method == "answerCallbackQuery":
            self.answered.append(str(params.get("callback_query_id")))
            return json_answer(200, {"ok": True, "result": True})
        if api_method == "sendMessage":
            fault = FAULTS.take("telegram")
            if fault == "timeout":
                FAULTS.stall()  # the client has given up by now; nothing is sent
                return json_answer(504, {"ok": False, "error_code": 504, "description": "Gateway Timeout"})
            if fault == "500":
                return json_answer(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
            elif fault == "429":
                return json_answer(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                         "parameters": {"retry_after": 1}})
            elif fault == "reject":
                return json_answer(403, {"ok": False, "error_code": 403,
                                         "description": "Forbidden: bot was blocked by the user"})
            chat_id, text = params.get("chat_id"), params.get("text")
            if not chat_id or not text:
                return json_answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"})
            if len(str(text)) > 4096:
                return json_answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"})
            with self._lock:
                message = {"message_id": next(self._ids), "date": int(time.time()),
                           "chat": {"id": int(chat_id), "type": "private"}, "text": text}
                if "reply_markup" in params:
                    message["reply_markup"] = params["reply_markup"]
                self.messages.append(message)
            return json_answer(200, {"ok": True, "result": message})
        return json_answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})

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

    def open_deep_link(self, link: str, chat_id: str) -> httpx.Response:
        """The customer opens ``https://t.me/<bot>?start=<token>``: the bot receives ``/start <token>``."""
        prefix = f"https://t.me/{self.username}?start="
        if not link.startswith(prefix):
            raise LookupError(f"not a deep link to this bot ({prefix}…)")
        chat = {"id": int(chat_id), "type": "private"}
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
