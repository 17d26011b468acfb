"""A local operator desk (a call centre's CRM): it takes signed tasks on ``POST /tasks``, refuses
any whose signature does not check out, keeps the rest as tickets — and plays the operator,
reporting each call's outcome to the task's ``callback_url``, signed the same way.

The signature is checked here independently of our channel code (the desk is the other party):
``X-Cascade-Signature: v1=<hex HMAC-SHA256(secret, "<X-Cascade-Timestamp>.<raw body>")>``."""

from __future__ import annotations

import hashlib
import hmac
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

TOLERANCE_SECONDS = 300
OUTCOMES = ("confirmed", "replied", "failed")


def _mac(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class OperatorDesk(StandIn):
    name: ClassVar[str] = "operator"
    channels: ClassVar[tuple[str, ...]] = ("operator",)

    def __init__(self, secret: str | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.secret = secret or secrets.token_hex(32)
        self.tasks: dict[str, dict[str, Any]] = {}  # task_id → {"task", "ticket_id", "received_at", "outcomes"}
        self.refused: list[dict[str, Any]] = []  # what failed the signature check: (status, reason)
        self._tickets = itertools.count(1001)
        self._lock = threading.Lock()

    # -- wiring ---------------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        return {"OperatorUrl": f"{self.url}/tasks"}

    def secrets(self) -> dict[str, str]:
        return {"operator_secret": self.secret}

    def outbox(self) -> list[dict[str, Any]]:
        found = []
        for task_id, kept in list(self.tasks.items()):
            task = kept["task"]  # the desk shows the task's own text: what the operator reads
            found.append({"channel": "operator", "provider_message_id": task_id,
                          "to": str((task.get("recipient") or {}).get("phone") or ""),
                          "subject": (task.get("scenario") or {}).get("name"),
                          "text": str(task.get("text") or task.get("reason") or "")})
        return found

    # -- the desk's API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        if method != "POST" or path != "/tasks":
            return json_answer(404, {"error": "not found"})
        fault = FAULTS.take("operator")
        if fault == "timeout":
            FAULTS.stall()  # the client has given up by now; no ticket is opened
            return json_answer(504, {"error": "gateway timeout"})
        if fault == "500":
            return json_answer(500, {"error": "internal error"})
        if fault == "429":
            return 429, {"content-type": "application/json", "retry-after": "1"}, b'{"error": "rate limited"}'
        problem = self.check(headers, body)
        if problem:
            with self._lock:
                self.refused.append({"reason": problem, "at": time.time()})
            return json_answer(401, {"error": f"unauthorized: {problem}"})
        if fault == "reject":
            return json_answer(400, {"error": "task refused: the desk does not take this task"})
        try:
            task = json.loads(body)
        except ValueError:
            return json_answer(400, {"error": "body is not JSON"})
        missing = [f for f in ("task_id", "cascade_id", "recipient", "reason", "callback_url")
                   if not isinstance(task, dict) or not task.get(f)]
        if missing:
            return json_answer(400, {"error": f"missing {', '.join(missing)}"})
        with self._lock:
            kept = self.tasks.get(task["task_id"])
            if kept is None:  # the same task again (a retried send) is the same ticket
                kept = self.tasks[task["task_id"]] = {"task": task, "ticket_id": f"T-{next(self._tickets)}",
                                                       "received_at": time.time(), "outcomes": []}
        return json_answer(201, {"ticket_id": kept["ticket_id"], "task_id": task["task_id"], "status": "open"})

    def check(self, headers: dict[str, str], body: bytes) -> str | None:
        """Why a request fails the desk's signature check, or None if it passes."""
        stamp, given = headers.get("x-cascade-timestamp", ""), headers.get("x-cascade-signature", "")
        if not stamp.isdigit() or not given:
            return "unsigned"
        if abs(time.time() - int(stamp)) > TOLERANCE_SECONDS:
            return "stale timestamp"
        if not hmac.compare_digest(given.encode(), _mac(self.secret, stamp, body).encode()):
            return "bad signature"
        return None

    # -- the operator ---------------------------------------------------------------------------

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal = request.get("signal")
        if signal not in OUTCOMES:
            return invalid("signal", f"an operator reports {', '.join(OUTCOMES)}, not {signal!r}")
        if message["provider_message_id"] not in self.tasks:
            return invalid("provider_message_id", "not a task this desk holds")
        note = request.get("text")
        resp = self.report(message["provider_message_id"], str(signal), str(note) if note is not None else None)
        return json_answer(200 if resp.status_code == 200 else 502,
                           {"ok": resp.status_code == 200, "channel": "operator", "signal": signal})

    def report(self, task_id: str, outcome: str, note: str | None = None) -> httpx.Response:
        """The operator closes the ticket: the outcome goes to the task's callback URL, signed."""
        kept = self.tasks[task_id]
        body: dict[str, Any] = {"task_id": task_id, "outcome": outcome, "ticket_id": kept["ticket_id"]}
        if note is not None:
            body["note"] = note
        raw = json.dumps(body, ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        resp = httpx.post(kept["task"]["callback_url"], content=raw, timeout=30,
                          headers={"content-type": "application/json", "x-cascade-timestamp": stamp,
                                   "x-cascade-signature": _mac(self.secret, stamp, raw)})
        kept["outcomes"].append({"outcome": outcome, "note": note, "status": resp.status_code})
        return resp


__all__ = ["OperatorDesk"]
