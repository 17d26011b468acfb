"""Every preset's every message, as a customer reads it: rendered with the sample events of
events/ in every locale, with human dates, no label that repeats the value after it
("Клиника: Клиника «Здоровье»"), and a cart call that offers help rather than a confirmation."""

from __future__ import annotations

import re

import pytest

from cascade.rendering import holds, render
from cascade.scenarios import LOCALES, presets
from tests.unit.test_sms_parts import _context, _samples

ISO = re.compile(r"\d{4}-\d{2}-\d{2}|T\d{2}:\d{2}|\d{2}:\d{2}:\d{2}")
# "Word: Word ..." — a label followed by the same word.
DOUBLED = re.compile(r"(?<!\w)(\w{3,}): \1(?!\w)", re.IGNORECASE)


def every_message() -> list[tuple[str, int, str, str]]:
    samples = _samples()
    found = []
    for scenario in presets().values():
        for index, step in enumerate(scenario.steps):
            for event in samples[scenario.id]:
                if step.when and not holds(step.when, _context(event, "en")):
                    continue  # never sent for this event
                for locale in LOCALES:
                    subject, text = render(step, locale, _context(event, locale), scenario.timezone)
                    found.append((scenario.id, index, locale, f"{subject or ''}\n{text}"))
    return found


def test_no_message_shows_a_machine_timestamp() -> None:
    # The sample events carry ISO 8601 times (appointment_at, return_deadline): the filters show them.
    assert [m for m in every_message() if ISO.search(m[3])] == []


def test_no_label_repeats_the_value_after_it() -> None:
    assert [m for m in every_message() if DOUBLED.search(m[3])] == []


@pytest.mark.parametrize(("locale", "offer", "confirm"), [
    ("ru", "помощь с оформлением заказа", "подтвердить заказ"),
    ("uk", "допомога з оформленням замовлення", "підтвердити замовлення"),
    ("en", "help to finish your order", "confirm your order"),
    ("kk", "рәсімдеуге көмек", "растау"),
])
def test_the_cart_call_offers_help_to_finish_the_order(locale: str, offer: str, confirm: str) -> None:
    calls = [m[3] for m in every_message() if m[:3] == ("abandoned-cart", 3, locale)]
    assert calls and all(offer in text and confirm not in text for text in calls)
