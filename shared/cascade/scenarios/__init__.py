"""Scenarios: what starts a cascade, what ends it, and the ordered steps in between.

A scenario is data (YAML files in this folder, validated by :class:`Scenario`); the state
machine walks any scenario's steps, so adding a scenario never adds states.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

CHANNELS = ("email", "sms", "telegram", "whatsapp", "viber", "push", "voice", "operator")
# The recipient field that holds each channel's address (the operator calls the phone).
CONTACT_FIELD = {"email": "email", "sms": "phone", "telegram": "telegram_chat_id", "whatsapp": "whatsapp",
                 "viber": "viber_id", "push": "push_token", "voice": "phone", "operator": "phone"}
Channel = Literal["email", "sms", "telegram", "whatsapp", "viber", "push", "voice", "operator"]
SIGNALS = ("read", "clicked", "replied", "confirmed")
LOCALES_REQUIRED = ("ru", "en")
LOCALES = ("ru", "uk", "en", "kk")  # what the presets speak; a scenario may add others
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# A step's `at`: a timestamp field of the event data, shifted: "data.appointment_at - 24h".
_AT = re.compile(r"^data\.([A-Za-z_][\w]*)\s*(?:([+-])\s*(\S+))?$")

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


def parse_at(text: str) -> tuple[str, int]:
    """``"data.appointment_at - 24h"`` → ("appointment_at", -86400)."""
    match = _AT.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not like 'data.appointment_at - 24h'")
    field, sign, amount = match.groups()
    offset = parse_duration(amount) if amount else 0
    return field, -offset if sign == "-" else offset


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
        description="a jinja2 expression over recipient/data/cascade/event; the step is skipped unless it is true")
    at: str | None = Field(
        default=None, max_length=100,
        description="send no earlier than a timestamp in the event, shifted: 'data.appointment_at - 24h'; "
                    "a step whose time has passed is skipped (reason `past`)")
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
        if self.at is not None:
            parse_at(self.at)
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


_NIGHT_QUIET: tuple[Channel, ...] = ("sms", "voice", "operator")


class QuietHours(BaseModel):
    """No message on these channels between ``start`` and ``end`` in the recipient's time zone: a
    step due inside the window waits until it ends."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(default="21:00", pattern=_CLOCK.pattern)
    end: str = Field(default="09:00", pattern=_CLOCK.pattern)
    channels: list[Channel] = Field(default_factory=lambda: list(_NIGHT_QUIET))


class AllowList(BaseModel):
    """Only allow-listed recipients are really messaged; the rest are skipped (reason `test_mode`)."""

    model_config = ConfigDict(extra="forbid")
    allow: list[str] = Field(default_factory=list, description="recipient ids that do get messages")


