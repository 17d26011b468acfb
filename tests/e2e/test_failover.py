"""A provider that fails never strands a cascade: retryable errors are retried, a permanent one
(or retries that run out) fails the step and the next step goes out at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import LONG_WAIT_HOURS, TIME_SCALE, Api, long_waits, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


def _cart() -> dict[str, Any]:
    return {"type": "cart.abandoned",
            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "email": "sam@example.com",
                          "telegram_chat_id": str(uuid.uuid4().int % 10**9), "phone": "+14155550123",
                          "consent": {"marketing": True}},
            "data": {"cart_id": f"cart-{uuid.uuid4().hex[:6]}", "cart_url": "https://shop.test/cart/1"}}


def _hours_between(a: str, b: str) -> float:
    t = [datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in (a, b)]
    return (t[1] - t[0]) * TIME_SCALE / 3600


def _fault(api: Api, channel: str, mode: str, count: int | None = None) -> None:
    body: dict[str, Any] = {"channel": channel, "mode": mode}
    if count is not None:
        body["count"] = count
    resp = api.http.post("/local/faults", json=body)
    assert resp.status_code == 200, resp.text


def _telegram_sent(api: Api, cascade_id: str) -> dict[str, Any]:
    return wait_for("the Telegram step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "telegram"],
                    timeout=30)[0]


@pytest.mark.parametrize("mode", ["reject", "500"])
def test_an_email_that_cannot_be_sent_escalates_to_telegram_at_once(api: Api, mode: str, saved: list[str]) -> None:
    # The email waits 400 h (100 s here): "at once" is told from its timer on a busy machine.
    trigger = long_waits(api, saved, "abandoned-cart", 0)
    _fault(api, "email", mode)  # every email send fails: refused, or 5xx through all retries
    cascade_id = api.start({**_cart(), "type": trigger})
    view = wait_for("the email step to fail", lambda: (v := api.cascade(cascade_id))["steps"][0]["status"] == "failed"
                    and v)
    api.http.delete("/local/faults")
    tg = _telegram_sent(api, cascade_id)
    assert view["steps"][0]["reason"]
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["telegram"]
    # Not after the email's timer: at once.
    assert _hours_between(view["created_at"], tg["sent_at"]) < LONG_WAIT_HOURS / 2
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


@pytest.mark.parametrize(("channel", "mode"), [("email", "500"), ("email", "429"), ("telegram", "500"),
                                               ("telegram", "429"), ("email", "timeout"), ("sms", "500")])
def test_a_passing_provider_error_is_retried_and_the_message_goes_out_once(api: Api, channel: str, mode: str,
                                                                          saved: list[str]) -> None:
    # The provider's step comes first (earlier steps have no contact): its retries fit in its timer,
    # a long one (retries never outlive the step).
    index = {"email": 0, "telegram": 1, "sms": 2}[channel]
    event = {**_cart(), "type": long_waits(api, saved, "abandoned-cart", index)}
    for earlier in ("email", "telegram_chat_id")[:index]:
        event["recipient"].pop(earlier)
    _fault(api, channel, mode, count=1)
    cascade_id = api.start(event)
    view = wait_for(f"the {channel} step to be sent",
                    lambda: (v := api.cascade(cascade_id))["steps"][index]["status"] == "sent" and v, timeout=30)
    # The outbox names a message's cascade once its record is written, a moment after the step says sent.
    sent = wait_for(f"the {channel} message", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == channel])
    assert len(sent) == 1
    assert view["status"] == "running"
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_a_blocked_telegram_bot_fails_its_step_and_the_sms_follows(api: Api) -> None:
    event = _cart()
    event["recipient"].pop("email")
    _fault(api, "telegram", "reject")
    cascade_id = api.start(event)
    sms = wait_for("the SMS", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "sms"], timeout=30)
    view = api.cascade(cascade_id)
    assert view["steps"][1]["status"] == "failed" and "403" in view["steps"][1]["reason"]
    assert len(sms) == 1
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


@pytest.mark.parametrize(("body", "field"), [({"channel": "pigeon", "mode": "500"}, "channel"),
                                             ({"channel": "sms", "mode": "slow"}, "mode"),
                                             ({"channel": "sms", "mode": "500", "count": 0}, "count")])
def test_bad_fault_requests_are_422(api: Api, body: dict[str, Any], field: str) -> None:
    resp = api.http.post("/local/faults", json=body)
    assert resp.status_code == 422
    assert field in [d["field"] for d in resp.json()["details"]]


def _reached_first_on(channel: str, stack: Any) -> tuple[dict[str, Any], int, str]:
    """An event whose first reachable step is on ``channel``: (event, that step, the next channel)."""
    rid = f"cust-{uuid.uuid4().hex[:8]}"
    visit = {"visit_id": f"v-{uuid.uuid4().hex[:6]}", "visit_at": "25 Nov 10:30", "clinic_name": "Clinic",
             "address": "1 Main St"}
    if channel == "whatsapp":  # the cart's Telegram step falls back to WhatsApp; no email: step 1 comes first
        return ({"type": "cart.abandoned", "recipient": {"id": rid, "whatsapp": "+14155550123", "phone": "+14155550123",
                                                          "consent": {"marketing": True}},
                 "data": {"cart_id": f"c-{rid}", "cart_url": "https://shop.test/cart/1"}}, 1, "sms")
    if channel == "viber":
        viber_id = f"vb-{uuid.uuid4().hex[:10]}"
        stack.standin("viber").subscribe(viber_id)
        return ({"type": "visit.reminder", "recipient": {"id": rid, "viber_id": viber_id, "email": "pat@example.com"},
                 "data": visit}, 0, "email")
    if channel == "push":
        return ({"type": "courier.assigned", "recipient": {"id": rid, "push_token": f"tok-{uuid.uuid4().hex}",
                                                          "email": "anna@example.com"},
                 "data": {"delivery_id": f"d-{rid}", "delivery_date": "today", "time_window": "14-16",
                          "courier_phone": "+14155550100"}}, 0, "email")
    assert channel == "voice"  # the clinic's call, then its SMS
    return {"type": "visit.reminder", "recipient": {"id": rid, "phone": "+14155550123", "locale": "en"},
            "data": visit}, 2, "sms"


@pytest.mark.parametrize("channel", ["whatsapp", "viber", "push", "voice"])
def test_a_provider_failing_every_try_fails_the_step_after_the_retries_and_the_next_goes_out(
        api: Api, stack: Any, channel: str, saved: list[str]) -> None:
    event, index, following = _reached_first_on(channel, stack)
    # The step waits 400 h (100 s here): its three tries fit in it, and the next step going out
    # within the 30 s below is the escalation, not the timer.
    preset = {"whatsapp": "abandoned-cart", "viber": "clinic", "push": "courier", "voice": "clinic"}[channel]
    event["type"] = long_waits(api, saved, preset, index, index + 1)  # the next step's message must go out too
    _fault(api, channel, "500", count=100)
    cascade_id = api.start(event)
    wait_for(f"three tries on {channel}",
             lambda: api.http.get("/local/faults").json()["faults"][channel]["remaining"] == 97, timeout=30)
    view = wait_for(f"the {channel} step to fail",
                    lambda: (v := api.cascade(cascade_id))["steps"][index]["status"] == "failed" and v, timeout=30)
    api.http.delete("/local/faults")
    nxt = wait_for(f"the {following} step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == following],
                   timeout=30)
    assert view["steps"][index]["channel"] == channel and view["steps"][index]["reason"]
    assert not [m for m in api.outbox(cascade_id) if m["channel"] == channel]  # nothing reached the customer there
    assert len(nxt) == 1
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
