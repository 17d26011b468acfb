"""SMS encoding and parts as carriers bill them: GSM-7 160/153 septets with extension characters
counted double, anything else UCS-2 70/67 UTF-16 units (Cyrillic SMS are UCS-2)."""

from __future__ import annotations

import pytest

from cascade.segments import GSM7_BASIC, GSM7_EXTENSION, is_gsm7, sms_info

CYRILLIC = "ж"
EMOJI = "😀"  # outside the Basic Multilingual Plane: two UTF-16 code units


@pytest.mark.parametrize(("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
def test_gsm7_text_is_160_septets_in_one_part_then_153_per_part(length: int, parts: int) -> None:
    assert sms_info("a" * length) == {"encoding": "GSM-7", "parts": parts, "characters": length}


@pytest.mark.parametrize(("length", "parts"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_a_cyrillic_sms_is_ucs2_70_in_one_part_then_67_per_part(length: int, parts: int) -> None:
    assert sms_info(CYRILLIC * length) == {"encoding": "UCS-2", "parts": parts, "characters": length}


def test_real_russian_ukrainian_and_kazakh_texts_are_ucs2() -> None:
    ru = "Не смогли доставить заказ 1001. Перенесём доставку? Ответьте на это SMS."
    assert sms_info(ru) == {"encoding": "UCS-2", "parts": 2, "characters": 72}
    assert sms_info("Код: 123456. Нікому його не повідомляйте.")["encoding"] == "UCS-2"
    assert sms_info("Код: 123456. Оны ешкімге айтпаңыз.") == {"encoding": "UCS-2", "parts": 1, "characters": 34}


def test_one_character_outside_gsm7_makes_the_whole_message_ucs2() -> None:
    assert sms_info("a" * 159) == {"encoding": "GSM-7", "parts": 1, "characters": 159}
    assert sms_info("a" * 69 + CYRILLIC) == {"encoding": "UCS-2", "parts": 1, "characters": 70}
    assert sms_info("a" * 70 + CYRILLIC) == {"encoding": "UCS-2", "parts": 2, "characters": 71}
    # Look-alikes that are not in the alphabet: a curly apostrophe, a backtick, lower-case c cedilla.
    for odd in ("’", "`", "ç", "«"):
        assert sms_info(f"Don{odd}t wait")["encoding"] == "UCS-2", odd


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_every_extension_character_counts_two_septets(char: str) -> None:
    assert sms_info(char) == {"encoding": "GSM-7", "parts": 1, "characters": 2}
    assert sms_info(char * 80)["parts"] == 1  # 160 septets
    assert sms_info(char * 81) == {"encoding": "GSM-7", "parts": 2, "characters": 162}


def test_the_extension_table_is_the_standards() -> None:
    assert set("^{}[]~\\|€\f") == GSM7_EXTENSION
    assert len(GSM7_BASIC) == 127  # 128 code points less the escape to the extension table
    assert is_gsm7("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\r\n 09AZaz")
    assert sms_info("Line one\nline two\r\n")["encoding"] == "GSM-7"


def test_an_extension_pair_is_never_split_between_parts() -> None:
    # 306 septets would be two parts of 153, but the brace would straddle them: it opens part 2.
    text = "a" * 152 + "{" + "b" * 152
    assert sms_info(text) == {"encoding": "GSM-7", "parts": 3, "characters": 306}
    assert sms_info("a" * 151 + "{" + "b" * 153) == {"encoding": "GSM-7", "parts": 2, "characters": 306}


def test_an_emoji_is_two_utf16_units_and_is_never_split_between_parts() -> None:
    assert sms_info(EMOJI * 35) == {"encoding": "UCS-2", "parts": 1, "characters": 70}
    assert sms_info(EMOJI * 36) == {"encoding": "UCS-2", "parts": 2, "characters": 72}
    assert sms_info("Hi " + EMOJI)["encoding"] == "UCS-2"
    text = CYRILLIC * 66 + EMOJI + CYRILLIC * 66  # 134 units: two parts only if the emoji were cut in half
    assert sms_info(text) == {"encoding": "UCS-2", "parts": 3, "characters": 134}


def test_an_empty_text_is_no_part() -> None:
    assert sms_info("") == {"encoding": "GSM-7", "parts": 0, "characters": 0}
