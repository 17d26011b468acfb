"""Provider webhooks under ``/webhooks/<provider>`` (all but Telegram's, which has its own function).

Each provider module offers ``webhook(request) -> response``: it checks the provider's signature
on the raw body first (a forged or unsigned request is refused with 401/403 and changes nothing),
then turns the provider's news into signals."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from cascade import http

ROUTES = {
    "/webhooks/whatsapp": "cascade.channels.whatsapp",
    "/webhooks/viber": "cascade.channels.viber",
    "/webhooks/twilio/voice": "cascade.channels.voice",
    "/webhooks/twilio/sms": "cascade.channels.twilio_sms",
    "/webhooks/operator": "cascade.channels.operator",
}


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    path: str
    url: str  # the full URL the provider called (what Twilio signs)
    headers: dict[str, str]  # lower-case names
    query: dict[str, str]
    body: bytes
    raw_event: dict[str, Any] = field(default_factory=dict, repr=False)

    def json(self) -> Any:
        return http.loads(self.body)  # strict: a 400 naming the problem for anything but JSON text

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (Twilio's webhooks)."""
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise http.HttpError(400, http.error_body("body is not UTF-8 form data")) from exc


def request_of(event: dict[str, Any]) -> WebhookRequest:
    from cascade.settings import settings

    cfg = settings()
    path = event.get("rawPath") or ""
    query = event.get("rawQueryString") or ""
    url = http.base_url(event, cfg.public_base_url) + path + (f"?{query}" if query else "")
    return WebhookRequest(method=((event.get("requestContext") or {}).get("http") or {}).get("method", "POST"),
                          path=path, url=url, headers=http.headers_of(event),
                          query=dict(parse_qsl(query, keep_blank_values=True)),
                          body=http.raw_body(event, cfg.max_body_bytes), raw_event=event)


def dispatch(event: dict[str, Any]) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        request = request_of(event)
        module = ROUTES.get(request.path)
        if module is None:
            return http.respond(404, http.error_body("no such webhook"))
        answer: dict[str, Any] = importlib.import_module(module).webhook(request)
        return answer

    return http.guarded(run)


__all__ = ["ROUTES", "WebhookRequest", "dispatch", "request_of"]
