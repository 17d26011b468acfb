"""The stand-ins speak the providers' real APIs: each is driven here by the provider's own Python
SDK (python-telegram-bot, pywa, viberbot, twilio), and the webhooks it sends are parsed and their
signatures checked by the same SDK. A stand-in that drifts from the real API fails here.

Each test runs a fresh stand-in on loopback whose webhooks go to a small recording server, so the
SDK sees the exact bytes and headers the stack would receive."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from cascade.local.httpserver import LoopbackServer, json_answer
from tests.conftest import wait_for


class Recorder:
    """A webhook receiver that keeps every request: (path, headers, body)."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._answer = answer or {"ok": True}
        self._lock = threading.Lock()
        self.server = LoopbackServer(self._handle).start()
        self.url = self.server.url

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Any:
        with self._lock:
            self.requests.append((path, headers, body))
        return json_answer(200, self._answer)

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [body for _, _, body in self.requests]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder({"status": 0, "status_message": "ok"})  # Viber wants this answer; the others ignore it
    yield rec
    rec.stop()


# -- Telegram: python-telegram-bot ----------------------------------------------------------------


@pytest.fixture
def telegram(recorder: Recorder) -> Iterator[Any]:
    from cascade.local.telegram import TelegramStandIn

    standin = TelegramStandIn()
    standin.start()
    yield standin
    standin.stop()


def test_python_telegram_bot_drives_the_telegram_stand_in_and_parses_its_updates(
        telegram: Any, recorder: Recorder) -> None:
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.error import BadRequest

    async def run() -> tuple[Any, ...]:
        async with Bot(telegram.bot_token, base_url=f"{telegram.url}/bot") as bot:  # getMe on entering
            me = bot.bot
            assert await bot.set_webhook(f"{recorder.url}/tg", secret_token="s3cret",
                                         allowed_updates=["message", "callback_query", "my_chat_member"])
            info = await bot.get_webhook_info()
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("Got it", callback_data="sig:read")]])
            sent = await bot.send_message(chat_id=4242, text="Your cart is waiting", reply_markup=markup)
            with pytest.raises(BadRequest, match=r"[Cc]hat not found"):
                await bot.send_message(chat_id="@nobody_here", text="hello")
            return me, info, sent

    me, info, sent = asyncio.run(run())
    assert (me.is_bot, me.username, me.first_name) == (True, telegram.username, telegram.first_name)
    assert info.url == f"{recorder.url}/tg" and info.pending_update_count == 0
    assert sent.chat.id == 4242 and sent.text == "Your cart is waiting" and sent.from_user.id == me.id
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "sig:read"  # the form's JSON field was read

    # The customer presses the button, replies, then blocks the bot: three signed updates.
    original = telegram.find(f"4242:{sent.message_id}")
    telegram.press_button(original, "read")
    telegram.reply(original, "Thanks!")
    telegram.block(4242)
    updates = [Update.de_json(json.loads(body), None) for body in recorder.bodies()]
    assert all(headers.get("x-telegram-bot-api-secret-token") == "s3cret" for _, headers, _ in recorder.requests)
    press, reply, blocked = updates
    assert press.callback_query.data == "sig:read" and press.callback_query.message.message_id == sent.message_id
    assert reply.message.text == "Thanks!" and reply.message.reply_to_message.message_id == sent.message_id
    member = blocked.my_chat_member
    assert member is not None and member.chat.id == 4242
    assert (member.old_chat_member.status, member.new_chat_member.status) == ("member", "kicked")
    assert member.new_chat_member.user.id == me.id


# -- WhatsApp: pywa -------------------------------------------------------------------------------


