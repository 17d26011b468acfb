"""Whether a cascade about to start can send anything at all, and if not, why.

An accepted trigger whose every step would be skipped (a marketing scenario without consent, a
recipient opted out of every channel the scenario uses, contacts a provider refused for good)
still starts its cascade, and it ends ``exhausted`` with nothing sent. The 202 says so at once:
:func:`warnings` rules on each step the way :func:`cascade.engine.advance` will, supposing every
earlier step was skipped too (which is what "nothing at all" means: ``cascade.tried`` stays
empty). Policies that only hold a step back (quiet hours, the frequency cap) and a provider that
is down right now do not count: those steps still go."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cascade import consent, policy
from cascade.planning import hashed
from cascade.rendering import holds
from cascade.scenarios import CONTACT_FIELD, Scenario, Step
from cascade.settings import settings
from cascade.store import CascadeStore

# What each reason means to the business that posted the event.
MEANING = {
    "condition": "its condition `{when}` is false for this event",
    "no_contact": "the recipient has no {fields}",
    "invalid_contact": "the provider refused this recipient's {channels} contact for good",
    "test_mode": "the scenario is in test mode and this recipient is not on its allow list",
    "no_consent": "no {purpose} consent for {channels}: send recipient.consent or PUT /v1/recipients/{{id}}/consent",
    "opted_out": "the recipient opted out of, or refused, {channels}",
    "no_time": "`at: {at}` needs an ISO 8601 time in the event's data",
    "past": "its time (`at: {at}`) has already passed",
}


def sentence(reason: str, step: Step, scenario: Scenario) -> str:
    channels = " or ".join(step.channels)
    fields = " or ".join(dict.fromkeys(CONTACT_FIELD[n] for n in step.channels))
    return MEANING.get(reason, reason).format(when=step.when, fields=fields, channels=channels, purpose=scenario.purpose,
                                  at=step.at)


def warnings(cascade: dict[str, Any], scenario: Scenario, store: CascadeStore) -> list[dict[str, Any]]:
    """Why each step of ``cascade`` (just built, not yet started) would be skipped, if every one
    would be; an empty list if any step can send."""
    from cascade.engine import _context  # what `when` sees, with no earlier step sent

    cfg = settings()
    recipient = cascade["recipient"]
    hypothesis = {**cascade, "steps": [{**s, "status": "skipped"} for s in cascade["steps"]]}
    start = policy.cascade_now(cascade, cfg.time_scale, real_now=policy.parse_time(cascade["created_at"]),
                               shift_seconds=cfg.clock_shift_seconds)
    recorded: dict[str, Any] | None = None  # read once, only if some step gets that far
    health: dict[str, dict[str, Any]] | None = None
    found = []
    for index, step in enumerate(scenario.steps):
        reasons = []
        reachable = [n for n in step.channels if recipient.get(CONTACT_FIELD[n])]
        if step.when and not _holds(step.when, _context(hypothesis, scenario, index)):
            reachable, reasons = [], ["condition"]
        elif not reachable:
            reasons = ["no_contact"]
        else:
            health = store.contact_health(str(recipient["id"])) if health is None else health
            if not (reachable := [n for n in reachable if not _invalid(health, recipient, n)]):
                reasons = ["invalid_contact"]
        for name in reachable:
            if recorded is None:
                recorded = store.get_consent(str(recipient["id"]))
            reason = _skipped(cascade, scenario, index, name, start, recorded, store)
            if reason is None:
                return []  # this step can go: the cascade sends something
            reasons.append(reason)
        found.append({"step": index, "channel": step.channel, "reason": reasons[0],
                      "message": sentence(reasons[0], step, scenario)})
    return found


def _holds(when: str, context: dict[str, Any]) -> bool:
    """A condition this event's data cannot even evaluate is left for the step to decide."""
    try:
        return holds(when, context)
    except Exception:  # a warning must never turn an accepted event into a 500
        return True


def _invalid(health: dict[str, dict[str, Any]], recipient: dict[str, Any], channel: str) -> bool:
    """Marked invalid, for this very value (a new value lifts the mark when the step runs)."""
    item, value = health.get(channel) or {}, recipient.get(CONTACT_FIELD[channel])
    return bool(value and item.get("invalid_hash") and item["invalid_hash"] == hashed(str(value)))


def _skipped(cascade: dict[str, Any], scenario: Scenario, index: int, channel: str, start: datetime,
             recorded: dict[str, Any], store: CascadeStore) -> str | None:
    """The policy that would drop the step on ``channel`` for good (deferring is not dropping)."""
    ctx = policy.StepContext(cascade, scenario, scenario.steps[index], index, channel, start, store,
                             deferred_before=False, time_scale=settings().time_scale)
    ruling = policy.test_mode(ctx)
    if ruling is not None:
        return ruling.reason
    refused = consent.ruling(recorded, channel, scenario.purpose, cascade["recipient"].get("consent"))
    if refused is not None:
        return refused
    ruling = policy.schedule(ctx)  # a time already past at the start is past whenever the step comes
    return ruling.reason if ruling is not None and ruling.action == "skip" else None


__all__ = ["MEANING", "sentence", "warnings"]
