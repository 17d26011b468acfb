"""Fault injection for the local stack: ``POST /local/faults {"channel", "mode", "count"?}`` makes
that channel's provider misbehave for its next ``count`` sends (all, if absent).

Modes: ``500`` (server error), ``429`` (throttled, Retry-After 1 s), ``timeout`` (no answer in
time), ``reject`` (refused for good: invalid number, bot blocked). Each provider stand-in asks
:data:`FAULTS` itself; for SES and SNS the moto backends' send calls are wrapped, so the error
reaches our code the way AWS would send it."""

from __future__ import annotations

import threading
import time
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.sns.exceptions import SNSException

from cascade.scenarios import CHANNELS

MODES = ("500", "429", "timeout", "reject")


class Faults:
    def __init__(self) -> None:
        self._active: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.timeout_seconds = 10.0

    def set(self, channel: str, mode: str, count: int | None) -> None:
        with self._lock:
            self._active[channel] = {"mode": mode, "remaining": count}

    def clear(self) -> None:
        with self._lock:
            self._active.clear()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._active.items()}

    def take(self, channel: str) -> str | None:
        """The fault this send of ``channel`` suffers, if any (counting it down)."""
        with self._lock:
            fault = self._active.get(channel)
            if fault is None:
                return None
            if fault["remaining"] is not None:
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    del self._active[channel]
            return str(fault["mode"])

    def stall(self) -> None:
        """A provider that does not answer before the client gives up (and then sends nothing)."""
        time.sleep(self.timeout_seconds + 1)


FAULTS = Faults()

# Per mode: (HTTP status, error code) as each AWS API answers it.
_AWS_ERRORS = {
    "email": {"500": (500, "InternalFailure"), "429": (429, "TooManyRequestsException"),
              "reject": (400, "MessageRejected")},
    "sms": {"500": (500, "InternalError"), "429": (429, "Throttled"), "reject": (400, "InvalidParameter")},
    # Push to a platform endpoint: "reject" is the endpoint FCM/APNs reported dead.
    "push": {"500": (500, "InternalError"), "429": (429, "Throttled"), "reject": (400, "EndpointDisabled")},
}


class _SnsError(SNSException):
    # moto picks the serialiser (the SNS error model) by the exception's module.
    __module__ = SNSException.__module__


def _raise_for(channel: str) -> None:
    mode = FAULTS.take(channel)
    if mode is None:
        return
    if mode == "timeout":
        FAULTS.stall()  # the client has given up by now; nothing is sent
        mode = "500"
    status, code = _AWS_ERRORS[channel][mode]
    if channel in ("sms", "push"):  # moto serialises SNS's modelled errors (status included) itself
        raise _SnsError(code, f"injected fault: {mode}")
    error = JsonRESTError(code, f"injected fault: {mode}")  # SES v2: a JSON error with our status
    error.code = status
    raise error


def install_aws_faults() -> None:
    from moto.sesv2.models import SESV2Backend
    from moto.sns.models import SNSBackend

    send_email, publish = SESV2Backend.send_email, SNSBackend.publish

    def faulty_send_email(self: Any, *args: Any, **kwargs: Any) -> Any:
        _raise_for("email")
        return send_email(self, *args, **kwargs)

    def faulty_publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("phone_number") or (len(args) > 2 and args[2]):
            _raise_for("sms")
        elif ":endpoint/" in str(kwargs.get("arn") or (args[1] if len(args) > 1 else "")):
            _raise_for("push")  # a platform endpoint: mobile push
        return publish(self, *args, **kwargs)

    SESV2Backend.send_email = faulty_send_email  # type: ignore[method-assign]
    SNSBackend.publish = faulty_publish  # type: ignore[method-assign]


__all__ = ["CHANNELS", "FAULTS", "MODES", "install_aws_faults"]
