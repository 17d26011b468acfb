"""Structured logging. Contacts and codes never reach a log line in clear: use :func:`mask`."""

from __future__ import annotations

import re

from aws_lambda_powertools import Logger

logger = Logger(service="cascade", use_rfc3339=True)

_EMAIL = re.compile(r"([^@\s]{1,2})[^@\s]*@([^@\s]+)")


def mask(value: str | None) -> str | None:
    """``+77011234567`` → ``+7*******67``; ``anna@example.com`` → ``an***@example.com``."""
    if value is None:
        return None
    text = str(value)
    if "@" in text:
        return _EMAIL.sub(r"\1***@\2", text)
    if len(text) <= 4:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]


__all__ = ["logger", "mask"]
