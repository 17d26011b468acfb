"""Every preset's SMS, rendered with the sample events of events/ in every locale, links as the
customer gets them (tracked): how many parts each is billed as. The two most frequent SMS, the
first delivery-failed message and the cart reminder, fit one part in every language.

``python -m tests.unit.test_sms_parts`` prints the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cascade.limits import as_sent, chars_left, sms_budget, tracked_link
from cascade.models import RecipientIn
from cascade.rendering import holds, render
from cascade.scenarios import LOCALES, by_trigger, presets
from cascade.segments import sms_info

EVENTS = Path(__file__).resolve().parents[2] / "events"
# A tracked link as the local stack (`make run`, port 3000) sends it: 46 characters. A deployment
# gets the same length with a PublicBaseUrl as short as http://127.0.0.1:3000 (e.g. https://go.shop.kz).
LOCAL_API = "http://127.0.0.1:3000"
ONE_PART = {("delivery-failed", 0), ("abandoned-cart", 2)}


def _samples() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        scenario = by_trigger(event.get("type", "")) if isinstance(event, dict) else None
        if scenario is not None and "recipient" in event:
            found.setdefault(scenario.id, []).append(event)
    return found


def _context(event: dict[str, Any], locale: str) -> dict[str, Any]:
    """What a step's template sees for a sample event, its recipient speaking ``locale``."""
    recipient = {**dict.fromkeys(RecipientIn.model_fields), **event["recipient"], "locale": locale}
    return {"recipient": recipient, "data": event.get("data", {}), "event": {"type": event["type"]},
            "cascade": {"id": "c_1", "tried": []}}


def parts_table(api_base: str | None = LOCAL_API) -> list[dict[str, Any]]:
    """One row per preset SMS step and locale: encoding, parts, characters left, the text."""
    rows = []
    samples = _samples()
    for scenario in presets().values():
        for index, step in enumerate(scenario.steps):
            if "sms" not in step.channels:
                continue
            events = samples.get(scenario.id, [])
            assert events, f"no sample event in events/ starts {scenario.id}"
            for locale in LOCALES:
                # The sample whose event this step answers (order.shipped for the shipped SMS...).
                event = next((e for e in events if not step.when or holds(step.when, _context(e, locale))), events[0])
                _, text = render(step, locale, _context(event, locale), scenario.timezone)
                info = sms_info(as_sent(text, scenario.track_links, tracked_link(api_base)))
                rows.append({"scenario": scenario.id, "step": index, "locale": locale, "encoding": info["encoding"],
                             "parts": info["parts"], "chars_left": chars_left(info), "text": text})
    return rows


def table_text(rows: list[dict[str, Any]]) -> str:
    lines = ["| preset | step | " + " | ".join(LOCALES) + " |", "|---|---|" + "---|" * len(LOCALES)]
    keys = sorted({(r["scenario"], r["step"]) for r in rows})
    for scenario_id, step in keys:
        cells = {r["locale"]: f"{r['parts']} ({r['chars_left']} left)" for r in rows
                 if (r["scenario"], r["step"]) == (scenario_id, step)}
        lines.append(f"| {scenario_id} | {step + 1} | " + " | ".join(cells[loc] for loc in LOCALES) + " |")
    return "\n".join(lines)


def test_every_preset_sms_renders_in_every_locale_with_the_sample_events_and_the_table_is_complete() -> None:
    rows = parts_table()
    print("\n" + table_text(rows))
    sms_steps = {(s.id, i) for s in presets().values() for i, st in enumerate(s.steps) if "sms" in st.channels}
    assert {(r["scenario"], r["step"]) for r in rows} == sms_steps
    assert all(r["parts"] >= 1 and "{{" not in r["text"] for r in rows)
    # Dates are for people: no ISO timestamps in any SMS.
    assert not [r["text"] for r in rows if "T10:" in r["text"] or "+05:00" in r["text"]]


@pytest.mark.parametrize(("scenario_id", "step"), sorted(ONE_PART))
@pytest.mark.parametrize("locale", LOCALES)
def test_the_most_frequent_sms_fit_one_part_in_every_language(scenario_id: str, step: int, locale: str) -> None:
    row = next(r for r in parts_table() if (r["scenario"], r["step"], r["locale"]) == (scenario_id, step, locale))
    assert row["parts"] == 1, row
    # ...and so they do at save time, with the scenario's sample data (a longer order number).
    saved = next(b for b in sms_budget(presets()[scenario_id], LOCAL_API)
                 if (b["step"], b["locale"]) == (step, locale))
    assert saved["parts"] == 1, saved


@pytest.mark.parametrize("locale", LOCALES)
def test_the_cart_sms_fits_one_part_behind_a_short_public_base_url(locale: str) -> None:
    # README: a PublicBaseUrl of 27 characters keeps the cart SMS in one part in every language.
    base = "https://go.shop-example1.kz"
    assert len(base) == 27
    row = next(r for r in parts_table(base) if (r["scenario"], r["step"], r["locale"]) == ("abandoned-cart", 2, locale))
    assert row["parts"] == 1, row


def test_the_first_delivery_failed_sms_says_what_happened_and_what_to_do() -> None:
    texts = {r["locale"]: r["text"] for r in parts_table() if (r["scenario"], r["step"]) == ("delivery-failed", 0)}
    assert texts["ru"] == "Не смогли доставить заказ 1002. Когда привезти? Ответьте на SMS."
    assert texts["en"] == "We could not deliver your order 1002. When shall we bring it? Just reply to this SMS."
    assert all("1002" in text for text in texts.values())


if __name__ == "__main__":
    print(table_text(parts_table()))
