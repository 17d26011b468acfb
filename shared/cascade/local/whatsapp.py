"""A local WhatsApp Cloud API: ``POST /vNN.0/{phone_number_id}/messages`` (any Graph version, Bearer
token, the payload checked as the Cloud API checks it), and the webhooks a real app receives, signed
with ``X-Hub-Signature-256`` (HMAC-SHA256 of the body, keyed with the app secret): message statuses
and the customers' own messages, in the 2026 shape: every customer has a business-scoped user id
(``user_id`` in ``contacts``, ``recipient_user_id`` in statuses, ``from_user_id`` in messages), and a
customer who adopted a username (:meth:`WhatsAppStandIn.adopt_username`) writes with no ``from``.

Like the real API it accepts free text outside the 24 h customer-service window and then reports
it ``failed`` with error 131047. The window is counted in the stack's cascade time (24 h divided by
its time scale), as our channel counts it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from typing import Any, ClassVar

import httpx
import phonenumbers

from cascade.local.faults import FAULTS
from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer, StandIn, invalid

_PATH = re.compile(r"^/v(\d+)\.0/(\d+)/messages$")  # any Graph API version
WINDOW_SECONDS = 24 * 3600
STATUS_DELAY_SECONDS = 0.2  # statuses follow the API's answer, as Meta's do
DISPLAY_NUMBER = "15550100123"
_NUMBER = re.compile(r"^\+?[1-9]\d{6,14}$")
_SEPARATORS = re.compile(r"[\s\-().]")  # the Cloud API reads "+1 415-555-0100" as 14155550100


def _error(status: int, code: int, message: str, details: str | None = None, **extra: Any) -> Answer:
    """A Graph API error answer."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, **extra,
                             "fbtrace_id": secrets.token_urlsafe(18)}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return json_answer(status, {"error": error})


def _invalid(details: str) -> Answer:
    return _error(400, 100, "(#100) Invalid parameter", details)


