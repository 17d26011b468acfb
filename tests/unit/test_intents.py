"""Reply intents: what a customer's answer means, by the scenario's keywords per locale."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from cascade.intents import match
from cascade.scenarios import Scenario, presets
from tests.unit.test_scenarios import GOOD

INTENTS = {"reschedule": {"ru": ["ПЕРЕНОС"], "uk": ["ПЕРЕНОС", "ПЕРЕНЕСТИ"], "en": ["RESCHEDULE", "2"]},
           "confirm": {"ru": ["ДА", "1"], "en": ["YES", "1"]}}


@pytest.mark.parametrize(("text", "locale", "intent"), [
    ("ПЕРЕНОС", "ru", "reschedule"),
    ("  перенос пожалуйста ", "ru", "reschedule"),  # trimmed, any case, one word of several
    ("Перенос!!!", "ru", "reschedule"),  # punctuation does not matter
    ("перенести", "uk", "reschedule"),
    ("переносить", "ru", None),  # whole words only
    ("Спасибо!", "ru", None),
    ("да", "ru", "confirm"),
    ("1", "ru", "confirm"),
    (" 1. ", "en", "confirm"),
    ("10:30 ok", "en", None),  # a digit keyword matches only as the whole reply
    ("1 2", "en", None),
    ("2", "en", "reschedule"),
    ("yes", "ru", None),  # the reply is read in the cascade's locale
    ("ПЕРЕНОС", "kk", "reschedule"),  # an intent without keywords for a locale uses all of its keywords
])
def test_a_reply_has_the_intent_whose_keyword_it_carries(text: str, locale: str, intent: str | None) -> None:
    assert match(text, INTENTS, locale) == intent


def test_the_appointment_presets_reschedule_word_works_in_every_cyrillic_locale() -> None:
    appointment = presets(checked=True)["appointment"]
    for locale in ("ru", "uk", "kk"):
        assert match("ПЕРЕНОС", appointment.reply_intents, locale) == "reschedule", locale
    assert match("Спасибо!", appointment.reply_intents, "ru") is None
    assert "replied" not in appointment.success and "replied:reschedule" in appointment.success


def test_a_success_signal_must_name_a_defined_intent() -> None:
    scenario = copy.deepcopy(GOOD)
    scenario.update(reply_intents=INTENTS, success=["replied:reschedule", "replied:cancel"])
    with pytest.raises(ValidationError, match="'replied:cancel' names an intent") as caught:
        Scenario.model_validate(scenario)
    assert caught.value.errors()[0]["loc"] == ("success",)
    scenario["success"] = ["replied:reschedule", "confirmed"]
    assert Scenario.model_validate(scenario).reply_intents == INTENTS


@pytest.mark.parametrize("intents", [{"Bad Name": {"en": ["X"]}}, {"x": {}}, {"x": {"en": ["!!"]}}, {"x": {"en": [""]}},
                                     {"x": {"english": ["X"]}}])
def test_broken_intents_are_refused(intents: dict) -> None:  # type: ignore[type-arg]
    scenario = copy.deepcopy(GOOD)
    scenario["reply_intents"] = intents
    with pytest.raises(ValidationError, match="reply_intents") as caught:
        Scenario.model_validate(scenario)
    assert "^" not in caught.value.errors()[0]["msg"]  # a sentence, not a regular expression


def test_an_unquoted_digit_in_yaml_is_a_keyword_and_an_unquoted_yes_is_refused() -> None:
    import yaml

    scenario = copy.deepcopy(GOOD)
    scenario["reply_intents"] = yaml.safe_load("confirm: {en: [OK, 1]}")
    assert Scenario.model_validate(scenario).reply_intents == {"confirm": {"en": ["OK", "1"]}}
    scenario["reply_intents"] = yaml.safe_load("confirm: {en: [YES]}")
    with pytest.raises(ValidationError, match="valid string"):
        Scenario.model_validate(scenario)
