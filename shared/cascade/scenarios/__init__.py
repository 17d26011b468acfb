"""Scenarios: what starts a cascade, what ends it, and the ordered steps in between.

A scenario is data (YAML files in this folder, validated by :class:`Scenario`); the state
machine walks any scenario's steps, so adding a scenario never adds states.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

CHANNELS = ("email", "sms", "telegram", "whatsapp", "viber", "push", "voice", "operator")
# The recipient field that holds each channel's address (the operator calls the phone).
CONTACT_FIELD = {"email": "email", "sms": "phone", "telegram": "telegram_chat_id", "whatsapp": "whatsapp",
                 "viber": "viber_id", "push": "push_token", "voice": "phone", "operator": "phone"}
Channel = Literal["email", "sms", "telegram", "whatsapp", "viber", "push", "voice", "operator"]
SIGNALS = ("read", "clicked", "replied", "confirmed")
LOCALES_REQUIRED = ("ru", "en")

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str | int) -> int:
    """``"2h"`` → 7200. Accepts d/h/m/s parts in that order (``"1h30m"``) or plain seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError("a wait must be positive")
        return text
    match = _DURATION.match(str(text).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like '30m', '2h', '24h' or '1h30m'")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError("a wait must be positive")
    return total


class Copy(BaseModel):
    """One message's words in one locale. Email needs a subject; other channels ignore it."""

    model_config = ConfigDict(extra="forbid")
    subject: str | None = None
    text: str = Field(min_length=1)


def _copy(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


class Button(BaseModel):
    """An inline button (Telegram, Viber keyboard): pressing it is the signal named here."""

    model_config = ConfigDict(extra="forbid")
    text: dict[str, str]
    signal: Literal["read", "confirmed", "replied"] = "read"


class WhatsAppTemplate(BaseModel):
    """An approved WhatsApp message template: what goes out when the 24 h customer-service window
    is closed (a business may only start a conversation with a template)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: dict[str, str] = Field(default_factory=dict,
                                     description="our locale -> the template's language code (default: the locale)")
    params: list[str] = Field(default_factory=list, description="body parameters {{1}}, {{2}}...; jinja2 templates")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    wait: Annotated[int, BeforeValidator(parse_duration)] = Field(
        description="Seconds to wait for a success signal before escalating (YAML: '2h', '30m')."
    )
    template: dict[str, Annotated[Copy, BeforeValidator(_copy)]]
    alternatives: list[Channel] = Field(
        default_factory=list, description="tried in order when the recipient has no contact for `channel`")
    when: str | None = Field(
        default=None, max_length=500,
        description="a jinja2 expression over recipient/data/cascade; the step is skipped unless it is true")
    buttons: list[Button] = Field(default_factory=list)
    whatsapp_template: WhatsAppTemplate | None = Field(
        default=None, description="WhatsApp steps: the approved template used outside the 24 h window")

    @field_validator("template")
    @classmethod
    def _locales(cls, value: dict[str, Copy]) -> dict[str, Copy]:
        missing = [loc for loc in LOCALES_REQUIRED if loc not in value]
        if missing:
            raise ValueError(f"template needs the locales {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _email_subject(self) -> Step:
        if self.channel == "email":
            bare = [loc for loc, copy in self.template.items() if not copy.subject]
            if bare:
                raise ValueError(f"an email step needs a subject (missing in {', '.join(bare)})")
        uses_whatsapp = "whatsapp" in self.channels
        if uses_whatsapp and self.whatsapp_template is None:
            raise ValueError("a whatsapp step needs whatsapp_template: outside the 24 h window only templates go out")
        if not uses_whatsapp and self.whatsapp_template is not None:
            raise ValueError("whatsapp_template belongs to whatsapp steps")
        if self.channel in self.alternatives or len(set(self.alternatives)) != len(self.alternatives):
            raise ValueError("alternatives must differ from the channel and from each other")
        if self.when is not None:
            from cascade.rendering import compile_condition

            try:
                compile_condition(self.when)
            except Exception as exc:
                raise ValueError(f"when: {exc}") from None
        return self

    @property
    def channels(self) -> list[str]:
        """The step's channel, then its alternatives."""
        return [self.channel, *self.alternatives]


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str
    description: str = ""
    trigger: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", description="event type that starts it")
    correlation: str = Field(description="the `data` field that ties later events to this cascade")
    required_data: list[str] = Field(default_factory=list)
    purpose: Literal["transactional", "marketing"] = "transactional"
    default_locale: str = "en"
    success: list[str] = Field(min_length=1, description="read, clicked, replied, confirmed, event:<type>")
    steps: list[Step] = Field(min_length=1, max_length=20)

    @field_validator("success")
    @classmethod
    def _signals(cls, value: list[str]) -> list[str]:
        for item in value:
            if item in SIGNALS:
                continue
            if item.startswith("event:") and re.match(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", item[6:]):
                continue
            raise ValueError(f"{item!r} is not a success signal ({', '.join(SIGNALS)} or event:<type>)")
        return value

    @property
    def stop_events(self) -> list[str]:
        return [s[6:] for s in self.success if s.startswith("event:")]

    def data_fields(self) -> list[str]:
        return [self.correlation, *[f for f in self.required_data if f != self.correlation]]


_HERE = Path(__file__).parent


@cache
def presets() -> dict[str, Scenario]:
    """The bundled scenarios, keyed by id (parsed once per container)."""
    import yaml

    loaded: dict[str, Scenario] = {}
    for path in sorted(_HERE.glob("*.yaml")):
        scenario = Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        loaded[scenario.id] = scenario
    return loaded


def by_trigger(event_type: str) -> Scenario | None:
    return next((s for s in presets().values() if s.trigger == event_type), None)


def stopped_by(event_type: str) -> list[Scenario]:
    return [s for s in presets().values() if event_type in s.stop_events]


__all__ = ["CHANNELS", "CONTACT_FIELD", "SIGNALS", "Copy", "Scenario", "Step", "WhatsAppTemplate", "by_trigger", "parse_duration", "presets", "stopped_by"]
