"""A local CRM: the business's side of the outbound events (:mod:`cascade.outbound`).

It receives events on ``POST /events``, checks each delivery's signature the way the README tells
a receiver to (independently of our sending code: the CRM is the other party), keeps every event
once by its id whatever the number of deliveries, and can be told to fail its next deliveries to
show the retries. Register it with ``PUT /v1/webhooks {"url": "<crm>/events", "secret": <its
secret>}``; ``GET /local/crm`` shows what it got.

``/local/crm``: ``GET [?cascade_id=]`` → ``{"url", "secret", "events", "deliveries", "refused",
"failing"}``; ``POST {"fail": n, "status"?, "recipient_id"?, "after_storing"?}`` makes the next
``n`` deliveries (of that recipient's events, when given) answer ``status`` (default 500), having
stored the event first with ``after_storing`` (a receiver that crashed after committing);
``DELETE`` forgets everything."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer, StandIn, invalid

TOLERANCE_SECONDS = 300


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> str | None:
    """The receiver's check from the README: why the delivery is refused, or None if it passes."""
    timestamp = headers.get("x-cascade-timestamp", "")
    signature = headers.get("x-cascade-signature", "")
    if not timestamp.isdigit() or not signature.startswith("v1="):
        return "unsigned"
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return "stale timestamp"
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature[3:], expected):
        return "bad signature"
    return None


class CrmStandIn(StandIn):
    name: ClassVar[str] = "crm"
    channels: ClassVar[tuple[str, ...]] = ()

    def __init__(self, secret: str | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.secret = secret or f"crm-{secrets.token_hex(16)}"
        self.events: dict[str, dict[str, Any]] = {}  # event id → the event, in order of first arrival
        self.deliveries: list[dict[str, Any]] = []  # every signed delivery: event id, answer, raw body, signature
        self.refused: list[dict[str, Any]] = []  # deliveries that failed the signature check
        self._failing: list[dict[str, Any]] = []  # armed failures: {"left", "status", "recipient_id", ...}
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The URL to register with ``PUT /v1/webhooks``."""
        return f"{self.url}/events"

    # -- the receiver ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        if method != "POST" or path != "/events":
            return json_answer(404, {"error": "not found"})
        problem = verify(self.secret, headers, body)  # before reading anything
        if problem:
            with self._lock:
                self.refused.append({"reason": problem, "event_id": headers.get("x-cascade-event-id"),
                                     "at": time.time()})
            return json_answer(401, {"error": f"unauthorized: {problem}"})
        try:
            event = json.loads(body)
        except ValueError:
            return json_answer(400, {"error": "body is not JSON"})
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            return json_answer(400, {"error": "an event needs id and type"})
        duplicate = False
        with self._lock:
            fault = self._take_fault(event)
            if fault is None or fault["after_storing"]:
                duplicate = event["id"] in self.events
                self.events.setdefault(event["id"], event)
            status = fault["status"] if fault else 200
            self.deliveries.append({"event_id": event["id"], "type": event["type"],
                                    "cascade_id": event.get("cascade_id"), "status": status,
                                    "timestamp": headers.get("x-cascade-timestamp"),
                                    "signature": headers.get("x-cascade-signature"),
                                    "body": body.decode("utf-8", "replace"), "at": time.time()})
        if fault is not None:
            return json_answer(status, {"error": "the CRM is failing on purpose"})
        return json_answer(200, {"ok": True, "duplicate": duplicate})

    def _take_fault(self, event: dict[str, Any]) -> dict[str, Any] | None:
        for fault in self._failing:
            if fault["recipient_id"] in (None, event.get("recipient_id")):
                fault["left"] -= 1
                if fault["left"] <= 0:
                    self._failing.remove(fault)
                return fault
        return None

    # -- what tests and developers ask -------------------------------------------------------------

    def fail(self, count: int, status: int = 500, recipient_id: str | None = None,
             after_storing: bool = False) -> None:
        """The next ``count`` deliveries (of ``recipient_id``'s events, if given) answer ``status``."""
        with self._lock:
            self._failing.append({"left": count, "status": status, "recipient_id": recipient_id,
                                  "after_storing": after_storing})

    def received(self, cascade_id: str | None = None) -> list[dict[str, Any]]:
        """The events kept (each once), in order of first arrival."""
        with self._lock:
            return [e for e in self.events.values() if cascade_id is None or e.get("cascade_id") == cascade_id]

    def reset(self) -> None:
        with self._lock:
            self.events.clear()
            self.deliveries.clear()
            self.refused.clear()
            self._failing.clear()

    def local(self, method: str, query: str, body: bytes) -> Answer:
        """``/local/crm`` on the stack's gateway."""
        if method == "GET":
            wanted = dict(parse_qsl(query)).get("cascade_id")
            with self._lock:
                deliveries = [d for d in self.deliveries if not wanted or d["cascade_id"] == wanted]
                snapshot = {"url": self.endpoint, "secret": self.secret, "refused": list(self.refused),
                            "failing": [dict(f) for f in self._failing]}
            return json_answer(200, {**snapshot, "events": self.received(wanted), "deliveries": deliveries})
        if method == "DELETE":
            self.reset()
            return json_answer(200, {"ok": True})
        if method != "POST":
            return json_answer(405, {"error": "GET, POST or DELETE"})
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return json_answer(400, {"error": "body is not valid JSON"})
        if not isinstance(request, dict):
            return invalid("body", "must be an object")
        count, status = request.get("fail"), request.get("status", 500)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return invalid("fail", "the number of deliveries to fail, a positive whole number")
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            return invalid("status", "an HTTP error status, 400-599")
        recipient_id = request.get("recipient_id")
        if recipient_id is not None and not isinstance(recipient_id, str):
            return invalid("recipient_id", "must be a string")
        self.fail(count, status, recipient_id, bool(request.get("after_storing")))
        return json_answer(200, {"failing": [dict(f) for f in self._failing]})


__all__ = ["CrmStandIn", "verify"]
