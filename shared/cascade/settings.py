"""Typed settings, read from the function's environment once per container."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field


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
    public_base_url: str = Field(default="", alias="PUBLIC_BASE_URL")
    provider_timeout_seconds: float = Field(default=10.0, gt=0, alias="PROVIDER_TIMEOUT_SECONDS")
    # Cascade seconds per real second: 1 on AWS; the local stack speeds time up.
    time_scale: float = Field(default=1.0, gt=0, alias="CASCADE_TIME_SCALE")
    max_body_bytes: int = Field(default=256 * 1024, alias="MAX_BODY_BYTES")


@cache
def settings() -> Settings:
    return Settings.model_validate({k: v for k, v in os.environ.items() if v != ""})


__all__ = ["Settings", "settings"]
