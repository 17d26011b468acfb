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


def body_hash(event: dict[str, Any], secret_fields: list[str] | tuple[str, ...] = ()) -> str:
    """The event's fingerprint (a reused idempotency key with another event is a conflict).
    Secret data fields are left out: a hash of a 6-digit code is reversed by trying a million
    codes, so it would keep the code in the table in all but name. (Two events differing only
    in such a field therefore count as the same event.)"""
    if secret_fields and isinstance(event.get("data"), dict):
        event = {**event, "data": {k: v for k, v in event["data"].items() if k not in secret_fields}}
    return hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()


def real_seconds(cascade_seconds: int, time_scale: float) -> int:
    """A wait in the workflow's own seconds (at least 1, as Step Functions requires)."""
    return max(1, math.ceil(cascade_seconds / time_scale))


def workflow_input(cascade_id: str, scenario: Scenario, time_scale: float) -> dict[str, Any]:
    waits = [real_seconds(wait, time_scale) for wait in capped_waits(scenario)] + [CLOSING_WAIT_SECONDS]
    return {"cascade_id": cascade_id, "step": 0, "wait_seconds": waits[0], "waits": waits}


def capped_waits(scenario: Scenario) -> list[int]:
    """Each step's wait in cascade seconds, cut so that together they never run past the ttl."""
    if scenario.ttl is None:
        return [step.wait for step in scenario.steps]
    left, waits = scenario.ttl, []
    for step in scenario.steps:
        waits.append(min(step.wait, left))
        left -= waits[-1]
    return waits


def ttl_seconds(scenario: Scenario, time_scale: float) -> float | None:
    """When (cascade seconds after its start) a cascade with a ttl is over: the ttl itself, or
    where the workflow's timers for the steps within it end if that is later. Timers are whole
    real seconds, at least one, so on a sped-up local stack a 45 s wait lasts a whole second."""
    if scenario.ttl is None:
        return None
    used, real = 0, 0
    for wait in capped_waits(scenario):
        if used >= scenario.ttl:
            break
        used, real = used + wait, real + real_seconds(wait, time_scale)
    return max(float(scenario.ttl), real * time_scale)


def expired(scenario: Scenario, index: int, elapsed: float, time_scale: float) -> bool:
    """Whether the workflow, asking for step ``index`` ``elapsed`` cascade seconds after the start,
    finds the cascade past its ttl. Asked for the step after the last one when the ttl cut the
    waits short, it is: the ttl ended it, not the scenario running out of steps."""
    limit = ttl_seconds(scenario, time_scale)
    if limit is None or scenario.ttl is None:
        return False
    if index >= len(scenario.steps) and sum(step.wait for step in scenario.steps) >= scenario.ttl:
        return True
    return elapsed >= limit


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


__all__ = ["CLOSING_WAIT_SECONDS", "body_hash", "capped_waits", "expired", "hashed", "new_cascade_id", "pick_locale",
           "real_seconds", "ttl_seconds", "workflow_input"]
