"""The business's CRM endpoint, as an HTTP peer: signed POSTs of outbound events with retries.

What the events are and when they are sent is :mod:`cascade.outbound`; this module only talks
HTTP. An event's body is compact JSON, signed like the operator desk's tasks
(``X-Cascade-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``). Each POST gets
:data:`ATTEMPTS` tries with capped exponential backoff (honouring ``Retry-After``); a 4xx other
than 408 and 429, or a redirect, is the receiver refusing the event for good."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Literal

from cascade.observability import logger

if TYPE_CHECKING:
    from typing import TypeAlias

    import httpx

    HttpClient: TypeAlias = httpx.Client

ATTEMPTS = 3
BACKOFF_S = 0.5  # before the second try; doubles, capped at BACKOFF_CAP_S
BACKOFF_CAP_S = 5.0
USER_AGENT = "cascade-outbound/1"

Outcome = Literal["delivered", "refused", "failed"]


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def signed_headers(secret: str, event: dict[str, Any], body: bytes, now: float | None = None) -> dict[str, str]:
    from cascade.channels.operator import signature

    timestamp = int(time.time() if now is None else now)
    return {"content-type": "application/json", "user-agent": USER_AGENT,
            "x-cascade-event-id": str(event["id"]), "x-cascade-event-type": str(event["type"]),
            "x-cascade-timestamp": str(timestamp), "x-cascade-signature": signature(secret, timestamp, body)}


def safe_url(url: str) -> str:
    """What a log may say about the receiver: scheme, host and path (no credentials, no query)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def backoff(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` ≥ 1)."""
    wait = min(BACKOFF_CAP_S, BACKOFF_S * 2 ** (attempt - 1))
    if retry_after and retry_after.strip().isdigit():
        wait = max(wait, min(BACKOFF_CAP_S, float(retry_after)))
    return wait


def deliver(event: dict[str, Any], url: str, secret: str, http: httpx.Client,
            sleep: Any = time.sleep) -> Outcome:
    """POST one event, with up to :data:`ATTEMPTS` tries. ``refused``: the receiver said no for
    good (a 4xx other than 408/429, or a redirect); ``failed``: it never said yes."""
    import httpx

    body = body_of(event)
    where = safe_url(url)
    for attempt in range(1, ATTEMPTS + 1):
        retry_after = None
        try:
            resp = http.post(url, content=body, headers=signed_headers(secret, event, body))
        except httpx.HTTPError as exc:
            status, problem = None, type(exc).__name__
        else:
            status, problem = resp.status_code, f"HTTP {resp.status_code}"
            retry_after = resp.headers.get("retry-after")
            if 200 <= status < 300:
                logger.info("crm event delivered", event_id=event["id"], type=event["type"],
                            cascade_id=event.get("cascade_id"), status=status, attempts=attempt, url=where)
                return "delivered"
            if 300 <= status < 500 and status not in (408, 429):
                logger.warning("crm refused the event: dropped", event_id=event["id"], type=event["type"],
                               cascade_id=event.get("cascade_id"), status=status, url=where)
                return "refused"
        logger.warning("crm delivery failed", event_id=event["id"], type=event["type"], attempt=attempt,
                       problem=problem, status=status, url=where)
        if attempt < ATTEMPTS:
            sleep(backoff(attempt, retry_after))
    return "failed"


def worst_case_seconds(timeout_s: float) -> float:
    """How long one record can take: every try timing out, plus the waits between them."""
    return ATTEMPTS * (timeout_s + 3.0) + sum(backoff(a) for a in range(1, ATTEMPTS))


_http: httpx.Client | None = None


def crm_client() -> httpx.Client:
    global _http
    if _http is None:
        from cascade.channels import http_client

        _http = http_client()  # bounded by the provider timeout; redirects are not followed
    return _http


__all__ = ["ATTEMPTS", "BACKOFF_CAP_S", "BACKOFF_S", "USER_AGENT", "Outcome", "backoff", "body_of", "crm_client",
           "deliver", "safe_url", "signed_headers", "worst_case_seconds"]
