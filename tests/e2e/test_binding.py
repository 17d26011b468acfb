"""Binding a Telegram chat: a one-time deep link, opened by the customer, stores the chat id on
the recipient, and later cascades reach them on Telegram."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, long_waits, wait_for

pytestmark = pytest.mark.stack


def _telegram_chat_reached(api: Api, rid: str) -> str:
    """Start a cart cascade for ``rid`` with no Telegram contact in the event; return the chat
    its Telegram step went to."""
    cascade_id = api.start({"type": "cart.abandoned", "recipient": {"id": rid, "email": "sam@example.com",
                                                                      "consent": {"marketing": True}},
                            "data": {"cart_id": f"b-{uuid.uuid4().hex[:4]}", "cart_url": "https://shop.test/cart/b"}})
    tg = wait_for("the Telegram step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "telegram"],
                  timeout=30)[0]
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    return str(tg["to"])


def test_an_opened_deep_link_binds_the_chat_for_later_cascades(api: Api) -> None:
    rid = f"cust-{uuid.uuid4().hex[:8]}"
    resp = api.http.post(f"/v1/recipients/{rid}/bind/telegram")
    assert resp.status_code == 200, resp.text
    link = resp.json()["link"]
    assert link.startswith("https://t.me/cascade_local_bot?start=") and resp.json()["expires_at"]
    assert api.http.post("/local/simulate", json={"open_link": link, "as": "424242"}).status_code == 200
    assert _telegram_chat_reached(api, rid) == "424242"  # the event carried no Telegram contact


def test_a_used_link_is_refused(api: Api) -> None:
    first, second = (f"cust-{uuid.uuid4().hex[:8]}" for _ in range(2))
    link = api.http.post(f"/v1/recipients/{first}/bind/telegram").json()["link"]
    api.http.post("/local/simulate", json={"open_link": link, "as": "111"})
    # Someone else opens the same link later: nothing changes for anyone.
    api.http.post("/local/simulate", json={"open_link": link, "as": "222"})
    assert _telegram_chat_reached(api, first) == "111"
    # A made-up token binds nothing: a recipient with no contact at all is still refused.
    api.http.post("/local/simulate", json={"open_link": "https://t.me/cascade_local_bot?start=forged-token",
                                           "as": "333"})
    resp = api.post_event({"type": "cart.abandoned", "recipient": {"id": second},
                           "data": {"cart_id": "b-3", "cart_url": "https://shop.test/cart/b3"}})
    assert resp.status_code == 422


def test_binding_links_exist_only_for_messengers_that_support_them(api: Api) -> None:
    resp = api.http.post("/v1/recipients/r1/bind/sms")
    assert resp.status_code == 422
    assert resp.json()["details"][0]["field"] == "channel"


def _bot_said(api: Api, channel: str, chat: str) -> list[str]:
    """What the bot wrote to ``chat`` outside any cascade (the stand-in's record)."""
    return [m["text"] for m in api.outbox() if m["channel"] == channel and m["to"] == chat and not m["cascade_id"]]


def test_the_bot_confirms_a_bound_chat_in_the_language_the_link_was_made_for(api: Api) -> None:
    # Given a link made for a Kazakh-speaking customer
    rid, chat = f"cust-{uuid.uuid4().hex[:8]}", str(uuid.uuid4().int % 10**9)
    link = api.http.post(f"/v1/recipients/{rid}/bind/telegram", params={"locale": "kk"}).json()["link"]
    # When they open it
    assert api.http.post("/local/simulate", json={"open_link": link, "as": chat}).status_code == 200
    # Then the bot confirms in Kazakh, once
    said = wait_for("the bot's confirmation", lambda: _bot_said(api, "telegram", chat))
    assert said == ["Дайын! Чат қосылды: еске салулар мен хабарламалар осында келеді."]


def test_a_link_sent_during_a_cascade_is_confirmed_in_that_cascades_language(
        api: Api, saved: list[str]) -> None:
    # Given a Ukrainian customer with a cart cascade waiting on its email (no locale on the link)
    trigger = long_waits(api, saved, "abandoned-cart", 0)
    rid, chat = f"cust-{uuid.uuid4().hex[:8]}", str(uuid.uuid4().int % 10**9)
    cascade_id = api.start({"type": trigger, "recipient": {"id": rid, "email": "oksana@example.com", "locale": "uk",
                                                           "consent": {"marketing": True}},
                            "data": {"cart_id": "b-uk", "cart_url": "https://shop.test/cart/uk"}})
    link = api.http.post(f"/v1/recipients/{rid}/bind/telegram").json()["link"]
    # When the customer opens it
    api.http.post("/local/simulate", json={"open_link": link, "as": chat})
    # Then the bot answers in Ukrainian
    said = wait_for("the bot's confirmation", lambda: _bot_said(api, "telegram", chat))
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    assert said == ["Готово! Чат підключено: нагадування та сповіщення надходитимуть сюди."]


def test_a_link_with_no_language_known_is_confirmed_in_english_and_a_bad_locale_is_refused(api: Api) -> None:
    rid, chat = f"cust-{uuid.uuid4().hex[:8]}", str(uuid.uuid4().int % 10**9)
    resp = api.http.post(f"/v1/recipients/{rid}/bind/telegram", params={"locale": "Russian"})
    assert resp.status_code == 422 and "locale" in resp.text
    link = api.http.post(f"/v1/recipients/{rid}/bind/telegram").json()["link"]
    api.http.post("/local/simulate", json={"open_link": link, "as": chat})
    said = wait_for("the bot's confirmation", lambda: _bot_said(api, "telegram", chat))
    assert said == ["Done! This chat is connected: reminders and updates will come here."]
