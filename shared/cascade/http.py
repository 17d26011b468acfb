"""API Gateway HTTP API (payload v2) helpers for the small handlers: auth, body, answers.

Bad input always becomes a 4xx naming the field at fault; nothing here lets a stack trace out."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable
from typing import Any

from cascade.errors import Conflict, FieldError, NotFound, SignatureInvalid, Unauthorized, ValidationFailed
from cascade.observability import logger


class HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


def headers_of(event: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in (event.get("headers") or {}).items()}


def raw_body(event: dict[str, Any], limit: int) -> bytes:
    body = event.get("body") or ""
    data = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    if len(data) > limit:
        raise HttpError(413, {"error": f"body is larger than {limit // 1024} KB"})
    return data


def json_body(event: dict[str, Any], limit: int) -> Any:
    data = raw_body(event, limit)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, {"error": f"body is not valid JSON: {exc}"}) from exc


def base_url(event: dict[str, Any], configured: str = "") -> str:
    """Where this API is reachable from outside: the configured public URL, or the request's host."""
    if configured:
        return configured.rstrip("/")
    ctx = event.get("requestContext") or {}
    host = ctx.get("domainName") or headers_of(event).get("host", "localhost")
    proto = headers_of(event).get("x-forwarded-proto", "https")
    stage = ctx.get("stage") or "$default"
    return f"{proto}://{host}" + ("" if stage == "$default" else f"/{stage}")


def check_api_key(headers: dict[str, str], expected: str) -> None:
    given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    scheme, _, key = given.partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), expected.encode()):
        raise Unauthorized("missing or wrong API key")


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json", **(headers or {})},
            "body": json.dumps(body, ensure_ascii=False)}


def respond_text(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> dict[str, Any]:
    """A non-JSON answer: TwiML for Twilio, the bare challenge for WhatsApp's handshake."""
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": text}


def error_answer(exc: Exception) -> dict[str, Any]:
    """The one place where errors become HTTP answers for the hand-rolled handlers."""
    if isinstance(exc, HttpError):
        return respond(exc.status, exc.body)
    if isinstance(exc, ValidationFailed | FieldError):
        return respond(422, {"error": "invalid request", "details": exc.details})
    if isinstance(exc, Unauthorized | SignatureInvalid):
        return respond(401, {"error": str(exc)})
    if isinstance(exc, NotFound):
        return respond(404, {"error": str(exc) or "not found"})
    if isinstance(exc, Conflict):
        return respond(409, {"error": str(exc)})
    logger.exception("request failed")
    return respond(503, {"error": "temporarily unavailable, try again"})


def guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:
        return error_answer(exc)


__all__ = ["HttpError", "base_url", "check_api_key", "error_answer", "guarded", "headers_of", "json_body",
           "raw_body", "respond", "respond_text"]
