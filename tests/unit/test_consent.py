"""Consent rulings, STOP words, recorded consent against a real (moto) table, the email's
unsubscribe headers and link, and test mode ahead of consent in the policy chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from cascade import consent, policy
from cascade.channels.base import Outgoing, Signal
from cascade.channels.email import EmailChannel
from cascade.channels.telegram import parse_update
from cascade.models import ConsentIn
from cascade.scenarios import AllowList, presets
from cascade.store import CascadeStore

EVENTS = Path(__file__).resolve().parents[2] / "events"


GRANTED = {"granted": True, "at": "2026-11-23T10:00:00Z"}
REFUSED = {"granted": False, "at": "2026-11-23T10:00:00Z"}


@pytest.mark.parametrize(("recorded", "channel", "purpose", "given", "reason"), [
    ({}, "email", "marketing", None, "no_consent"),                        # marketing needs consent
    ({}, "email", "marketing", {"marketing": True}, None),                 # ... the event's, for every channel
    ({}, "email", "marketing", {"marketing": ["sms"]}, "no_consent"),      # ... or for the channels it lists
    ({}, "sms", "marketing", {"marketing": ["sms"]}, None),
    ({}, "sms", "marketing", {"transactional": True}, "no_consent"),
    ({"email#marketing": GRANTED}, "email", "marketing", None, None),      # ... or a recorded grant
    ({}, "sms", "transactional", None, None),                              # transactional goes by default
    ({}, "sms", "transactional", {"transactional": ["email"]}, "no_consent"),  # unless the event withholds it
    ({"sms#transactional": REFUSED}, "sms", "transactional", None, "opted_out"),  # a recorded refusal
    ({"sms#marketing": REFUSED}, "sms", "marketing", {"marketing": True}, "opted_out"),  # wins over the event
    ({"sms#opted_out_at": "2026-11-23T10:00:00Z"}, "sms", "transactional", None, "opted_out"),  # STOP
    ({"sms#opted_out_at": "2026-11-23T10:00:00Z", "sms#marketing": GRANTED}, "sms", "marketing",
     {"marketing": True}, "opted_out"),                                    # an opt-out always wins
    ({"sms#opted_out_at": "2026-11-23T10:00:00Z"}, "email", "transactional", None, None),  # per channel
])
def test_rulings(recorded: dict[str, Any], channel: str, purpose: str, given: dict[str, Any] | None,
                 reason: str | None) -> None:
    assert consent.ruling(recorded, channel, purpose, given) == reason


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "СТОП", "стоп!", "STOPALL", "unsubscribe",
                                  "Отписаться", "/stop", "/stop@cascade_local_bot"])
def test_stop_words(text: str) -> None:
    assert consent.is_stop(text)


@pytest.mark.parametrize("text", [None, "", "stop it", "don't stop", "ПЕРЕНОС", "/start", "1"])
def test_other_replies_are_not_stop(text: str | None) -> None:
    assert not consent.is_stop(text)


def test_only_typed_replies_on_messaging_channels_opt_out() -> None:
    assert consent.stops(Signal("sms", "replied", None, chat_id="+14155550100", text="STOP"))
    # Twilio marks its own opt-out keywords (CANCEL, END, QUIT...) with OptOutType=STOP.
    assert consent.stops(Signal("sms", "replied", None, text="CANCEL", detail={"opt_out": "STOP"}))
    assert not consent.stops(Signal("voice", "replied", "CA1", text="STOP"))
    assert not consent.stops(Signal("sms", "delivered", "SM1", text="STOP"))


def test_telegram_stop_is_a_reply_that_says_stop() -> None:
    sig = parse_update({"update_id": 3, "message": {"message_id": 7, "chat": {"id": 42}, "text": "/stop"}})
    assert sig is not None and (sig.signal, sig.text, sig.chat_id) == ("replied", "/stop", "42")
    assert consent.stops(sig)


def test_recorded_consent_grants_refusals_and_opt_outs(store: CascadeStore) -> None:
    assert consent.view("r1", store).channels == {}
    consent.record("r1", ConsentIn(channel="email", purpose="marketing", granted=True), store)
    consent.opt_out("r1", "sms", "reply", store)
    channels = consent.view("r1", store).channels
    assert channels["email"].marketing is not None and channels["email"].marketing.granted
    assert channels["sms"].opted_out and channels["sms"].opted_out_via == "reply" and channels["sms"].opted_out_at
    assert consent.ruling(store.get_consent("r1"), "sms", "transactional", None) == "opted_out"
    # Granting consent again (any purpose) lifts the channel's opt-out; the other purpose's rule stands.
    consent.record("r1", ConsentIn(channel="sms", purpose="transactional", granted=True), store)
    sms = consent.view("r1", store).channels["sms"]
    assert not sms.opted_out and sms.opted_out_at is None and sms.transactional is not None
    assert consent.ruling(store.get_consent("r1"), "sms", "transactional", None) is None
    assert consent.ruling(store.get_consent("r1"), "sms", "marketing", None) == "no_consent"


def test_an_email_carries_a_one_click_unsubscribe_that_only_a_post_uses(store: CascadeStore) -> None:
    from cascade.local import mail

    mail.install()
    ses = boto3.client("sesv2", region_name="us-east-1")
    ses.create_email_identity(EmailIdentity="shop@example.com")
    channel = EmailChannel(ses, "shop@example.com", None)
    message = Outgoing(cascade_id="c_1", step=0, to="sam@example.com", text="Hello", subject="Hi", locale="ru",
                       api_base="https://api.example.com", context={"recipient": {"id": "r1"}})
    sent = channel.send(channel.prepare(message, store))
    headers = mail.headers(sent.provider_message_id)
    assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    link = headers["list-unsubscribe"]
    assert link.startswith("<https://api.example.com/u/") and link.endswith(">")
    token = link.strip("<>").rsplit("/", 1)[1]
    ref = store.get_unsubscribe_token(token) or {}
    assert (ref.get("recipient_id"), ref.get("channel"), ref.get("cascade_id")) == ("r1", "email", "c_1")

    page = consent.unsubscribe_answer("GET", token, store)  # a mail scanner opening the link
    assert page["statusCode"] == 200 and 'method="post"' in page["body"] and "Отписаться" in page["body"]
    assert consent.view("r1", store).channels == {}
    done = consent.unsubscribe_answer("POST", token, store)
    assert done["statusCode"] == 200 and consent.view("r1", store).channels["email"].opted_out
    assert consent.unsubscribe_answer("POST", "no-such-token-0000000000", store)["statusCode"] == 404


def test_the_sample_one_click_request_is_what_a_mail_client_sends() -> None:
    event = json.loads((EVENTS / "redirect-unsubscribe-one-click.json").read_text(encoding="utf-8"))
    assert event["routeKey"] == "POST /u/{token}" and event["body"] == "List-Unsubscribe=One-Click"
    assert event["headers"]["content-type"] == "application/x-www-form-urlencoded"


def _ctx(store: CascadeStore, recipient: dict[str, Any], allow: list[str]) -> policy.StepContext:
    scenario = presets()["abandoned-cart"].model_copy(update={"test_mode": AllowList(allow=allow)})
    cascade = {"recipient": recipient, "data_json": "{}", "created_at": "2026-11-23T12:00:00Z"}
    return policy.StepContext(cascade, scenario, scenario.steps[0], 0, "email",
                              datetime(2026, 11, 23, 12, tzinfo=UTC), store, False)


def test_test_mode_skips_recipients_off_the_allow_list_before_anything_else(store: CascadeStore) -> None:
    consented = {"marketing": True}
    assert policy.decide(_ctx(store, {"id": "someone", "consent": consented}, ["tester"])) == \
        policy.Decision("skip", "test_mode")
    # An allow-listed recipient goes on to the other checks: here, consent.
    assert policy.decide(_ctx(store, {"id": "tester"}, ["tester"])) == policy.Decision("skip", "no_consent")
    consent.opt_out("tester", "email", "reply", store)
    assert policy.decide(_ctx(store, {"id": "tester", "consent": consented}, ["tester"])) == \
        policy.Decision("skip", "opted_out")
