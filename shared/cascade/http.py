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

# Every JSON answer: UTF-8 text (ensure_ascii=False), and the charset said, so Cyrillic reads as written.
JSON = "application/json; charset=utf-8"


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
        raise HttpError(413, error_body(f"body is larger than {limit // 1024} KB"))
    return data


# Deeper than any request or provider webhook this service takes (a WhatsApp status is 7 levels).
MAX_DEPTH = 64


def error_body(message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Every error answer has this shape (models.ErrorBody): a sentence, and the fields at fault."""
    return {"error": message, "details": details or []}


def _bad_json(problem: str, field: str = "body") -> HttpError:
    return HttpError(400, error_body(f"body is not valid JSON: {problem}", [{"field": field, "message": problem}]))


def _refuse_constant(name: str) -> Any:
    raise _bad_json(f"{name} is not a JSON number (send null or a string instead)")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _bad_json(f"the number {text[:40]} is too large for a 64-bit float")
    return value


def _printable(text: str) -> str:
    """Text safe to put in an answer: a lone surrogate shows as its escape (\\ud83d)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_tree(value: Any) -> None:
    """Depth and text of a parsed document, without recursion: every string (keys too) must be
    valid Unicode, since DynamoDB, the providers and our own answers encode it as UTF-8."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, str):
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError as exc:
                    field = _printable(where) or "body"
                    bad = _printable(node[exc.start:exc.end])
                    raise HttpError(400, error_body(
                        f"body is not valid JSON text: {field} holds a lone UTF-16 surrogate ({bad}), "
                        "which is not a Unicode character",
                        [{"field": field, "message": f"holds a lone UTF-16 surrogate ({bad})"}])) from None
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise _bad_json(f"it is nested more than {MAX_DEPTH} levels deep")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in items:
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str):
                stack.append((key, path, depth))
            stack.append((item, path, depth + 1))


def loads(data: bytes | str) -> Any:
    """The one JSON parser for request bodies: strict JSON only. A 400 naming the problem for
    anything else: not UTF-8, not JSON, NaN/Infinity, a number too large for a float (1e400),
    nesting deeper than :data:`MAX_DEPTH`, a lone UTF-16 surrogate (``"\\ud83d"``) in any string."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_json("it is not UTF-8 text") from None
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise _bad_json(f"it is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, and integers over Python's 4300 digits
        raise _bad_json(_printable(str(exc))) from None
    _check_tree(value)
    return value


def json_body(event: dict[str, Any], limit: int) -> Any:
    """The request's body as JSON, whatever its Content-Type (``curl -d`` says it is a form)."""
    return loads(raw_body(event, limit))


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


def dumps(body: Any, **options: Any) -> str:
    """A JSON answer's body: UTF-8 text (Cyrillic as written, not ``\\u`` escapes) ending in a newline,
    so ``curl -s`` output does not run into the next answer or the shell's prompt."""
    return json.dumps(body, ensure_ascii=False, **options) + "\n"


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": JSON, **(headers or {})}, "body": dumps(body)}


def respond_text(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> dict[str, Any]:
    """A non-JSON answer: TwiML for Twilio, the bare challenge for WhatsApp's handshake."""
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": text}


def error_answer(exc: Exception) -> dict[str, Any]:
    """The one place where errors become HTTP answers for the hand-rolled handlers."""
    if isinstance(exc, HttpError):
        return respond(exc.status, {"details": [], **exc.body})
    if isinstance(exc, ValidationFailed | FieldError):
        return respond(422, error_body("invalid request", exc.details))
    if isinstance(exc, Unauthorized | SignatureInvalid):
        return respond(401, error_body(str(exc)))
    if isinstance(exc, NotFound):
        return respond(404, error_body(str(exc) or "not found"))
    if isinstance(exc, Conflict):
        return respond(409, error_body(str(exc)))
    logger.exception("request failed")
    return respond(503, error_body("temporarily unavailable, try again"))


def guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:
        return error_answer(exc)


__all__ = ["JSON", "MAX_DEPTH", "HttpError", "base_url", "check_api_key", "error_answer", "error_body", "guarded",
           "headers_of", "json_body", "loads", "raw_body", "respond", "respond_text"]
