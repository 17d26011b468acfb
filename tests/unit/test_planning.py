"""Step planning, rendering and link tracking: pure functions, no AWS."""

from __future__ import annotations

import pytest

from cascade.planning import new_cascade_id, pick_locale, workflow_input
from cascade.rendering import render, track_links
from cascade.scenarios import presets


def test_workflow_timers_follow_the_scenario_scaled_to_real_seconds() -> None:
    cart = presets()["abandoned-cart"]
    assert workflow_input("c_1", cart, 1.0)["waits"][:3] == [86400, 21600, 7200]
    plan = workflow_input("c_1", cart, 14400.0)
    assert plan["waits"][:3] == [6, 2, 1]
    assert plan["wait_seconds"] == plan["waits"][0]
    assert plan["step"] == 0 and len(plan["waits"]) == len(cart.steps) + 1  # + the closing call


def test_the_same_idempotency_key_names_the_same_cascade() -> None:
    assert new_cascade_id("order-1") == new_cascade_id("order-1")
    assert new_cascade_id("order-1") != new_cascade_id("order-2")
    assert new_cascade_id(None) != new_cascade_id(None)


def test_locale_falls_back_to_language_then_scenario_default_then_en() -> None:
    delivery = presets()["delivery-failed"]
    assert pick_locale("en", delivery) == "en"
    assert pick_locale("ru-KZ", delivery) == "ru"
    assert pick_locale("de", delivery) == "ru"  # scenario default
    assert pick_locale(None, presets()["abandoned-cart"]) == "en"


@pytest.mark.parametrize(("given", "picked"), [("uk", "uk"), ("uk-UA", "uk"), ("kk", "kk"), ("kk-KZ", "kk"),
                                               ("ru-UA", "ru"), ("en-GB", "en")])
def test_ukrainian_and_kazakh_recipients_get_their_own_language_in_every_preset(given: str, picked: str) -> None:
    for scenario in presets().values():
        assert pick_locale(given, scenario) == picked, scenario.id


def test_templates_render_per_locale_and_refuse_missing_data() -> None:
    step = presets()["delivery-failed"].steps[1]
    _, text = render(step, "en", {"recipient": {}, "data": {"order_id": "7", "reschedule_url": "https://x.test/r"}})
    assert text == "Order 7 is waiting for you. Pick a delivery time: https://x.test/r"
    with pytest.raises(Exception, match="reschedule_url"):
        render(step, "en", {"recipient": {}, "data": {"order_id": "7"}})


def test_the_sandbox_refuses_unsafe_templates() -> None:
    from jinja2.exceptions import SecurityError

    step = presets()["delivery-failed"].steps[0].model_copy(deep=True)
    step.template["en"].text = "{{ data.__class__.__mro__ }}"
    with pytest.raises(SecurityError):
        render(step, "en", {"recipient": {}, "data": {}})


def test_every_link_becomes_a_tracked_link_that_remembers_its_target() -> None:
    seen: dict[str, str] = {}
    tokens = iter(["t1", "t2"])
    text = track_links("Pay: https://shop.test/pay?o=1. Help: http://help.test/faq", "https://api.test/",
                       seen.__setitem__, lambda: next(tokens))
    assert text == "Pay: https://api.test/r/t1. Help: https://api.test/r/t2"
    assert seen == {"t1": "https://shop.test/pay?o=1", "t2": "http://help.test/faq"}

