"""The API's self-description against the local stack: Swagger UI at ``/docs`` in a real browser
with every host but this machine blocked, ``/openapi.json`` listing the answers each route really
gives (checked by requests that provoke them), and JSON answers that keep Cyrillic as text.
Screenshots go to ``test-artifacts/docs/``."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from openapi_spec_validator import validate
from playwright.sync_api import Page, Route, sync_playwright

from tests.conftest import API_KEY, Api

pytestmark = pytest.mark.stack

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "docs"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
# Served by the API function without the key: the document, the page, the dashboard's files.
PUBLIC_PAGES = ("/openapi.json", "/docs", "/dashboard")


# ---- /docs in a browser that can reach nothing but this machine --------------------------------

@pytest.fixture
def offline_page(api: Api, tmp_path: Path) -> Iterator[tuple[Page, list[str]]]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; CI installs it)")
    blocked: list[str] = []

    def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 1000})
        context.route("**/*", loopback_only)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)  # a busy machine: two cores, a whole stack
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page, blocked
        finally:
            context.close()
    assert not errors, f"the page threw: {errors}"


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_docs_show_every_operation_offline_and_try_it_out_works_with_the_key(
        api: Api, offline_page: tuple[Page, list[str]]) -> None:
    # Given a browser that can reach 127.0.0.1 only
    page, blocked = offline_page
    # When a newcomer opens /docs (no key needed)
    page.goto(f"{api.base}/docs")
    # Then Swagger UI draws the API: the title and the operations, by method and path
    page.get_by_role("heading", name=re.compile("Cascade messaging API")).wait_for()
    for operation_id in ("post_event", "get_cascade_v1_cascades__cascade_id__get",
                         "preview_scenario_v1_scenarios__scenario_id__preview_post",
                         "put_webhook_v1_webhooks_put", "follow_link"):
        page.locator(f"[id$='-{operation_id}']").wait_for(state="visible")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/v1/events", "/v1/scenarios/{scenario_id}/preview", "/v1/webhooks"} <= {p.strip() for p in paths}
    _shot(page, "docs-offline")

    # And "Try it out" sends the key given once under "Authorize"
    page.locator("button.authorize").first.click()
    page.locator(".auth-container input").fill(API_KEY)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".auth-btn-wrapper button.btn-done").click()
    operation = page.locator("[id$='-list_scenarios_v1_scenarios_get']")
    operation.locator(".opblock-summary-control").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert "delivery-failed" in operation.locator(".live-responses-table .microlight").first.inner_text()
    _shot(page, "docs-try-it-out")
    # And nothing was fetched from anywhere else (before, the page loaded Swagger UI from a CDN)
    assert not blocked, f"the page asked for other hosts: {blocked}"


def test_the_docs_page_the_document_and_its_json_need_no_key(api: Api) -> None:
    for path in ("/docs", "/docs?format=json", "/openapi.json"):
        resp = httpx.get(f"{api.base}{path}", timeout=60)
        assert resp.status_code == 200, (path, resp.text[:300])
    page = httpx.get(f"{api.base}/docs", timeout=60)
    assert "cdn." not in page.text and "SwaggerUIBundle" in page.text
    # The page carries the same document /openapi.json serves, /v1/events included.
    inline = httpx.get(f"{api.base}/docs?format=json", timeout=60).json()
    assert inline["paths"] == httpx.get(f"{api.base}/openapi.json").json()["paths"]
    assert inline["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}


# ---- every operation lists its real answers ------------------------------------------------------

def _document(api: Api) -> dict[str, Any]:
    return dict(httpx.get(f"{api.base}/openapi.json").json())


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def test_every_operation_declares_401_and_its_errors_in_the_error_model(api: Api) -> None:
    doc = _document(api)
    validate(doc)  # OpenAPI 3.1, as Swagger UI and client generators read it
    assert doc["security"] == [{"bearer": []}]
    for method, path, op in _operations(doc):
        answers = op["responses"]
        if op.get("security") != []:
            assert "401" in answers, f"{method} {path} does not list 401"
        for code, answer in answers.items():
            if code.startswith("4") and "application/json" in answer.get("content", {}):
                assert answer["content"]["application/json"]["schema"] == ERROR_BODY, (method, path, code)
    assert "HTTPValidationError" not in json.dumps(doc)  # Powertools' 422 shape is not what we answer
    webhooks = doc["paths"]["/v1/webhooks"]
    for method in ("get", "put"):
        assert webhooks[method]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/WebhookView"}, method
    assert {"url", "events"} <= set(doc["components"]["schemas"]["WebhookView"]["properties"])
    # A route whose path parameter is any text cannot fail validation: no 422 is promised.
    assert "422" not in doc["paths"]["/v1/cascades/{cascade_id}"]["get"]["responses"]


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: f"docs-{m.group(1)}-{uuid.uuid4().hex[:6]}", path)


def test_every_operation_that_needs_the_key_answers_401_without_it(api: Api) -> None:
    # The key is checked before the route runs: a request with any body, to every listed operation.
    for method, path, op in _operations(_document(api)):
        if op.get("security") == [] or path in PUBLIC_PAGES:
            continue
        resp = httpx.request(method, f"{api.base}{_fill(path)}", json={}, timeout=60)
        assert resp.status_code == 401, (method, path, resp.text)
        assert resp.json() == {"error": "missing or wrong API key", "details": []}


def test_the_declared_error_answers_are_what_the_routes_give(api: Api) -> None:
    doc = _document(api)
    preset = api.http.get("/v1/scenarios/delivery-failed").json()
    stale = {k: v for k, v in preset.items() if k not in ("source", "id")} | {"version": 9999}
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("GET", "/v1/cascades/{cascade_id}", "/v1/cascades/c_nosuch", {}),
        ("POST", "/v1/cascades/{cascade_id}/cancel", "/v1/cascades/c_nosuch/cancel", {}),
        ("GET", "/v1/scenarios/{scenario_id}", "/v1/scenarios/no-such-scenario", {}),
        ("POST", "/v1/scenarios/{scenario_id}/preview", "/v1/scenarios/no-such-scenario/preview",
         {"json": {"recipient": {"id": "r1"}}}),
        ("GET", "/v1/recipients/{recipient_id}/timeline", "/v1/recipients/a%2Fb/timeline", {}),
        ("POST", "/v1/signals", "/v1/signals", {"content": b"{not json"}),
        ("POST", "/v1/signals", "/v1/signals", {"json": {"signal": "read", "pad": "x" * 300_000}}),
        ("POST", "/v1/signals", "/v1/signals", {"json": {"signal": "read", "cascade_id": "c_nosuch"}}),
        ("POST", "/v1/signals", "/v1/signals", {"json": {"signal": "teleported"}}),
        ("POST", "/v1/recipients/{recipient_id}/bind/{channel}", "/v1/recipients/r1/bind/fax", {}),
        ("GET", "/v1/cascades", "/v1/cascades", {}),
        ("PUT", "/v1/scenarios/{scenario_id}", "/v1/scenarios/delivery-failed", {"json": stale}),
        ("PUT", "/v1/webhooks", "/v1/webhooks", {"json": {"url": "ftp://x"}}),
        ("POST", "/v1/events", "/v1/events", {"json": {"type": "nobody.listens"}}),
    ]
    seen: dict[tuple[str, str], set[str]] = {}
    for method, route, url, kwargs in cases:
        resp = api.http.request(method, url, **kwargs)
        code = str(resp.status_code)
        assert code.startswith("4"), (method, url, code, resp.text)
        # Then the answer is one the document lists for that operation, in the error model
        assert code in doc["paths"][route][method.lower()]["responses"], (method, route, code, resp.text)
        body = resp.json()
        assert set(body) == {"error", "details"} and isinstance(body["details"], list), resp.text
        seen.setdefault((method, route), set()).add(code)
    assert {"400", "404", "413", "422"} <= seen[("POST", "/v1/signals")]
    assert seen[("PUT", "/v1/scenarios/{scenario_id}")] == {"409"}
    assert seen[("GET", "/v1/recipients/{recipient_id}/timeline")] == {"404"}


# ---- JSON keeps Cyrillic as text ----------------------------------------------------------------

def _utf8_json(resp: httpx.Response, *, line: bool = True) -> bytes:
    assert resp.headers["content-type"] == "application/json; charset=utf-8", resp.headers
    assert b"\\u04" not in resp.content, resp.content[:300]
    # ends in a newline: `curl -s` answers don't run into each other or into the shell's prompt
    assert not line or resp.content.endswith(b"}\n"), resp.content[-80:]
    return resp.content


def test_json_answers_carry_cyrillic_as_utf8_text(api: Api) -> None:
    # A route's model (Powertools' serializer): a preview in Russian
    preview = api.http.post("/v1/scenarios/delivery-failed/preview",
                            json={"recipient": {"id": "r-ru", "name": "Наталья", "locale": "ru"},
                                  "data": {"order_id": "1001", "reschedule_url": "https://shop.test/r"}})
    assert preview.status_code == 200, preview.text
    text = preview.json()["steps"][0]["text"]
    assert re.search("[а-я]", text) and text.encode() in _utf8_json(preview)
    # An error from the API function, and one from the ingest function, naming Cyrillic input
    assert "сценарий".encode() in _utf8_json(api.http.get("/v1/scenarios/сценарий"))
    event = api.post_event({"type": "order.created", "scenario": "сценарий", "recipient": {"id": "r-ru"}})
    assert event.status_code == 422 and "сценарий".encode() in _utf8_json(event)
    # A provider webhook's refusal and the local stack's own routes
    _utf8_json(httpx.post(f"{api.base}/webhooks/operator", content=b"{}"))
    _utf8_json(api.http.get("/local/outbox"))
    # And the document itself (an intent's example keywords are Russian), both ways it is served
    for path in ("/openapi.json", "/docs?format=json"):
        answer = httpx.get(f"{api.base}{path}", timeout=60)
        assert "ПЕРЕНОС".encode() in _utf8_json(answer, line=path == "/openapi.json"), path
