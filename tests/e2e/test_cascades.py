"""Both presets end to end on the local stack: escalation on schedule, and every way to stop."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import LONG_WAIT_HOURS, TIME_SCALE, Api, long_waits, wait_for

pytestmark = pytest.mark.stack


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def cart_event(**recipient: Any) -> dict[str, Any]:
    contacts = {"email": "sam@example.com", "telegram_chat_id": str(uuid.uuid4().int % 10**9),
                "phone": "+14155550123"}
    contacts.update(recipient)
    contacts = {k: v for k, v in contacts.items() if v is not None}
    return {"type": "cart.abandoned", "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "name": "Sam",
                                                   "locale": "en", "consent": {"marketing": True}, **contacts},
            "data": {"cart_id": f"cart-{uuid.uuid4().hex[:6]}", "cart_url": "https://shop.test/cart/77"}}


def finished(api: Api, cascade_id: str) -> dict[str, Any] | None:
    view = api.cascade(cascade_id)
    return view if view["status"] != "running" else None


def test_delivery_failed_sends_three_sms_on_schedule_then_is_exhausted(api: Api) -> None:
    # Not a VIP order: the operator step (the last resort) is skipped by its condition.
    event = {"type": "delivery.failed", "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+77011234567"},
             "data": {"order_id": "1001", "reschedule_url": "https://shop.test/orders/1001/reschedule"}}
    cascade_id = api.start(event)
    view = wait_for("the cascade to run out of steps", lambda: finished(api, cascade_id), timeout=60)
    assert view["status"] == "exhausted" and view["stop_reason"] is None
    assert [s["status"] for s in view["steps"]] == ["sent", "sent", "sent", "skipped"]
    assert view["steps"][3]["reason"] == "condition"
    sms = api.outbox(cascade_id)
    assert [m["channel"] for m in sms] == ["sms"] * 3
    assert all(m["to"] == "+77011234567" for m in sms)
    # Russian by default (the scenario's locale), one SMS per step, in order.
    assert "Не смогли доставить заказ 1001" in sms[0]["text"]
    assert "/r/" in sms[1]["text"] and "shop.test" not in sms[1]["text"]  # the link is tracked
    assert "приостановлена" in sms[2]["text"]
    # Each SMS waited out the previous step's timer: 2 h, then 22 h (so step 3 lands 24 h after the failure).
    gaps = [(_t(b["sent_at"]) - _t(a["sent_at"])) * TIME_SCALE / 3600 for a, b in itertools.pairwise(sms)]
    assert gaps[0] >= 2 * 0.9 and gaps[1] >= 22 * 0.9, gaps


def test_abandoned_cart_stops_on_an_email_open_and_sends_nothing_after(api: Api) -> None:
    cascade_id = api.start(cart_event())
    email = wait_for("the email", lambda: api.outbox(cascade_id))[0]
    assert email["channel"] == "email" and email["subject"] == "Your cart is saved"
    assert api.simulate(email["provider_message_id"], "read").status_code == 200
    view = wait_for("the stop", lambda: finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "read")
    assert view["steps"][0]["status"] == "read"
    time.sleep(24 * 3600 / TIME_SCALE + 2)  # past the email's timer: the Telegram step would be due by now
    assert len(api.outbox(cascade_id)) == 1
    assert [s["status"] for s in api.cascade(cascade_id)["steps"][1:]] == ["not_sent", "not_sent", "not_sent"]


def test_a_telegram_button_press_stops_the_cascade(api: Api, stack: Any) -> None:
    cascade_id = api.start(cart_event())
    tg = wait_for("the Telegram step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "telegram"],
                  timeout=30)[0]
    assert "may have landed in spam" in tg["text"]
    assert api.simulate(tg["provider_message_id"], "read").status_code == 200
    view = wait_for("the stop", lambda: finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "read")
    assert [s["status"] for s in view["steps"]] == ["sent", "read", "not_sent", "not_sent"]
    assert stack.telegram.answered, "the callback query was answered"
    time.sleep(6 * 3600 / TIME_SCALE + 1.5)
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["email", "telegram"]


def test_a_click_on_a_tracked_link_stops_the_cascade_and_redirects(api: Api) -> None:
    cascade_id = api.start(cart_event(telegram_chat_id=None))
    email = wait_for("the email", lambda: api.outbox(cascade_id))[0]
    link = next(w for w in email["text"].split() if "/r/" in w)
    resp = httpx.get(link, follow_redirects=False)
    assert resp.status_code == 302 and resp.headers["location"] == "https://shop.test/cart/77"
    view = wait_for("the stop", lambda: finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "clicked")
    assert view["steps"][0]["status"] == "clicked"


def test_tracked_links_only_lead_where_a_message_pointed(api: Api) -> None:
    assert httpx.get(f"{api.base}/r/not-a-real-token-123", follow_redirects=False).status_code == 404
    assert httpx.get(f"{api.base}/r/x", follow_redirects=False).status_code == 404


def test_a_business_event_stops_matching_cascades_only(api: Api) -> None:
    event = cart_event()
    cascade_id = api.start(event)
    other = cart_event()
    other["recipient"]["id"] = event["recipient"]["id"]
    other_id = api.start(other)  # same customer, another cart
    resp = api.post_event({"type": "order.placed", "recipient": {"id": event["recipient"]["id"]},
                           "data": {"cart_id": event["data"]["cart_id"]}})
    assert resp.status_code == 202 and resp.json() == {"stopped": [cascade_id]}
    view = api.cascade(cascade_id)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "event:order.placed")
    assert api.cascade(other_id)["status"] == "running"
    api.http.post(f"/v1/cascades/{other_id}/cancel")


def test_cancel_stops_a_cascade_and_nothing_more_is_sent(api: Api) -> None:
    cascade_id = api.start(cart_event())
    wait_for("the email", lambda: api.outbox(cascade_id))
    resp = api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["stop_reason"]) == ("cancelled", "cancelled")
    assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200  # idempotent
    time.sleep(24 * 3600 / TIME_SCALE + 2)
    assert len(api.outbox(cascade_id)) == 1


def test_a_step_without_a_contact_is_skipped_at_once(api: Api, saved: list[str]) -> None:
    # The Telegram step waits 400 h (100 s here): skipping it at once is told from its timer on a busy machine.
    cascade_id = api.start({**cart_event(telegram_chat_id=None), "type": long_waits(api, saved, "abandoned-cart", 1)})
    sms = wait_for("the SMS", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "sms"], timeout=30)
    email = api.outbox(cascade_id)[0]
    # No Telegram wait between the email's 24 h timer and the SMS.
    assert (_t(sms[0]["sent_at"]) - _t(email["sent_at"])) * TIME_SCALE / 3600 < 24 + LONG_WAIT_HOURS / 2
    view = api.cascade(cascade_id)
    assert view["steps"][1] | {"sent_at": None} == {"index": 1, "channel": "telegram", "status": "skipped",
                                                    "provider_message_id": None, "sent_at": None,
                                                    "reason": "no_contact", "reply": None, "intent": None,
                                                    "not_before": None}
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_the_timeline_lists_every_touch_of_a_recipient(api: Api) -> None:
    event = cart_event()
    cascade_id = api.start(event)
    email = wait_for("the email", lambda: api.outbox(cascade_id))[0]
    api.simulate(email["provider_message_id"], "read")
    wait_for("the stop", lambda: finished(api, cascade_id))
    touches = api.http.get(f"/v1/recipients/{event['recipient']['id']}/timeline").json()["touches"]
    assert [(t["channel"], t["kind"], t["status"]) for t in touches] == [("email", "sent", "sent"),
                                                                       ("email", "signal", "read")]


def test_a_forged_telegram_webhook_is_refused_and_changes_nothing(api: Api) -> None:
    cascade_id = api.start(cart_event())
    tg = wait_for("the Telegram step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "telegram"],
                  timeout=30)[0]
    chat, mid = tg["provider_message_id"].split(":")
    update = {"update_id": 1, "callback_query": {"id": "1", "data": "sig:read", "from": {"id": int(chat)},
                                                 "message": {"message_id": int(mid), "chat": {"id": int(chat)}}}}
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
        assert httpx.post(f"{api.base}/webhooks/telegram", json=update, headers=headers).status_code == 401
    assert api.cascade(cascade_id)["status"] == "running"
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_replying_to_an_sms_stops_delivery_failed(api: Api) -> None:
    event = {"type": "delivery.failed", "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+77011234567"},
             "data": {"order_id": "2002", "reschedule_url": "https://shop.test/r/2002"}}
    cascade_id = api.start(event)
    sms = wait_for("the SMS", lambda: api.outbox(cascade_id))[0]
    assert api.simulate(sms["provider_message_id"], "replied", text="ПЕРЕНОС").status_code == 200
    view = wait_for("the stop", lambda: finished(api, cascade_id))
    assert (view["status"], view["stop_reason"]) == ("succeeded", "replied")
    assert view["steps"][0]["reply"] == "ПЕРЕНОС"  # the business sees what the customer answered
    touches = api.http.get(f"/v1/recipients/{event['recipient']['id']}/timeline").json()["touches"]
    assert [t["text"] for t in touches if t["kind"] == "signal"] == ["ПЕРЕНОС"]
    assert api.simulate(sms["provider_message_id"], "read").status_code == 422  # SNS never reports reads


def test_a_recipient_without_a_name_gets_the_email(api: Api) -> None:
    event = cart_event()
    event["recipient"].pop("name")
    cascade_id = api.start(event)
    email = wait_for("the email", lambda: api.outbox(cascade_id))[0]
    assert email["text"].startswith("You left a few things in your cart")
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
