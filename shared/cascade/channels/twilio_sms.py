"""SMS through Twilio Messaging (``SMS_PROVIDER=twilio``): unlike SNS it reports delivery
(status callbacks per message) and passes on the customer's answers (inbound messages such as
``ПЕРЕНОС``, ``RESCHEDULE`` or ``STOP``), both to ``POST /webhooks/twilio/sms``."""

from __future__ import annotations

from typing import Any, ClassVar

from twilio.twiml.messaging_response import MessagingResponse

from cascade.channels.base import Outgoing, Sent, Signal
from cascade.channels.twilio_api import TwilioApi, TwilioChannel, auth_token, forbidden, twiml_answer, verified_params
from cascade.errors import FieldError

WEBHOOK_PATH = "/webhooks/twilio/sms"
FAILED_STATUSES = frozenset({"undelivered", "failed"})
# Delivery errors that say the number cannot get SMS at all: 30005 unknown (no longer in service),
# 30006 a landline or an unreachable carrier. 30003 (handset off, no signal) passes.
INVALID_NUMBER_ERRORS = frozenset({"30005", "30006"})


class TwilioSmsChannel(TwilioChannel):
    name: ClassVar[str] = "sms"
    max_length: ClassVar[int] = 1600  # Twilio refuses longer bodies (21617)

    def send(self, message: Outgoing) -> Sent:
        sender = self.sender("twilio messages")
        created = self.api.create("Messages", {
            "To": message.to, "From": sender, "Body": message.text,
            "StatusCallback": f"{message.api_base.rstrip('/')}{WEBHOOK_PATH}",
        }, "twilio messages")
        return Sent(provider_message_id=str(created["sid"]))


def build(cfg: Any, provider_secret: dict[str, str]) -> TwilioSmsChannel:
    return TwilioSmsChannel(TwilioApi.configured(cfg, provider_secret), cfg.twilio_from_number)


def parse_message_event(params: dict[str, str]) -> Signal | None:
    """A status callback (``MessageStatus``) or an inbound message (``Body`` from the customer) →
    a signal; None for statuses that change nothing (queued, sending, sent)."""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if "Body" in params and status in ("", "received"):
        sender = params.get("From", "")
        if not sender:
            raise FieldError("From", "an inbound message names its sender")
        # A reply quotes no message: it belongs to the last SMS sent to this number.
        detail = {"message_sid": sid, **({"opt_out": params["OptOutType"]} if params.get("OptOutType") else {})}
        return Signal(channel="sms", signal="replied", provider_message_id=None, chat_id=sender,
                      text=params["Body"], detail=detail)
    if not sid:
        raise FieldError("MessageSid", "Twilio always names the message")
    if status == "delivered":
        return Signal(channel="sms", signal="delivered", provider_message_id=sid)
    if status in FAILED_STATUSES:
        return Signal(channel="sms", signal="failed", provider_message_id=sid,
                      detail={"message_status": status, "error_code": params.get("ErrorCode"),
                              **({"invalid_contact": "invalid_number"}
                                 if params.get("ErrorCode") in INVALID_NUMBER_ERRORS else {})})
    return None


def webhook(request: Any) -> dict[str, Any]:
    """POST /webhooks/twilio/sms: status callbacks and inbound messages, signed by Twilio.
    The empty TwiML answer sends no auto-reply."""
    from cascade import signals

    params = verified_params(request, auth_token())
    if params is None:
        return forbidden()
    sig = parse_message_event(params)
    if sig is not None:
        signals.receive(sig)
    return twiml_answer(str(MessagingResponse()))


__all__ = ["TwilioSmsChannel", "build", "parse_message_event", "webhook"]
