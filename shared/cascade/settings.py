"""Typed settings, read from the function's environment once per container."""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class Settings(BaseModel):
    table_name: str = Field(alias="TABLE_NAME")
    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")
    api_key_secret_arn: str = Field(default="", alias="API_KEY_SECRET_ARN")
    provider_secret_arn: str = Field(default="", alias="PROVIDER_SECRET_ARN")
    email_from: str = Field(default="", alias="EMAIL_FROM")
    ses_configuration_set: str = Field(default="", alias="SES_CONFIGURATION_SET")
    sms_sender_id: str = Field(default="", alias="SMS_SENDER_ID")
    telegram_bot_username: str = Field(default="", alias="TELEGRAM_BOT_USERNAME")
    telegram_api_base: str = Field(default="https://api.telegram.org", alias="TELEGRAM_API_BASE")
    whatsapp_api_base: str = Field(default="https://graph.facebook.com", alias="WHATSAPP_API_BASE")
    whatsapp_api_version: str = Field(default="v26.0", pattern=r"^v\d+\.0$", alias="WHATSAPP_API_VERSION")
    whatsapp_phone_number_id: str = Field(default="", alias="WHATSAPP_PHONE_NUMBER_ID")
    viber_api_base: str = Field(default="https://chatapi.viber.com/pa", alias="VIBER_API_BASE")
    viber_sender_name: str = Field(default="", alias="VIBER_SENDER_NAME")
    viber_chat_uri: str = Field(default="", alias="VIBER_CHAT_URI")
    twilio_api_base: str = Field(default="https://api.twilio.com", alias="TWILIO_API_BASE")
    twilio_from_number: str = Field(default="", alias="TWILIO_FROM_NUMBER")
    sms_provider: Literal["sns", "twilio"] = Field(default="sns", alias="SMS_PROVIDER")
    push_platform_application_arn: str = Field(default="", alias="PUSH_PLATFORM_APPLICATION_ARN")
    operator_url: str = Field(default="", alias="OPERATOR_URL")
    # A provider failing this many sends in a row is skipped for new steps for the cooldown.
    circuit_failure_threshold: int = Field(default=5, ge=1, alias="CIRCUIT_FAILURE_THRESHOLD")
    circuit_cooldown_seconds: int = Field(default=300, ge=1, alias="CIRCUIT_COOLDOWN_SECONDS")
    # The scenario index, the CRM webhook and circuits, kept per container this long (0: read every
    # time); a change made in another container is seen within it (cascade.hot_cache).
    config_cache_seconds: float = Field(default=5.0, ge=0, le=300, alias="CONFIG_CACHE_SECONDS")
    # Report counter items per scenario and day (cascade.aggregate); only ever raise it.
    report_counter_shards: int = Field(default=8, ge=1, le=256, alias="REPORT_COUNTER_SHARDS")
    # Messages per recipient per local day, across cascades (0: no cap).
    marketing_daily_cap: int = Field(default=3, ge=0, alias="MARKETING_DAILY_CAP")
    transactional_daily_cap: int = Field(default=0, ge=0, alias="TRANSACTIONAL_DAILY_CAP")
    # A contact is inactive after this many sends on its channel with no reaction (cascade.contacts).
    inactive_after_sends: int = Field(default=5, ge=1, alias="INACTIVE_AFTER_SENDS")
    public_base_url: str = Field(default="", alias="PUBLIC_BASE_URL")
    # The KMS key that seals a scenario's secret_data (an OTP code) in the cascade item.
    secret_key_arn: str = Field(default="", alias="SECRET_KEY_ARN")
    provider_timeout_seconds: float = Field(default=10.0, gt=0, alias="PROVIDER_TIMEOUT_SECONDS")
    # Cascade seconds per real second: 1 on AWS; the local stack speeds time up.
    time_scale: float = Field(default=1.0, gt=0, alias="CASCADE_TIME_SCALE")
    # The local stack may also move its clock (tests start their day at a known hour); 0 on AWS.
    clock_shift_seconds: float = Field(default=0.0, alias="CASCADE_CLOCK_SHIFT_SECONDS")
    max_body_bytes: int = Field(default=256 * 1024, alias="MAX_BODY_BYTES")
    # CRM webhooks to loopback: the local stack's stand-in only; never on AWS (see cascade.channels.crm).
    crm_allow_loopback: bool = Field(default=False, alias="CASCADE_CRM_ALLOW_LOOPBACK")
    # Price per message by channel, over the defaults in cascade.prices (JSON object; "" = defaults).
    prices_json: str = Field(default="", alias="PRICES_JSON")
    price_currency: str = Field(default="USD", min_length=1, max_length=8, alias="PRICE_CURRENCY")

    @field_validator("prices_json")
    @classmethod
    def _prices(cls, value: str) -> str:
        from cascade.prices import parse_overrides

        parse_overrides(value)  # a bad price table is refused at start, not at the first preview
        return value


    def daily_cap(self, purpose: str) -> int | None:
        cap = self.marketing_daily_cap if purpose == "marketing" else self.transactional_daily_cap
        return cap or None


@cache
def settings() -> Settings:
    return Settings.model_validate({k: v for k, v in os.environ.items() if v != ""})


__all__ = ["Settings", "settings"]
