"""The order-status, appointment and return presets: one message per event through `when`,
reminders scheduled from the event's timestamps, four languages, and sample events that fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from cascade.models import EventIn, RecipientIn
from cascade.policy import StepContext, schedule
from cascade.rendering import holds, render
from cascade.scenarios import CONTACT_FIELD, LOCALES, Scenario, by_trigger, parse_at, presets, stopped_by
from cascade.store import CascadeStore

EVENTS = Path(__file__).resolve().parents[2] / "events"
NEW = ("otp", "order-status", "appointment", "return")


def ctx(event_type: str, **data: Any) -> dict[str, Any]:
    return {"recipient": dict.fromkeys(RecipientIn.model_fields), "data": data, "event": {"type": event_type},
            "cascade": {"tried": []}}


def due(scenario: Scenario, event_type: str) -> list[int]:
    """The steps whose `when` lets them go out for this event."""
    return [i for i, s in enumerate(scenario.steps) if not s.when or holds(s.when, ctx(event_type))]


@pytest.mark.parametrize("scenario_id", NEW)
def test_every_new_preset_is_transactional_and_speaks_four_languages(scenario_id: str) -> None:
    scenario = presets()[scenario_id]
    assert scenario.purpose == "transactional"
    for step in scenario.steps:
        assert set(LOCALES) <= set(step.template), (scenario_id, step.channel)


def test_order_status_sends_one_message_per_status_sms_for_the_urgent_ones() -> None:
    orders = presets()["order-status"]
    assert orders.triggers == ["order.confirmed", "order.assembled", "order.shipped", "order.delivered"]
    assert orders.correlation == "order_id"
    channels = {t: [orders.steps[i].channel for i in due(orders, t)] for t in orders.triggers}
    assert channels == {"order.confirmed": ["email"], "order.assembled": ["email"], "order.shipped": ["sms"],
                        "order.delivered": ["sms"]}
    shipped = orders.steps[due(orders, "order.shipped")[0]]
    for locale in LOCALES:
        assert "RA1" in render(shipped, locale, ctx("order.shipped", order_id="7", track_number="RA1"))[1]
        assert render(shipped, locale, ctx("order.shipped", order_id="7"))[1]  # a track number is optional


def test_appointment_reminders_are_scheduled_from_the_appointment() -> None:
    visit = presets()["appointment"]
    assert (visit.triggers, visit.correlation) == (["appointment.booked"], "appointment_id")
    assert visit.success == ["replied:reschedule", "event:appointment.cancelled"] and stopped_by("appointment.cancelled") == [visit]
    assert [s.at for s in visit.steps] == [None, "data.appointment_at - 24h", "data.appointment_at - 2h"]
    assert [parse_at(s.at) for s in visit.steps if s.at] == [("appointment_at", -86400), ("appointment_at", -7200)]
    # The time as a person reads it, at the place's own offset (the recipient names no time zone).
    words = {"ru": ("ПЕРЕНОС", "25 ноября 2030 г., 10:30"), "en": ("RESCHEDULE", "November 25, 2030, 10:30 AM")}
    for locale, (word, when) in words.items():
        _, text = render(visit.steps[0], locale, ctx("appointment.booked", appointment_at="2030-11-25T10:30:00+05:00"))
        assert word in text and when in text and "T10" not in text


def _decide(step: int, now: datetime, appointment_at: datetime, deferred_before: bool = False) -> Any:
    visit = presets()["appointment"]
    cascade = {"recipient": {"id": "p"}, "data_json": json.dumps({"appointment_at": appointment_at.isoformat()})}
    return schedule(StepContext(cascade, visit, visit.steps[step], step, "sms", now, cast(CascadeStore, None),
                                deferred_before))


def test_a_reminder_already_past_is_skipped_and_a_later_one_waits_for_its_time() -> None:
    now = datetime(2030, 11, 25, 10, 0, tzinfo=UTC)
    tonight = now + timedelta(hours=10)
    assert _decide(1, now, tonight).reason == "past"  # T-24h was yesterday
    held = _decide(2, now, tonight)
    assert (held.action, held.reason, held.not_before) == ("defer", "scheduled", tonight - timedelta(hours=2))
    assert _decide(2, tonight - timedelta(hours=2), tonight, deferred_before=True) is None  # its time: goes out


def test_return_confirms_and_reminds_on_request_and_a_refund_stops_it_with_its_own_message() -> None:
    ret = presets()["return"]
    assert (ret.triggers, ret.correlation) == (["return.requested", "refund.issued"], "return_id")
    assert by_trigger("refund.issued") is ret and stopped_by("refund.issued") == [ret]
    assert due(ret, "return.requested") == [0, 1] and due(ret, "refund.issued") == [2]
    assert ret.steps[1].at == "data.return_deadline - 2d"
    coupon = render(ret.steps[2], "en", ctx("refund.issued", return_id="9", coupon_code="SAVE10"))[1]
    money = render(ret.steps[2], "ru", ctx("refund.issued", return_id="9", amount="100 ₸"))[1]
    assert "SAVE10" in coupon and "coupon" in coupon and "100 ₸" in money and "купон" not in money


@pytest.mark.parametrize("name", ["otp-requested", "order-shipped", "appointment-booked", "return-requested",
                                  "refund-issued"])
def test_the_sample_events_start_their_preset(name: str) -> None:
    event = EventIn.model_validate(json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8")))
    scenario = by_trigger(event.type)
    assert scenario is not None and scenario.id in NEW
    assert all(event.data.get(field) for field in scenario.data_fields())
    recipient = event.recipient.model_dump()
    assert any(recipient.get(CONTACT_FIELD[c]) for step in scenario.steps for c in step.channels)
    context = ctx(event.type, **event.data)
    context["recipient"].update({k: v for k, v in recipient.items() if v is not None})
    for step in scenario.steps:
        if not step.when or holds(step.when, context):
            assert render(step, event.recipient.locale or "en", context)[1]