class WhatsAppStandIn(StandIn):
    name: ClassVar[str] = "whatsapp"
    channels: ClassVar[tuple[str, ...]] = ("whatsapp",)

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.phone_number_id = str(100000000000000 + secrets.randbelow(10**14))
        self.business_account_id = str(100000000000000 + secrets.randbelow(10**14))
        self.access_token = "EAAG" + secrets.token_urlsafe(48)
        self.app_secret = secrets.token_hex(16)
        self.verify_token = secrets.token_urlsafe(16)
        self.webhook_url = ""
        self.time_scale = 1.0
        self.approved: dict[str, int] = {}  # approved template name → number of body parameters
        self.messages: list[dict[str, Any]] = []  # what the API accepted
        self.last_inbound: dict[str, float] = {}  # wa_id → when the customer last wrote
        self.user_ids: dict[str, str] = {}  # wa_id → the customer's business-scoped user id (BSUID)
        self.usernames: dict[str, str] = {}  # wa_id → username, for customers who adopted one
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    # -- wiring ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        return {"WhatsAppApiBase": self.url, "WhatsAppPhoneNumberId": self.phone_number_id}

    def secrets(self) -> dict[str, str]:
        return {"whatsapp_access_token": self.access_token, "whatsapp_app_secret": self.app_secret,
                "whatsapp_verify_token": self.verify_token}

    def connect(self, stack: Any) -> None:
        from cascade.scenarios import presets

        super().connect(stack)
        self.time_scale = float(stack.time_scale)
        # The templates the business had approved in WhatsApp Manager: the presets' ones.
        self.approved = {step.whatsapp_template.name: len(step.whatsapp_template.params)
                         for scenario in presets().values() for step in scenario.steps if step.whatsapp_template}
        # What registering the webhook in the Meta dashboard does: the GET verification handshake.
        url = f"{stack.url}/webhooks/whatsapp"
        challenge = str(secrets.randbelow(10**10))
        resp = httpx.get(url, timeout=30, params={"hub.mode": "subscribe", "hub.challenge": challenge,
                                                  "hub.verify_token": self.verify_token})
        if resp.status_code != 200 or resp.text != challenge:
            raise RuntimeError(f"whatsapp webhook verification failed: HTTP {resp.status_code}")
        self.webhook_url = url

    def outbox(self) -> list[dict[str, Any]]:
        """What reached the customers' phones (a free text refused for the window never did)."""
        return [{"channel": "whatsapp", "provider_message_id": m["id"], "to": f"+{m['wa_id']}", "subject": None,
                 "text": m["text"]} for m in list(self.messages) if not m["refused"]]

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal = request.get("signal")
        original = self.find(message["provider_message_id"])
        if original is None:
            return invalid("provider_message_id", "not a message this number sent")
        if signal in ("read", "delivered"):
            resp = self.status(original, str(signal))
        elif signal == "failed":
            code = request.get("code", 131026)
            if not isinstance(code, int) or isinstance(code, bool):
                return invalid("code", "a Cloud API error code (a whole number), e.g. 131026")
            resp = self.status(original, "failed", code)
        elif signal == "replied":
            username = request.get("username")
            if username is not None:
                if not isinstance(username, str) or not username.strip():
                    return invalid("username", "the customer's WhatsApp username, e.g. \"sam.shops\"")
                self.adopt_username(f"+{original['wa_id']}", username.strip())  # from now on: no number
            resp = self.customer_writes(f"+{original['wa_id']}", str(request.get("text") or "Thanks!"), original["id"])
        else:
            return invalid("signal", f"WhatsApp reports no {signal!r}; read, delivered, failed or replied")
        return json_answer(200 if resp.status_code == 200 else 502,
                           {"ok": resp.status_code == 200, "channel": "whatsapp", "signal": signal})

    # -- the Cloud API --------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        route = _PATH.match(path)
        if method != "POST" or route is None or route.group(2) != self.phone_number_id:
            return _error(400, 100, "Unsupported post request. Object does not exist or does not support this "
                                    "operation", error_subcode=33)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.access_token.encode()):
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        fault = FAULTS.take("whatsapp")
        if fault == "timeout":
            FAULTS.stall()  # the client has given up by now; nothing is sent
            return _error(504, 2, "Service temporarily unavailable", is_transient=True)
        if fault == "500":
            return _error(500, 2, "Service temporarily unavailable", is_transient=True)
        if fault == "429":
            return _error(429, 130429, "(#130429) Rate limit hit",
                          "Cloud API message throughput has been reached.")
        try:
            params = json.loads(body) if body else None
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return _invalid("The request body is not a JSON object")
        problem, text = self._check(params)
        if problem:
            return problem
        if fault == "reject":
            return _error(400, 131026, "(#131026) Message undeliverable",
                          "Unable to deliver message: the number is not on WhatsApp or cannot receive this message.")
        wa_id = _SEPARATORS.sub("", str(params["to"])).lstrip("+")
        free_text = params["type"] == "text"
        with self._lock:
            opened = self.last_inbound.get(wa_id)
            refused = free_text and (opened is None or time.time() - opened >= WINDOW_SECONDS / self.time_scale)
            message = {"id": self._wamid(wa_id), "wa_id": wa_id, "type": params["type"], "text": text,
                       "biz_opaque_callback_data": params.get("biz_opaque_callback_data"), "refused": refused,
                       "payload": params}
            self.messages.append(message)
        threading.Thread(target=self._report, args=(message,), daemon=True).start()
        return json_answer(200, {"messaging_product": "whatsapp", "contacts": [{"input": str(params["to"]),
                                                                                "wa_id": wa_id,
                                                                                "user_id": self.user_id(wa_id)}],
                                 "messages": [{"id": message["id"],
                                               **({"message_status": "accepted"} if not free_text else {})}]})

    def _check(self, params: dict[str, Any]) -> tuple[Answer | None, str]:
        """Validate a send as the Cloud API does; returns (error answer or None, readable text)."""
        if params.get("messaging_product") != "whatsapp":
            return _invalid("The parameter messaging_product is required and must be 'whatsapp'."), ""
        if params.get("recipient_type", "individual") != "individual":
            return _invalid("Param recipient_type must be 'individual'."), ""
        if not isinstance(params.get("to"), str) or not _NUMBER.match(_SEPARATORS.sub("", params["to"])):
            return _invalid("Param to must be a phone number (digits, country code first)."), ""
        opaque = params.get("biz_opaque_callback_data")
        if opaque is not None and (not isinstance(opaque, str) or len(opaque) > 512):
            return _invalid("Param biz_opaque_callback_data must be a string of at most 512 characters."), ""
        kind = params.get("type", "text")
        if kind == "text":
            text = params.get("text")
            body = text.get("body") if isinstance(text, dict) else None
            if not isinstance(body, str) or not body.strip():
                return _invalid("Param text['body'] is required."), ""
            if len(body) > 4096:
                return _invalid("Param text['body'] must be at most 4096 characters long."), ""
            return None, body
        if kind == "template":
            return self._check_template(params.get("template"))
        return _invalid(f"Param type must be one of text, template, ... (got {kind!r})."), ""

    def _check_template(self, template: Any) -> tuple[Answer | None, str]:
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            return _invalid("Param template['name'] is required."), ""
        language = template.get("language")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str) or not language["code"]:
            return _invalid("Param template['language']['code'] is required."), ""
        params: list[str] = []
        for n, component in enumerate(template.get("components") or []):
            # The Cloud API reads the types in any case ("body" in Meta's examples, "BODY" from pywa).
            kind = str(component.get("type", "")).lower() if isinstance(component, dict) else ""
            if kind not in ("header", "body", "button"):
                return _invalid(f"Param template['components'][{n}]['type'] must be header, body or button."), ""
            for m, param in enumerate(component.get("parameters") or []):
                if not isinstance(param, dict) or str(param.get("type", "")).lower() != "text" \
                        or not isinstance(param.get("text"), str) or not param["text"].strip():
                    return _invalid(f"Param template['components'][{n}]['parameters'][{m}]['text'] is required."), ""
                if kind == "body":
                    params.append(param["text"])
        expected = self.approved.get(template["name"])
        if expected is None:
            return _error(404, 132001, "(#132001) Template name does not exist in the translation",
                          f"template name ({template['name']}) does not exist in {language['code']}"), ""
        if len(params) != expected:
            return _error(400, 132000, "(#132000) Number of parameters does not match the expected number of params",
                          f"body: number of localizable_params ({len(params)}) does not match the expected "
                          f"number of params ({expected})"), ""
        return None, " ".join([f"[{template['name']}]", *params])

    def _wamid(self, wa_id: str) -> str:
        raw = f"\x18\x0b{wa_id}\x15\x02\x00\x11\x18\x12{secrets.token_hex(9).upper()}{next(self._serial)}\x00"
        return "wamid." + base64.b64encode(raw.encode()).decode().rstrip("=")

    def find(self, provider_message_id: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["id"] == provider_message_id), None)

    def user_id(self, wa_id: str) -> str:
        """The customer's BSUID for this business: country code, a dot, digits (``US.1349...``)."""
        with self._lock:
            if wa_id not in self.user_ids:
                try:
                    region = phonenumbers.region_code_for_number(phonenumbers.parse(f"+{wa_id}")) or "ZZ"
                except phonenumbers.NumberParseException:
                    region = "ZZ"
                self.user_ids[wa_id] = f"{region}.{secrets.randbelow(10**19):019d}"
            return self.user_ids[wa_id]

    def adopt_username(self, number: str, username: str = "customer.2026") -> str:
        """The customer takes a WhatsApp username: from now on their messages carry no phone number,
        only their BSUID (returned)."""
        wa_id = number.lstrip("+")
        with self._lock:
            self.usernames[wa_id] = username
        return self.user_id(wa_id)

    def _contact(self, wa_id: str, with_number: bool = True) -> dict[str, Any]:
        profile: dict[str, Any] = {"name": "Customer"}
        if wa_id in self.usernames:
            profile["username"] = self.usernames[wa_id]
        contact: dict[str, Any] = {"profile": profile, "user_id": self.user_id(wa_id)}
        if with_number:
            contact["wa_id"] = wa_id
        return contact

    # -- webhooks: statuses and what the customer does ------------------------------------------

    def _report(self, message: dict[str, Any]) -> None:
        """After the API's answer: ``failed`` (131047) for a free text outside the window, else
        ``sent`` then ``delivered``."""
        time.sleep(STATUS_DELAY_SECONDS)
        try:
            if message["refused"]:
                self.status(message, "failed", 131047)
            else:
                self.status(message, "sent")
                self.status(message, "delivered")
        except (httpx.HTTPError, LookupError):
            pass  # no webhook registered, or the stack is gone

    def status(self, message: dict[str, Any], status: str, error_code: int | None = None) -> httpx.Response:
        # We always send to the number, so the status names it (and the customer's BSUID) even for a
        # customer with a username; a number that is not on WhatsApp has no BSUID.
        wa_id = message["wa_id"]
        on_whatsapp = error_code != 131026
        entry: dict[str, Any] = {"id": message["id"], "status": status, "timestamp": str(int(time.time())),
                                 "recipient_id": wa_id}
        if on_whatsapp:
            entry["recipient_user_id"] = self.user_id(wa_id)
        if message.get("biz_opaque_callback_data"):
            entry["biz_opaque_callback_data"] = message["biz_opaque_callback_data"]
        if status in ("sent", "delivered"):
            category = "service" if message["type"] == "text" else "marketing"
            entry["pricing"] = {"billable": category != "service", "pricing_model": "PMP", "type": "regular",
                                "category": category}
        if error_code is not None:
            title = {131047: "Re-engagement message", 131026: "Message undeliverable"}.get(error_code, "Message failed")
            details = ("Message failed to send because more than 24 hours have passed since the customer last "
                       "replied to this number." if error_code == 131047 else title)
            entry["errors"] = [{"code": error_code, "title": title, "message": title, "error_data": {"details": details},
                                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
        contact = self._contact(wa_id) if on_whatsapp else {"wa_id": wa_id}
        return self._deliver({"contacts": [contact], "statuses": [entry]})

    def customer_writes(self, number: str, text: str, quoting: str | None = None) -> httpx.Response:
        """The customer sends the business a text (quoting one of our messages, if ``quoting``):
        it opens their 24 h window."""
        wa_id = number.lstrip("+")
        now = time.time()
        with self._lock:
            self.last_inbound[wa_id] = now
        shows_number = wa_id not in self.usernames
        message: dict[str, Any] = {"from_user_id": self.user_id(wa_id), "id": self._wamid(wa_id),
                                   "timestamp": str(int(now)), "type": "text", "text": {"body": text}}
        if shows_number:
            message["from"] = wa_id
        if quoting:
            message["context"] = {"from": DISPLAY_NUMBER, "id": quoting}
        return self._deliver({"contacts": [self._contact(wa_id, shows_number)], "messages": [message]})

    def close_window(self, number: str) -> None:
        """Meta's 24 h window for this customer ends now, whatever the service recorded (as at the very
        edge of the window, when the two clocks disagree): the next free text fails with 131047."""
        with self._lock:
            self.last_inbound.pop(number.lstrip("+"), None)

    def _deliver(self, value: dict[str, Any]) -> httpx.Response:
        if not self.webhook_url:
            raise LookupError("no webhook registered (the verification handshake never succeeded)")
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": self.business_account_id, "changes": [
            {"value": {"messaging_product": "whatsapp",
                       "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": self.phone_number_id},
                       **value}, "field": "messages"}]}]}).encode()
        sig = "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
        return httpx.post(self.webhook_url, content=body, timeout=30,
                          headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})


__all__ = ["WhatsAppStandIn"]
