"""Consent and opt-out deciding real cascades on the local stack: marketing only with consent
(from the event or recorded through the API), STOP replies on SMS, WhatsApp and Telegram, the
email's one-click unsubscribe, an opt-out that wins over the event and moves a waiting cascade on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import LONG_WAIT_HOURS, TIME_SCALE, Api, long_waits, wait_for

pytestmark = pytest.mark.stack


def _rid() -> str:
    return f"cust-{uuid.uuid4().hex[:8]}"


def _phone() -> str:
    return f"+1415555{uuid.uuid4().int % 10**4:04d}"


def _cart(recipient: dict[str, Any]) -> dict[str, Any]:
    return {"type": "cart.abandoned", "recipient": {"locale": "en", **recipient},
            "data": {"cart_id": f"cart-{uuid.uuid4().hex[:6]}", "cart_url": "https://shop.test/cart/9"}}


def _delivery_failed(recipient: dict[str, Any]) -> dict[str, Any]:
    return {"type": "delivery.failed", "recipient": {"locale": "en", **recipient},
            "data": {"order_id": uuid.uuid4().hex[:6], "reschedule_url": "https://shop.test/orders/1/reschedule"}}


def _finished(api: Api, cascade_id: str, timeout: float = 30) -> dict[str, Any]:
    return dict(wait_for("the cascade to end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v,
                         timeout=timeout))


def _sent(api: Api, cascade_id: str, channel: str, count: int = 1) -> list[dict[str, Any]]:
    return list(wait_for(f"{count} {channel} message(s)", lambda: len(
        found := [m for m in api.outbox(cascade_id) if m["channel"] == channel]) >= count and found, timeout=30))


def _hours(a: str, b: str) -> float:
    t = [datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in (a, b)]
    return (t[1] - t[0]) * TIME_SCALE / 3600


def _skips(view: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(s["status"], s["reason"]) for s in view["steps"]]


def _consent(api: Api, rid: str) -> dict[str, Any]:
    resp = api.http.get(f"/v1/recipients/{rid}/consent")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["channels"])


def _grant(api: Api, rid: str, channel: str, purpose: str, granted: bool = True) -> dict[str, Any]:
    resp = api.http.put(f"/v1/recipients/{rid}/consent", json={"channel": channel, "purpose": purpose,
                                                                "granted": granted})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["channels"])


def _cancel(api: Api, cascade_id: str) -> None:
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


# -- marketing needs consent ----------------------------------------------------------------------

def test_a_marketing_cascade_without_consent_sends_nothing_and_ends_at_once(api: Api, saved: list[str]) -> None:
    # Every step waits 400 h (100 s here): ending at once is told from the timers on a busy machine.
    trigger = long_waits(api, saved, "abandoned-cart", 0, 1, 2, 3)
    cascade_id = api.start({**_cart({"id": _rid(), "email": "nobody@example.com", "phone": _phone()}), "type": trigger})
    view = _finished(api, cascade_id)
    assert view["status"] == "exhausted"
    assert _hours(view["created_at"], view["finished_at"]) < LONG_WAIT_HOURS / 2
    assert _skips(view) == [("skipped", "no_consent"), ("skipped", "no_contact"), ("skipped", "no_consent"),
                            ("skipped", "no_consent")]
    assert api.outbox(cascade_id) == []


def test_marketing_consent_in_the_event_lets_the_cart_cascade_run(api: Api) -> None:
    cascade_id = api.start(_cart({"id": _rid(), "email": "yes@example.com", "consent": {"marketing": True}}))
    email = _sent(api, cascade_id, "email")[0]
    assert email["subject"] == "Your cart is saved"
    _cancel(api, cascade_id)


def test_consent_for_a_list_of_channels_uses_only_those_channels(api: Api) -> None:
    cascade_id = api.start(_cart({"id": _rid(), "email": "some@example.com", "phone": _phone(),
                                  "consent": {"marketing": ["sms"]}}))
    view = _finished(api, cascade_id)
    assert view["status"] == "exhausted"
    assert _skips(view) == [("skipped", "no_consent"), ("skipped", "no_contact"), ("sent", None),
                            ("skipped", "no_consent")]
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["sms"]


def test_consent_recorded_through_the_api_serves_later_events_without_consent(api: Api) -> None:
    rid = _rid()
    assert _consent(api, rid) == {}
    channels = _grant(api, rid, "email", "marketing")
    assert channels["email"]["marketing"]["granted"] is True and channels["email"]["opted_out"] is False
    cascade_id = api.start(_cart({"id": rid, "email": "later@example.com"}))
    assert _sent(api, cascade_id, "email")
    _cancel(api, cascade_id)


def test_a_refusal_recorded_through_the_api_skips_even_transactional_messages(api: Api, saved: list[str]) -> None:
    rid = _rid()
    _grant(api, rid, "sms", "transactional", granted=False)
    # Long timers: each step is skipped by its own run, never overtaken by a 1 s timer on a busy machine.
    trigger = long_waits(api, saved, "delivery-failed", 0, 1, 2)
    view = _finished(api, api.start({**_delivery_failed({"id": rid, "phone": _phone()}), "type": trigger}))
    assert view["status"] == "exhausted"
    assert _skips(view)[:3] == [("skipped", "opted_out")] * 3
    assert _consent(api, rid)["sms"]["transactional"]["granted"] is False


def test_the_consent_api_validates_and_is_described(api: Api) -> None:
    url = "/v1/recipients/r-1/consent"
    for body, field in (({"channel": "fax", "purpose": "marketing", "granted": True}, "channel"),
                        ({"channel": "sms", "purpose": "spam", "granted": True}, "purpose"),
                        ({"channel": "sms", "purpose": "marketing", "granted": "yes"}, "granted"),
                        ({"channel": "sms", "purpose": "marketing"}, "granted")):
        resp = api.http.put(url, json=body)
        assert resp.status_code == 422, body
        assert field in [d["field"] for d in resp.json()["details"]], resp.text
    assert httpx.get(f"{api.base}{url}").status_code == 401
    assert httpx.put(f"{api.base}{url}", json={"channel": "sms", "purpose": "marketing", "granted": True}
                     ).status_code == 401
    paths = api.http.get("/openapi.json").json()["paths"]
    assert {"get", "put"} <= set(paths["/v1/recipients/{recipient_id}/consent"])
    assert {"get", "post"} <= set(paths["/u/{token}"])


# -- STOP ------------------------------------------------------------------------------------------

def test_stop_by_sms_opts_out_of_sms_moves_the_cascade_on_at_once_until_consent_is_granted(
        api: Api, saved: list[str]) -> None:
    rid, phone = _rid(), _phone()
    # The second SMS waits 400 h (100 s here) for an answer: "at once" is told from it on a busy machine.
    trigger = long_waits(api, saved, "delivery-failed", 1)
    cascade_id = api.start({**_delivery_failed({"id": rid, "phone": phone}), "type": trigger})
    second = _sent(api, cascade_id, "sms", count=2)[1]
    assert api.simulate(second["provider_message_id"], "replied", text=" stop ").status_code == 200
    view = _finished(api, cascade_id)
    # Not a success reply: the later SMS steps are skipped and the cascade ends without waiting.
    assert view["status"] == "exhausted"
    assert _hours(second["sent_at"], view["finished_at"]) < LONG_WAIT_HOURS / 2
    assert view["steps"][1]["status"] == "sent" and view["steps"][1]["reason"] == "opted_out"
    assert view["steps"][1]["reply"] == "stop"
    assert _skips(view)[2] == ("skipped", "opted_out")
    assert len(api.outbox(cascade_id)) == 2
    touches = api.http.get(f"/v1/recipients/{rid}/timeline").json()["touches"]
    assert any(t["status"] == "opted_out" and t["channel"] == "sms" for t in touches)
    sms = _consent(api, rid)["sms"]
    assert sms["opted_out"] is True and sms["opted_out_via"] == "reply" and sms["opted_out_at"]

    # A later cascade sends no SMS at all...
    # (long timers: each step is skipped by its own run, never overtaken by a 1 s timer on a busy machine)
    skipping = long_waits(api, saved, "delivery-failed", 0, 1, 2)
    later = _finished(api, api.start({**_delivery_failed({"id": rid, "phone": phone}), "type": skipping}))
    assert _skips(later)[:3] == [("skipped", "opted_out")] * 3
    assert api.outbox(later["cascade_id"]) == []
    # ...until the recipient grants consent again.
    assert _grant(api, rid, "sms", "transactional")["sms"]["opted_out"] is False
    again = api.start(_delivery_failed({"id": rid, "phone": phone}))
    assert _sent(api, again, "sms")
    _cancel(api, again)


def test_a_start_reply_lifts_the_sms_opt_out_and_is_not_a_success(api: Api) -> None:
    rid, phone = _rid(), _phone()
    cascade_id = api.start(_delivery_failed({"id": rid, "phone": phone}))
    first = _sent(api, cascade_id, "sms")[0]
    assert api.simulate(first["provider_message_id"], "replied", text="STOP").status_code == 200
    wait_for("the opt-out", lambda: _consent(api, rid).get("sms", {}).get("opted_out"))
    assert api.simulate(first["provider_message_id"], "replied", text="Start").status_code == 200
    wait_for("the opt-out lifted", lambda: not _consent(api, rid).get("sms", {}).get("opted_out"))
    view = api.cascade(cascade_id)
    assert view["status"] != "succeeded" and view["steps"][0]["status"] != "replied"
    _cancel(api, cascade_id)
    again = api.start(_delivery_failed({"id": rid, "phone": phone}))
    assert _sent(api, again, "sms")
    _cancel(api, again)


def test_an_opt_out_wins_over_the_consent_the_event_carries(api: Api) -> None:
    rid, phone = _rid(), _phone()
    first = api.start(_delivery_failed({"id": rid, "phone": phone}))
    sms = _sent(api, first, "sms")[0]
    assert api.simulate(sms["provider_message_id"], "replied", text="СТОП").status_code == 200
    wait_for("the opt-out", lambda: _consent(api, rid).get("sms", {}).get("opted_out"))
    _cancel(api, first)
    # The cart's SMS is skipped despite the event's marketing consent; the call (another channel) goes.
    cart = api.start(_cart({"id": rid, "phone": phone, "consent": {"marketing": True}}))
    assert [m["channel"] for m in _sent(api, cart, "voice")] == ["voice"]
    assert _skips(api.cascade(cart))[2] == ("skipped", "opted_out")
    assert [m["channel"] for m in api.outbox(cart)] == ["voice"]
    _cancel(api, cart)


def _messenger_cart(api: Api, channel: str, stop: str, contacts: dict[str, Any]) -> None:
    """A cart with marketing consent for ``channel`` and SMS only: the messenger step goes out, the
    customer answers ``stop``, the SMS follows; the next cart skips the messenger."""
    rid = _rid()
    recipient = {"id": rid, "phone": _phone(), "consent": {"marketing": [channel, "sms"]}, **contacts}
    cascade_id = api.start(_cart(recipient))
    message = _sent(api, cascade_id, channel)[0]
    assert api.simulate(message["provider_message_id"], "replied", text=stop).status_code == 200
    assert _sent(api, cascade_id, "sms")  # the cascade went on, on SMS
    view = api.cascade(cascade_id)
    assert view["steps"][1]["channel"] == channel and view["steps"][1]["reason"] == "opted_out"
    assert view["steps"][1]["reply"] == stop and view["steps"][1]["status"] != "replied"
    assert set(_consent(api, rid)) == {channel}  # SMS is untouched
    _cancel(api, cascade_id)
    later = api.start(_cart(recipient))
    assert wait_for("the messenger step to be skipped",
                    lambda: api.cascade(later)["steps"][1]["status"] == "skipped")
    assert api.cascade(later)["steps"][1]["reason"] == "opted_out"
    assert _sent(api, later, "sms")
    assert not [m for m in api.outbox(later) if m["channel"] == channel]
    _cancel(api, later)


def test_whatsapp_stop_in_russian_opts_out_of_whatsapp(api: Api) -> None:
    number = _phone()
    _messenger_cart(api, "whatsapp", "СТОП", {"whatsapp": number})


def test_the_telegram_stop_command_opts_out_of_telegram(api: Api) -> None:
    _messenger_cart(api, "telegram", "/stop", {"telegram_chat_id": str(uuid.uuid4().int % 10**9)})


def test_the_unsubscribe_page_speaks_kazakh_to_a_kazakh_customer(api: Api, saved: list[str]) -> None:
    from cascade.local import mail

    # Given a cart email to a Kazakh-speaking customer
    recipient = {"id": _rid(), "email": "aigerim@example.com", "locale": "kk", "consent": {"marketing": True}}
    cascade_id = api.start({**_cart(recipient), "type": long_waits(api, saved, "abandoned-cart", 0)})
    email = _sent(api, cascade_id, "email")[0]
    link = mail.headers(email["provider_message_id"])["list-unsubscribe"].strip("<>")
    # When they open its unsubscribe link, then press the button
    page = httpx.get(link)
    done = httpx.post(link, content=b"List-Unsubscribe=One-Click")
    # Then both pages are in Kazakh
    assert page.status_code == 200 and 'lang="kk"' in page.text and "Бұдан былай сізге хат жібермейік пе?" in page.text
    assert done.status_code == 200 and "Сіз жазылымнан бас тарттыңыз" in done.text
    _cancel(api, cascade_id)


def test_the_bot_confirms_a_stop_and_a_start_in_the_customers_language(api: Api) -> None:
    # Given a Russian-speaking customer whose cart reminder reached Telegram
    chat = str(uuid.uuid4().int % 10**9)
    recipient = {"id": _rid(), "phone": _phone(), "locale": "ru", "telegram_chat_id": chat,
                 "consent": {"marketing": ["telegram", "sms"]}}
    cascade_id = api.start(_cart(recipient))
    message = _sent(api, cascade_id, "telegram")[0]

    def bot_said() -> list[str]:  # what the bot wrote to the chat outside the cascade
        return [m["text"] for m in api.outbox() if m["channel"] == "telegram" and m["to"] == chat
                and not m["cascade_id"]]

    # When they answer /stop, then change their mind
    assert api.simulate(message["provider_message_id"], "replied", text="/stop").status_code == 200
    said = wait_for("the bot's answer to /stop", bot_said)
    assert said == ["Вы отписались: сообщений от нас здесь больше не будет. Чтобы вернуться, отправьте СТАРТ."]
    assert api.simulate(message["provider_message_id"], "replied", text="СТАРТ").status_code == 200
    # Then each is confirmed in Russian
    said = wait_for("the bot's answer to СТАРТ", lambda: len(bot_said()) == 2 and bot_said())
    assert said[1] == "Вы снова подписаны: уведомления будут приходить сюда."
    _cancel(api, cascade_id)


# -- the email's one-click unsubscribe -----------------------------------------------------------

def test_one_click_unsubscribe_skips_later_emails_and_opening_the_link_changes_nothing(
        api: Api, saved: list[str]) -> None:
    from cascade.local import mail

    rid = _rid()
    recipient = {"id": rid, "email": "sam@example.com", "phone": _phone(), "consent": {"marketing": True}}
    # The email waits 400 h (100 s here) for an open: "at once" is told from it on a busy machine.
    cascade_id = api.start({**_cart(recipient), "type": long_waits(api, saved, "abandoned-cart", 0)})
    email = _sent(api, cascade_id, "email")[0]
    headers = mail.headers(email["provider_message_id"])
    assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    link = headers["list-unsubscribe"].strip("<>")
    assert link.startswith(f"{api.base}/u/") and "/u/" not in email["text"]

    # A mail scanner (or the customer) opens the link: a page with a button, nothing recorded.
    page = httpx.get(link)
    assert page.status_code == 200 and 'method="post"' in page.text and "Unsubscribe" in page.text
    assert _consent(api, rid) == {}
    assert api.cascade(cascade_id)["steps"][0]["status"] == "sent"

    # The mail client's one-click POST: the email opt-out; the cascade moves on to SMS at once.
    assert api.simulate(email["provider_message_id"], "unsubscribed").status_code == 200
    sms = _sent(api, cascade_id, "sms")[0]
    assert _hours(email["sent_at"], sms["sent_at"]) < LONG_WAIT_HOURS / 2
    view = api.cascade(cascade_id)
    assert view["steps"][0]["reason"] == "opted_out" and view["status"] == "running"
    channels = _consent(api, rid)
    assert channels["email"]["opted_out"] is True and channels["email"]["opted_out_via"] == "unsubscribe_link"
    assert httpx.post(link, content=b"List-Unsubscribe=One-Click").status_code == 200  # again: harmless
    assert httpx.get(f"{api.base}/u/{'x' * 32}").status_code == 404
    _cancel(api, cascade_id)

    # The next cart, with the event's consent, skips the email.
    later = api.start(_cart(recipient))
    assert wait_for("the email step to be skipped", lambda: api.cascade(later)["steps"][0]["status"] == "skipped")
    assert api.cascade(later)["steps"][0]["reason"] == "opted_out"
    assert _sent(api, later, "sms") and not [m for m in api.outbox(later) if m["channel"] == "email"]
    _cancel(api, later)
