"""`make demo` on the local stack: its driver (cascade.local.demo.play) posts every preset's
sample event with dates moved to now, prints the schedule and follows each story to its end,
playing the customer's reactions, all through the stack's HTTP API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from cascade.local.demo import ENDED, play
from cascade.scenarios import presets
from tests.conftest import API_KEY, Api

pytestmark = pytest.mark.stack


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_demo_plays_every_preset_to_its_end_as_its_printed_schedule_says(stack: Any, api: Api) -> None:
    # Given the local stack (4 cascade hours per real second), when the demo plays on it
    lines: list[str] = []
    played = play(stack.url, API_KEY, timeout=240, out=lines.append, tag=f"-{uuid.uuid4().hex[:6]}")

    # then every preset had a story, and every story ended the way the demo tells it
    assert {p.scenario for p in played} == set(presets())
    assert {p.label: (p.view["status"], p.view.get("stop_reason")) for p in played} == {
        "delivery-failed": ("exhausted", None),
        "delivery-failed-vip": ("succeeded", "confirmed"),  # the operator reached the customer
        "abandoned-cart": ("succeeded", "read"),  # the email was opened
        "courier-assigned": ("exhausted", None),
        "visit-reminder": ("succeeded", "confirmed"),  # 1 pressed on the robot call
        "otp-requested": ("expired", "ttl"),
        "order-shipped": ("exhausted", None),
        "appointment-booked": ("exhausted", None),
        "return-requested": ("succeeded", "event:refund.issued"),
        "refund-issued": ("exhausted", None),  # its own one-message cascade
    }
    assert all(p.view["status"] in ENDED for p in played)
    for p in played:
        went_out = [s["index"] for s in p.view["steps"] if s.get("sent_at")]
        assert went_out, f"{p.label} sent nothing"
        if p.plan is None:  # the refund's cascade, started by the story
            continue
        # the steps went out as the schedule announced: its first step, none it said would be
        # skipped, and none it said would go was skipped (a step whose 1 s timer ran out on a busy
        # machine before it ran is `not_sent`, and so are those after a stop)
        planned = {s.index: s for s in p.plan.steps if s.at_s is not None}
        statuses = {s["index"]: s["status"] for s in p.view["steps"]}
        assert min(planned) in went_out and set(went_out) <= set(planned), p.label
        assert all((statuses[s.index] == "skipped") == (s.index not in planned)
                   for s in p.plan.steps if statuses[s.index] != "not_sent"), (p.label, statuses)
        # and none earlier than announced: a step held for quiet hours or for its time was really held
        created = _t(p.view["created_at"])
        for index in went_out:
            at_s = planned[index].at_s
            sent = _t(p.view["steps"][index]["sent_at"])
            assert at_s is not None and (sent - created).total_seconds() >= at_s - 1.5, (p.label, index)
        # and the printout says where to look
        assert any(f"/dashboard#/cascades/{p.cascade_id}" in line for line in lines)
        assert any(f"/local/outbox?cascade_id={p.cascade_id}" in line for line in lines)
    held = [(p.label, s.index) for p in played if p.plan for s in p.plan.steps if s.held]
    assert held, "the story shows no step held back (by quiet hours or its `at` time)"
    assert any("held from" in line for line in lines)
