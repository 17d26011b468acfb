"""A local Telegram Bot API: sendMessage, answerCallbackQuery, setWebhook, getMe — and the
webhook Updates a real bot receives, sent with the secret token header."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import httpx

from cascade.local.faults import FAULTS
from cascade.local.httpserver import LoopbackServer, json_answer


class TelegramStandIn:
    def __init__(self, bot_token: str, port: int = 0) -> None:
        self.bot_token = bot_token
        self.username = "cascade_local_bot"
        self.messages: list[dict[str, Any]] = []
        self.answered: list[str] = []
        self.webhook_url = ""
        self.webhook_secret = ""
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.server = LoopbackServer(self._handle, port)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> TelegramStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Any:
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
