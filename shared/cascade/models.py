"""Request and response models of the public API. The same models validate requests and
describe the API in ``/openapi.json``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CascadeStatus = Literal["running", "succeeded", "exhausted", "expired", "cancelled", "failed"]
StepStatus = Literal["pending", "deferred", "sent", "delivered", "read", "clicked", "replied", "confirmed", "failed",
                     "skipped", "not_sent"]
Purpose = Literal["transactional", "marketing"]

# Checked by validators that say what is wrong in words (the patterns stay in /openapi.json).
_LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CHAT_ID = re.compile(r"^-?\d{1,20}$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
_EVENT_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


def _matching(value: str | None, pattern: re.Pattern[str], sentence: str) -> str | None:
    if value is not None and not pattern.match(value):
        raise ValueError(sentence)
    return value


class RecipientIn(BaseModel):
    """Who the cascade is about, and how to reach them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=128, description="the business's own customer id")
    name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, examples=["ru", "en"], json_schema_extra={"pattern": _LOCALE.pattern})
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Moscow"])
    email: str | None = Field(default=None, max_length=254, json_schema_extra={"pattern": _EMAIL.pattern})
    phone: str | None = Field(default=None, description="E.164, e.g. +77011234567")
    telegram_chat_id: str | None = Field(default=None, json_schema_extra={"pattern": _CHAT_ID.pattern})
    whatsapp: str | None = Field(default=None, description="WhatsApp number, E.164")
    viber_id: str | None = Field(default=None, min_length=1, max_length=64,
                                 description="Viber user id of a bot subscriber (bind it with a deep link)")
    push_token: str | None = Field(default=None, min_length=8, max_length=4096, description="the app's FCM/APNs device token",
                                   json_schema_extra={"pattern": _TOKEN.pattern})
    consent: dict[Purpose, bool | list[Literal["email", "sms", "telegram", "whatsapp", "viber", "push", "voice",
                                              "operator"]]] | None = Field(
        default=None, examples=[{"marketing": True}, {"marketing": ["email", "telegram"]}],
        description="consent the business already holds, per purpose: every channel (true) or a list; "
                    "a recorded opt-out always wins")

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return _matching(value, _LOCALE, "must be a language code like 'ru' or 'en-US'")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _matching(value, _EMAIL, "must be an e-mail address like anna@example.com")

    @field_validator("telegram_chat_id")
    @classmethod
    def _chat_id(cls, value: str | None) -> str | None:
        return _matching(value, _CHAT_ID, "must be a Telegram chat id: a whole number of up to 20 digits")

    @field_validator("push_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        return _matching(value, _TOKEN, "must be printable ASCII without spaces (an FCM or APNs device token)")

    @field_validator("telegram_chat_id", mode="before")
    @classmethod
    def _chat_id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("phone", "whatsapp")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import phonenumbers

        if not value.startswith("+"):
            raise ValueError("must be in E.164 form, starting with + and the country code")
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValueError("is not a phone number") from exc
        if not phonenumbers.is_valid_number(number):
            raise ValueError("is not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError) as exc:
            raise ValueError("is not an IANA time zone name") from exc
        return value


class EventIn(BaseModel):
    """An event about one customer: a scenario's trigger starts a cascade, a success event stops one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str = Field(examples=["delivery.failed"], json_schema_extra={"pattern": _EVENT_TYPE.pattern})
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    scenario: str | None = Field(default=None, description="scenario id; default: the one triggered by `type`")
    recipient: RecipientIn
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _matching(value, _EVENT_TYPE, "must be an event type like 'order.shipped': lower-case words "
                                             "(a-z, 0-9, _) joined by dots")  # type: ignore[return-value]


class SignalIn(BaseModel):
    """A signal observed outside the providers: an app reporting a push was opened, or the
    business reporting what it saw. Names the message, or the cascade (then its latest sent step)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    cascade_id: str | None = Field(default=None, min_length=1, max_length=64)
    provider_message_id: str | None = Field(default=None, min_length=1, max_length=256)
    signal: Literal["delivered", "read", "clicked", "replied", "confirmed", "failed"]

    @model_validator(mode="after")
    def _names_something(self) -> SignalIn:
        if self.cascade_id is None and self.provider_message_id is None:
            raise ValueError("give cascade_id or provider_message_id")
        return self


class BindLink(BaseModel):
    link: str = Field(description="open it in the messenger; works once, until expires_at")
    expires_at: str


class TriggerWarning(BaseModel):
    """Why one step of a cascade that will send nothing at all is to be skipped."""

    step: int = Field(description="the step's index, as in GET /v1/cascades/{id} (from 0)")
    channel: str
    reason: Literal["condition", "no_contact", "invalid_contact", "test_mode", "no_consent", "opted_out", "no_time",
                    "past"] = Field(description="the reason the step will show when it is skipped")
    message: str = Field(description="the reason in a sentence")


class CascadeStarted(BaseModel):
    cascade_id: str
    scenario: str
    status: CascadeStatus
    duplicate: bool | None = Field(default=None, description="true: the trigger matched a running cascade of the "
                                                             "scenario (dedupe: running); nothing new was started")
    warnings: list[TriggerWarning] | None = Field(
        default=None, description="only when the cascade will send nothing at all: one entry per step, saying "
                                  "why it will be skipped (absent when any step can send)")


class CascadesStopped(BaseModel):
    stopped: list[str]


class StepView(BaseModel):
    index: int
    channel: str
    status: StepStatus
    provider_message_id: str | None = None
    sent_at: str | None = None
    reason: str | None = None
    reply: str | None = Field(default=None, description="the customer's reply or pressed key, if any")
    intent: str | None = Field(default=None, description="what the reply means, by the scenario's reply_intents "
                                                         "(confirm for a pressed 1 or a Confirm button); none "
                                                         "when it matched no intent")
    not_before: str | None = Field(default=None, description="a deferred step goes out no earlier than this")


class CascadeView(BaseModel):
    cascade_id: str
    scenario: str
    scenario_version: int | None = Field(
        default=None, description="the scenario version the cascade runs on to the end (0: the bundled preset)")
    status: CascadeStatus
    stop_reason: str | None = None
    recipient_id: str
    created_at: str
    finished_at: str | None = None
    steps: list[StepView]
    arm: Literal["adaptive", "holdout"] | None = Field(
        default=None, description="adaptive order: this cascade's arm (holdout keeps the static order)")
    adapted_from_channel: str | None = Field(
        default=None, description="adaptive order: the recipient's favourite channel, whose step was moved first")
    step_order: list[int] | None = Field(
        default=None, description="adaptive order: the scenario's step indices in the order this cascade runs them")


class Touch(BaseModel):
    """One thing that happened to a recipient: a message sent or a signal received."""

    at: str
    cascade_id: str
    scenario: str
    step: int
    channel: str
    kind: Literal["sent", "signal", "skipped", "failed"]
    status: str
    provider_message_id: str | None = None
    text: str | None = Field(default=None, description="what the customer replied (replies and key presses)")
    intent: str | None = Field(default=None, description="the reply's intent, if it matched one")
    summary: str | None = Field(default=None, description="the start of the message sent (none for OTP scenarios)")
    provider: str | None = None
    parts: int | None = Field(default=None, description="SMS parts (1 for other channels)")
    cost: float | None = Field(default=None, description="what the message cost, in the report currency")


class ReactsOn(BaseModel):
    channel: str | None = Field(description="the channel this customer reacts on most (ties: the latest)")
    counts: dict[str, int] = Field(description="reactions (read, click, reply, confirm) per channel")
    last_channel: str | None = None
    last_at: str | None = None


class ContactHealth(BaseModel):
    """How one of the customer's contacts is doing (cascade.contacts)."""

    channel: str
    health: Literal["ok", "invalid", "inactive", "opted_out"]
    reason: str | None = Field(default=None, examples=["hard_bounce", "invalid_number", "not_on_whatsapp",
                                                       "bot_blocked", "no_reaction", "complaint", "reply"])
    since: str | None = None
    contact: str | None = Field(default=None, description="the contact, masked", examples=["+7*******67"])
    sends_without_reaction: int = 0


class Timeline(BaseModel):
    recipient_id: str
    touches: list[Touch]
    reacts_on: ReactsOn
    cost: float = Field(description="what every message to this customer cost")
    currency: str
    contacts: list[ContactHealth] = Field(default_factory=list, description="each contact's health")


class ContactRow(BaseModel):
    recipient_id: str
    channel: str
    contact: str | None = Field(description="masked", examples=["an***@example.com"])
    state: Literal["invalid", "inactive"]
    reason: str | None = Field(examples=["hard_bounce", "invalid_number", "no_reaction"])
    since: str | None
    sends_without_reaction: int


class ContactReport(BaseModel):
    """Contacts to clean: invalid ones, then inactive ones, oldest first."""

    items: list[ContactRow]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


class ReportStep(BaseModel):
    index: int
    channel: str
    sent: int
    delivered: int
    read: int
    clicked: int
    replied: int
    confirmed: int
    failed: int
    skipped: int
    suppressed: int = Field(description="held back by a policy: test mode, no consent, opt-out, frequency cap")
    successes: int = Field(description="cascades whose success came from this step's message")
    parts: int
    cost: float


class ReportTotals(BaseModel):
    cascades: int
    reached: int = Field(description="cascades where the customer reacted (read, click, reply, confirm) or succeeded")
    reach: float
    successes: int = Field(description="cascades that ended succeeded")
    success_rate: float
    cost: float
    cost_per_success: float | None
    median_time_to_success_s: int | None = None


class ReportBaseline(BaseModel):
    channel: str | None
    sent: int
    successes: int
    reach: float = Field(description="step 1's successes / cascades: what a single-channel mailing achieved")
    cost: float
    cost_per_success: float | None


class ScenarioReport(BaseModel):
    scenario: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    currency: str
    totals: ReportTotals
    steps: list[ReportStep]
    baseline: ReportBaseline
    ended: dict[str, int] = Field(description="cascades by how they ended")
    adaptive: dict[str, dict[str, float | int | None]] | None = Field(
        default=None, description="adaptive order: the adaptive arm, the holdout and the uplift")

    model_config = ConfigDict(populate_by_name=True)


class CascadeSummary(BaseModel):
    cascade_id: str
    scenario: str
    status: str
    recipient_id: str | None = None
    created_at: str
    finished_at: str | None = None
    arm: str | None = None


class CascadeList(BaseModel):
    cascades: list[CascadeSummary]


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    details: list[ErrorDetail] = Field(default_factory=list)


ChannelName = Literal["email", "sms", "telegram", "whatsapp", "viber", "push", "voice", "operator"]


class ConsentIn(BaseModel):
    """Record the recipient's consent (or refusal) for one channel and purpose. A grant also lifts
    an opt-out of that channel (a STOP reply, an email unsubscribe)."""

    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    purpose: Purpose
    granted: bool = Field(strict=True)


class PurposeConsent(BaseModel):
    granted: bool
    at: str = Field(description="when it was recorded")


class ChannelConsent(BaseModel):
    opted_out: bool = Field(description="the recipient opted out of this channel: nothing is sent on it")
    opted_out_at: str | None = None
    opted_out_via: str | None = Field(default=None, examples=["reply", "unsubscribe_link"],
                                      description="how: a STOP reply, the email's unsubscribe link")
    marketing: PurposeConsent | None = None
    transactional: PurposeConsent | None = None


class ConsentView(BaseModel):
    """What is recorded for a recipient, per channel (channels with nothing recorded are absent).
    An event's ``recipient.consent`` adds to this for its own cascade only."""

    recipient_id: str
    channels: dict[ChannelName, ChannelConsent]


OutboundEventType = Literal["cascade.started", "step.sent", "signal", "cascade.finished"]
OUTBOUND_EVENT_TYPES: tuple[OutboundEventType, ...] = ("cascade.started", "step.sent", "signal", "cascade.finished")


class WebhookIn(BaseModel):
    """Where the service POSTs its events (cascade.outbound): one registration per deployment."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, examples=["https://crm.example.com/hooks/cascade"],
                     description="https; plain http only to 127.0.0.1 or localhost")
    secret: str = Field(min_length=16, max_length=256, description="signs every delivery (HMAC-SHA256); never shown")
    events: list[OutboundEventType] = Field(default_factory=lambda: list(OUTBOUND_EVENT_TYPES), min_length=1,
                                            description="the event types to send (default: all)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value.strip())
            host = parts.hostname
            parts.port  # noqa: B018 - a bad port raises here
        except ValueError as exc:
            raise ValueError("is not a URL") from exc
        if parts.scheme not in ("https", "http") or not host:
            raise ValueError("must be an absolute https:// URL")
        if parts.scheme == "http" and host not in ("127.0.0.1", "localhost"):
            raise ValueError("must use https (plain http only to 127.0.0.1 or localhost)")
        return value.strip()

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[OutboundEventType]) -> list[OutboundEventType]:
        return [t for t in OUTBOUND_EVENT_TYPES if t in value]  # each once, in the canonical order


class WebhookView(BaseModel):
    url: str
    events: list[OutboundEventType]
    secret_set: bool = Field(description="a secret is stored (it is never shown)")
    updated_at: str


__all__ = [
    "OUTBOUND_EVENT_TYPES",
    "BindLink",
    "CascadeList",
    "CascadeStarted",
    "CascadeStatus",
    "CascadeSummary",
    "CascadeView",
    "CascadesStopped",
    "ChannelConsent",
    "ChannelName",
    "ConsentIn",
    "ConsentView",
    "ErrorBody",
    "EventIn",
    "OutboundEventType",
    "PurposeConsent",
    "ReactsOn",
    "RecipientIn",
    "ReportBaseline",
    "ReportStep",
    "ReportTotals",
    "ScenarioReport",
    "SignalIn",
    "StepStatus",
    "StepView",
    "Timeline",
    "Touch",
    "TriggerWarning",
    "WebhookIn",
    "WebhookView",
]
