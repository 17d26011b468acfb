"""The local inboxes' message headers, and the mail client's one-click unsubscribe.

moto's SES v2 keeps an email's subject and body but drops the headers we asked SES to add, so the
local stack keeps them itself, by message id, as a mail client would receive them. ``/local/simulate
{"signal": "unsubscribed"}`` then does what Gmail's "Unsubscribe" button does (RFC 8058): POST
``List-Unsubscribe=One-Click`` to the URL in the message's ``List-Unsubscribe`` header."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import httpx

from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer

HEADERS: dict[str, dict[str, str]] = {}  # message id → header name (lower case) → value
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Keep the headers of every SES v2 SendEmail (Simple content) that moto accepts."""
    global _installed
    from moto.sesv2.responses import SESV2Response

    with _lock:
        if _installed:
            return
        _installed = True
    send_email = SESV2Response.send_email

    def keeping_headers(self: Any) -> str:
        answer: str = send_email(self)
        try:
            simple = (json.loads(self.body).get("Content") or {}).get("Simple") or {}
            message_id = json.loads(answer)["MessageId"]
        except (ValueError, KeyError, AttributeError):
            return answer
        headers = {str(h["Name"]).lower(): str(h["Value"]) for h in simple.get("Headers") or []}
        with _lock:
            HEADERS[message_id] = headers
        return answer

    SESV2Response.send_email = keeping_headers  # type: ignore[method-assign]


def headers(message_id: str) -> dict[str, str]:
    with _lock:
        return dict(HEADERS.get(message_id, {}))


def one_click(message: dict[str, Any]) -> Answer:
    """The recipient presses the mail client's "Unsubscribe" on ``message`` (an outbox entry)."""
    found = headers(message["provider_message_id"])
    link = re.search(r"<(https?://[^>]+)>", found.get("list-unsubscribe", ""))
    if link is None or found.get("list-unsubscribe-post") != "List-Unsubscribe=One-Click":
        return json_answer(422, {"error": "the email carries no one-click List-Unsubscribe header"})
    resp = httpx.post(link.group(1), content=b"List-Unsubscribe=One-Click", timeout=30,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    return json_answer(200 if resp.status_code == 200 else 502,
                       {"ok": resp.status_code == 200, "channel": "email", "signal": "unsubscribed"})


__all__ = ["HEADERS", "headers", "install", "one_click"]
