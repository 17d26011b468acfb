"""The read/cancel API (Powertools resolver with validation) and the API's self-description:
``/openapi.json`` is generated from the same pydantic models that validate requests."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.shared.json_encoder import Encoder

from cascade import binding, consent, contacts, dashboard, outbound, reports, scenario_store, signals, views
from cascade.aws import secret
from cascade.errors import Conflict, FieldError, NotFound, Unauthorized, ValidationFailed
from cascade.forecast import ForecastIn, ForecastView, scenario_forecast
from cascade.http import (
    JSON,
    HttpError,
    base_url,
    check_api_key,
    dumps,
    error_answer,
    error_body,
    headers_of,
    json_body,
    loads,
    raw_body,
)
from cascade.models import (
    BindLink,
    CascadeList,
    CascadesStopped,
    CascadeStarted,
    CascadeView,
    ConsentIn,
    ConsentView,
    ContactReport,
    ErrorBody,
    EventIn,
    ScenarioReport,
    SignalIn,
    Timeline,
    WebhookIn,
    WebhookView,
)
from cascade.preview import PreviewIn, PreviewView, preview
from cascade.scenario_store import ScenarioList, StoredScenario
from cascade.scenarios import Scenario
from cascade.settings import settings

CascadeStatusFilter = Literal["running", "succeeded", "exhausted", "cancelled", "expired"]
PUBLIC = {"/openapi.json", "/docs", "/dashboard"}
PUBLIC_PREFIX = "/dashboard/"  # the page's script and styles: it asks for the key itself

# The document's own description, shared by /openapi.json and the Swagger UI at /docs.
_INFO: dict[str, Any] = {"title": "Cascade messaging API", "version": "1.0.0",
                         "description": "Post events about a customer; the service reaches them on the cheapest channel first."}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON,
                    body=dumps(body), headers=headers)


def _public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIX)


_request = threading.local()


class _Resolver(APIGatewayHttpResolver):
    """Powertools' resolver, with this API's order at the door: the API key first, then the body
    (strict JSON whatever its Content-Type), then routing and validation. Powertools runs its
    request validation before any middleware, so a key check there would come too late.

    Powertools keeps the request being handled on its router *class* (one per process). On Lambda
    a process handles one request at a time; the local stack runs concurrent invocations as threads
    of one process, where another request's event (a GET's empty body) could be validated in place
    of this one's. Here each thread sees its own request."""

    @property
    def current_event(self) -> Any:
        return _request.event

    @current_event.setter
    def current_event(self, value: Any) -> None:
        _request.event = value

    @property
    def lambda_context(self) -> Any:
        return getattr(_request, "context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        _request.context = value

    @staticmethod
    def _compile_regex(rule: str, base_regex: str = "^{}$") -> re.Pattern[str]:
        # A path parameter is any one segment, URL-decoded as API Gateway passes it: a space, a
        # quote or Cyrillic in a recipient id routes like any other character.
        return re.compile(base_regex.format(re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", rule)))

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        try:
            event = _decoded_path(dict(event))  # the key is checked for the path that is routed
            if not _public(str(event.get("rawPath") or "")):
                check_api_key(headers_of(event), secret(settings().api_key_secret_arn).get("api_key", ""))
            if event.get("body"):
                loads(raw_body(event, settings().max_body_bytes))  # a 400 naming the problem
                # JSON is JSON whatever the client called it (`curl -d` says form-urlencoded).
                event["headers"] = {**{k: v for k, v in (event.get("headers") or {}).items()
                                       if k.lower() != "content-type"}, "content-type": "application/json"}
        except Exception as exc:
            return error_answer(exc)
        self.current_event, self.lambda_context = self._to_proxy_event(event), context
        answer = super().resolve(event, context)
        headers = answer.get("headers") or {}
        if headers.get("Content-Type") == content_types.APPLICATION_JSON:  # a route's model, as UTF-8 text
            headers["Content-Type"] = JSON
        return answer

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPI:
        """Powertools' document of these routes, completed (see :func:`_complete`): what both
        ``/openapi.json`` and the Swagger UI at ``/docs`` show."""
        doc = super().get_openapi_schema(**kwargs).model_dump(mode="json", by_alias=True, exclude_none=True)
        return OpenAPI.model_validate(_complete(doc))


def _decoded_path(event: dict[str, Any]) -> dict[str, Any]:
    """The path rebuilt from the route and the path parameters API Gateway decoded, so a route
    sees ``a b`` for ``a%20b`` whether or not the gateway decoded ``rawPath`` too."""
    _, _, template = str(event.get("routeKey") or "").partition(" ")
    params = event.get("pathParameters") or {}
    if not template or not params:
        return event
    if any("/" in str(value) for value in params.values()):  # %2F: it would name another path
        raise NotFound("no such route: a path parameter may not contain '/'")
    path = re.sub(r"\{(\w+)\+?\}", lambda m: str(params.get(m.group(1), m.group(0))), template)
    return {**event, "rawPath": path}


def _error(description: str) -> OpenAPIResponse:
    """An error answer in a route's OpenAPI responses."""
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


def _answers(errors: dict[int, str]) -> dict[int, OpenAPIResponse]:
    """A route's own error answers, next to its 200 (the schema of its return type). The answers
    every route shares (401, 400/413 for a body, ...) are added by :func:`_door_answers`."""
    return {200: {"description": "Successful Response"}, **{code: _error(text) for code, text in errors.items()}}


def build_app() -> APIGatewayHttpResolver:
    # UTF-8 text, not \u escapes: Cyrillic names and templates read as written.
    app = _Resolver(enable_validation=True, serializer=partial(dumps, separators=(",", ":"), cls=Encoder))

    @app.get("/v1/cascades/<cascade_id>", summary="A cascade: status, stop reason and every step",
             responses=_answers({404: "No such cascade"}))
    def get_cascade(cascade_id: str) -> CascadeView:
        return views.cascade_view(cascade_id)

    @app.post("/v1/cascades/<cascade_id>/cancel", summary="Cancel a running cascade: nothing more is sent",
              responses=_answers({404: "No such cascade", 409: "The cascade has already ended"}))
    def cancel_cascade(cascade_id: str) -> CascadeView:
        return views.cancel(cascade_id)

    @app.post("/v1/signals", summary="Report a signal: an app saw a push opened, or the business saw a reply",
              responses=_answers({404: "No such cascade, or no message with this provider_message_id",
                                  409: "Nothing has been sent in this cascade yet",
                                  422: "Invalid: details name the field (signal, cascade_id, provider_message_id)"}))
    def post_signal(body: SignalIn) -> CascadeView:
        cascade_id, _ = signals.report(body.signal, body.cascade_id, body.provider_message_id)
        return views.cascade_view(cascade_id)

    @app.post("/v1/recipients/<recipient_id>/bind/<channel>", summary="A one-time deep link that binds a messenger chat",
              responses=_answers({422: "channel is not telegram or viber, that bot is not configured, or a bad locale"}))
    def bind_link(recipient_id: str, channel: str,
                  locale: Annotated[str | None, Query(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description=(
                      "the language the bot confirms the binding in (default: the recipient's running "
                      "cascade, else the messenger's language, else en)"))] = None) -> BindLink:
        return BindLink.model_validate(binding.deep_link(recipient_id, channel, locale=locale))

    @app.get("/v1/cascades", summary="A scenario's recent cascades (last 7 days), newest first")
    def list_cascades(scenario: Annotated[str, Query(min_length=1, max_length=64)],
                      status: Annotated[CascadeStatusFilter | None, Query()] = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> CascadeList:
        return views.recent(scenario, status, limit)

    @app.get("/v1/reports/scenarios/<scenario_id>",
             summary="A scenario's funnel per step and channel, totals, cost, and step 1 alone; ?format=csv",
             responses={200: {"description": "The report (JSON, or CSV with format=csv)",
                              "content": {"application/json": {"model": ScenarioReport}, "text/csv": {}}},
                        404: _error("No such scenario"), 422: _error("from/to are not dates, or out of order")})
    def scenario_report(scenario_id: str, from_: Annotated[str | None, Query(alias="from")] = None,
                        to: Annotated[str | None, Query()] = None,
                        format: Annotated[Literal["json", "csv"], Query()] = "json",
                        ) -> Response[ScenarioReport | str]:
        if scenario_store.get(scenario_id) is None:
            raise NotFound(f"no scenario {scenario_id!r}")
        start, end = reports.day_range(from_, to)
        report = reports.scenario_report(scenario_id, start, end)
        if format == "csv":
            return Response(status_code=200, content_type="text/csv; charset=utf-8", body=reports.report_csv(report),
                            headers={"Content-Disposition": f'attachment; filename="{scenario_id}-{start}-{end}.csv"'})
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                        body=ScenarioReport.model_validate(report))

    @app.get("/v1/reports/contacts",
             summary="Contacts to clean: invalid ones (bounced, unknown numbers, blocked bots), then inactive ones; "
                     "?format=csv",
             responses={200: {"description": "A page of contacts (JSON, or CSV with format=csv; the next "
                                             "page's cursor is in X-Next-Cursor)",
                             "content": {"application/json": {"model": ContactReport}, "text/csv": {}}},
                        422: _error("state, limit, format or cursor is not valid")})
    def contacts_report(state: Annotated[str | None, Query(pattern="^(invalid|inactive)$")] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        cursor: Annotated[str | None, Query(max_length=4096)] = None,
                        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
                        ) -> Response[ContactReport | str]:
        found = contacts.report(state, limit, cursor)
        if format == "csv":
            headers = {"Content-Disposition": 'attachment; filename="contacts.csv"',
                       **({"X-Next-Cursor": found["next_cursor"]} if found["next_cursor"] else {})}
            return Response(status_code=200, content_type="text/csv; charset=utf-8",
                            body=contacts.report_csv(found), headers=headers)
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                        body=ContactReport.model_validate(found))

    @app.get("/v1/recipients/<recipient_id>/timeline", summary="Every touch of a recipient across cascades")
    def get_timeline(recipient_id: str) -> Timeline:
        return views.timeline(recipient_id)

    @app.get("/v1/recipients/<recipient_id>/consent",
             summary="What a recipient consented to, refused or opted out of, per channel and purpose",
             responses=_answers({422: "recipient_id is longer than 128 characters"}))
    def get_consent(recipient_id: str) -> ConsentView:
        return consent.view(recipient_id)

    @app.put("/v1/recipients/<recipient_id>/consent",
             summary="Record consent or a refusal for one channel and purpose (a grant lifts an opt-out)")
    def put_consent(recipient_id: str, body: ConsentIn) -> ConsentView:
        return consent.record(recipient_id, body)

    @app.post("/v1/scenarios/<scenario_id>/preview",
              summary="Every step of a scenario for a sample recipient: text, SMS encoding and parts, cost",
              responses=_answers({404: "No such scenario",
                                  422: "Invalid: details name the field, or the data a template needs"}))
    def preview_scenario(scenario_id: str, body: PreviewIn) -> PreviewView:
        found = scenario_store.get(scenario_id)  # the version in effect: a saved one, else the preset
        if found is None:
            raise NotFound(f"no scenario {scenario_id!r}")
        return preview(found.scenario, body, base_url(app.current_event.raw_event, settings().public_base_url))

    @app.post("/v1/scenarios/<scenario_id>/forecast",
              summary="Expected sends, reach, cost and time to success for an audience, vs the first channel alone",
              responses=_answers({404: "No such scenario", 422: "Invalid: details name each field at fault"}))
    def forecast_scenario(scenario_id: str, body: ForecastIn) -> ForecastView:
        return scenario_forecast(scenario_id, body)

    # -- scenarios: presets are the defaults; a PUT saves a new version (running cascades keep theirs)

    @app.get("/v1/scenarios", summary="Every scenario in effect: presets, overrides and custom ones, with versions")
    def list_scenarios() -> ScenarioList:
        return ScenarioList.model_validate({"scenarios": scenario_store.all_scenarios()})

    @app.get("/v1/scenarios/<scenario_id>", summary="A scenario as in effect, with its version and source",
             responses=_answers({404: "No such scenario"}))
    def get_scenario(scenario_id: str) -> StoredScenario:
        found = scenario_store.get(scenario_id)
        if found is None:
            raise NotFound(f"no scenario {scenario_id!r}")
        return found.view()

    @app.put("/v1/scenarios/<scenario_id>", summary="Save a scenario as a new version: 201 if it is a new custom one",
             responses={200: {"description": "Saved as a new version (a preset's override, or a custom scenario's)"},
                        201: {"description": "A new custom scenario"},
                        409: _error("Its trigger starts another scenario, or the version read is stale"),
                        413: _error("Body too large"),
                        422: _error("Invalid: details name each field, e.g. steps.2.template.ru")})
    def put_scenario(scenario_id: str) -> Response[StoredScenario]:
        raw = json_body(app.current_event.raw_event, settings().max_body_bytes)
        scenario, expected_version = scenario_store.parse(scenario_id, raw)
        saved, created = scenario_store.save(scenario, expected_version)
        return Response(status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON,
                        body=saved.view())

    @app.delete("/v1/scenarios/<scenario_id>", summary="Delete a saved scenario: an override's preset comes back",
                responses={204: {"description": "Deleted (running cascades finish on their version)", "content": {}},
                           404: _error("Nothing saved under this id"),
                           409: _error("Scenarios are being changed concurrently; try again")})
    def delete_scenario(scenario_id: str) -> Response[None]:
        scenario_store.delete(scenario_id)
        return Response(status_code=204, body=None)

    # -- outbound events for the business's CRM (cascade.outbound): one registration

    @app.put("/v1/webhooks", summary="Register the URL and secret the CRM events are POSTed to (signed)",
             responses={200: {"description": "Registered (the secret is never shown)"},
                        400: _error("Body is not JSON"), 413: _error("Body too large"),
                        422: _error("Invalid: details name the field (url, secret, events)")})
    def put_webhook() -> WebhookView:
        # Read as JSON whatever the content type (curl -d sends a form's), and never echo the body.
        return outbound.register(outbound.parse(json_body(app.current_event.raw_event, settings().max_body_bytes)))

    @app.get("/v1/webhooks", summary="The registered CRM webhook (the secret is never shown)",
             responses={200: {"description": "The registration"}, 404: _error("No webhook is registered")})
    def get_webhook() -> WebhookView:
        return outbound.registration()

    @app.delete("/v1/webhooks", summary="Stop sending CRM events",
                responses={204: {"description": "Removed (or there was none)", "content": {}}})
    def delete_webhook() -> Response[None]:
        outbound.unregister()
        return Response(status_code=204, body=None)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi():  # a Response annotation would enter the schema
        return _json(200, openapi_document(app))

    # Swagger UI with the assets Powertools ships (no CDN: it works offline), the same document
    # inline, and "Authorize" for the bearer key; ?format=json answers the document too.
    app.enable_swagger(path="/docs", compress=True, persist_authorization=True, **_INFO)

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page():  # same: no return annotation
        return dashboard.response("index.html")

    @app.get("/dashboard/<name>", include_in_schema=False)
    def dashboard_file(name: str):
        return dashboard.response(name)

    # Every error answer is models.ErrorBody: {"error": a sentence, "details": [{field, message}]}.

    @app.exception_handler(Unauthorized)
    def unauthorized(exc: Unauthorized) -> Response:
        return _json(401, error_body(str(exc)))

    @app.exception_handler(NotFound)
    def not_found(exc: NotFound) -> Response:
        return _json(404, error_body(str(exc)))

    @app.exception_handler(NotFoundError)
    def no_route(exc: NotFoundError) -> Response:
        path, method = app.current_event.path, app.current_event.http_method.upper()
        allowed = sorted({r.method for r in app._static_routes + app._dynamic_routes
                          if r.method != method and r.rule.match(path)})
        if allowed:
            return _json(405, error_body(f"{method} is not allowed on {path}; use {', '.join(allowed)}"),
                         headers={"Allow": ", ".join(allowed)})
        return _json(404, error_body(f"no route {method} {path}"))

    @app.exception_handler(ValidationFailed)
    def invalid_fields(exc: ValidationFailed) -> Response:
        return _json(422, error_body("invalid request", exc.details))

    @app.exception_handler(FieldError)
    def invalid_field(exc: FieldError) -> Response:
        return _json(422, error_body("invalid request", exc.details))

    @app.exception_handler(HttpError)
    def http_error(exc: HttpError) -> Response:
        return _json(exc.status, {"details": [], **exc.body})

    @app.exception_handler(Conflict)
    def conflict(exc: Conflict) -> Response:
        return _json(409, error_body(str(exc)))

    @app.exception_handler(RequestValidationError)
    def invalid(exc: RequestValidationError) -> Response:
        # Powertools puts the parameter kind ("path", "query") first in each location.
        details = ValidationFailed.from_pydantic(list(exc.errors()), skip=1).details
        return _json(422, error_body("invalid request", details))

    return app


def openapi_document(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The API document, as ``/openapi.json`` serves it."""
    return dict(json.loads(app.get_openapi_json_schema(**_INFO)))


def _complete(doc: dict[str, Any]) -> dict[str, Any]:
    """The resolver's own schema, plus the routes other functions serve (ingest, links, webhooks)."""
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
            "202": {"description": "Started (cascade_id, scenario, status; warnings when it will send nothing at all) "
                                   "or stopped (stopped: [ids])",
                    "content": {"application/json": {"schema": {"anyOf": [ref(CascadeStarted), ref(CascadesStopped)]}}}},
            "400": answer(ErrorBody, "Body is not JSON"),
            "401": answer(ErrorBody, "Missing or wrong API key"),
            "409": answer(ErrorBody, "idempotency_key reused with a different event"),
            "413": answer(ErrorBody, "Body over 256 KB"),
            "422": answer(ErrorBody, "Invalid event: details name each field at fault"),
        },
    }}
    # The PUT reads its body itself (size limit, id from the path, 422s naming steps): describe it here.
    save = doc["paths"].get("/v1/scenarios/{scenario_id}", {}).get("put")
    if save is not None:
        save["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(Scenario)}}}
    hook = doc["paths"].get("/v1/webhooks", {}).get("put")
    if hook is not None:
        hook["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(WebhookIn)}}}
    doc["paths"]["/r/{token}"] = {"get": {
        "summary": "Tracked link: records a click and redirects to the message's original URL",
        "operationId": "follow_link", "security": [],
        "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"302": {"description": "Redirect to the original URL"}, "404": {"description": "Unknown link"}},
    }}
    unsubscribe = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    doc["paths"]["/u/{token}"] = {
        "get": {"summary": "Email unsubscribe page: a button that confirms (opening the link changes nothing)",
                "operationId": "unsubscribe_page", "security": [], "parameters": [unsubscribe],
                "responses": {"200": {"description": "HTML page"}, "404": {"description": "Unknown link"}}},
        "post": {"summary": "One-click unsubscribe (RFC 8058, body List-Unsubscribe=One-Click): the email opt-out",
                 "operationId": "unsubscribe", "security": [], "parameters": [unsubscribe],
                 "responses": {"200": {"description": "Unsubscribed"}, "404": {"description": "Unknown link"}}},
    }
    # Provider webhooks: each checks its provider's signature on the raw body before anything else,
    # and refuses a forged request the way its provider expects (Twilio and Meta's handshake: 403).
    signature, token = ("401", "Missing or wrong signature"), ("403", "Missing or wrong signature or verify token")
    hooks = [("post", "/webhooks/telegram", "Telegram Bot API updates (X-Telegram-Bot-Api-Secret-Token)", signature),
             ("get", "/webhooks/whatsapp", "WhatsApp Cloud API verification handshake (hub.verify_token)", token),
             ("post", "/webhooks/whatsapp", "WhatsApp statuses and messages (X-Hub-Signature-256)", signature),
             ("post", "/webhooks/viber", "Viber callbacks (X-Viber-Content-Signature)", signature),
             ("post", "/webhooks/twilio/voice", "Twilio call status and key presses (X-Twilio-Signature)", token),
             ("post", "/webhooks/twilio/sms", "Twilio SMS receipts and replies (X-Twilio-Signature)", token),
             ("post", "/webhooks/operator", "Operator desk outcome (X-Cascade-Signature, HMAC-SHA256)", signature)]
    for method, path, summary, (refused, why) in hooks:
        body_errors = ({"400": answer(ErrorBody, "Body is not JSON (or, for Twilio, not UTF-8 form data)"),
                        "413": answer(ErrorBody, "Body too large")} if method == "post" else {})
        doc["paths"].setdefault(path, {})[method] = {
            "summary": summary, "operationId": path.strip("/").replace("/", "_") + f"_{method}", "security": [],
            "responses": {"200": {"description": "Accepted"}, refused: answer(ErrorBody, why), **body_errors},
        }
    doc["paths"]["/webhooks/operator"]["post"]["responses"]["404"] = answer(ErrorBody, "No such operator task")
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    doc["security"] = [{"bearer": []}]
    _door_answers(doc, {"application/json": {"schema": ref(ErrorBody)}})
    return doc


def _door_answers(doc: dict[str, Any], error: dict[str, Any]) -> None:
    """Answers :class:`_Resolver` (and the ingest function) give before a route runs, on every
    operation they can reach: 401 without the key (all but the public ones), 400 and 413 for a
    body that is not JSON or too large, 404 for a path parameter that holds '/'. Powertools' own
    422 is listed with the error model it really has, and only where something is validated."""
    for item in doc["paths"].values():
        for op in item.values():
            answers, kinds = op["responses"], {p["in"] for p in op.get("parameters", [])}
            if op.get("security") != []:
                answers.setdefault("401", {"description": "Missing or wrong API key", "content": error})
            if "requestBody" in op:
                answers.setdefault("400", {"description": "Body is not JSON", "content": error})
                answers.setdefault("413", {"description": "Body too large", "content": error})
            if "path" in kinds:
                answers.setdefault("404", {"description": "A path parameter holds '/' (%2F)", "content": error})
            validated = answers.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if validated.get("$ref") == "#/components/schemas/HTTPValidationError":  # Powertools' own
                if "query" in kinds or "requestBody" in op:
                    answers["422"] = {"description": "Invalid: details name each field at fault", "content": error}
                else:  # a path parameter is any text: nothing can fail
                    del answers["422"]
    used = json.dumps(doc["paths"])
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):  # Powertools' own
        if f"/{name}\"" not in used:
            doc["components"]["schemas"].pop(name, None)


__all__ = ["build_app", "openapi_document"]
