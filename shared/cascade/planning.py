"""Pure planning: cascade ids, the workflow's timers, locales. No I/O here."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from typing import Any

from cascade.scenarios import Scenario

# The execution input carries one timer per step plus a last short one: after the last step's
# wait the workflow asks the step function once more, which closes the cascade as exhausted.
CLOSING_WAIT_SECONDS = 60


def new_cascade_id(idempotency_key: str | None) -> str:
    """Random, or derived from the idempotency key so that duplicates — even concurrent ones —
    name the same cascade (and the same workflow execution)."""
    if idempotency_key is None:
        return "c_" + secrets.token_hex(12)
    return "c_" + hashlib.sha256(b"idem:" + idempotency_key.encode()).hexdigest()[:24]


def body_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()


def real_seconds(cascade_seconds: int, time_scale: float) -> int:
    """A wait in the workflow's own seconds (at least 1, as Step Functions requires)."""
    return max(1, math.ceil(cascade_seconds / time_scale))


def workflow_input(cascade_id: str, scenario: Scenario, time_scale: float) -> dict[str, Any]:
    waits = [real_seconds(step.wait, time_scale) for step in scenario.steps] + [CLOSING_WAIT_SECONDS]
    return {"cascade_id": cascade_id, "step": 0, "wait_seconds": waits[0], "waits": waits}


def pick_locale(recipient_locale: str | None, scenario: Scenario) -> str:
    """Recipient locale (or its language) → scenario default → en."""
    available = scenario.steps[0].template.keys()
    for candidate in (recipient_locale, (recipient_locale or "").split("-")[0], scenario.default_locale, "en"):
        if candidate and candidate in available:
            return candidate
    return "en"


def hashed(value: str) -> str:
    """A stable, non-reversible key for a contact (phone numbers never appear in keys in clear)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


__all__ = ["CLOSING_WAIT_SECONDS", "body_hash", "hashed", "new_cascade_id", "pick_locale", "real_seconds",
           "workflow_input"]
