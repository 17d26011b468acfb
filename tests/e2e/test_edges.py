"""Bad input at every door gets a 4xx that names the problem, never a 5xx, and is never stored;
the API key is checked before the body; JSON is JSON whatever its Content-Type; path parameters
are URL-decoded; scenarios, links, conditions and CRM URLs are checked when they come in."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

PHONE = "+77011234567"

# Each bad body, and a word the answer's sentence must contain.
BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "deep": (b"[" * 100_000 + b"]" * 100_000, "nested"),
    "surrogate": (b'{"note": "\\ud83d"}', "surrogate"),
    "nan": (b'{"n": NaN}', "NaN"),
    "infinity": (b'{"n": -Infinity}', "Infinity"),
    "huge": (b'{"n": 1e400}', "too large"),
    "not_json": (b"type=order.placed&recipient=r1", "not valid JSON"),
}

# Every authenticated route that takes a body (method, path).
API_ROUTES = [
    ("POST", "/v1/events"),
    ("POST", "/v1/signals"),
    ("PUT", "/v1/recipients/r-edge/consent"),
    ("PUT", "/v1/scenarios/edge-bad-body"),
    ("POST", "/v1/scenarios/delivery-failed/preview"),
    ("POST", "/v1/scenarios/delivery-failed/forecast"),
    ("PUT", "/v1/webhooks"),
    ("POST", "/v1/cascades/c_edge/cancel"),
    ("POST", "/v1/recipients/r-edge/bind/telegram"),
]
# ... and those without one.
API_READS = [("GET", "/v1/cascades/c_edge"), ("GET", "/v1/recipients/r-edge/timeline"),
             ("GET", "/v1/recipients/r-edge/consent"), ("GET", "/v1/scenarios"), ("GET", "/v1/webhooks"),
             ("DELETE", "/v1/scenarios/edge-none"), ("GET", "/v1/cascades?scenario=delivery-failed")]


def _standin(stack: Any, cls: str) -> Any:
    return next(s for s in stack.standins if type(s).__name__ == cls)


def _signed(stack: Any, path: str, body: bytes) -> dict[str, str]:
    """The headers the provider would send with ``body``: each webhook's own signature."""
    if path == "/webhooks/telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": stack.telegram.secret_token}
    if path == "/webhooks/whatsapp":
        secret = _standin(stack, "WhatsAppStandIn").app_secret
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if path == "/webhooks/viber":
        secret = _standin(stack, "ViberStandIn").auth_token
        return {"X-Viber-Content-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    stamp = str(int(time.time()))
    secret = _standin(stack, "OperatorDesk").secret
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Cascade-Timestamp": stamp, "X-Cascade-Signature": f"v1={mac}"}


def _assert_names(resp: httpx.Response, word: str) -> None:
    assert resp.status_code in (400, 422), (resp.status_code, resp.text[:300])
    answer = resp.json()
    assert word.lower() in answer["error"].lower(), answer
    assert isinstance(answer["details"], list)


def _event(rid: str, **data: Any) -> dict[str, Any]:
    return {"type": "delivery.failed", "recipient": {"id": rid, "phone": PHONE},
            "data": {"order_id": f"o-{uuid.uuid4().hex[:6]}", "reschedule_url": "https://shop.test/r", **data}}


def _stored_for(api: Api, rid: str) -> list[dict[str, Any]]:
    listed = api.http.get("/v1/cascades", params={"scenario": "delivery-failed", "limit": 200}).json()["cascades"]
    return [c for c in listed if c.get("recipient_id") == rid]


# -- 1. bad JSON: a 400 naming the problem, on every route -------------------------------------------


@pytest.mark.parametrize("kind", list(BAD_BODIES))
@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_bad_json_gets_a_sentence_on_every_api_route(api: Api, method: str, path: str, kind: str) -> None:
    body, word = BAD_BODIES[kind]
    resp = api.http.request(method, path, content=body, headers={"content-type": "application/json"})
    _assert_names(resp, word)


@pytest.mark.parametrize("kind", list(BAD_BODIES))
@pytest.mark.parametrize("path", ["/webhooks/telegram", "/webhooks/whatsapp", "/webhooks/viber",
                                  "/webhooks/operator"])
def test_bad_json_with_a_good_signature_gets_a_sentence_on_every_webhook(api: Api, stack: Any, path: str,
                                                                         kind: str) -> None:
    body, word = BAD_BODIES[kind]
    resp = httpx.post(f"{api.base}{path}", content=body, timeout=30,
                      headers={"content-type": "application/json", **_signed(stack, path, body)})
    _assert_names(resp, word)


@pytest.mark.parametrize(("field", "raw"), [("data.note", '"\\ud83d"'), ("data.n", "NaN"), ("data.n", "1e400"),
                                            ("data.deep", "[" * 2000 + "]" * 2000)])
def test_an_event_with_bad_json_inside_data_is_refused_and_not_stored(api: Api, field: str, raw: str) -> None:
    rid = f"edge-{uuid.uuid4().hex[:8]}"
    text = json.dumps(_event(rid, **{field.split(".")[1]: "__X__"}))
    resp = api.http.post("/v1/events", content=text.replace('"__X__"', raw).encode(),
                         headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text[:300]
    if "surrogate" in resp.json()["error"]:
        assert resp.json()["details"][0]["field"] == field
    assert _stored_for(api, rid) == []


@pytest.mark.parametrize("token", ["%ED%A0%BD%ED%A0%BD%ED%A0%BD", "%22quoted%22-token", "%D0%90%D0%BD%D0%BD%D0%B0-link",
                                   "a%00b%00c%00d%00e"])
def test_odd_link_tokens_are_a_not_found_page(api: Api, token: str) -> None:
    for method, path in (("GET", f"/r/{token}"), ("GET", f"/u/{token}"), ("POST", f"/u/{token}")):
        resp = httpx.request(method, f"{api.base}{path}", content=BAD_BODIES["deep"][0], timeout=30)
        assert resp.status_code == 404, (method, path, resp.status_code, resp.text[:200])


# -- 2. the key first ----------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key"])
@pytest.mark.parametrize("kind", ["deep", "not_json", "invalid_fields"])
@pytest.mark.parametrize(("method", "path"), API_ROUTES + API_READS)
def test_no_or_a_wrong_key_is_401_whatever_the_body(api: Api, method: str, path: str, kind: str,
                                                   auth: str | None) -> None:
    body = b'{"unknown": 1, "signal": "nope"}' if kind == "invalid_fields" else BAD_BODIES[kind][0]
    headers = {"content-type": "application/json", **({"Authorization": auth} if auth else {})}
    resp = httpx.request(method, f"{api.base}{path}", content=body, headers=headers, timeout=30)
    assert resp.status_code == 401, (resp.status_code, resp.text[:300])
    assert resp.json()["error"] and resp.json()["details"] == []


# -- 3. JSON whatever the Content-Type (curl -d sends a form's) ------------------------------------------


def test_a_json_body_sent_as_a_form_is_read_as_json(api: Api) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    rid = f"edge-{uuid.uuid4().hex[:8]}"
    resp = api.http.put(f"/v1/recipients/{rid}/consent", headers=form,
                        content=json.dumps({"channel": "sms", "purpose": "marketing", "granted": True}))
    assert resp.status_code == 200, resp.text
    assert resp.json()["channels"]["sms"]["marketing"]["granted"] is True
    resp = api.http.post("/v1/scenarios/delivery-failed/preview", headers=form,
                         content=json.dumps({"recipient": {"id": rid, "phone": PHONE, "locale": "en"},
                                             "data": _event(rid)["data"]}))
    assert resp.status_code == 200, resp.text
    resp = api.http.post("/v1/scenarios/delivery-failed/forecast", headers=form, content=json.dumps({"audience": 100}))
    assert resp.status_code == 200, resp.text
    cascade_id = api.start(_event(rid))
    resp = api.http.post("/v1/signals", headers=form, content=json.dumps({"cascade_id": cascade_id, "signal": "read"}))
    assert resp.status_code in (200, 409), resp.text  # read before anything was sent is a conflict, not a 422
    assert not any(d["field"].startswith("{") for d in resp.json().get("details", []))
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


# -- 4. path parameters are URL-decoded ---------------------------------------------------------------


ODD_ID = 'Анна "Q" o\'neil'


def test_an_odd_recipient_id_works_in_consent_timeline_and_bind(api: Api) -> None:
    rid = f"{ODD_ID} {uuid.uuid4().hex[:6]}"
    path = quote(rid, safe="")
    resp = api.http.put(f"/v1/recipients/{path}/consent", json={"channel": "sms", "purpose": "marketing",
                                                                "granted": True})
    assert resp.status_code == 200, resp.text
    assert resp.json()["recipient_id"] == rid
    assert api.http.get(f"/v1/recipients/{path}/consent").json()["channels"]["sms"]["marketing"]["granted"] is True
    # The dashboard's customer card asks for the timeline with encodeURIComponent(id).
    cascade_id = api.start(_event(rid))
    timeline = wait_for("the first touch", lambda: (t := api.http.get(f"/v1/recipients/{path}/timeline").json())
                        ["touches"] and t)
    assert timeline["recipient_id"] == rid and timeline["touches"][0]["cascade_id"] == cascade_id
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    # A binding link made for the odd id binds that very recipient.
    link = api.http.post(f"/v1/recipients/{path}/bind/telegram").json()["link"]
    assert api.http.post("/local/simulate", json={"open_link": link, "as": "737373"}).status_code == 200
    cascade_id = api.start({"type": "cart.abandoned", "recipient": {"id": rid, "email": "sam@example.com",
                                                                     "consent": {"marketing": True}},
                            "data": {"cart_id": f"b-{uuid.uuid4().hex[:4]}", "cart_url": "https://shop.test/c"}})
    sent = wait_for("the Telegram step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "telegram"])
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    assert sent[0]["to"] == "737373"


# -- 5. a scenario the event's type does not start -------------------------------------------------------


def test_a_scenario_the_type_does_not_trigger_is_a_422_that_says_so(api: Api) -> None:
    rid = f"edge-{uuid.uuid4().hex[:8]}"
    body = {**_event(rid, cart_id="b-1", cart_url="https://shop.test/c"), "scenario": "abandoned-cart"}
    resp = api.post_event(body)
    assert resp.status_code == 422, resp.text
    [detail] = resp.json()["details"]
    assert detail["field"] == "scenario"
    assert "cart.abandoned" in detail["message"] and "delivery.failed" in detail["message"]


# -- 6. links are http(s) --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(document.cookie)", "data:text/html,hi",
                                 "tel:+77011234567", "shop.test/r"])
def test_a_link_field_that_is_not_http_is_refused_at_ingest(api: Api, url: str) -> None:
    rid = f"edge-{uuid.uuid4().hex[:8]}"
    resp = api.post_event(_event(rid, reschedule_url=url))
    assert resp.status_code == 422, resp.text
    assert [d["field"] for d in resp.json()["details"]] == ["data.reschedule_url"]
    assert "http" in resp.json()["details"][0]["message"]
    assert _stored_for(api, rid) == []


# -- 7. `when` is evaluated when a scenario is saved -------------------------------------------------


@pytest.mark.parametrize("when", ["().__class__", "x.__init__.__globals__", "data.order_id.__class__.__mro__",
                                  "data.order_id > 5", "nothing()"])
def test_a_when_that_fails_or_reaches_internals_is_refused_at_save(api: Api, saved: list[str], when: str) -> None:
    scenario = api.http.get("/v1/scenarios/delivery-failed").json()
    for key in ("version", "source"):
        scenario.pop(key, None)
    sid = f"edge-when-{uuid.uuid4().hex[:6]}"
    saved.append(sid)
    scenario.update(id=sid, trigger=f"edge.when_{uuid.uuid4().hex[:6]}", name="Edge when")
    scenario["steps"][1]["when"] = when
    resp = api.http.put(f"/v1/scenarios/{sid}", json=scenario)
    assert resp.status_code == 422, resp.text[:300]
    assert [d["field"] for d in resp.json()["details"]] == ["steps.1.when"]


# -- 8. errors are sentences; 404s have the same shape -------------------------------------------------


def test_validation_errors_are_sentences_not_patterns(api: Api) -> None:
    resp = api.post_event({"type": "Delivery Failed", "recipient": {
        "id": "edge-s", "phone": PHONE, "locale": "english", "email": "nope", "push_token": "a b c d e f g h",
        "telegram_chat_id": "chat"}, "data": {}})
    assert resp.status_code == 422
    details = {d["field"]: d["message"] for d in resp.json()["details"]}
    assert set(details) >= {"type", "recipient.locale", "recipient.email", "recipient.push_token",
                            "recipient.telegram_chat_id"}
    for message in details.values():
        assert not any(c in message for c in "^$\\[") and "pattern" not in message and "Value error" not in message
    resp = api.http.get("/v1/cascades", params={"scenario": "delivery-failed", "status": "nope"})
    assert resp.status_code == 422 and "^" not in resp.json()["details"][0]["message"]


def test_not_found_answers_have_the_error_shape(api: Api) -> None:
    for path in ("/v1/cascades/c_nope", "/v1/scenarios/edge-none", "/v1/webhooks"):
        if path == "/v1/webhooks":
            api.http.delete(path)
        resp = api.http.get(path)
        assert resp.status_code == 404
        assert set(resp.json()) == {"error", "details"} and resp.json()["details"] == []


# -- 9. CRM webhook URLs reach public addresses only -------------------------------------------------


@pytest.mark.parametrize("url", ["https://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/",
                                 "https://[::ffff:169.254.169.254]/hook", "https://0xA9FEA9FE/hook",
                                 "https://10.1.2.3/hook", "https://192.168.0.10/hook", "https://[fe80::1]/hook",
                                 "https://0.0.0.0/hook"])
def test_a_crm_webhook_to_a_non_public_address_is_refused(api: Api, url: str) -> None:
    resp = api.http.put("/v1/webhooks", json={"url": url, "secret": "s" * 32})
    assert resp.status_code == 422, resp.text
    [detail] = resp.json()["details"]
    assert detail["field"] == "url" and "address" in detail["message"]
