"""Adaptive order on the local stack: a customer who answered an SMS before gets the next
cascade of an adaptive scenario on SMS first; a cascade in the holdout keeps the static order;
a scenario mixing adaptive order with scheduled steps is refused."""

from __future__ import annotations

import uuid
from itertools import count
from typing import Any

import pytest

from cascade.adaptive import arm_for
from cascade.planning import new_cascade_id
from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

HOLDOUT = 0.5


def _scenario(tag: str, **changes: Any) -> dict[str, Any]:
    """Email, then SMS: the static, cheap-first order."""
    return {
        "name": "Adaptive order", "trigger": f"ad_{tag}.started", "correlation": "ref", "quiet_hours": None,
        "success": ["read", "replied"], "adaptive": {"enabled": True, "holdout": HOLDOUT},
        "steps": [{"channel": "email", "wait": "2h",
                   "template": {"ru": {"subject": "Заказ {{ data.ref }}", "text": "Ваш заказ {{ data.ref }}."},
                                "en": {"subject": "Order {{ data.ref }}", "text": "Your order {{ data.ref }}."}}},
                  {"channel": "sms", "wait": "1d",
                   "template": {"ru": "Заказ {{ data.ref }}: ответьте ДА.", "en": "Order {{ data.ref }}: reply YES."}}],
        **changes,
    }


def _key(tag: str, arm: str, who: str = "") -> str:
    """An idempotency key whose cascade falls in ``arm`` (the arm is a hash of the cascade id)."""
    return next(key for key in (f"ad-{tag}{who}-{n}" for n in count())
                if arm_for(new_cascade_id(key), HOLDOUT) == arm)


def _event(tag: str, recipient_id: str, key: str) -> dict[str, Any]:
    return {"type": f"ad_{tag}.started", "idempotency_key": key,
            "recipient": {"id": recipient_id, "locale": "en", "email": "ad@example.com", "phone": "+14155550881"},
            "data": {"ref": key}}


def _first_message(api: Api, cascade_id: str) -> str:
    return str(wait_for("the first message", lambda: api.outbox(cascade_id))[0]["channel"])


def test_a_customer_who_answered_an_sms_gets_sms_first_unless_in_the_holdout(api: Api, saved: list[str]) -> None:
    tag = uuid.uuid4().hex[:8]
    scenario_id = f"ad-{tag}"
    resp = api.http.put(f"/v1/scenarios/{scenario_id}", json=_scenario(tag))
    assert resp.status_code == 201, resp.text
    saved.append(scenario_id)
    customer = f"ad-cust-{tag}"

    # History: the first cascade (no reactions yet: static order) is answered on its SMS.
    first = api.start(_event(tag, customer, f"ad-{tag}-history"))
    assert [s["channel"] for s in api.cascade(first)["steps"]] == ["email", "sms"]
    sms = wait_for("the SMS", lambda: [m for m in api.outbox(first) if m["channel"] == "sms"])[0]
    assert api.simulate(sms["provider_message_id"], "replied", text="YES").status_code == 200
    assert api.cascade(first)["status"] == "succeeded"
    wait_for("the customer card to show SMS as their channel",
             lambda: api.http.get(f"/v1/recipients/{customer}/timeline").json()["reacts_on"]["channel"] == "sms")

    # The adaptive arm starts on SMS; the email step follows it.
    adaptive = api.cascade(api.start(_event(tag, customer, _key(tag, "adaptive"))))
    assert [s["channel"] for s in adaptive["steps"]] == ["sms", "email"]
    assert (adaptive["arm"], adaptive["adapted_from_channel"], adaptive["step_order"]) == ("adaptive", "sms", [1, 0])
    assert _first_message(api, adaptive["cascade_id"]) == "sms"
    # The holdout keeps the scenario's order, for an honest comparison.
    holdout = api.cascade(api.start(_event(tag, customer, _key(tag, "holdout"))))
    assert [s["channel"] for s in holdout["steps"]] == ["email", "sms"]
    assert (holdout["arm"], holdout["adapted_from_channel"], holdout["step_order"]) == ("holdout", None, None)
    assert _first_message(api, holdout["cascade_id"]) == "email"
    # A new customer in the adaptive arm has no history: the static order.
    fresh = api.cascade(api.start(_event(tag, f"ad-new-{tag}", _key(tag, "adaptive", "-new"))))
    assert [s["channel"] for s in fresh["steps"]] == ["email", "sms"]
    assert (fresh["arm"], fresh["adapted_from_channel"]) == ("adaptive", None)
    for cascade_id in (adaptive["cascade_id"], holdout["cascade_id"], fresh["cascade_id"]):
        assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200


def test_a_scenario_without_adaptive_order_shows_no_arm(api: Api) -> None:
    view = api.cascade(api.start({"type": "delivery.failed",
                                  "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+14155550882"},
                                  "data": {"order_id": uuid.uuid4().hex[:6], "reschedule_url": "https://shop.test/r"}}))
    assert (view["arm"], view["adapted_from_channel"], view["step_order"]) == (None, None, None)
    api.http.post(f"/v1/cascades/{view['cascade_id']}/cancel")


def test_adaptive_order_with_scheduled_steps_is_refused_naming_the_field(api: Api) -> None:
    appointment = api.http.get("/v1/scenarios/appointment").json()
    for key in ("version", "source", "id"):
        appointment.pop(key)
    tag = uuid.uuid4().hex[:8]
    resp = api.http.put(f"/v1/scenarios/ad-{tag}", json={**appointment, "trigger": f"ad_{tag}.booked",
                                                         "adaptive": {"enabled": True}})
    assert resp.status_code == 422, resp.text
    details = resp.json()["details"]
    assert [d["field"] for d in details] == ["adaptive"]
    assert "scheduled with `at`" in details[0]["message"]
    resp = api.http.put(f"/v1/scenarios/ad-{tag}", json=_scenario(tag, adaptive={"enabled": True, "holdout": 0.95}))
    assert resp.status_code == 422
    assert resp.json()["details"][0]["field"].startswith("adaptive.holdout")
