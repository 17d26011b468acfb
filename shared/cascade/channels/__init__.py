"""Channel adapters, one file each. :func:`channel` builds the configured adapter once per container."""

from __future__ import annotations

from functools import cache

from cascade.channels.base import Channel, Outgoing, Sent, Signal
from cascade.errors import PermanentSendError


@cache
def channel(name: str) -> Channel:
    from cascade.aws import client, secret
    from cascade.settings import settings

    cfg = settings()
    if name == "email":
        from cascade.channels.email import EmailChannel

        return EmailChannel(client("sesv2"), cfg.email_from, cfg.ses_configuration_set or None)
    if name == "sms":
        from cascade.channels.sms import SmsChannel

        return SmsChannel(client("sns"), cfg.sms_sender_id or None)
    if name == "telegram":
        import httpx

        from cascade.channels.telegram import TelegramChannel

        token = secret(cfg.provider_secret_arn).get("telegram_bot_token", "")
        return TelegramChannel(httpx.Client(timeout=httpx.Timeout(cfg.provider_timeout_seconds, connect=3.0)), cfg.telegram_api_base, token)
    raise PermanentSendError(f"unknown channel {name!r}")


__all__ = ["Channel", "Outgoing", "Sent", "Signal", "channel"]