class _ToStandIn(httpx.HTTPTransport):
    """pywa always calls graph.facebook.com: send its requests to the stand-in instead (path kept)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.target = httpx.URL(url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        return super().handle_request(request)


@pytest.fixture
def whatsapp(recorder: Recorder) -> Iterator[Any]:
    from cascade.local.whatsapp import WhatsAppStandIn

    standin = WhatsAppStandIn()
    standin.approved = {"order_update": 1}  # what the business had approved in WhatsApp Manager
    standin.start()
    standin.webhook_url = f"{recorder.url}/wa"
    yield standin
    standin.stop()


def test_pywa_sends_through_the_whatsapp_stand_in_and_parses_its_webhooks(whatsapp: Any, recorder: Recorder) -> None:
    from pywa import WhatsApp, types
    from pywa.types.templates import BodyText, TemplateLanguage

    received: list[Any] = []
    wa = WhatsApp(phone_id=whatsapp.phone_number_id, token=whatsapp.access_token, app_secret=whatsapp.app_secret,
                  verify_token="v", session=httpx.Client(transport=_ToStandIn(whatsapp.url)),
                  validate_updates=True, api_version="26.0")
    wa.add_handlers(types_handler(types.Message, received), types_handler(types.MessageStatus, received))

    whatsapp.customer_writes("+14155550123", "Hi, is my order on its way?")  # opens the 24 h window
    sent = wa.send_message(to="+1 415-555-0123", text="It is: arriving tomorrow")
    assert sent.id.startswith("wamid.") and whatsapp.find(sent.id)["wa_id"] == "14155550123"
    wait_for("the sent and delivered statuses", lambda: len(recorder.bodies()) >= 3, timeout=10)
    bsuid = whatsapp.adopt_username("+14155550123", "sam.2026")
    whatsapp.customer_writes("+14155550123", "Thanks!", quoting=sent.id)  # now with a username: no number
    nobody = wa.send_template(to="+14155550199", name="order_update", language=TemplateLanguage.ENGLISH_US,
                              params=[BodyText.params("A-1001")])
    whatsapp.status(whatsapp.find(nobody.id), "failed", 131026)  # not a WhatsApp user: no BSUID
    # Two messages; sent and delivered for each send (statuses come from another thread); the failure.
    wait_for("every webhook", lambda: len(recorder.bodies()) >= 7, timeout=10)

    for _, headers, body in list(recorder.requests):
        assert wa.webhook_update_validator(body, headers.get("x-hub-signature-256")) is None  # signature checks out
        assert wa.webhook_update_handler(body) == ("ok", 200)
    first, last = [u for u in received if isinstance(u, types.Message)]
    assert first.from_user.wa_id == "14155550123" and first.from_user.bsuid == bsuid
    assert last.text == "Thanks!" and last.reply_to_message.id == sent.id
    assert (last.from_user.wa_id, last.from_user.bsuid, last.from_user.username) == (None, bsuid, "sam.2026")
    statuses = [u for u in received if isinstance(u, types.MessageStatus)]
    assert [(s.status.value, s.from_user.wa_id, s.from_user.bsuid) for s in statuses if s.id == sent.id] == \
        [("sent", "14155550123", bsuid), ("delivered", "14155550123", bsuid)]
    (failed,) = [s for s in statuses if s.status.value == "failed"]
    assert failed.id == nobody.id and failed.error is not None and failed.error.code == 131026
    assert failed.from_user.bsuid is None and failed.from_user.wa_id == "14155550199"


def types_handler(kind: type, into: list[Any]) -> Any:
    from pywa import handlers

    handler = {"Message": handlers.MessageHandler, "MessageStatus": handlers.MessageStatusHandler}[kind.__name__]
    return handler(lambda _client, update: into.append(update))


# -- Viber: viberbot ------------------------------------------------------------------------------


@pytest.fixture
def viber(recorder: Recorder) -> Iterator[Any]:
    from cascade.local.viber import ViberStandIn

    standin = ViberStandIn()
    standin.start()
    yield standin
    standin.stop()


def test_viberbot_drives_the_viber_stand_in_and_parses_its_callbacks(
        viber: Any, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    import viberbot.api.api
    from viberbot import Api, BotConfiguration
    from viberbot.api.messages import TextMessage
    from viberbot.api.viber_requests import (
        ViberConversationStartedRequest,
        ViberDeliveredRequest,
        ViberMessageRequest,
        ViberSeenRequest,
        ViberUnsubscribedRequest,
    )

    monkeypatch.setattr(viberbot.api.api, "VIBER_BOT_API_URL", f"{viber.url}/pa")  # the SDK's endpoint
    bot = Api(BotConfiguration(name="Cascade", avatar="", auth_token=viber.auth_token))
    events = bot.set_webhook(f"{recorder.url}/viber", webhook_events=["delivered", "seen", "failed"])
    assert set(events) >= {"delivered", "seen"}
    assert bot.get_account_info()["uri"] == viber.chat_uri
    user = "01234567890A="
    viber.subscribe(user)
    (token,) = bot.send_messages(user, [TextMessage(text="Your visit is tomorrow at 10:00", tracking_data="c:0")])
    original = viber.find(str(token))
    viber.receipt(original, "delivered")
    viber.receipt(original, "seen")
    viber.reply(original, "Thanks, see you")
    viber.unsubscribe(user)
    viber.start_conversation("9876543210B=", "bind-token")

    parsed = []
    for _, headers, body in list(recorder.requests):
        assert bot.verify_signature(body, headers["x-viber-content-signature"])
        parsed.append(bot.parse_request(body.decode()))
    seen = next(p for p in parsed if isinstance(p, ViberSeenRequest))
    reply = next(p for p in parsed if isinstance(p, ViberMessageRequest))
    assert str(seen.message_token) == str(token) and seen.user_id == user
    assert reply.sender.id == user and reply.message.text == "Thanks, see you"
    delivered = next(p for p in parsed if isinstance(p, ViberDeliveredRequest))
    assert str(delivered.message_token) == str(token)
    assert next(p for p in parsed if isinstance(p, ViberUnsubscribedRequest)).user_id == user
    started = next(p for p in parsed if isinstance(p, ViberConversationStartedRequest))
    assert (started.user.id, started.context) == ("9876543210B=", "bind-token")


# -- Twilio: the twilio helper library ------------------------------------------------------------


@pytest.fixture
def twilio(recorder: Recorder) -> Iterator[Any]:
    from cascade.local.twilio import TwilioStandIn

    standin = TwilioStandIn()
    standin.start()
    yield standin
    standin.stop()


def test_the_twilio_library_drives_the_twilio_stand_in_and_validates_its_webhooks(
        twilio: Any, recorder: Recorder) -> None:
    from twilio.request_validator import RequestValidator
    from twilio.rest import Client

    client = Client(twilio.account_sid, twilio.auth_token)
    client.api.base_url = twilio.url  # the REST API's root
    message = client.messages.create(to="+14155550123", from_=twilio.from_number, body="Your code is ready",
                                     status_callback=f"{recorder.url}/sms-status")
    assert message.sid.startswith("SM") and message.to == "+14155550123" and message.status in ("queued", "accepted")
    call = client.calls.create(to="+14155550123", from_=twilio.from_number,
                               twiml=f'<Response><Gather numDigits="1" action="{recorder.url}/gather">'
                                     "<Say>Your order is ready. Press 1 to confirm.</Say></Gather></Response>",
                               status_callback=f"{recorder.url}/call-status",
                               status_callback_event=["initiated", "ringing", "answered", "completed"])
    assert call.sid.startswith("CA") and call.status == "queued"
    wait_for("the status callbacks", lambda: len(recorder.requests) >= 3, timeout=10)  # sent, initiated, ringing
    twilio.sms_url = f"{recorder.url}/sms-in"
    assert json.loads(twilio.simulate({"provider_message_id": call.sid}, {"signal": "confirmed"})[2])["ok"]
    assert json.loads(twilio.simulate({"provider_message_id": message.sid}, {"signal": "delivered"})[2])["ok"]
    twilio.text_in("+14155550123", "STOP")

    validator = RequestValidator(twilio.auth_token)
    for path, headers, body in list(recorder.requests):
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        assert validator.validate(f"{recorder.url}{path}", params, headers["x-twilio-signature"]), path
        assert params["AccountSid"] == twilio.account_sid
    assert {dict(parse_qsl(b.decode())).get("MessageSid") for b in recorder.bodies()} >= {message.sid}
    assert {dict(parse_qsl(b.decode())).get("CallSid") for b in recorder.bodies()} >= {call.sid}
    by_path = {path: dict(parse_qsl(body.decode())) for path, _, body in recorder.requests}
    assert by_path["/gather"]["Digits"] == "1"
    assert by_path["/sms-in"]["Body"] == "STOP" and by_path["/sms-in"]["OptOutType"] == "STOP"
    assert [dict(parse_qsl(b.decode())).get("CallStatus") for p, _, b in recorder.requests if p == "/call-status"] \
        == ["initiated", "ringing", "in-progress", "completed"]
