"""Channel adapters, one file each. :func:`channel` builds the configured adapter once per container.

Every adapter module but the first three offers ``build(settings, provider_secret) -> Channel``;
SMS goes through SNS by default, or Twilio Messaging when ``SMS_PROVIDER=twilio``."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from cascade.channels.base import Channel, Outgoing, Sent, Signal
from cascade.errors import PermanentSendError

# channel → the module whose build() makes its adapter
_MODULES = {"whatsapp": "cascade.channels.whatsapp", "viber": "cascade.channels.viber",
            "push": "cascade.channels.push", "voice": "cascade.channels.voice",
            "operator": "cascade.channels.operator"}


def http_client() -> Any:
    """An httpx client bounded by the provider timeout (connecting gets 3 s)."""
    import httpx

    from cascade.settings import settings

    return httpx.Client(timeout=httpx.Timeout(settings().provider_timeout_seconds, connect=3.0))


@cache
def channel(name: str) -> Channel:
    from cascade.aws import client, secret
    from cascade.settings import settings

    cfg = settings()
    if name == "email":
        from cascade.channels.email import EmailChannel

        return EmailChannel(client("sesv2"), cfg.email_from, cfg.ses_configuration_set or None)
    if name == "sms" and cfg.sms_provider == "sns":
        from cascade.channels.sms import SmsChannel

        return SmsChannel(client("sns"), cfg.sms_sender_id or None)
    if name == "sms":
        from cascade.channels.twilio_sms import build as build_twilio_sms

        return build_twilio_sms(cfg, secret(cfg.provider_secret_arn))
    if name == "telegram":
        from cascade.channels.telegram import TelegramChannel

        token = secret(cfg.provider_secret_arn).get("telegram_bot_token", "")
        return TelegramChannel(http_client(), cfg.telegram_api_base, token)
    if name in _MODULES:
        adapter: Channel = importlib.import_module(_MODULES[name]).build(cfg, secret(cfg.provider_secret_arn))
        return adapter
    raise PermanentSendError(f"unknown channel {name!r}")


__all__ = ["Channel", "Outgoing", "Sent", "Signal", "channel", "http_client"]
