"""Telegram end to end: a customer who blocks the bot is opted out of Telegram and the cascade
moves on at once; the Bot API stand-in takes parameters the ways the real Bot API does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import TIME_SCALE, Api, wait_for

TELEGRAM_WAIT_HOURS = 240  # a minute of real time here: "at once" is far from "after the wait"


def _hours(a: str, b: str) -> float:
    t = [datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in (a, b)]
    return (t[1] - t[0]) * TIME_SCALE / 3600


def _sent(api: Api, cascade_id: str, channel: str) -> dict[str, Any]:
    return dict(wait_for(f"the {channel} message", lambda: next(
        (m for m in api.outbox(cascade_id) if m["channel"] == channel), None), timeout=30))


@pytest.fixture
def long_telegram_wait(api: Api) -> Iterator[str]:
    """The cart cascade with a long Telegram wait, under its own trigger."""
    cart = api.http.get("/v1/scenarios/abandoned-cart").json()
    for key in ("version", "source", "id"):
        cart.pop(key)
    assert cart["steps"][1]["channel"] == "telegram"
    cart["steps"][1]["wait"] = f"{TELEGRAM_WAIT_HOURS}h"
    # The SMS too: a 2 h wait is a 1 s timer here, which a busy machine can overrun before the SMS is out.
    cart["steps"][2]["wait"] = f"{TELEGRAM_WAIT_HOURS}h"
    trigger = f"cart_{uuid.uuid4().hex[:8]}.abandoned"
    scenario_id = f"cart-{uuid.uuid4().hex[:8]}"
    assert api.http.put(f"/v1/scenarios/{scenario_id}", json={**cart, "trigger": trigger}).status_code == 201
    yield trigger
    api.http.delete(f"/v1/scenarios/{scenario_id}")


@pytest.mark.stack
def test_a_customer_who_blocks_the_bot_is_opted_out_and_the_sms_goes_at_once(
        api: Api, long_telegram_wait: str) -> None:
    rid, chat = f"cust-{uuid.uuid4().hex[:8]}", str(10**8 + uuid.uuid4().int % 10**8)
    event = {"type": long_telegram_wait, "recipient": {"id": rid, "locale": "en", "telegram_chat_id": chat,
                                                        "phone": "+14155550123", "consent": {"marketing": True}},
             "data": {"cart_id": "cart-1", "cart_url": "https://shop.test/cart/1"}}
    cascade_id = api.start(event)  # no email: the Telegram step goes first
    tg = _sent(api, cascade_id, "telegram")
    wait_for("the send on the timeline", lambda: any(  # recorded after the chat's last message
        (t["channel"], t["kind"]) == ("telegram", "sent")
        for t in api.http.get(f"/v1/recipients/{rid}/timeline").json()["touches"]))
    # The customer blocks the bot: Telegram sends the bot a signed my_chat_member update (kicked).
    assert api.simulate(tg["provider_message_id"], "blocked").status_code == 200
    sms = _sent(api, cascade_id, "sms")
    assert _hours(tg["sent_at"], sms["sent_at"]) < TELEGRAM_WAIT_HOURS / 2  # not after the step's own wait
    step = api.cascade(cascade_id)["steps"][1]
    assert (step["status"], step["reason"]) == ("sent", "opted_out")
    consent = api.http.get(f"/v1/recipients/{rid}/consent").json()["channels"]["telegram"]
    assert consent["opted_out"] is True and consent["opted_out_via"] == "blocked"
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    # The next cascade for this customer does not try Telegram at all.
    later = api.start({**event, "data": {"cart_id": "cart-2", "cart_url": "https://shop.test/cart/2"}})
    _sent(api, later, "sms")
    view = api.cascade(later)
    assert (view["steps"][1]["status"], view["steps"][1]["reason"]) == ("skipped", "opted_out")
    assert [m["channel"] for m in api.outbox(later)] == ["sms"]
    api.http.post(f"/v1/cascades/{later}/cancel")


# -- the Bot API stand-in, as clients call it -----------------------------------------------------


@pytest.fixture
def bot() -> Iterator[Any]:
    from cascade.local.telegram import TelegramStandIn

    standin = TelegramStandIn()
    standin.start()
    yield standin
    standin.stop()


def _call(bot: Any, method: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{bot.url}/bot{bot.bot_token}/{method}", timeout=10, **kwargs)


MARKUP = {"inline_keyboard": [[{"text": "Got it", "callback_data": "sig:read"}]]}


@pytest.mark.parametrize("encoding", ["json", "form", "query", "multipart"])
def test_the_bot_api_stand_in_takes_parameters_as_json_form_query_or_multipart(bot: Any, encoding: str) -> None:
    params = {"chat_id": "777", "text": "Привет, your cart is waiting", "reply_markup": json.dumps(MARKUP)}
    kwargs: dict[str, Any] = {
        "json": {"json": {**params, "chat_id": 777, "reply_markup": MARKUP}}, "form": {"data": params},
        "query": {"params": params}, "multipart": {"files": {k: (None, v) for k, v in params.items()}},
    }[encoding]
    resp = _call(bot, "sendMessage", **kwargs)
    assert resp.status_code == 200, resp.text
    result = resp.json()["result"]
    assert result["chat"] == {"id": 777, "first_name": "Customer", "type": "private"}
    assert result["text"] == params["text"] and result["reply_markup"] == MARKUP
    assert result["from"]["is_bot"] is True and result["from"]["username"] == bot.username


def test_the_bot_api_stand_in_answers_get_me_get_webhook_info_and_a_bad_chat_as_telegram_does(bot: Any) -> None:
    me = _call(bot, "getMe").json()
    assert me["ok"] is True
    assert {k: me["result"][k] for k in ("is_bot", "first_name", "username")} == \
        {"is_bot": True, "first_name": bot.first_name, "username": bot.username}
    assert isinstance(me["result"]["id"], int)
    assert _call(bot, "setWebhook", data={"url": "https://example.test/hook", "secret_token": "abc"}).json()["ok"]
    info = _call(bot, "getWebhookInfo").json()["result"]
    assert info["url"] == "https://example.test/hook" and info["pending_update_count"] == 0
    for chat in ("@nobody_here", "not-a-chat"):
        bad = _call(bot, "sendMessage", json={"chat_id": chat, "text": "hi"})
        assert (bad.status_code, bad.json()) == (400, {"ok": False, "error_code": 400,
                                                       "description": "Bad Request: chat not found"})
    unknown = _call(bot, "sendMesage", json={"chat_id": 1, "text": "hi"})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, 404)
