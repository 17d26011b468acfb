"""A scenario is refused when it is saved, not when a customer is due a message: every step is
rendered in every locale against a sample context, and each text must fit its channel."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from cascade.scenarios import LOCALES, Scenario, presets


def scenario(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": "demo", "name": "Demo", "trigger": ["demo.happened", "demo.other"], "correlation": "order_id",
            "required_data": ["pay_url"], "success": ["read"], "steps": list(steps), **fields}


def step(channel: str, ru: Any, en: Any = "Hello", **extra: Any) -> dict[str, Any]:
    return {"channel": channel, "wait": "1h", "template": {"ru": ru, "en": en}, **extra}


def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate(raw)
    return str(caught.value)


def test_every_preset_passes_the_checks_and_speaks_every_locale() -> None:
    loaded = presets.__wrapped__(checked=True)  # parsing runs the save-time checks (uncached)
    assert {"delivery-failed", "abandoned-cart", "clinic", "courier"} <= set(loaded)
    for scenario_id, preset in loaded.items():
        for index, each in enumerate(preset.steps):
            assert set(LOCALES) <= set(each.template), (scenario_id, index)
            for button in each.buttons:
                assert set(LOCALES) <= set(button.text), (scenario_id, index, button.signal)


def test_an_sms_over_max_sms_parts_is_refused_naming_the_step_and_locale() -> None:
    long_ru = "Ваш заказ {{ data.order_id }} готов. " * 9  # 215 UCS-2 characters: 4 parts
    message = refused(scenario(step("email", {"subject": "Тема", "text": "Привет"}, {"subject": "Hi", "text": "Hi"}),
                               step("sms", "Коротко", "Short"), step("sms", long_ru)))
    assert "steps[2].template.ru: SMS is 4 parts (UCS-2), over max_sms_parts 3" in message
    Scenario.model_validate(scenario(step("sms", long_ru), max_sms_parts=4))  # the scenario may allow more


def test_links_count_as_the_tracked_links_they_become() -> None:
    short_link = "x" * 100 + " https://a.io/"  # 114 characters written, 161 septets once tracked
    assert "SMS is 2 parts (GSM-7), over max_sms_parts 1" in refused(
        scenario(step("sms", "Коротко", short_link), max_sms_parts=1))
    long_link = "x" * 90 + " https://a.io/" + "p" * 290  # 394 written, 151 tracked: one part
    Scenario.model_validate(scenario(step("sms", "Коротко", long_link), max_sms_parts=1))
    # Untracked links go out as they are and count as they are.
    assert "SMS is 3 parts (GSM-7)" in refused(scenario(step("sms", "Коротко", long_link), max_sms_parts=1,
                                                         track_links=False))


def test_a_step_is_checked_for_every_channel_it_may_go_out_on() -> None:
    long_email = "Your return is accepted. " * 19  # fine for email, 474 septets (4 parts) as an SMS
    message = refused(scenario(step("email", {"subject": "Тема", "text": "Привет"},
                                    {"subject": "Return", "text": long_email}, alternatives=["sms"])))
    assert message.count("steps[0]") == 1
    assert "steps[0].template.en: SMS is 4 parts (GSM-7), over max_sms_parts 3" in message


def test_a_template_that_cannot_render_is_refused() -> None:
    message = refused(scenario(step("sms", "Приоритет {{ data.priority }}")))
    assert "steps[0].template.ru: cannot render: UndefinedError" in message and "priority" in message
    assert "steps[0].template.en: cannot render: TemplateSyntaxError" in refused(
        scenario(step("sms", "Привет", "Hello {{ data.order_id ")))
    assert "cannot render: SecurityError" in refused(scenario(step("sms", "Привет", "{{ data.__class__.__mro__ }}")))


def test_the_sample_context_has_what_a_real_cascade_has() -> None:
    # Optional data guarded in the template; the correlation and required data; every recipient
    # field; the channels tried before; the event type.
    text = ("{{ data.order_id }} {{ data.pay_url }} {{ data.note | default('') }} {{ recipient.name }} "
            "{{ recipient.timezone }} {{ recipient.viber_id }} {{ event.type }} "
            "{% if 'email' in cascade.tried %}We emailed you.{% endif %}")
    parsed = Scenario.model_validate(scenario(step("email", {"subject": "Тема", "text": "Привет"},
                                                   {"subject": "Hi", "text": "Hi"}),
                                              step("sms", text, text)))
    from cascade.limits import sample_context
    from cascade.rendering import render

    _, rendered = render(parsed.steps[1], "en", sample_context(parsed, 1, "en"))
    assert rendered.startswith("100234 https://") and "demo.happened" in rendered and "We emailed you." in rendered


def test_a_step_scheduled_from_a_timestamp_may_use_it_unguarded() -> None:
    at = step("sms", "Визит {{ data.visit_at[:10] }}", "Visit on {{ data.visit_at[:10] }}", at="data.visit_at - 24h")
    Scenario.model_validate(scenario(at))
    assert "visit_at" in refused(scenario({**at, "at": None}))


@pytest.mark.parametrize(("channel", "limit"), [("telegram", 4096), ("viber", 7000), ("voice", 1000),
                                                ("operator", 4000), ("push", 240)])
def test_each_channel_has_its_length_limit(channel: str, limit: int) -> None:
    Scenario.model_validate(scenario(step(channel, "Привет", "a" * limit)))
    message = refused(scenario(step(channel, "Привет", "a" * (limit + 1))))
    assert f"steps[0].template.en: {channel} text is {limit + 1} characters, over {limit}" in message


def test_titles_and_subjects_have_limits() -> None:
    assert "steps[0].template.ru: email subject is 201 characters, over 200" in refused(
        scenario(step("email", {"subject": "я" * 201, "text": "Привет"}, {"subject": "Hi", "text": "Hi"})))
    assert "steps[0].template.en: push title is 66 characters, over 65" in refused(
        scenario(step("push", "Привет", {"subject": "t" * 66, "text": "Hi"})))
    # A push without a subject is titled with the scenario's name.
    assert "push title is 70 characters" in refused(scenario(step("push", "Привет"), name="N" * 70))


def _whatsapp(param: str) -> dict[str, Any]:
    return scenario(step("telegram", "Привет", alternatives=["whatsapp"],
                         whatsapp_template={"name": "cart_reminder", "params": [param]}))


@pytest.mark.parametrize(("param", "problem"), [
    ("{{ data.order_id }}\n{{ data.pay_url }}", "has a newline or a tab"),
    ("{{ data.order_id }}\tpaid", "has a newline or a tab"),
    ("{{ data.order_id }}     paid", "more than 4 spaces in a row"),
    ("a" * 1025, "is 1025 characters, over 1024"),
    ("{{ data.missing }}", "cannot render: UndefinedError"),
])
def test_whatsapp_template_parameters_follow_the_cloud_api_rules(param: str, problem: str) -> None:
    message = refused(_whatsapp(param))
    assert "steps[0].whatsapp_template.params[0] (ru): " in message and problem in message


def test_whatsapp_parameters_within_the_rules_pass() -> None:
    Scenario.model_validate(_whatsapp("{{ data.order_id }}    {{ data.pay_url }}"))  # four spaces are fine
    Scenario.model_validate(_whatsapp("a" * 1024))


def test_a_stored_scenario_is_read_back_without_rendering_again() -> None:
    # A running cascade finishes on the version it started with, even under stricter limits.
    parsed = Scenario.model_validate(scenario(step("sms", "Коротко")))
    stored = parsed.model_dump_json().replace("Коротко", "Длинно " * 60)
    with pytest.raises(ValidationError, match="over max_sms_parts"):
        Scenario.model_validate_json(stored)
    assert Scenario.model_validate_json(stored, context={"stored": True}).steps[0].template["ru"].text.startswith(
        "Длинно")


def test_every_problem_is_reported_at_once() -> None:
    broken = scenario(step("sms", "{{ data.nope }}", "{{ data.nope }}"), step("voice", "Привет", "a" * 1001))
    message = refused(copy.deepcopy(broken))
    assert "steps[0].template.ru" in message and "steps[0].template.en" in message
    assert "steps[1].template.en: voice text is 1001 characters" in message
