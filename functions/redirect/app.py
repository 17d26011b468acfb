"""GET /r/{token}: a tracked link. Records the click, then sends the browser on (302) — only
ever to the URL the message carried under that token.

GET /u/{token}: an email's unsubscribe page (a button; opening it changes nothing, since mail
scanners open links). POST /u/{token}: the one-click unsubscribe (RFC 8058) or that button."""

from typing import TYPE_CHECKING

from cascade import consent, http, signals
from cascade.observability import logger

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

_GONE = "<!doctype html><title>Link not found</title><p>This link is not valid or has expired.</p>"


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    def run() -> dict:
        token = (event.get("pathParameters") or {}).get("token", "")
        route = str(event.get("routeKey") or "")
        if route.endswith("/u/{token}"):
            method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")
            return consent.unsubscribe_answer(str(method).upper(), token)
        url = signals.click(token) if 8 <= len(token) <= 64 else None
        if url is None:
            return {"statusCode": 404, "headers": {"content-type": "text/html; charset=utf-8"}, "body": _GONE}
        return {"statusCode": 302, "headers": {"location": url, "cache-control": "no-store"}, "body": ""}

    return http.guarded(run)
