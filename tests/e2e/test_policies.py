"""Quiet hours and the frequency cap deciding real cascades on the local stack.

The test stack's clock starts the session at 10:00 UTC (tests/conftest.py), so "night" is made
by the recipient's time zone: at 10:00 UTC it is 23:00 in UTC+13."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import CLOCK_SHIFT_S, TIME_SCALE, Api, wait_for

pytestmark = pytest.mark.stack

NIGHT_ZONE = "Etc/GMT-13"  # UTC+13 (the Etc/ names have the sign reversed)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _cascade_time(view: dict[str, Any], real: str) -> datetime:
    """A real timestamp of this cascade as its own (accelerated, shifted) clock read it."""
    start = _t(view["created_at"])
    return start + timedelta(seconds=CLOCK_SHIFT_S) + (_t(real) - start) * TIME_SCALE


def test_a_night_time_sms_waits_for_the_morning_in_the_recipients_time_zone(api: Api) -> None:
    cascade_id = api.start({"type": "delivery.failed",
                            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+64211234567",
                                          "timezone": NIGHT_ZONE},
                            "data": {"order_id": "n-1", "reschedule_url": "https://shop.test/r/n-1"}})
    held = wait_for("the SMS to be held back",
                    lambda: (v := api.cascade(cascade_id))["steps"][0]["status"] == "deferred" and v, timeout=15)
    step = held["steps"][0]
    assert step["reason"] == "quiet_hours"
    morning = _t(step["not_before"])
    assert morning.astimezone(UTC).hour == 20 and morning.minute == 0  # 09:00 at UTC+13
    assert api.outbox(cascade_id) == []  # nothing at night
    sms = wait_for("the morning SMS", lambda: api.outbox(cascade_id), timeout=30)[0]
    assert _cascade_time(held, sms["sent_at"]) >= morning  # not a minute before 09:00 local
    assert api.cascade(cascade_id)["steps"][0]["status"] == "sent"
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_email_may_go_at_night(api: Api) -> None:
    night = {"id": f"cust-{uuid.uuid4().hex[:8]}", "timezone": NIGHT_ZONE, "email": "night@example.com",
             "consent": {"marketing": True}}
    cart = api.start({"type": "cart.abandoned", "recipient": night,
                      "data": {"cart_id": f"c-{uuid.uuid4().hex[:6]}", "cart_url": "https://shop.test/c"}})
    wait_for("the night-time email", lambda: api.outbox(cart), timeout=15)
    assert api.cascade(cart)["steps"][0]["status"] == "sent"
    api.http.post(f"/v1/cascades/{cart}/cancel")


def test_the_fourth_marketing_message_of_the_day_waits_for_tomorrow(api: Api) -> None:
    rid = f"cust-{uuid.uuid4().hex[:8]}"
    carts = [api.start({"type": "cart.abandoned",
                        "recipient": {"id": rid, "email": "busy@example.com", "consent": {"marketing": True}},
                        "data": {"cart_id": f"cap-{n}-{uuid.uuid4().hex[:4]}", "cart_url": "https://shop.test/c"}})
             for n in range(4)]

    def first_steps() -> list[dict[str, Any]] | None:
        steps = [api.cascade(c)["steps"][0] for c in carts]
        done = [s for s in steps if s["status"] in ("sent", "deferred")]
        return steps if len(done) == 4 else None

    steps = wait_for("every cart's email to be sent or held", first_steps, timeout=20)
    assert sorted(s["status"] for s in steps) == ["deferred", "sent", "sent", "sent"]
    capped = next(s for s in steps if s["status"] == "deferred")
    assert capped["reason"] == "frequency_cap"
    # The recipient's day (UTC: no time zone given) ends at midnight; the cap counts from there.
    assert _t(capped["not_before"]).time().isoformat() == "00:00:00"
    assert len([m for m in api.outbox() if m["to"] == "busy@example.com"]) == 3
    for cascade_id in carts:
        api.http.post(f"/v1/cascades/{cascade_id}/cancel")
