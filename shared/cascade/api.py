"""The read/cancel API (Powertools resolver with validation) and the API's self-description:
``/openapi.json`` is generated from the same pydantic models that validate requests."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from cascade import binding, signals, views
from cascade.aws import secret
from cascade.errors import Conflict, FieldError, NotFound, Unauthorized, ValidationFailed
from cascade.http import check_api_key
from cascade.models import (
    BindLink,
    CascadesStopped,
    CascadeStarted,
    CascadeView,
    ErrorBody,
    EventIn,
    SignalIn,
    Timeline,
)
from cascade.settings import settings

PUBLIC = {"/openapi.json", "/docs"}

_DOCS = """<!doctype html><html><head><meta charset="utf-8"><title>Cascade API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div><script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui", persistAuthorization: true});</script>
</body></html>"""


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body, ensure_ascii=False))


def build_app() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    def require_key(app: APIGatewayHttpResolver, next_middleware: Any) -> Response:
        if app.current_event.path not in PUBLIC:
            check_api_key(app.current_event.headers, secret(settings().api_key_secret_arn).get("api_key", ""))
        return next_middleware(app)

    app.use(middlewares=[require_key])

    @app.get("/v1/cascades/<cascade_id>", summary="A cascade: status, stop reason and every step")
    def get_cascade(cascade_id: str) -> CascadeView:
        return views.cascade_view(cascade_id)

    @app.post("/v1/cascades/<cascade_id>/cancel", summary="Cancel a running cascade: nothing more is sent")
    def cancel_cascade(cascade_id: str) -> CascadeView:
        return views.cancel(cascade_id)

    @app.post("/v1/signals", summary="Report a signal: an app saw a push opened, or the business saw a reply")
    def post_signal(body: SignalIn) -> CascadeView:
        cascade_id, _ = signals.report(body.signal, body.cascade_id, body.provider_message_id)
        return views.cascade_view(cascade_id)

    @app.post("/v1/recipients/<recipient_id>/bind/<channel>", summary="A one-time deep link that binds a messenger chat")
    def bind_link(recipient_id: str, channel: str) -> BindLink:
        return BindLink.model_validate(binding.deep_link(recipient_id, channel))

    @app.get("/v1/recipients/<recipient_id>/timeline", summary="Every touch of a recipient across cascades")
    def get_timeline(recipient_id: str) -> Timeline:
        return views.timeline(recipient_id)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi():  # a Response annotation would enter the schema
        return _json(200, openapi_document(app))

    @app.get("/docs", include_in_schema=False)
    def docs():  # same: no return annotation
        return Response(status_code=200, content_type="text/html; charset=utf-8", body=_DOCS)

    @app.exception_handler(Unauthorized)
    def unauthorized(exc: Unauthorized) -> Response:
        return _json(401, {"error": str(exc)})

    @app.exception_handler(NotFound)
    def not_found(exc: NotFound) -> Response:
        return _json(404, {"error": str(exc)})

    @app.exception_handler(NotFoundError)
    def no_route(exc: NotFoundError) -> Response:
        return _json(404, {"error": "no such route"})

    @app.exception_handler(ValidationFailed)
    def invalid_fields(exc: ValidationFailed) -> Response:
        return _json(422, {"error": "invalid request", "details": exc.details})

    @app.exception_handler(FieldError)
    def invalid_field(exc: FieldError) -> Response:
        return _json(422, {"error": "invalid request", "details": exc.details})

    @app.exception_handler(Conflict)
    def conflict(exc: Conflict) -> Response:
        return _json(409, {"error": str(exc)})

    @app.exception_handler(RequestValidationError)
    def invalid(exc: RequestValidationError) -> Response:
        # Powertools puts the parameter kind ("path", "query") first in each location.
        details = ValidationFailed.from_pydantic(list(exc.errors()), skip=1).details
        return _json(422, {"error": "invalid request", "details": details})

    return app


def openapi_document(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The resolver's own schema, plus the routes other functions serve (ingest, links, webhooks)."""
    doc: dict[str, Any] = json.loads(app.get_openapi_json_schema(
        title="Cascade messaging API", version="1.0.0",
        description="Post events about a customer; the service reaches them on the cheapest channel first.",
    ))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})

    def ref(model: Any) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def answer(model: Any, description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref(model)}}}

    doc["paths"]["/v1/events"] = {"post": {
        "summary": "Post an event: a trigger starts a cascade, a success event stops matching ones",
        "operationId": "post_event",
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref(EventIn)}}},
        "responses": {
            "202": {"description": "Started (cascade_id, scenario, status) or stopped (stopped: [ids])",
                    "content": {"application/json": {"schema": {"anyOf": [ref(CascadeStarted), ref(CascadesStopped)]}}}},
            "400": answer(ErrorBody, "Body is not JSON"),
            "401": answer(ErrorBody, "Missing or wrong API key"),
            "409": answer(ErrorBody, "idempotency_key reused with a different event"),
            "413": answer(ErrorBody, "Body over 256 KB"),
            "422": answer(ErrorBody, "Invalid event: details name each field at fault"),
        },
    }}
    doc["paths"]["/r/{token}"] = {"get": {
        "summary": "Tracked link: records a click and redirects to the message's original URL",
        "operationId": "follow_link", "security": [],
        "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"302": {"description": "Redirect to the original URL"}, "404": {"description": "Unknown link"}},
    }}
    # Provider webhooks: each checks its provider's signature on the raw body before anything else.
    hooks = [("post", "/webhooks/telegram", "Telegram Bot API updates (X-Telegram-Bot-Api-Secret-Token)"),
             ("get", "/webhooks/whatsapp", "WhatsApp Cloud API verification handshake (hub.verify_token)"),
             ("post", "/webhooks/whatsapp", "WhatsApp statuses and messages (X-Hub-Signature-256)"),
             ("post", "/webhooks/viber", "Viber callbacks (X-Viber-Content-Signature)"),
             ("post", "/webhooks/twilio/voice", "Twilio call status and key presses (X-Twilio-Signature)"),
             ("post", "/webhooks/twilio/sms", "Twilio SMS receipts and replies (X-Twilio-Signature)"),
             ("post", "/webhooks/operator", "Operator desk outcome (X-Cascade-Signature, HMAC-SHA256)")]
    for method, path, summary in hooks:
        doc["paths"].setdefault(path, {})[method] = {
            "summary": summary, "operationId": path.strip("/").replace("/", "_") + f"_{method}", "security": [],
            "responses": {"200": {"description": "Accepted"},
                          "401": {"description": "Missing or wrong signature"},
                          "403": {"description": "Refused (wrong verify token or signature, as the provider expects)"}},
        }
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    doc["security"] = [{"bearer": []}]
    return doc


__all__ = ["build_app", "openapi_document"]
