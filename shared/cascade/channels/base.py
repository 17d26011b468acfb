"""What every channel adapter offers: send one message, and understand the provider's answers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from cascade.errors import PermanentSendError, RetryableSendError
from cascade.scenarios import CONTACT_FIELD


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one recipient contact.

    ``api_base`` is where this API is reachable from outside (for provider callbacks);
    ``context`` carries what a channel may need beyond the text: the recipient, the event data,
    the scenario, what was already sent (``history``), a WhatsApp template's rendered parameters."""

    cascade_id: str
    step: int
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (label, signal)
    locale: str = "en"
    api_base: str = ""
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    provider_message_id: str
    chat_id: str | None = None


@dataclass(frozen=True)
class Signal:
    """A provider's news about one message: delivered, read, clicked, replied, failed, confirmed.

    ``provider_message_id`` is None when the provider only tells which chat spoke (a reply that
    quotes nothing); the signal then belongs to the last message sent to ``chat_id``."""

    channel: str
    signal: str
    provider_message_id: str | None
    chat_id: str | None = None
    text: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Channel(ABC):
    name: ClassVar[str]
    max_length: ClassVar[int]
    provider: ClassVar[str] = ""  # who carries the message (reports): "ses", "sns", "twilio", ...

    def contact(self, recipient: dict[str, Any]) -> str | None:
        """This channel's address for the recipient (the field is named in scenarios.CONTACT_FIELD)."""
        value = recipient.get(CONTACT_FIELD[self.name])
        return str(value) if value else None

    def prepare(self, message: Outgoing, store: Any) -> Outgoing:
        """A last look before sending, with the store at hand (e.g. WhatsApp's 24 h window)."""
        return message

    @abstractmethod
    def send(self, message: Outgoing) -> Sent:
        """Hand the message to the provider. Raises RetryableSendError or PermanentSendError."""


_THROTTLING = {"Throttling", "ThrottlingException", "Throttled", "ThrottledException", "TooManyRequestsException",
               "LimitExceededException", "RequestLimitExceeded", "ServiceUnavailable", "InternalError",
               "InternalFailure", "KMSThrottlingException"}


def aws_send_error(exc: Exception, what: str) -> Exception:
    """Classify a boto3 failure: throttling, 5xx and connection trouble retry; the rest is permanent."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        if code in _THROTTLING or status == 429 or status >= 500:
            return RetryableSendError(f"{what}: {code}")
        return PermanentSendError(f"{what}: {code}")
    if isinstance(exc, BotoCoreError):
        return RetryableSendError(f"{what}: {type(exc).__name__}")
    return exc


def http_call(http: Any, method: str, url: str, what: str, **kwargs: Any) -> Any:
    """One HTTP request to a provider (an ``httpx.Client``): no answer in time or a broken
    connection is retryable; the caller judges the answer (see :func:`http_status_error`)."""
    import httpx

    try:
        return http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableSendError(f"{what}: timeout") from exc
    except httpx.TransportError as exc:
        raise RetryableSendError(f"{what}: {type(exc).__name__}") from exc


def http_status_error(status: int, what: str, retry_after: Any = None) -> Exception:
    """429 and 5xx are worth another try (honouring Retry-After); any other refusal is final."""
    if status == 429 or status >= 500:
        try:
            hint = float(retry_after) if retry_after not in (None, "") else None
        except (TypeError, ValueError):
            hint = None
        return RetryableSendError(f"{what}: HTTP {status}", retry_after=hint)
    return PermanentSendError(f"{what}: HTTP {status}")


__all__ = ["Channel", "Outgoing", "Sent", "Signal", "aws_send_error", "http_call", "http_status_error"]
