"""Whether a step may go out now: the policies between a cascade and the customer's phone.

Each check looks at one step about to be sent and either lets it through (None), holds it back
until a time (``defer``: the step shows ``deferred`` with ``not_before`` and comes back then), or
drops it (``skip``: the cascade moves on at once). They run in this order, and the first that
objects decides:

1. test mode — only allow-listed recipients get real messages (``skip``, reason ``test_mode``);
2. consent and opt-out — see :mod:`cascade.consent` (``skip``: ``no_consent``, ``opted_out``);
3. schedule — a step with ``at`` waits for its time, or is ``skip``ped as ``past`` when that time
   was already gone;
4. quiet hours — in the recipient's time zone (``defer`` to the window's end, reason
   ``quiet_hours``); urgent scenarios are exempt;
5. frequency cap — at most N messages of a purpose per recipient per local day, across all
   cascades (``defer`` to the next day or ``skip``, reason ``frequency_cap``); urgent scenarios
   are exempt. This check reserves the slot, so it runs last.

Time is the cascade's clock (:func:`cascade_now`): wall-clock time on AWS; on the local stack,
which speeds time up, the cascade's own accelerated time, so a night passes in seconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cascade.scenarios import Scenario, Step, parse_at
from cascade.store import CascadeStore

# A step with `at` may start this late and still count as on time (the workflow wakes up
# a little after the moment it was asked to): 15 minutes, or two real seconds of cascade time on
# a local stack that runs time faster (where one second of Lambda and workflow overhead is hours).
ON_TIME_SECONDS = 15 * 60
ON_TIME_REAL_SECONDS = 2


@dataclass(frozen=True)
class Decision:
    action: Literal["send", "defer", "skip"]
    reason: str | None = None
    not_before: datetime | None = None


SEND = Decision("send")


@dataclass(frozen=True)
class StepContext:
    """One step about to go out on ``channel``."""

    cascade: dict[str, Any]
    scenario: Scenario
    step: Step
    index: int
    channel: str
    now: datetime  # the cascade's clock
    store: CascadeStore
    deferred_before: bool  # the step already waited once (for its schedule or a policy)
    time_scale: float = 1.0  # cascade seconds per real second (the local stack runs faster)

    @property
    def recipient(self) -> dict[str, Any]:
        return dict(self.cascade["recipient"])

    @property
    def data(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self.cascade["data_json"]))

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.recipient.get("timezone") or self.scenario.timezone)


def parse_time(value: Any) -> datetime:
    """An ISO 8601 timestamp (a ``Z`` or offset; naive means UTC)."""
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cascade_now(cascade: dict[str, Any], time_scale: float, real_now: datetime | None = None,
                shift_seconds: float = 0.0) -> datetime:
    """The cascade's clock: real time, sped up by ``time_scale`` since the cascade started (and
    moved by ``shift_seconds`` on a local stack that sets its own hour)."""
    real = real_now or datetime.now(UTC)
    started = parse_time(cascade["created_at"])
    return started + timedelta(seconds=shift_seconds) + (real - started) * time_scale


# -- the checks -------------------------------------------------------------------------------


def test_mode(ctx: StepContext) -> Decision | None:
    allow = ctx.scenario.test_mode
    if allow is not None and ctx.recipient["id"] not in allow.allow:
        return Decision("skip", "test_mode")
    return None


def schedule(ctx: StepContext) -> Decision | None:
    if not ctx.step.at:
        return None
    field, offset = parse_at(ctx.step.at)
    try:
        due = parse_time(ctx.data[field]) + timedelta(seconds=offset)
    except (KeyError, ValueError, TypeError):
        return Decision("skip", "no_time")  # the event carried no usable timestamp for it
    if ctx.now < due:
        return Decision("defer", "scheduled", due)
    on_time = max(ON_TIME_SECONDS, ON_TIME_REAL_SECONDS * ctx.time_scale)
    if not ctx.deferred_before and (ctx.now - due).total_seconds() > on_time:
        return Decision("skip", "past")
    return None


def quiet_hours(ctx: StepContext) -> Decision | None:
    quiet = ctx.scenario.quiet_hours
    if ctx.scenario.urgent or quiet is None or ctx.channel not in quiet.channels:
        return None
    ends = quiet_until(ctx.now, ctx.zone(), quiet.start, quiet.end)
    return Decision("defer", "quiet_hours", ends) if ends else None


def quiet_until(now: datetime, zone: ZoneInfo, start: str, end: str) -> datetime | None:
    """When the quiet window around ``now`` ends (in UTC), or None outside it. Handles windows
    that cross midnight (21:00-09:00) and ones that don't (13:00-15:00)."""
    local = now.astimezone(zone)
    begin, finish = (time.fromisoformat(t) for t in (start, end))
    clock = local.timetz().replace(tzinfo=None)
    if begin == finish:
        return None
    crosses_midnight = begin > finish
    inside = (clock >= begin or clock < finish) if crosses_midnight else (begin <= clock < finish)
    if not inside:
        return None
    day = local.date() if clock < finish else local.date() + timedelta(days=1)
    return datetime.combine(day, finish, tzinfo=zone).astimezone(UTC)


def frequency_cap(ctx: StepContext) -> Decision | None:
    from cascade.settings import settings

    limit = settings().daily_cap(ctx.scenario.purpose)
    if ctx.scenario.urgent or limit is None:
        return None
    local_day = ctx.now.astimezone(ctx.zone()).date()
    if ctx.store.take_cap_slot(ctx.recipient["id"], ctx.scenario.purpose, local_day.isoformat(), limit):
        return None
    if ctx.scenario.frequency_cap == "skip":
        return Decision("skip", "frequency_cap")
    tomorrow = datetime.combine(local_day + timedelta(days=1), time(0, 0), tzinfo=ctx.zone()).astimezone(UTC)
    return Decision("defer", "frequency_cap", tomorrow)


def _consent(ctx: StepContext) -> Decision | None:
    from cascade import consent

    return consent.check(ctx)


CHECKS: list[Callable[[StepContext], Decision | None]] = [test_mode, _consent, schedule, quiet_hours, frequency_cap]


def decide(ctx: StepContext) -> Decision:
    """The first objection wins; a step held back is asked again when it comes back (and only
    then spends a frequency-cap slot)."""
    for check in CHECKS:
        decision = check(ctx)
        if decision is not None:
            return decision
    return SEND


__all__ = ["CHECKS", "Decision", "StepContext", "cascade_now", "decide", "parse_time", "quiet_until"]
