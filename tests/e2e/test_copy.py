"""Copy a customer would trust, on the local stack: a real SMS carries the appointment's time in
the recipient's language and time zone, and the save answer and the preview say how many
characters each SMS has left before it costs one more part."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import CLOCK_SHIFT_S, Api, wait_for

pytestmark = pytest.mark.stack

MONTHS_RU = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
             "ноября", "декабря")


def test_a_real_sms_shows_the_appointment_time_in_the_recipients_language_and_zone(api: Api) -> None:
    # Given an appointment in three days, posted in UTC, for a Russian speaker in Moscow
    at = (datetime.now(UTC) + timedelta(seconds=CLOCK_SHIFT_S, days=3)).replace(minute=30, second=0, microsecond=0)
    event = {"type": "appointment.booked",
             "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+77015550123", "locale": "ru",
                           "timezone": "Europe/Moscow"},
             "data": {"appointment_id": f"ap-{uuid.uuid4().hex[:6]}",
                      "appointment_at": at.isoformat().replace("+00:00", "Z"), "place": "Клиника «Здоровье»"}}
    # When the confirmation goes out
    cascade_id = api.start(event)
    sms = wait_for("the confirmation", lambda: api.outbox(cascade_id))[0]
    # Then it reads the Moscow time, in Russian words, and no machine timestamp
    local = at.astimezone(ZoneInfo("Europe/Moscow"))
    assert f"на {local.day} {MONTHS_RU[local.month - 1]}, {local:%H:%M}" in sms["text"], sms["text"]
    assert sms["text"].startswith("Клиника «Здоровье»: вы записаны на ") and "T" not in sms["text"].split("ПЕРЕНОС")[0]
    api.post_event({"type": "appointment.cancelled", "recipient": {"id": event["recipient"]["id"]},
                    "data": {"appointment_id": event["data"]["appointment_id"]}})


def test_the_preview_counts_the_characters_left_in_the_part(api: Api) -> None:
    body = {"recipient": {"id": "cust-1", "phone": "+77011234567", "locale": "ru", "timezone": "Europe/Moscow"},
            "data": {"order_id": "1001", "reschedule_url": "https://shop.test/orders/1001/reschedule"}}
    steps = api.http.post("/v1/scenarios/delivery-failed/preview", json=body).json()["steps"]
    first = steps[0]
    assert first["text"] == "Не смогли доставить заказ 1001. Когда привезти? Ответьте на SMS."
    assert first["sms"] == {"encoding": "UCS-2", "parts": 1, "characters": 64, "chars_left": 6}


def test_the_save_answer_lists_each_sms_step_per_locale_with_its_characters_left(api: Api,
                                                                                 saved: list[str]) -> None:
    # Given the cart preset, saved under its own id with a wordier SMS in Russian
    scenario = api.http.get("/v1/scenarios/abandoned-cart").json()
    assert {(row["step"], row["locale"]) for row in scenario["sms"]} == {(2, loc) for loc in ("ru", "uk", "en", "kk")}
    for key in ("version", "source", "id", "sms"):
        scenario.pop(key)
    tag = uuid.uuid4().hex[:8]
    scenario["steps"][2]["template"]["ru"] = "Вы оставили товары в корзине, и мы бережно их сохранили: {{ data.cart_url }}"
    # When it is saved
    resp = api.http.put(f"/v1/scenarios/cart-{tag}", json={**scenario, "trigger": f"cart_{tag}.abandoned"})
    assert resp.status_code == 201, resp.text
    saved.append(f"cart-{tag}")
    # Then the answer says, per step and locale, the parts and what is left before the next one
    rows = {row["locale"]: row for row in resp.json()["sms"]}
    # 57 characters of words + a 60-character tracked link = 117 UCS-2 units: two parts of 67, 17 left.
    assert rows["ru"] == {"step": 2, "locale": "ru", "encoding": "UCS-2", "parts": 2, "chars_left": 17}
    assert rows["en"]["encoding"] == "GSM-7" and rows["en"]["parts"] == 1 and rows["en"]["chars_left"] > 0
    # ...and what GET shows can be sent back as it is
    again = api.http.get(f"/v1/scenarios/cart-{tag}").json()
    assert api.http.put(f"/v1/scenarios/cart-{tag}", json=again).status_code == 200
