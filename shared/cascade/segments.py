"""SMS encoding and parts, as carriers bill them (3GPP TS 23.038 and 23.040).

A text made only of the GSM-7 alphabet goes as 7-bit septets: 160 in one part, 153 per part when
split (a concatenated SMS spends 7 septets on its header). The extension table's characters
(``^ { } [ ] ~ \\ | €`` and form feed) take an escape septet plus their own, so they count 2, and a
pair is never cut between two parts. One character outside the alphabet (any Cyrillic letter, an
emoji, a curly quote) turns the whole message into UCS-2: 70 UTF-16 code units in one part, 67 per
part when split; characters outside the Basic Multilingual Plane (most emoji) take two units, and
the pair is never cut either. National shift tables (Turkish, Portuguese...) are not assumed:
providers rarely use them, so counting without them never promises fewer parts than are billed.

The tables are the standard's own, written out here: a codec would only give a total, not where
the parts split.
"""

from __future__ import annotations

from typing import Literal, TypedDict

# The basic character set, in code-point order of the standard's table (0x1B, the escape to the
# extension table, is left out: it is not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these is sent as ESC + a septet, so it counts two.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]


class SmsInfo(TypedDict):
    encoding: Encoding
    parts: int
    characters: int  # what the encoding counts: septets for GSM-7, UTF-16 code units for UCS-2


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 alphabet (basic or extension table)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _units(text: str, encoding: Encoding) -> list[int]:
    """Each character's size in the encoding's units: 1 or 2 (an escaped character, a surrogate pair)."""
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _parts(units: list[int], single: int, per_part: int) -> int:
    """How many parts: one if everything fits ``single``; otherwise parts of ``per_part`` filled in
    order, a character that does not fit whole starting the next part."""
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return parts


def sms_info(text: str) -> SmsInfo:
    """The encoding a text goes out in, the parts it is billed as, and its length in that encoding."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    units = _units(text, encoding)
    single, per_part = (GSM7_SINGLE, GSM7_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    return {"encoding": encoding, "parts": _parts(units, single, per_part), "characters": sum(units)}


__all__ = ["GSM7_BASIC", "GSM7_EXTENSION", "SmsInfo", "is_gsm7", "sms_info"]
