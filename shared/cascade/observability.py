"""Structured logging. Contacts and codes never reach a log line in clear: use :func:`mask`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.constants import LOGGER_ATTRIBUTE_PRECONFIGURED


class _InvocationLogger(Logger):
    """Powertools' Logger, with the keys of an invocation (the Lambda context that
    ``inject_lambda_context`` adds, cold start, correlation id, anything appended) kept per thread
    with Powertools' thread-safe keys instead of in the one formatter all threads share. On Lambda
    an environment runs one invocation at a time, so nothing changes there; the local stack runs
    many functions' invocations at once in one process, and each line must name its own."""

    def structure_logs(self, append: bool = False, formatter_options: dict[str, Any] | None = None,
                       **keys: Any) -> None:
        if not getattr(self._logger, LOGGER_ATTRIBUTE_PRECONFIGURED, False):  # registers the formatter
            super().structure_logs(append, formatter_options, **keys)
            return
        if not append:
            self.thread_safe_clear_keys()
        self.thread_safe_append_keys(**keys)

    def append_keys(self, **additional_keys: object) -> None:
        self.thread_safe_append_keys(**additional_keys)

    def remove_keys(self, keys: Iterable[str]) -> None:
        gone = set(keys)
        kept = {k: v for k, v in self.thread_safe_get_current_keys().items() if k not in gone}
        self.thread_safe_clear_keys()  # a new mapping: the one being left may be the shared default
        self.thread_safe_append_keys(**kept)

    def clear_state(self) -> None:
        self.thread_safe_clear_keys()


logger = _InvocationLogger(service="cascade", use_rfc3339=True)

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
