"""Scenario validation: a broken scenario is refused with a reason before any customer is messaged."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from cascade.scenarios import Scenario, parse_duration, presets

GOOD = {
    "id": "demo", "name": "Demo", "trigger": "demo.happened", "correlation": "order_id",
    "success": ["read", "event:demo.done"],
    "steps": [{"channel": "email", "wait": "1h30m",
               "template": {"ru": {"subject": "Тема", "text": "Привет"}, "en": {"subject": "Hi", "text": "Hello"}}},
              {"channel": "sms", "wait": "30m", "template": {"ru": "Привет", "en": "Hello"}}],
}


def test_presets_ship_delivery_failed_and_abandoned_cart() -> None:
    loaded = presets()
    assert loaded["delivery-failed"].trigger == "delivery.failed"
    assert [s.channel for s in loaded["delivery-failed"].steps] == ["sms", "sms", "sms", "operator"]
    assert loaded["delivery-failed"].steps[3].when == "data.priority == 'vip'"  # the operator is for VIPs only
    # Step 3 goes out 24 h after the failure: 2 h + 22 h.
    assert [s.wait for s in loaded["delivery-failed"].steps][:2] == [7200, 79200]
    assert loaded["abandoned-cart"].trigger == "cart.abandoned"
    assert [s.channel for s in loaded["abandoned-cart"].steps] == ["email", "telegram", "sms", "voice"]
    assert [s.wait for s in loaded["abandoned-cart"].steps] == [86400, 21600, 7200, 86400]
    assert "confirmed" in loaded["abandoned-cart"].success  # pressing 1 on the robot call
    assert loaded["abandoned-cart"].stop_events == ["order.placed"]


def test_the_clinic_preset_reminds_on_viber_then_email_a_call_and_sms() -> None:
    clinic = presets()["clinic"]
    assert (clinic.trigger, clinic.correlation) == ("visit.reminder", "visit_id")
    assert [s.channel for s in clinic.steps] == ["viber", "email", "voice", "sms"]
    assert [s.wait for s in clinic.steps] == [21600, 10800, 3600, 43200]
    assert clinic.success == ["read", "confirmed", "replied:confirm", "replied:reschedule"]
    assert [(b.text, b.signal) for b in clinic.steps[0].buttons] == [
        ({"ru": "Подтверждаю", "uk": "Підтверджую", "en": "Confirm", "kk": "Растаймын"}, "confirmed")]
    assert "нажмите 1" in clinic.steps[2].template["ru"].text and "press 1" in clinic.steps[2].template["en"].text


def test_the_courier_preset_goes_push_viber_email_sms_with_the_courier_contact() -> None:
    from cascade.rendering import render

    courier = presets()["courier"]
    assert (courier.trigger, courier.correlation) == ("courier.assigned", "delivery_id")
    assert [s.channel for s in courier.steps] == ["push", "viber", "email", "sms"]
    assert [s.wait for s in courier.steps] == [1800, 1800, 1800, 3600]  # the courier comes today
    assert courier.success == ["read", "clicked"]
    context = {"recipient": {"name": None},
               "data": {"delivery_date": "12.12", "time_window": "14:00–16:00", "courier_phone": "+77010000000"}}
    for step in courier.steps:
        for locale in ("ru", "en"):
            _, text = render(step, locale, context)
            assert "12.12" in text and "14:00–16:00" in text and "+77010000000" in text


def test_a_valid_scenario_parses_waits_and_shorthand_copy() -> None:
    scenario = Scenario.model_validate(GOOD)
    assert [s.wait for s in scenario.steps] == [5400, 1800]
    assert scenario.steps[1].template["en"].text == "Hello"


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["steps"][0]["template"].pop("ru"), "locales ru"),
    (lambda s: s["steps"][0].update(wait="soon"), "not a duration"),
    (lambda s: s["steps"][0]["template"]["en"].pop("subject"), "needs a subject"),
    (lambda s: s.update(success=["opened"]), "not a success signal"),
    (lambda s: s["steps"][1].update(channel="pigeon"), "channel"),
    (lambda s: s.update(steps=[]), "at least 1"),
    (lambda s: s["steps"][1].update(alternatives=["sms"]), "alternatives must differ"),
    (lambda s: s["steps"][1].update(alternatives=["whatsapp"]), "needs whatsapp_template"),
    (lambda s: s["steps"][1].update(whatsapp_template={"name": "x"}), "belongs to whatsapp steps"),
    (lambda s: s["steps"][1].update(when="data.x =="), "when:"),
])
def test_a_broken_scenario_is_refused_with_a_reason(change, message) -> None:  # type: ignore[no-untyped-def]
    broken = copy.deepcopy(GOOD)
    change(broken)
    with pytest.raises(ValidationError, match=message):
        Scenario.model_validate(broken)


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("2h", 7200), ("24h", 86400), ("1d", 86400),
                                               ("1h30m", 5400), ("45s", 45), (90, 90)])
def test_durations(text, seconds) -> None:  # type: ignore[no-untyped-def]
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0h", "2 hours", "h", "-5"])
def test_bad_durations(text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_when_condition_is_false_for_data_the_event_does_not_carry() -> None:
    from cascade.rendering import holds

    assert holds("data.priority == 'vip'", {"data": {"priority": "vip"}})
    assert not holds("data.priority == 'vip'", {"data": {}})
    assert not holds("data.order.priority", {"data": {}})
