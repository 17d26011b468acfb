"""Reply intents: what a customer's answer means, by the scenario's keywords.

A scenario names intents with keywords per locale (``reply_intents``); a reply has the first
intent (in the scenario's order) one of whose keywords it contains. Matching ignores case,
surrounding blanks and punctuation and goes by whole words: "перенос, пожалуйста!" has the
keyword ПЕРЕНОС, "переносить" does not. A keyword of digits matches only a reply that is just
those digits, so a "1" inside "10:30" is no answer. A call's key 1 and a Confirm button are the
intent ``confirm`` whatever the keywords say."""

from __future__ import annotations

import re

CONFIRM = "confirm"
_WORD = re.compile(r"\w+")


def words(text: str) -> tuple[str, ...]:
    """The words of ``text``, case-folded, without punctuation."""
    return tuple(w.casefold() for w in _WORD.findall(text))


def _has(reply: tuple[str, ...], keyword: tuple[str, ...]) -> bool:
    if not keyword:
        return False
    if all(w.isdigit() for w in keyword):
        return reply == keyword
    n = len(keyword)
    return any(reply[i:i + n] == keyword for i in range(len(reply) - n + 1))


def match(text: str | None, intents: dict[str, dict[str, list[str]]], locale: str) -> str | None:
    """The intent of a reply in ``locale``: the keywords of that locale, or of every locale for an
    intent that names none for it. None when no intent matches."""
    if not text or not intents:
        return None
    reply = words(text)
    for name, by_locale in intents.items():
        keywords = by_locale.get(locale) or by_locale.get(locale.split("-")[0])
        if keywords is None:
            keywords = [k for ks in by_locale.values() for k in ks]
        if any(_has(reply, words(k)) for k in keywords):
            return name
    return None


__all__ = ["CONFIRM", "match", "words"]
