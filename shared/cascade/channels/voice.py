"""Robot call through Twilio Voice: the step's text is spoken (text-to-speech in the recipient's
language) inside a ``<Gather>`` that takes one key. Pressing 1 is ``confirmed``, any other key is
``replied`` with that key; an answered call is ``delivered``; busy, no answer, failed or cancelled
is ``failed`` (the next step goes out at once)."""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from cascade import wording
from cascade.channels.base import Outgoing, Sent, Signal
from cascade.channels.twilio_api import TwilioApi, TwilioChannel, auth_token, forbidden, twiml_answer, verified_params
from cascade.errors import FieldError

WEBHOOK_PATH = "/webhooks/twilio/voice"
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
FAILED_STATUSES = frozenset({"busy", "no-answer", "failed", "canceled"})
CONFIRM_KEY = "1"
# Our locale → Twilio <Say> language and a voice that speaks it. Neither Polly nor Google has a
# Kazakh voice: kk is read by the Russian one (the same Cyrillic letters, and the country's second
# language), which reads it far better than Twilio's English default would.
SPEECH = {"ru": ("ru-RU", "Polly.Tatyana"), "en": ("en-US", "Polly.Joanna"),
          "uk": ("uk-UA", "Google.uk-UA-Standard-A"), "kk": ("ru-RU", "Polly.Tatyana")}
_URL = re.compile(r"https?://\S+")


def speech(locale: str) -> tuple[str, str | None]:
    """(language, voice) for ``<Say>``; a locale we have no voice for is spoken in its own language."""
    if locale in SPEECH:
        return SPEECH[locale]
    return SPEECH.get(locale.split("-")[0], (locale, None))


def _say(node: Any, text: str, locale: str) -> None:
    language, voice = speech(locale)
    node.say(text, language=language, **({"voice": voice} if voice else {}))


def twiml(text: str, locale: str, webhook_url: str) -> str:
    """What the call plays: the script, "once again" and the script inside a one-key ``<Gather>``,
    then a short goodbye if no key was pressed, all in the recipient's language (the script itself
    greets and says which key to press). The Gather's action carries the locale, so the thanks
    match it."""
    spoken = " ".join(_URL.sub("", text).split())  # a link cannot be heard
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=f"{webhook_url}?{urlencode({'locale': locale})}", method="POST",
                             timeout=8)
    _say(gather, spoken, locale)
    gather.pause(length=1)
    _say(gather, wording.say("call_repeat", locale), locale)
    _say(gather, spoken, locale)
    _say(response, wording.say("call_no_input", locale), locale)
    return str(response.to_xml(xml_declaration=False))


class VoiceChannel(TwilioChannel):
    name: ClassVar[str] = "voice"
    max_length: ClassVar[int] = 1000  # about a minute of speech: a call, not a letter

    def send(self, message: Outgoing) -> Sent:
        sender = self.sender("twilio calls")
        hook = f"{message.api_base.rstrip('/')}{WEBHOOK_PATH}"
        call = self.api.create("Calls", {
            "To": message.to, "From": sender, "Twiml": twiml(message.text, message.locale, hook),
            "StatusCallback": hook, "StatusCallbackEvent": list(STATUS_EVENTS), "StatusCallbackMethod": "POST",
        }, "twilio calls")
        return Sent(provider_message_id=str(call["sid"]))


def build(cfg: Any, provider_secret: dict[str, str]) -> VoiceChannel:
    return VoiceChannel(TwilioApi.configured(cfg, provider_secret), cfg.twilio_from_number)


def parse_call_event(params: dict[str, str]) -> Signal | None:
    """A Gather action (``Digits``) or a status callback (``CallStatus``) → a signal, or None for
    news that changes nothing (initiated, ringing, completed, a Gather with no key)."""
    call_sid = params.get("CallSid", "")
    if not call_sid:
        raise FieldError("CallSid", "Twilio always names the call")
    if "Digits" in params:  # a Gather action also carries CallStatus=in-progress: digits come first
        digits = params["Digits"].strip()
        if not digits:
            return None
        if digits == CONFIRM_KEY:
            return Signal(channel="voice", signal="confirmed", provider_message_id=call_sid, text=digits,
                          detail={"digits": digits})
        return Signal(channel="voice", signal="replied", provider_message_id=call_sid, text=digits,
                      detail={"digits": digits})
    status = params.get("CallStatus", "")
    if status == "in-progress":  # the "answered" event
        return Signal(channel="voice", signal="delivered", provider_message_id=call_sid)
    if status in FAILED_STATUSES:
        return Signal(channel="voice", signal="failed", provider_message_id=call_sid,
                      detail={"call_status": status})
    return None


def webhook(request: Any) -> dict[str, Any]:
    """POST /webhooks/twilio/voice: status callbacks and the Gather action, signed by Twilio."""
    from cascade import signals

    params = verified_params(request, auth_token())
    if params is None:
        return forbidden()
    sig = parse_call_event(params)
    if sig is not None:
        signals.receive(sig)
    response = VoiceResponse()
    if "Digits" in params:  # the caller is still on the line: thank them and hang up
        locale = wording.pick(request.query.get("locale"))
        _say(response, wording.say("call_thanks" if sig else "call_no_input", locale), locale)
        response.hangup()
    return twiml_answer(str(response))


__all__ = ["VoiceChannel", "build", "parse_call_event", "speech", "twiml", "webhook"]
