"""A local Viber REST bot API: send_message (to subscribers only), set_webhook (which checks the
URL with a signed ``webhook`` event, as Viber does), get_account_info — and the callbacks a real
bot receives, signed with ``X-Viber-Content-Signature`` (HMAC-SHA256 of the body, keyed with the
auth token)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from cascade.local.faults import FAULTS
from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer, StandIn, invalid

# Everything but the events a bot always receives (message, subscribed, unsubscribed, conversation_started).
EVENT_TYPES = ("delivered", "seen", "failed", "subscribed", "unsubscribed", "conversation_started")
_ALWAYS = {"message", "subscribed", "unsubscribed", "conversation_started", "webhook"}


def _status(code: int, message: str, **extra: Any) -> Answer:
    """Viber answers HTTP 200 with the outcome in ``status``."""
    return json_answer(200, {"status": code, "status_message": message, **extra})


class ViberStandIn(StandIn):
    name: ClassVar[str] = "viber"
    channels: ClassVar[tuple[str, ...]] = ("viber",)

    def __init__(self, auth_token: str | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.auth_token = auth_token or "-".join(secrets.token_hex(8) for _ in range(3))
        self.chat_uri = "cascadelocal"
        self.sender_name = "Cascade"
        self.webhook_url = ""
        self.event_types: list[str] = list(EVENT_TYPES)
        self.subscribers: set[str] = set()
        self.messages: list[dict[str, Any]] = []  # what reached the customers' phones
        self._tokens = itertools.count(5_400_000_000_000_000_000 + secrets.randbelow(10**12))
        self._lock = threading.Lock()

    # -- wiring ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        return {"ViberApiBase": f"{self.url}/pa", "ViberSenderName": self.sender_name, "ViberChatUri": self.chat_uri}

    def secrets(self) -> dict[str, str]:
        return {"viber_auth_token": self.auth_token}

    def connect(self, stack: Any) -> None:
        super().connect(stack)
        # What an operator does once after `sam deploy`: point the bot's webhook at the API.
        resp = httpx.post(f"{self.url}/pa/set_webhook", headers={"X-Viber-Auth-Token": self.auth_token}, timeout=30,
                          json={"url": f"{stack.url}/webhooks/viber", "event_types": list(EVENT_TYPES),
                                "send_name": True, "send_photo": False})
        if resp.json().get("status") != 0:
            raise RuntimeError(f"viber set_webhook failed: {resp.text}")

    def outbox(self) -> list[dict[str, Any]]:
        return [{"channel": "viber", "provider_message_id": str(m["message_token"]), "to": m["receiver"],
                 "subject": None, "text": m["text"]} for m in list(self.messages)]

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal = request.get("signal")
        original = self.find(message["provider_message_id"])
        if original is None:
            return invalid("provider_message_id", "not a message this bot sent")
        receipts = {"read": "seen", "delivered": "delivered", "failed": "failed"}
        if signal in receipts:
            resp = self.receipt(original, receipts[str(signal)])
        elif signal == "replied":
            resp = self.reply(original, str(request.get("text") or "Thanks!"))
        elif signal == "confirmed":
            try:
                resp = self.press_button(original, "confirmed")
            except LookupError as exc:
                return invalid("signal", str(exc))
        else:
            return invalid("signal", f"Viber reports no {signal!r}; read (seen), delivered, failed, replied or confirmed")
        return json_answer(200 if resp.status_code == 200 else 502,
                           {"ok": resp.status_code == 200, "channel": "viber", "signal": signal})

    def open_link(self, link: str, who: str) -> Answer | None:
        parts = urlsplit(link)
        if parts.scheme != "viber" or parts.netloc != "pa":
            return None
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if query.get("chatURI") != self.chat_uri:
            return invalid("open_link", f"not a deep link to this bot (viber://pa?chatURI={self.chat_uri}&…)")
        if not who:
            return invalid("as", "the Viber user id of the customer opening the link")
        try:
            started = self.start_conversation(who, query.get("context"))
            subscribed = self.subscribe(who)  # the customer taps "subscribe" in the chat
        except LookupError as exc:
            return invalid("open_link", str(exc))
        ok = started.status_code == 200 and subscribed.status_code == 200
        return json_answer(200 if ok else 502, {"ok": ok})

    # -- the REST bot API -----------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        if method != "POST" or path not in ("/pa/send_message", "/pa/set_webhook", "/pa/get_account_info"):
            return json_answer(404, {"status": 1, "status_message": "Not Found"})
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = None
        # The token comes in the X-Viber-Auth-Token header, or (as the official viberbot SDK sends it)
        # as ``auth_token`` in the body.
        given = headers.get("x-viber-auth-token") or (params.get("auth_token") if isinstance(params, dict) else None)
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self.auth_token.encode()):
            return _status(2, "invalidAuthToken")
        if not isinstance(params, dict):
            return _status(3, "badData")
        if path == "/pa/set_webhook":
            return self._set_webhook(params)
        if path == "/pa/get_account_info":
            return _status(0, "ok", id="pa:5411111111111111111", name=self.sender_name, uri=self.chat_uri,
                           icon="", background="", category="Health", subcategory="Clinic", location={},
                           country="UA", webhook=self.webhook_url, event_types=self.event_types,
                           subscribers_count=len(self.subscribers), members=[])
        return self._send_message(params)

    def _set_webhook(self, params: dict[str, Any]) -> Answer:
        url = str(params.get("url") or "")
        if url:
            # Viber checks the URL first: a signed "webhook" event that must be answered with 200.
            try:
                resp = self._post(url, {"event": "webhook", "timestamp": _now_ms(), "chat_hostname": "SN-CHAT-01_",
                                        "message_token": next(self._tokens)})
            except httpx.HTTPError:
                return _status(1, "invalidUrl")
            if resp.status_code != 200:
                return _status(1, "invalidUrl")
        self.webhook_url = url
        if isinstance(params.get("event_types"), list):
            self.event_types = [str(t) for t in params["event_types"]]
        return _status(0, "ok", event_types=self.event_types)

    def _send_message(self, params: dict[str, Any]) -> Answer:
        fault = FAULTS.take("viber")
        if fault == "timeout":
            FAULTS.stall()  # the client has given up by now; nothing is sent
            return json_answer(504, {"status": 1, "status_message": "Gateway Timeout"})
        if fault == "500":
            return json_answer(500, {"status": 1, "status_message": "Internal Server Error"})
        if fault == "429":
            return 429, {"content-type": "application/json", "retry-after": "1"}, \
                json.dumps({"status": 12, "status_message": "Too many requests"}).encode()
        receiver, text, sender = params.get("receiver"), params.get("text"), params.get("sender")
        if not receiver or not isinstance(sender, dict) or not sender.get("name") or params.get("type") != "text" \
                or not text:
            return _status(4, "missingData")
        if len(str(sender["name"])) > 28 or len(json.dumps(params).encode()) > 30 * 1024:
            return _status(3, "badData")
        if fault == "reject" or str(receiver) not in self.subscribers:
            return _status(6, "receiverNotSubscribed")
        with self._lock:
            token = next(self._tokens)
            self.messages.append({"message_token": token, "receiver": str(receiver), "text": str(text),
                                  "tracking_data": params.get("tracking_data"), "keyboard": params.get("keyboard"),
                                  "sent_at": _now_ms()})
        return _status(0, "ok", message_token=token, chat_hostname="SN-CHAT-01_", billing_status=1)

    def find(self, provider_message_id: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if str(m["message_token"]) == provider_message_id), None)

    # -- what the customer does -----------------------------------------------------------------

    def subscribe(self, user_id: str) -> httpx.Response:
        """The customer subscribes to the bot (Viber then sends ``subscribed``)."""
        with self._lock:
            self.subscribers.add(user_id)
        return self._deliver({"event": "subscribed", "timestamp": _now_ms(), "chat_hostname": "SN-CHAT-01_",
                              "user": _user(user_id), "message_token": next(self._tokens)})

    def unsubscribe(self, user_id: str) -> httpx.Response:
        """The customer leaves the bot: later sends to them fail with status 6."""
        with self._lock:
            self.subscribers.discard(user_id)
        return self._deliver({"event": "unsubscribed", "timestamp": _now_ms(), "chat_hostname": "SN-CHAT-01_",
                              "user_id": user_id, "message_token": next(self._tokens)})

    def start_conversation(self, user_id: str, context: str | None) -> httpx.Response:
        """The customer opened ``viber://pa?chatURI=…&context=…``. The bot may answer with a
        welcome message, which Viber shows even to a non-subscriber."""
        event: dict[str, Any] = {"event": "conversation_started", "timestamp": _now_ms(),
                                 "chat_hostname": "SN-CHAT-01_", "message_token": next(self._tokens), "type": "open",
                                 "user": _user(user_id), "subscribed": user_id in self.subscribers}
        if context:
            event["context"] = context
        resp = self._deliver(event)
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        if resp.status_code == 200 and isinstance(answer, dict) and answer.get("type") == "text" and answer.get("text"):
            with self._lock:
                self.messages.append({"message_token": next(self._tokens), "receiver": user_id,
                                      "text": str(answer["text"]), "tracking_data": answer.get("tracking_data"),
                                      "keyboard": answer.get("keyboard"), "sent_at": _now_ms()})
        return resp

    def receipt(self, message: dict[str, Any], event: str) -> httpx.Response:
        body: dict[str, Any] = {"event": event, "timestamp": _now_ms(), "chat_hostname": "SN-CHAT-01_",
                                "message_token": message["message_token"], "user_id": message["receiver"]}
        if event == "failed":
            body["desc"] = "failure description"
        return self._deliver(body)

    def reply(self, message: dict[str, Any], text: str) -> httpx.Response:
        return self._deliver({"event": "message", "timestamp": _now_ms(), "chat_hostname": "SN-CHAT-01_",
                              "message_token": next(self._tokens), "sender": _user(message["receiver"]),
                              "message": {"type": "text", "text": text, "tracking_data": message["tracking_data"]},
                              "silent": False})

    def press_button(self, message: dict[str, Any], signal: str) -> httpx.Response:
        buttons = (message.get("keyboard") or {}).get("Buttons") or []
        wanted = [b for b in buttons if b.get("ActionType") == "reply" and b.get("ActionBody") == f"sig:{signal}"]
        if not wanted:
            raise LookupError(f"the message has no {signal!r} button to press")
        return self.reply(message, str(wanted[0]["ActionBody"]))

    def _deliver(self, event: dict[str, Any]) -> httpx.Response:
        if not self.webhook_url:
            raise LookupError("no webhook set (set_webhook was never called)")
        if event["event"] not in _ALWAYS and event["event"] not in self.event_types:
            return httpx.Response(200)  # not asked for: Viber keeps it to itself
        return self._post(self.webhook_url, event)

    def _post(self, url: str, event: dict[str, Any]) -> httpx.Response:
        body = json.dumps(event).encode()
        sig = hmac.new(self.auth_token.encode(), body, hashlib.sha256).hexdigest()
        return httpx.post(url, content=body, timeout=30,
                          headers={"Content-Type": "application/json", "X-Viber-Content-Signature": sig})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _user(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "name": "Customer", "avatar": "", "country": "UA", "language": "en", "api_version": 10}


__all__ = ["ViberStandIn"]
