"""A local Twilio: the Calls and Messages resources of the 2010-04-01 REST API (basic auth,
form-encoded requests, Twilio's JSON resources and error bodies), and the webhooks Twilio sends,
signed with the auth token exactly as Twilio signs them: call status callbacks, the Gather action
when the customer presses a key, message status callbacks, and inbound messages to the number's
messaging webhook.

Calls only run inline ``Twiml`` (the robot call sends it); the call rings (initiated, ringing)
on its own and waits there for ``/local/simulate`` to answer it, press keys or leave it
unanswered. A message reports ``sent`` on its own; delivery, failure and replies are simulated."""

from __future__ import annotations

import base64
import contextlib
import hmac
import math
import re
import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx
from twilio.request_validator import RequestValidator

from cascade.local.faults import FAULTS
from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer, StandIn, invalid

API_VERSION = "2010-04-01"
_RESOURCE = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/(Calls|Messages)\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_KEYS = re.compile(r"^[0-9*#]+$")
CALL_ENDINGS = ("busy", "no-answer", "failed", "canceled")
FINAL_CALL_STATUSES = frozenset({"completed", *CALL_ENDINGS})
# Twilio's default opt-out and opt-in keywords for long codes.
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN = frozenset({"START", "UNSTOP", "YES"})


def _rfc2822(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> Answer:
    """Twilio's error body: ``{code, message, more_info, status}``."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status, **extra}
    st, hdrs, payload = json_answer(status, body)
    return st, {**hdrs, **(headers or {})}, payload


def segments(text: str) -> int:
    """How many parts Twilio bills: 160/153 characters in GSM-7, 70/67 once any character is not."""
    single, part = (160, 153) if all(ord(c) < 128 for c in text) else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / part)


def spoken(twiml: str) -> dict[str, Any]:
    """What a call plays: the first ``<Say>`` (text, language) and the ``<Gather>`` that takes keys."""
    root = ET.fromstring(twiml)  # noqa: S314 - TwiML our own code wrote
    gather = root.find(".//Gather")
    say = gather.find("Say") if gather is not None else None
    if say is None:
        say = root.find(".//Say")
    return {"text": (say.text or "").strip() if say is not None else "",
            "language": say.get("language") if say is not None else None,
            "gather": None if gather is None else {"action": gather.get("action", ""),
                                                   "method": (gather.get("method") or "POST").upper(),
                                                   "num_digits": int(gather.get("numDigits") or 0)}}


class TwilioStandIn(StandIn):
    name: ClassVar[str] = "twilio"
    channels: ClassVar[tuple[str, ...]] = ("voice", "sms")

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.from_number = "+15005550006"
        self.calls: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.inbound: list[dict[str, Any]] = []  # what customers texted to the number
        self.opted_out: set[str] = set()  # numbers that texted STOP: Twilio refuses to message them (21610)
        self.sms_url = ""  # the number's "a message comes in" webhook
        self._lock = threading.Lock()

    # -- wiring ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        return {"TwilioApiBase": self.url, "TwilioFromNumber": self.from_number}

    def secrets(self) -> dict[str, str]:
        return {"twilio_account_sid": self.account_sid, "twilio_auth_token": self.auth_token}

    def connect(self, stack: Any) -> None:
        super().connect(stack)
        # What an operator does once: point the number's messaging webhook at the API.
        self.sms_url = f"{stack.url}/webhooks/twilio/sms"

    def outbox(self) -> list[dict[str, Any]]:
        with self._lock:
            calls, messages = list(self.calls.values()), list(self.messages.values())
        return ([{"channel": "voice", "provider_message_id": c["sid"], "to": c["to"], "subject": None,
                  "text": c["say"]} for c in calls]
                + [{"channel": "sms", "provider_message_id": m["sid"], "to": m["to"], "subject": None,
                    "text": m["body"]} for m in messages])

    # -- the REST API ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        match = _RESOURCE.match(path)
        if not match:
            return twilio_error(404, 20404, f"The requested resource {path} was not found")
        if not self._authorized(headers.get("authorization", ""), match.group(1)):
            return twilio_error(401, 20003, "Authenticate", {"www-authenticate": 'Basic realm="Twilio API"'},
                                detail="Your AccountSid or AuthToken was incorrect.")
        if method != "POST":
            return twilio_error(405, 20004, "Method not allowed")
        channel = "voice" if match.group(2) == "Calls" else "sms"
        fault = self._fault(channel)
        if fault is not None:
            return fault
        params = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return self._create_call(params) if channel == "voice" else self._create_message(params)

    def _authorized(self, header: str, path_sid: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return (scheme.lower() == "basic" and hmac.compare_digest(user.encode(), self.account_sid.encode())
                and hmac.compare_digest(password.encode(), self.auth_token.encode()) and path_sid == self.account_sid)

    @staticmethod
    def _fault(channel: str) -> Answer | None:
        mode = FAULTS.take(channel)
        if mode is None:
            return None
        if mode == "timeout":
            FAULTS.stall()  # the client has given up by now; nothing is sent
            return twilio_error(502, 20500, "An internal server error has occurred")
        if mode == "500":
            return twilio_error(500, 20500, "An internal server error has occurred")
        if mode == "429":
            return twilio_error(429, 20429, "Too Many Requests", {"retry-after": "1"})
        return twilio_error(400, 21211, "Invalid 'To' Phone Number")

    def _create_call(self, params: dict[str, list[str]]) -> Answer:
        def first(key: str) -> str:
            return (params.get(key) or [""])[0]

        to, from_, twiml = first("To"), first("From"), first("Twiml")
        if not to:
            return twilio_error(400, 21201, "No 'To' number is specified")
        if not from_:
            return twilio_error(400, 21213, "No 'From' number is specified")
        if not twiml and not first("Url"):
            return twilio_error(400, 21205, "Url parameter is required")
        if not _E164.match(to):
            return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if from_ != self.from_number:
            return twilio_error(400, 21210, f"The source phone number provided, {from_}, is not yet verified for "
                                            "your account. You may only make calls from phone numbers that you've "
                                            "verified or purchased from Twilio.")
        try:
            plays = spoken(twiml) if twiml else {"text": "", "language": None, "gather": None}
        except ET.ParseError:
            return twilio_error(400, 12100, "Document parse failure")
        callback = first("StatusCallback")
        events = {e for value in params.get("StatusCallbackEvent", []) for e in value.split()}
        now = time.time()
        call: dict[str, Any] = {
            "sid": "CA" + secrets.token_hex(16), "to": to, "from": from_, "twiml": twiml, "say": plays["text"],
            "language": plays["language"], "gather": plays["gather"], "status": "queued", "created": now,
            "answered": None, "status_callback": callback, "events": (events | {"completed"}) if callback else set(),
            "sequence": 0, "pressed": [], "heard": [], "callbacks": [], "lock": threading.Lock(),
        }
        with self._lock:
            self.calls[call["sid"]] = call
        answer = json_answer(201, self._call_json(call))  # "queued", before the call starts ringing
        threading.Thread(target=self._ring, args=(call,), daemon=True).start()
        return answer

    def _call_json(self, call: dict[str, Any]) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call['sid']}"
        return {
            "account_sid": self.account_sid, "annotation": None, "answered_by": None, "api_version": API_VERSION,
            "caller_name": None, "date_created": _rfc2822(call["created"]), "date_updated": _rfc2822(call["created"]),
            "direction": "outbound-api", "duration": None, "end_time": None, "forwarded_from": None,
            "from": call["from"], "from_formatted": call["from"], "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": "PN" + self.account_sid[2:], "price": None, "price_unit": "USD", "queue_time": "0",
            "sid": call["sid"], "start_time": None, "status": call["status"], "to": call["to"],
            "to_formatted": call["to"], "trunk_sid": None, "uri": f"{uri}.json",
            "subresource_uris": {name: f"{uri}/{name.title().replace('_', '')}.json"
                                 for name in ("notifications", "recordings", "payments", "events", "siprec",
                                              "streams", "transcriptions", "user_defined_message_subscriptions",
                                              "user_defined_messages")},
        }

    def _create_message(self, params: dict[str, list[str]]) -> Answer:
        def first(key: str) -> str:
            return (params.get(key) or [""])[0]

        to, from_, body = first("To"), first("From"), first("Body")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not first("MessagingServiceSid"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body and not params.get("MediaUrl"):
            return twilio_error(400, 21602, "Message body is required.")
        if not _E164.match(to):
            return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if from_ != self.from_number:
            return twilio_error(400, 21606, f"The From phone number {from_} is not a valid, SMS-capable inbound "
                                            "phone number or short code for your account.")
        if len(body) > 1600:
            return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to in self.opted_out:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        now = time.time()
        message: dict[str, Any] = {
            "sid": "SM" + secrets.token_hex(16), "to": to, "from": from_, "body": body, "status": "queued",
            "created": now, "status_callback": first("StatusCallback"), "callbacks": [], "lock": threading.Lock(),
        }
        with self._lock:
            self.messages[message["sid"]] = message
        threading.Thread(target=self._message_sent, args=(message,), daemon=True).start()
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message['sid']}"
        return json_answer(201, {
            "account_sid": self.account_sid, "api_version": API_VERSION, "body": body,
            "date_created": _rfc2822(now), "date_sent": None, "date_updated": _rfc2822(now),
            "direction": "outbound-api", "error_code": None, "error_message": None, "from": from_,
            "messaging_service_sid": None, "num_media": "0", "num_segments": str(segments(body)), "price": None,
            "price_unit": "USD", "sid": message["sid"], "status": "queued", "to": to, "uri": f"{uri}.json",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        })

    # -- Twilio's webhooks ----------------------------------------------------------------------

    def sign(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature: HMAC-SHA1 (auth token) over the URL and the sorted parameters."""
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    def _post(self, url: str, params: dict[str, str]) -> httpx.Response:
        return httpx.post(url, data=params, timeout=30, headers={
            "X-Twilio-Signature": self.sign(url, params), "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1"})

    def _call_params(self, call: dict[str, Any], status: str) -> dict[str, str]:
        return {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": call["sid"],
                "CallStatus": status, "Called": call["to"], "Caller": call["from"], "Direction": "outbound-api",
                "From": call["from"], "To": call["to"]}

    def _call_status(self, call: dict[str, Any], event: str, status: str,
                     extra: dict[str, str] | None = None) -> httpx.Response | None:
        """A status callback, if the call asked for ``event`` (``completed`` carries every ending)."""
        call["status"] = status
        if event not in call["events"]:
            return None
        params = {**self._call_params(call, status), "CallbackSource": "call-progress-events",
                  "SequenceNumber": str(call["sequence"]), "Timestamp": _rfc2822(), **(extra or {})}
        call["sequence"] += 1
        call["callbacks"].append(status)
        return self._post(call["status_callback"], params)

    def _ring(self, call: dict[str, Any]) -> None:
        with call["lock"], contextlib.suppress(httpx.HTTPError):  # Twilio does not retry status callbacks
            self._call_status(call, "initiated", "initiated")
            self._call_status(call, "ringing", "ringing")

    def _message_status(self, message: dict[str, Any], status: str,
                        extra: dict[str, str] | None = None) -> httpx.Response | None:
        message["status"] = status
        if not message["status_callback"]:
            return None
        params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "From": message["from"],
                  "MessageSid": message["sid"], "MessageStatus": status, "SmsSid": message["sid"],
                  "SmsStatus": status, "To": message["to"], **(extra or {})}
        message["callbacks"].append(status)
        return self._post(message["status_callback"], params)

    def _message_sent(self, message: dict[str, Any]) -> None:
        with message["lock"], contextlib.suppress(httpx.HTTPError):
            self._message_status(message, "sent")

    # -- what the customer does -----------------------------------------------------------------

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        pmid = message["provider_message_id"]
        if pmid in self.calls:
            return self._simulate_call(self.calls[pmid], request)
        if pmid in self.messages:
            return self._simulate_message(self.messages[pmid], request)
        return invalid("provider_message_id", "not a call or message of this Twilio account")

    def _simulate_call(self, call: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal, text = request.get("signal"), str(request.get("text") or "")
        if signal == "failed" and text and text not in CALL_ENDINGS:
            return invalid("text", f"how the call ends: one of {', '.join(CALL_ENDINGS)} (default no-answer)")
        if signal == "replied" and not _KEYS.match(text):
            return invalid("text", "the keys the customer presses: digits, * or #")
        if signal not in ("delivered", "confirmed", "replied", "failed"):
            return invalid("signal", "a call reports delivered (answered), confirmed (key 1), replied (other keys, "
                                     "in text) or failed (busy, no-answer)")
        with call["lock"]:
            if call["status"] in FINAL_CALL_STATUSES:
                return invalid("provider_message_id", f"the call has already ended ({call['status']})")
            answers: list[httpx.Response | None] = []
            if signal == "failed":
                answers.append(self._call_status(call, "completed", text or "no-answer",
                                                 {"CallDuration": "0", "Duration": "0"}))
            else:
                if call["status"] != "in-progress":
                    call["answered"] = time.time()
                    answers.append(self._call_status(call, "answered", "in-progress"))
                if signal != "delivered":
                    answers.append(self._press(call, "1" if signal == "confirmed" else text))
                    seconds = max(1, int(time.time() - (call["answered"] or time.time())))
                    answers.append(self._call_status(call, "completed", "completed", {
                        "CallDuration": str(seconds), "Duration": str(math.ceil(seconds / 60))}))
        ok = all(a is None or a.status_code == 200 for a in answers)
        return json_answer(200 if ok else 502, {"ok": ok, "channel": "voice", "signal": signal,
                                                "call_status": call["status"]})

    def _press(self, call: dict[str, Any], keys: str) -> httpx.Response | None:
        """The customer presses keys during the ``<Gather>``: Twilio requests its action and plays the answer."""
        gather = call["gather"]
        if not gather or not gather["action"]:
            return None
        digits = keys[:gather["num_digits"]] if gather["num_digits"] else keys
        call["pressed"].append(digits)
        params = {**self._call_params(call, "in-progress"), "Digits": digits, "FinishedOnKey": "",
                  "msg": "Gather End"}
        resp = self._post(gather["action"], params)
        if resp.status_code == 200:
            try:
                root = ET.fromstring(resp.text)  # noqa: S314 - the TwiML our webhook answered
                call["heard"].extend((say.text or "").strip() for say in root.iter("Say"))
            except ET.ParseError:
                call["heard"].append("An application error has occurred.")  # what Twilio plays on bad TwiML
        return resp

    def _simulate_message(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal = request.get("signal")
        with message["lock"]:
            if signal == "delivered":
                resp = self._message_status(message, "delivered",
                                            {"RawDlrDoneDate": datetime.now(UTC).strftime("%y%m%d%H%M")})
            elif signal == "failed":  # "code": the carrier's error (30003 unreachable, 30005 unknown number...)
                resp = self._message_status(message, "undelivered", {"ErrorCode": str(request.get("code") or 30003)})
            elif signal == "replied":
                resp = self.text_in(message["to"], str(request.get("text") or "YES"))
            else:
                return invalid("signal", "Twilio SMS reports delivered or failed and passes replies on; never reads")
        if resp is None:
            return invalid("provider_message_id", "the message asked for no status callback")
        ok = resp.status_code == 200
        return json_answer(200 if ok else 502, {"ok": ok, "channel": "sms", "signal": signal})

    def text_in(self, sender: str, text: str) -> httpx.Response:
        """The customer texts the number: Twilio posts the inbound message to its messaging webhook
        (opting the sender out on STOP, as Twilio's default keywords do)."""
        if not self.sms_url:
            raise LookupError("the number has no messaging webhook (connect() was never called)")
        sid = "SM" + secrets.token_hex(16)
        params = {"ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
                  "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
                  "Body": text, "FromCountry": "", "To": self.from_number, "ToZip": "",
                  "NumSegments": str(segments(text)), "MessageSid": sid, "AccountSid": self.account_sid,
                  "From": sender, "ApiVersion": API_VERSION}
        keyword = text.strip().upper()
        if keyword in OPT_OUT:
            params["OptOutType"] = "STOP"
            self.opted_out.add(sender)
        elif keyword in OPT_IN:
            params["OptOutType"] = "START"
            self.opted_out.discard(sender)
        self.inbound.append({"sid": sid, "from": sender, "text": text})
        return self._post(self.sms_url, params)


__all__ = ["TwilioStandIn", "segments", "spoken", "twilio_error"]
