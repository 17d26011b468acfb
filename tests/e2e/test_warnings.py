"""An accepted trigger that will send nothing at all says why in its 202 (``warnings``), and what
it says is what then happens: each step ends skipped with the reason it was warned of."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack


def _cart(recipient: dict[str, Any]) -> dict[str, Any]:
    cart = uuid.uuid4().hex[:8]
    return {"type": "cart.abandoned", "recipient": {"id": f"warn-{cart}", "name": "Sam", "locale": "en", **recipient},
            "data": {"cart_id": cart, "cart_url": f"https://shop.example.com/cart/{cart}"}}


def _ended(api: Api, cascade_id: str) -> dict[str, Any]:
    return dict(wait_for(f"{cascade_id} to end", lambda: (c := api.cascade(cascade_id))["status"] != "running" and c,
                         timeout=120, every=0.2))


def test_a_cart_without_marketing_consent_is_accepted_with_the_reason_each_step_will_be_skipped(api: Api) -> None:
    # Given a customer with an e-mail address and a phone, but no marketing consent
    event = _cart({"email": "sam@example.com", "phone": "+14155550123"})
    # When the shop posts the abandoned cart
    resp = api.post_event(event)
    # Then it is accepted, and the answer says that nothing will go out, and why, step by step
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert {k: body[k] for k in ("scenario", "status")} == {"scenario": "abandoned-cart", "status": "running"}
    warned = [(w["step"], w["channel"], w["reason"]) for w in body["warnings"]]
    assert warned == [(0, "email", "no_consent"), (1, "telegram", "no_contact"), (2, "sms", "no_consent"),
                      (3, "voice", "no_consent")]
    assert "marketing consent for email" in body["warnings"][0]["message"]
    assert "telegram_chat_id or whatsapp" in body["warnings"][1]["message"]
    # And so it goes: every step skipped for the reason given, nothing in the outbox
    ended = _ended(api, body["cascade_id"])
    assert ended["status"] == "exhausted"
    assert [(s["status"], s["reason"]) for s in ended["steps"]] == [("skipped", r) for _, _, r in warned]
    assert api.outbox(body["cascade_id"]) == []


def test_a_trigger_that_sends_on_some_step_has_no_warnings(api: Api) -> None:
    # Given consent for SMS only: the e-mail step will be skipped, the SMS step will go
    event = _cart({"email": "sam@example.com", "phone": "+14155550123", "consent": {"marketing": ["sms"]}})
    resp = api.post_event(event)
    assert resp.status_code == 202, resp.text
    assert set(resp.json()) == {"cascade_id", "scenario", "status"}
    # And it does send: the SMS reaches the outbox
    wait_for("the SMS", lambda: [m for m in api.outbox(resp.json()["cascade_id"]) if m["channel"] == "sms"],
             timeout=120, every=0.2)


def test_a_recipient_who_refused_the_only_channel_gets_opted_out_warnings(api: Api) -> None:
    # Given a customer who refused transactional SMS, reachable by phone only
    recipient = f"warn-{uuid.uuid4().hex[:8]}"
    put = api.http.put(f"/v1/recipients/{recipient}/consent",
                       json={"channel": "sms", "purpose": "transactional", "granted": False})
    assert put.status_code == 200, put.text
    order = uuid.uuid4().hex[:8]
    # When a delivery fails (an ordinary order: the VIP operator step's condition is false)
    resp = api.post_event({"type": "delivery.failed", "recipient": {"id": recipient, "phone": "+77011234567"},
                           "data": {"order_id": order, "reschedule_url": "https://shop.example.com/r"}})
    assert resp.status_code == 202, resp.text
    warnings = resp.json()["warnings"]
    assert [(w["step"], w["reason"]) for w in warnings] == [(0, "opted_out"), (1, "opted_out"), (2, "opted_out"),
                                                            (3, "condition")]
    assert "data.priority == 'vip'" in warnings[3]["message"]
    ended = _ended(api, resp.json()["cascade_id"])
    assert [s["reason"] for s in ended["steps"]] == [w["reason"] for w in warnings]
    # Once the customer grants it again, the same kind of event sends and warns of nothing
    api.http.put(f"/v1/recipients/{recipient}/consent", json={"channel": "sms", "purpose": "transactional",
                                                              "granted": True})
    again = api.post_event({"type": "delivery.failed", "recipient": {"id": recipient, "phone": "+77011234567"},
                            "data": {"order_id": order + "-2", "reschedule_url": "https://shop.example.com/r"}})
    assert again.status_code == 202 and "warnings" not in again.json(), again.text


def test_a_contact_a_provider_refused_for_good_is_warned_of(api: Api) -> None:
    # Given a customer whose only address bounced for good on an earlier cart
    first = _cart({"email": "gone@example.com", "consent": {"marketing": True}})
    cascade_id = api.start(first)
    email = wait_for("the email", lambda: next(iter(api.outbox(cascade_id)), None), timeout=120, every=0.2)
    assert api.simulate(email["provider_message_id"], "failed").status_code == 200
    # When the shop posts another cart for the same address
    later = {**first, "data": {"cart_id": "later", "cart_url": "https://shop.example.com/cart/later"}}
    resp = api.post_event(later)
    # Then the answer says the e-mail will not go (and the other steps have no contact)
    assert resp.status_code == 202, resp.text
    assert [w["reason"] for w in resp.json()["warnings"]] == ["invalid_contact", "no_contact", "no_contact",
                                                             "no_contact"]
    ended = _ended(api, resp.json()["cascade_id"])
    assert [s["reason"] for s in ended["steps"]] == ["invalid_contact", "no_contact", "no_contact", "no_contact"]


def test_the_openapi_document_describes_the_warnings(api: Api) -> None:
    doc = api.http.get("/openapi.json").json()
    started = doc["components"]["schemas"]["CascadeStarted"]["properties"]["warnings"]
    assert "nothing at all" in started["description"]
    warning = doc["components"]["schemas"]["TriggerWarning"]
    assert set(warning["properties"]) == {"step", "channel", "reason", "message"}
    assert "no_consent" in warning["properties"]["reason"]["enum"]
