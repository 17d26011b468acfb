"""POST /v1/scenarios/{id}/preview on the local stack: every step's text in the recipient's
language, SMS encoding and parts, cost; and a Cyrillic SMS really sent is billed as preview said."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from cascade.limits import chars_left
from cascade.segments import sms_info
from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

SMS_PRICE = 0.0079  # the default price of one SMS part (USD)
RESCHEDULE = "https://shop.test/orders/1001/reschedule"


def person(**fields: Any) -> dict[str, Any]:
    return {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+77011234567", **fields}


def preview(api: Api, body: dict[str, Any], scenario: str = "delivery-failed") -> httpx.Response:
    return api.http.post(f"/v1/scenarios/{scenario}/preview", json=body)


def delivery(recipient: dict[str, Any]) -> dict[str, Any]:
    return {"recipient": recipient, "data": {"order_id": "1001", "reschedule_url": RESCHEDULE}}


def test_a_russian_recipient_sees_ucs2_sms_their_parts_and_costs(api: Api) -> None:
    resp = preview(api, delivery(person(locale="ru")))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["scenario"], body["locale"], body["currency"]) == ("delivery-failed", "ru", "USD")
    steps = body["steps"]
    assert [(s["index"], s["channel"]) for s in steps] == [(0, "sms"), (1, "sms"), (2, "sms"), (3, "operator")]
    assert steps[0]["text"] == "Не смогли доставить заказ 1001. Когда привезти? Ответьте на SMS."
    # 64 Cyrillic-text characters: one UCS-2 part (70), 6 to spare.
    assert steps[0]["sms"] == {"encoding": "UCS-2", "parts": 1, "characters": 64, "chars_left": 6}
    assert steps[0]["cost"] == pytest.approx(SMS_PRICE)
    assert steps[2]["sms"] == {"encoding": "UCS-2", "parts": 1, "characters": 63, "chars_left": 7}
    assert steps[2]["cost"] == pytest.approx(SMS_PRICE)
    # The link is shown as it is (a preview stores nothing to track)...
    assert RESCHEDULE in steps[1]["text"]
    assert (steps[1]["sms"]["encoding"], steps[1]["sms"]["parts"]) == ("UCS-2", 2)
    assert steps[1]["cost"] == pytest.approx(2 * SMS_PRICE)  # over 70: two parts, each billed
    # ...and the operator's call, for VIP orders only, would not happen for this order.
    assert steps[3]["sms"] is None and steps[3]["cost"] == 0.5
    assert (steps[3]["when"], steps[3]["applies"]) == ("data.priority == 'vip'", False)
    vip = preview(api, {**delivery(person(locale="ru")), "data": {"order_id": "1", "reschedule_url": RESCHEDULE,
                                                                  "priority": "vip"}}).json()
    assert vip["steps"][3]["applies"] is True


def test_an_english_recipient_gets_gsm7_in_one_part(api: Api) -> None:
    body = preview(api, delivery(person(locale="en"))).json()
    assert body["locale"] == "en"
    sms = [s for s in body["steps"] if s["channel"] == "sms"]
    assert [s["sms"]["encoding"] for s in sms] == ["GSM-7"] * 3
    assert [s["sms"]["parts"] for s in sms] == [1, 1, 1]
    assert [s["cost"] for s in sms] == [SMS_PRICE] * 3
    assert sms[0]["text"].startswith("We could not deliver your order 1001.")


@pytest.mark.parametrize(("locale", "words"), [("uk", "Замовлення 1001 не доставлено"),
                                               ("kk", "1001 тапсырысын жеткізе алмадық"),
                                               ("uk-UA", "Замовлення 1001"), ("de", "Не смогли")])  # de: the default, ru
def test_ukrainian_and_kazakh_recipients_read_their_own_language(api: Api, locale: str, words: str) -> None:
    body = preview(api, delivery(person(locale=locale))).json()
    assert body["steps"][0]["text"].startswith(words)
    assert body["steps"][0]["sms"]["encoding"] == "UCS-2"


def test_the_step_goes_to_the_channel_the_recipient_can_be_reached_on(api: Api) -> None:
    cart = {"recipient": {"id": "c-1", "locale": "en", "email": "sam@example.com", "whatsapp": "+77011234567",
                          "phone": "+77011234567"},
            "data": {"cart_id": "cart-7", "cart_url": "https://shop.test/cart/7"}}
    body = preview(api, cart, "abandoned-cart").json()
    assert [s["channel"] for s in body["steps"]] == ["email", "whatsapp", "sms", "voice"]  # no Telegram chat
    assert body["steps"][0]["subject"] == "Your cart is saved" and body["steps"][0]["sms"] is None
    assert [s["cost"] for s in body["steps"]] == [0.0001, 0.0147, SMS_PRICE, 0.05]


def details(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 422, resp.text
    return [d["field"] for d in resp.json()["details"]]


def test_bad_input_is_a_422_naming_the_field(api: Api) -> None:
    assert details(preview(api, delivery(person(phone="12345")))) == ["recipient.phone"]
    assert details(preview(api, delivery(person(locale="Russian")))) == ["recipient.locale"]
    assert details(preview(api, {"data": {"order_id": "1"}})) == ["recipient"]
    missing = preview(api, {"recipient": person(), "data": {"order_id": "1001"}})
    assert details(missing) == ["data.reschedule_url"]
    assert "required by scenario delivery-failed" in missing.json()["details"][0]["message"]
    assert details(preview(api, {"recipient": person()})) == ["data.order_id", "data.reschedule_url"]
    assert details(preview(api, {**delivery(person()), "extra": 1})) == ["extra"]


def test_an_unknown_scenario_is_404(api: Api) -> None:
    resp = preview(api, delivery(person()), "no-such-scenario")
    assert resp.status_code == 404 and "no-such-scenario" in resp.json()["error"]


def test_the_preview_needs_the_api_key(api: Api) -> None:
    resp = httpx.post(f"{api.base}/v1/scenarios/delivery-failed/preview", json=delivery(person()))
    assert resp.status_code == 401


def test_a_cyrillic_sms_really_sent_is_ucs2_with_the_parts_preview_said(api: Api) -> None:
    recipient = person(locale="ru", phone="+77015550177")
    said = preview(api, delivery(recipient)).json()["steps"]
    cascade_id = api.start({"type": "delivery.failed", **delivery(recipient)})
    try:
        sent = wait_for("the first two SMS", lambda: (lambda out: out if len(out) >= 2 else None)(
            api.outbox(cascade_id)), timeout=30)
    finally:
        api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    assert sent[0]["text"] == said[0]["text"]
    # What the phone got is billed as preview said, tracked link included.
    for message, step in zip(sent[:2], said[:2], strict=True):
        info = sms_info(message["text"])
        assert {**info, "chars_left": chars_left(info)} == step["sms"]
        assert step["sms"]["encoding"] == "UCS-2"
    assert "/r/" in sent[1]["text"] and RESCHEDULE not in sent[1]["text"]


def test_the_api_document_describes_the_preview(api: Api) -> None:
    doc = httpx.get(f"{api.base}/openapi.json").json()
    route = doc["paths"]["/v1/scenarios/{scenario_id}/preview"]["post"]
    assert "requestBody" in route and "422" in route["responses"]
    schemas = doc["components"]["schemas"]
    assert {"recipient", "data"} <= set(schemas["PreviewIn"]["properties"])
    assert {"index", "channel", "text", "sms", "cost"} <= set(schemas["PreviewStep"]["properties"])


def test_a_saved_scenario_is_previewed_as_saved(api: Api) -> None:
    scenario_id = f"preview-{uuid.uuid4().hex[:8]}"
    body = {"name": "Parcel lost", "trigger": f"parcel_{uuid.uuid4().hex[:8]}.lost", "correlation": "parcel_id",
            "success": ["replied"],
            "steps": [{"channel": "sms", "wait": "2h",
                       "template": {"ru": "Посылка {{ data.parcel_id }} потерялась, мы ищем её. " * 3,
                                    "en": "Parcel {{ data.parcel_id }} is lost, we are on it. {€}"}}]}
    assert api.http.put(f"/v1/scenarios/{scenario_id}", json=body).status_code == 201
    try:
        ru = preview(api, {"recipient": person(locale="ru"), "data": {"parcel_id": "77"}}, scenario_id).json()
        en = preview(api, {"recipient": person(locale="en"), "data": {"parcel_id": "77"}}, scenario_id).json()
    finally:
        api.http.delete(f"/v1/scenarios/{scenario_id}")
    assert ru["steps"][0]["sms"] == {"encoding": "UCS-2", "parts": 2, "characters": 104, "chars_left": 30}
    assert ru["steps"][0]["cost"] == pytest.approx(2 * SMS_PRICE)
    # The extension characters {, € and } count two septets each: 36 characters, 39 septets.
    assert en["steps"][0]["sms"] == {"encoding": "GSM-7", "parts": 1, "characters": 39, "chars_left": 121}
    assert preview(api, delivery(person()), scenario_id).status_code == 404  # deleted
