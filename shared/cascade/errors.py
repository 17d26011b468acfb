"""One exception root for the package; handlers turn these into HTTP answers in one place."""

from __future__ import annotations

from typing import Any


class CascadeError(Exception):
    """Root of every error this package raises on purpose."""


class FieldError(CascadeError):
    """Bad input: 422 with the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.details = [{"field": field, "message": message}]


class ValidationFailed(CascadeError):
    """Bad input with one or more fields at fault (422)."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['message']}" for d in details))
        self.details = details

    @classmethod
    def from_pydantic(cls, errors: list[Any], skip: int = 0) -> ValidationFailed:
        """From ``ValidationError.errors()``: the field is the dotted location (minus ``skip`` parts)."""
        return cls([{"field": ".".join(str(p) for p in e["loc"][skip:]) or "body", "message": _sentence(e)}
                    for e in errors])


def _sentence(error: Any) -> str:
    """pydantic's message as a sentence for people: no regular expression, no "Value error," prefix."""
    if error.get("type") == "string_pattern_mismatch":
        return "is not in the form this field takes (see /openapi.json)"
    return str(error["msg"]).removeprefix("Value error, ")


class NotFound(CascadeError):
    """The thing asked for does not exist (404)."""


class Conflict(CascadeError):
    """The request contradicts the current state (409)."""


class Unauthorized(CascadeError):
    """No or wrong credentials (401)."""


class SendError(CascadeError):
    """A channel could not hand the message to its provider."""


class RetryableSendError(SendError):
    """Worth trying again later: throttling, 5xx, timeouts."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Trying again will not help: invalid recipient, blocked bot, no consent.

    ``invalid_contact`` says why the provider refused this contact for good (``invalid_number``,
    ``not_on_whatsapp``, ``bot_blocked``...): the contact is marked invalid (:mod:`cascade.contacts`)."""

    def __init__(self, message: str, invalid_contact: str | None = None) -> None:
        super().__init__(message)
        self.invalid_contact = invalid_contact


class SignatureInvalid(CascadeError):
    """A webhook whose signature or secret does not check out (401)."""