class Adaptive(BaseModel):
    """Adaptive order (cascade.adaptive): a cascade starts with the step on the channel this
    recipient has reacted on most before; a ``holdout`` share of cascades keeps the static order,
    so reports can compare the two honestly."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(strict=True)
    holdout: float = Field(default=0.2, ge=0, le=0.9, description="share of cascades that keep the static order")


_EVENT_TYPE = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$"
_INTENT = r"^[a-z][a-z0-9_]{0,31}$"
_LOCALE = r"^[a-z]{2}(-[A-Z]{2})?$"


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str
    description: str = ""
    trigger: str | list[str] = Field(description="event type(s) that start it; steps may test `event.type`")
    correlation: str = Field(description="the `data` field that ties later events to this cascade")
    required_data: list[str] = Field(default_factory=list)
    purpose: Literal["transactional", "marketing"] = "transactional"
    default_locale: str = "en"
    timezone: str = Field(default="UTC", description="for quiet hours when the recipient has none (IANA name)")
    urgent: bool = Field(default=False, description="exempt from quiet hours and the frequency cap (OTP, courier)")
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours,
                                           description="null: none; default 21:00-09:00 for SMS, calls, operator")
    frequency_cap: Literal["defer", "skip"] = Field(
        default="defer", description="a step over the recipient's daily cap waits for the next day, or is skipped")
    max_sms_parts: int = Field(default=3, ge=1, le=10, description="longer SMS are refused when the scenario is saved")
    track_links: bool = Field(default=True, description="false: links are sent as they are, clicks are not seen")
    secret_data: list[str] = Field(default_factory=list,
                                   description="data fields kept encrypted and out of logs and reports (an OTP code)")
    ttl: Annotated[int, BeforeValidator(parse_duration)] | None = Field(
        default=None, description="the cascade ends (`expired`) this long after it started, whatever its steps")
    test_mode: AllowList | None = None
    reply_intents: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, examples=[{"reschedule": {"ru": ["ПЕРЕНОС"], "en": ["RESCHEDULE", "2"]}}],
        description="intent -> locale -> keywords: what a reply means (whole words, any case; digits only as "
                    "the whole reply); success may name them as replied:<intent>")
    success: list[str] = Field(min_length=1,
                               description="read, clicked, replied, replied:<intent>, confirmed, event:<type>")
    dedupe: Literal["running", "none"] = Field(
        default="running", description="running: a trigger without idempotency_key that matches a running "
                                       "cascade (same recipient and correlation value) joins it instead of "
                                       "starting another; none: every trigger starts a cascade")
    steps: list[Step] = Field(min_length=1, max_length=20)
    adaptive: Adaptive | None = Field(
        default=None, description="start with the channel the recipient reacted on before; null: the static order")

    @field_validator("trigger")
    @classmethod
    def _triggers(cls, value: str | list[str]) -> str | list[str]:
        for item in [value] if isinstance(value, str) else value:
            if not re.match(_EVENT_TYPE, item):
                raise ValueError(f"{item!r} is not an event type like 'order.shipped'")
        if isinstance(value, list) and not value:
            raise ValueError("name at least one event type")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError) as exc:
            raise ValueError("is not an IANA time zone name") from exc
        return value

    @field_validator("adaptive")
    @classmethod
    def _adaptive(cls, value: Adaptive | None, info: ValidationInfo) -> Adaptive | None:
        scheduled = [str(i) for i, step in enumerate(info.data.get("steps") or []) if step.at is not None]
        if value is not None and value.enabled and scheduled:
            raise ValueError(f"adaptive order cannot move steps scheduled with `at` (steps {', '.join(scheduled)})")
        return value

    @property
    def triggers(self) -> list[str]:
        return [self.trigger] if isinstance(self.trigger, str) else list(self.trigger)

    @field_validator("reply_intents", mode="before")
    @classmethod
    def _digits_as_text(cls, value: Any) -> Any:
        # YAML reads [ДА, 1] as a string and a number: a key to press is a keyword all the same
        # (a YAML YES is a boolean and stays refused: quote it).
        def text(keyword: Any) -> Any:
            return str(keyword) if isinstance(keyword, int) and not isinstance(keyword, bool) else keyword

        if not isinstance(value, dict):
            return value
        fixed: dict[Any, Any] = {}
        for name, by_locale in value.items():
            if isinstance(by_locale, dict):
                by_locale = {loc: [text(k) for k in kws] if isinstance(kws, list) else kws
                             for loc, kws in by_locale.items()}
            fixed[name] = by_locale
        return fixed

    @field_validator("reply_intents")
    @classmethod
    def _keywords(cls, value: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        from cascade.intents import words

        for name, by_locale in value.items():
            if not re.match(_INTENT, name):
                raise ValueError(f"intent {name!r} must be a lowercase name of letters, digits and _ (up to 32)")
            if not by_locale or not any(by_locale.values()):
                raise ValueError(f"intent {name!r} needs keywords in at least one locale")
            for locale, keywords in by_locale.items():
                if not re.match(_LOCALE, locale):
                    raise ValueError(f"intent {name!r}: {locale!r} is not a locale like 'ru' or 'en-GB'")
                bare = [k for k in keywords if not words(k) or len(k) > 50]
                if bare:
                    raise ValueError(f"intent {name!r} ({locale}): keyword {bare[0][:60]!r} needs a letter or "
                                     "digit and at most 50 characters")
        return value

    @field_validator("success")
    @classmethod
    def _signals(cls, value: list[str], info: ValidationInfo) -> list[str]:
        intents = info.data.get("reply_intents")
        for item in value:
            if item in SIGNALS:
                continue
            if item.startswith("replied:"):
                if intents is not None and item[8:] not in intents:
                    known = ", ".join(intents) or "none"
                    raise ValueError(f"{item!r} names an intent that reply_intents does not define (defined: {known})")
                continue
            if item.startswith("event:") and re.match(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", item[6:]):
                continue
            raise ValueError(f"{item!r} is not a success signal ({', '.join(SIGNALS)}, replied:<intent> or event:<type>)")
        return value

    @property
    def stop_events(self) -> list[str]:
        return [s[6:] for s in self.success if s.startswith("event:")]

    def data_fields(self) -> list[str]:
        return [self.correlation, *[f for f in self.required_data if f != self.correlation]]

    @model_validator(mode="after")
    def _messages_fit(self, info: ValidationInfo) -> Scenario:
        """Every step renders in every locale and fits its channel (see :mod:`cascade.limits`).
        A scenario stored with a cascade was checked when it was saved: reading it back with
        ``context={"stored": True}`` skips the rendering."""
        if not (info.context or {}).get("stored"):
            from cascade.limits import check

            check(self)
        return self


_HERE = Path(__file__).parent


@cache
def presets(checked: bool = False) -> dict[str, Scenario]:
    """The bundled scenarios, keyed by id (parsed once per container). Their rendering checks
    ran in the test suite before they were shipped, so at run time they are skipped (they would
    add ~150 ms to a cold start); ``checked=True`` runs them."""
    import yaml

    loaded: dict[str, Scenario] = {}
    for path in sorted(_HERE.glob("*.yaml")):
        scenario = Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")),
                                           context=None if checked else {"stored": True})
        loaded[scenario.id] = scenario
    return loaded


def by_trigger(event_type: str) -> Scenario | None:
    return next((s for s in presets().values() if event_type in s.triggers), None)


def stopped_by(event_type: str) -> list[Scenario]:
    return [s for s in presets().values() if event_type in s.stop_events]


__all__ = ["CHANNELS", "CONTACT_FIELD", "SIGNALS", "Adaptive", "AllowList", "Copy", "QuietHours", "Scenario", "Step", "WhatsAppTemplate", "by_trigger", "parse_at", "parse_duration", "presets", "stopped_by"]
