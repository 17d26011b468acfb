"""``make demo``: the local stack plays the sample event of every preset (``events/*.json``), with
their dates moved relative to now and time sped up so that the whole story takes a few minutes.

It prints what will happen and when, in real seconds: each cascade's steps, the ones that wait for
their ``at`` time or for quiet hours to end, and how each story ends; then, as it happens, every
step the stack reports and the customer reactions it plays (an email opened, a key pressed on the
robot call, the operator's outcome, the refund that ends a return).

The schedule comes from the scenario the stack answers with and from the engine's own planning
and policy code (:mod:`cascade.planning`, :mod:`cascade.policy`); the story is driven only through
the stack's HTTP API (``/v1/...`` and ``/local/...``), so :func:`play` runs against any local
stack. :func:`shift_dates` moves a sample event's dates relative to now for anyone else too."""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import httpx

from cascade.local.template import ROOT

EVENTS = ROOT / "events"
# 30 cascade minutes per real second: a 24 h wait takes 48 s, a night of quiet hours about 24 s.
DEMO_TIME_SCALE = 1800.0
# How far ahead of now a sample's dates move at least (by whole days: see shift_dates).
LEADS = {
    "appointment.booked": timedelta(hours=26),  # from tomorrow on: the 24 h and the 2 h reminders both go
    "visit.reminder": timedelta(hours=24),  # the clinic reminds a day or so before the visit
    "return.requested": timedelta(days=4),  # due back in 4-5 days; the reminder 2 days before
    "courier.assigned": timedelta(0),  # the courier comes today
}
DEFAULT_LEAD = timedelta(days=1)


@dataclass(frozen=True)
class Story:
    """One sample event and what the customer (or the business) does while it plays."""

    event: str  # file name in events/
    react_after: int | None = None  # once this step (index) is out...
    signal: str | None = None  # ...the customer reacts to it (POST /local/simulate)
    then_post: str | None = None  # ...or the business posts this event
    note: str = ""
    bind_viber: bool = False  # bind the recipient's Viber first (the clinic writes there)


STORIES = (
    Story("delivery-failed.json", note="no reply: three SMS, then exhausted"),
    Story("delivery-failed-vip.json", react_after=3, signal="confirmed",
          note="a VIP order: after three SMS an operator calls, and reaches the customer"),
    Story("abandoned-cart.json", react_after=0, signal="read", note="the customer opens the email: stopped"),
    Story("courier-assigned.json", note="push, email, SMS while nobody looks (no Viber bound: skipped)"),
    Story("visit-reminder.json", react_after=2, signal="confirmed", bind_viber=True,
          note="Viber and email unseen; the patient presses 1 on the robot call"),
    Story("otp-requested.json", note="the code is never entered: expired after its 3 minutes"),
    Story("order-shipped.json", note="one SMS with the track number"),
    Story("appointment-booked.json", note="a confirmation now, reminders 24 h and 2 h before the visit"),
    Story("return-requested.json", react_after=1, then_post="refund-issued.json",
          note="confirmed, reminded before the deadline, then the refund ends it"),
)
ENDED = ("succeeded", "exhausted", "expired", "cancelled", "failed")


# -- dates ------------------------------------------------------------------------------------

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_TEXT = re.compile(r"^(?P<day>\d{1,2}) (?P<month>[^\W\d_]+\.?)(?P<sep>,? )?(?P<time>\d{1,2}:\d{2})?$")


@dataclass
class _Date:
    value: datetime
    kind: str  # iso, iso-date, text
    month_width: Literal["wide", "abbreviated"] = "wide"
    sep: str = ", "

    @property
    def day_only(self) -> bool:
        return self.kind == "iso-date" or (self.kind == "text" and not self.sep)


def _months(locale: str, width: Literal["wide", "abbreviated"]) -> dict[str, int]:
    from babel.dates import get_month_names

    names = get_month_names(width, "format", locale)
    return {str(name).lower().rstrip("."): number for number, name in names.items()}


def _parse(value: str, zone: ZoneInfo, locale: str, near: datetime) -> _Date | None:
    if _ISO.match(value):
        try:
            if len(value) == 10:
                return _Date(datetime.combine(date.fromisoformat(value), datetime.min.time(), zone), "iso-date")
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:  # 2026-13-45: not a date after all
            return None
        return _Date(parsed if parsed.tzinfo else parsed.replace(tzinfo=zone), "iso")
    match = _TEXT.match(value.strip())
    if not match or (match["time"] is None) != (match["sep"] is None):
        return None
    widths: tuple[Literal["wide", "abbreviated"], ...] = ("wide", "abbreviated")
    for width in widths:
        month = _months(locale, width).get(match["month"].lower().rstrip("."))
        if month is None:
            continue
        hour, minute = (int(x) for x in (match["time"] or "0:00").split(":"))
        # A text date has no year: the one nearest the event's other dates (or now).
        years = []
        for year in (near.year - 1, near.year, near.year + 1):
            try:
                years.append(datetime(year, month, int(match["day"]), hour, minute, tzinfo=zone))
            except ValueError:  # 31 November, or 29 February of a common year
                continue
        return _Date(min(years, key=lambda d: abs(d - near)), "text", width, match["sep"] or "") if years else None
    return None


def _format(found: _Date, moved: datetime, original: str, locale: str) -> str:
    from babel.dates import get_month_names

    if found.kind == "iso-date":
        return moved.date().isoformat()
    if found.kind == "iso":
        text = moved.astimezone(found.value.tzinfo).isoformat(timespec="seconds")
        return text.replace("+00:00", "Z") if original.endswith("Z") else text
    month = str(get_month_names(found.month_width, "format", locale)[moved.month])
    clock = f"{found.sep}{moved:%H:%M}" if found.sep else ""
    return f"{moved.day} {month}{clock}"


def _dates(strings: dict[str, str], zone: ZoneInfo, locale: str, now: datetime) -> dict[str, _Date]:
    iso = [p.value for v in strings.values() if _ISO.match(v) and (p := _parse(v, zone, locale, now))]
    near = min(iso) if iso else now
    return {k: p for k, v in strings.items() if (p := _parse(v, zone, locale, near)) is not None}


def date_fields(event: dict[str, Any]) -> list[str]:
    """The ``data`` fields :func:`shift_dates` moves."""
    recipient = event.get("recipient") or {}
    strings = {k: v for k, v in (event.get("data") or {}).items() if isinstance(v, str)}
    return list(_dates(strings, ZoneInfo(recipient.get("timezone") or "UTC"),
                       str(recipient.get("locale") or "en").split("-")[0], datetime.now(UTC)))


def shift_dates(event: dict[str, Any], now: datetime, lead: timedelta | None = None) -> dict[str, Any]:
    """A copy of a sample event whose dates are moved together, by whole days (each keeps its time
    of day), so that the earliest is the first at least ``lead`` after ``now`` (default:
    :data:`LEADS` by event type, else a day; a date without a time counts until its day ends).
    Dates are the ``data`` fields holding an ISO 8601 date or time (kept in their own offset) or a
    date as people write it in the recipient's locale ("25 ноября, 10:30", "12 декабря", "3 Dec"):
    each keeps its form, so a text date and the timestamp it spells out still agree."""
    moved = copy.deepcopy(event)
    data, recipient = moved.get("data") or {}, moved.get("recipient") or {}
    zone = ZoneInfo(recipient.get("timezone") or "UTC")
    locale = str(recipient.get("locale") or "en").split("-")[0]
    strings = {k: v for k, v in data.items() if isinstance(v, str)}
    found = _dates(strings, zone, locale, now)
    if not found:
        return moved
    ahead = lead if lead is not None else LEADS.get(str(moved.get("type")), DEFAULT_LEAD)
    earliest = min(p.value + timedelta(days=1) if p.day_only else p.value for p in found.values())
    days = math.ceil((now + ahead - earliest) / timedelta(days=1))
    for key, parsed in found.items():
        data[key] = _format(parsed, parsed.value + timedelta(days=days), strings[key], locale)
    return moved


def sample(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((EVENTS / name).read_text(encoding="utf-8")))


# -- the schedule -----------------------------------------------------------------------------


@dataclass
class Planned:
    """One step as the engine will run it, in real seconds after the cascade started."""

    index: int
    channel: str
    at_s: float | None = None  # when it goes out; None: skipped
    skipped: str | None = None
    held: list[tuple[str, datetime, float]] = field(default_factory=list)  # (reason, until, from real s)


@dataclass
class Plan:
    steps: list[Planned]
    ends_s: float
    outcome: str  # exhausted or expired, unless the customer reacts first


def plan(scenario: Any, event: dict[str, Any], created_at: datetime, time_scale: float,
         clock_shift_seconds: float = 0.0) -> Plan:
    """Each step's time, as the engine decides it: the workflow's timers (:func:`workflow_input`),
    then per step the ``when`` condition, the contacts, consent, the ``at`` schedule and quiet
    hours (the :mod:`cascade.policy` checks themselves), assuming the customer never reacts. Not
    foreseen: the daily frequency cap (it counts the recipient's other cascades), adaptive order,
    and the seconds each step itself takes."""
    from cascade import consent, policy
    from cascade.models import RecipientIn
    from cascade.planning import expired, real_seconds, workflow_input
    from cascade.rendering import holds
    from cascade.scenarios import CONTACT_FIELD

    waits = workflow_input("c_plan", scenario, time_scale)["waits"]
    recipient = {**dict.fromkeys(RecipientIn.model_fields), **event.get("recipient", {})}
    data = event.get("data") or {}
    cascade = {"recipient": recipient, "data_json": json.dumps(data), "created_at": created_at.isoformat()}
    real, tried, steps = 0.0, list[str](), list[Planned]()

    def clock() -> datetime:
        return policy.cascade_now(cascade, time_scale, created_at + timedelta(seconds=real), clock_shift_seconds)

    for index, step in enumerate(scenario.steps):
        planned = Planned(index, step.channel)
        steps.append(planned)
        if scenario.ttl is not None and expired(scenario, index, real * time_scale, time_scale):
            return Plan(steps[:-1], real, "expired")
        context = {"recipient": recipient, "data": data, "event": {"type": event.get("type")},
                   "cascade": {"id": "c_plan", "scenario": scenario.id, "step": index, "tried": tried}}
        reachable = [c for c in step.channels if recipient.get(CONTACT_FIELD[c])]
        allowed = [c for c in reachable if not consent.ruling({}, c, scenario.purpose, recipient.get("consent"))]
        if step.when and not holds(step.when, context):
            planned.skipped = "condition"
        elif not allowed:
            planned.skipped = "no_consent" if reachable else "no_contact"
        if planned.skipped:
            continue
        planned.channel = allowed[0]
        for _ in range(4):  # a scheduled step may then meet quiet hours: each check defers once at most
            ctx = policy.StepContext(cascade, scenario, step, index, planned.channel, clock(), cast(Any, None),
                                     bool(planned.held), time_scale)
            decision = policy.test_mode(ctx) or policy.schedule(ctx) or policy.quiet_hours(ctx)
            if decision is None or decision.not_before is None:
                break
            planned.held.append((decision.reason or "", decision.not_before, real))
            real += real_seconds(max(1, math.ceil((decision.not_before - ctx.now).total_seconds())), time_scale)
        if decision is not None and decision.action == "skip":
            planned.skipped = decision.reason
            continue
        planned.at_s = real
        tried.append(planned.channel)
        real += waits[index]
    ends = len(scenario.steps)
    outcome = "expired" if scenario.ttl is not None and expired(scenario, ends, real * time_scale, time_scale) else (
        "exhausted")
    return Plan(steps, real, outcome)


# -- playing it on a stack --------------------------------------------------------------------


def _clock_text(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%d %b %H:%M} {zone.key}"


def describe(scenario: Any, event: dict[str, Any], found: Plan, started_at: float) -> list[str]:
    """The schedule as lines: each step's real time (seconds on the demo's clock: the cascade
    started at ``started_at``), and what it waits for."""
    zone = ZoneInfo((event.get("recipient") or {}).get("timezone") or scenario.timezone)
    lines = []
    for step in found.steps:
        label = f"    step {step.index + 1} {step.channel:<8}"
        if step.at_s is None:
            lines.append(f"{label} skipped ({step.skipped})")
            continue
        lines.append(f"{label} at {started_at + step.at_s:4.0f} s")
        quiet = scenario.quiet_hours
        for reason, until, since in step.held:
            why = f"quiet hours ({quiet.start}-{quiet.end} there)" if reason == "quiet_hours" and quiet else (
                f"its time ({scenario.steps[step.index].at})" if reason == "scheduled" else reason)
            lines.append(f"{'':21}held from {started_at + since:.0f} s by {why}, until {_clock_text(until, zone)}")
    lines.append(f"    {'ends':<16} {found.outcome} at {started_at + found.ends_s:4.0f} s, unless someone reacts")
    return lines


@dataclass
class Playing:
    story: Story
    event: dict[str, Any]
    cascade_id: str
    scenario: str
    label: str
    contacts: dict[str, str] = field(default_factory=dict)  # bound before the event (the stack keeps them)
    seen: dict[int, str] = field(default_factory=dict)  # step index -> the news last printed
    plan: Plan | None = None  # the schedule printed for it
    reacted: bool = False
    view: dict[str, Any] = field(default_factory=dict)


class Demo:
    """The story on a running stack at ``base``: posts, prints, watches and reacts."""

    def __init__(self, base: str, api_key: str, out: Callable[[str], None] = print, tag: str = "") -> None:
        self.base = base.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {api_key}"})
        self.out = out
        self.tag = tag  # appended to ids, so the story can play again on a stack that saw it before
        self.begun = time.monotonic()
        info = self._ok(self.http.get("/local/info"))
        self.time_scale = float(info["time_scale"])
        self.clock_shift = float(info.get("clock_shift_seconds") or 0.0)
        self.playing: list[Playing] = []

    def _ok(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 300:
            raise RuntimeError(f"{resp.request.method} {resp.request.url.path} answered {resp.status_code}: "
                               f"{resp.text[:300]}")
        return resp.json()

    def _event(self, name: str, now: datetime) -> dict[str, Any]:
        event = shift_dates(sample(name), now)
        if self.tag:
            event["recipient"]["id"] += self.tag
            if event.get("idempotency_key"):
                event["idempotency_key"] += self.tag
            data = event.get("data") or {}
            for key in [k for k in data if k.endswith("_id")]:  # the correlation: a story of its own
                data[key] += self.tag
        return event

    def _now(self) -> datetime:
        """The stack's clock (it may be shifted; it runs at real speed outside cascades)."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_shift)

    def start(self) -> list[Playing]:
        """Post every story's event (binding Viber first where the story needs it)."""
        self.begun = time.monotonic()
        for story in STORIES:
            event = self._event(story.event, self._now())
            contacts = {}
            if story.bind_viber:
                link = self._ok(self.http.post(f"/v1/recipients/{event['recipient']['id']}/bind/viber"))["link"]
                contacts["viber_id"] = f"viber-{event['recipient']['id']}"
                self._ok(self.http.post("/local/simulate", json={"open_link": link, "as": contacts["viber_id"]}))
            answer = self._ok(self.http.post("/v1/events", json=event))
            self.playing.append(Playing(story, event, answer["cascade_id"], answer["scenario"],
                                        story.event.removesuffix(".json"), contacts))
        return self.playing

    def schedule(self) -> None:
        """Print what to watch and when, from the stack's scenarios and each cascade's start."""
        from cascade.policy import parse_time
        from cascade.scenarios import Scenario

        self.out(f"\nThe story, at {self.time_scale:g} cascade seconds per real second (1 h of the customers' "
                 f"time takes {3600 / self.time_scale:.1f} s). Seconds count from the first event posted "
                 f"({time.monotonic() - self.begun:.0f} s ago):\n")
        for playing in self.playing:
            stored = self._ok(self.http.get(f"/v1/scenarios/{playing.scenario}"))
            # the view adds what is not the scenario itself (version, source, the SMS parts per locale)
            scenario = Scenario.model_validate({k: v for k, v in stored.items() if k in Scenario.model_fields},
                                               context={"stored": True})
            view = self._ok(self.http.get(f"/v1/cascades/{playing.cascade_id}"))
            created = parse_time(view["created_at"])
            event = {**playing.event, "recipient": {**playing.event["recipient"], **playing.contacts}}
            found = playing.plan = plan(scenario, event, created, self.time_scale, self.clock_shift)
            started_at = (created - datetime.now(UTC)).total_seconds() + time.monotonic() - self.begun
            dates = {k: playing.event["data"][k] for k in date_fields(sample(playing.story.event))}
            self.out(f"  {playing.label}: {playing.story.note} (scenario {playing.scenario})")
            if dates:
                self.out("    dates moved to: " + ", ".join(f"{k} {v}" for k, v in dates.items()))
            for line in describe(scenario, event, found, max(0.0, started_at)):
                self.out(line)
            self.out(f"    {self.base}/dashboard#/cascades/{playing.cascade_id}")
            self.out(f"    {self.base}/local/outbox?cascade_id={playing.cascade_id}\n")
        self.out(f"Everything sent: {self.base}/local/outbox   dashboard: {self.base}/dashboard "
                 f"(API key: {self.http.headers['Authorization'].split()[-1]})\n")

    def _say(self, playing: Playing, text: str) -> None:
        self.out(f"  {time.monotonic() - self.begun:5.0f} s  {playing.label:<22} {text}")

    def watch(self, timeout: float | None = None, every: float = 0.5) -> list[Playing]:
        """Follow every cascade until it ends (or ``timeout`` seconds pass; default: twice the
        longest schedule, and a minute), printing each step's news and playing the story's
        reactions. Returns the cascades as last seen."""
        self.out("As it happens:")
        if timeout is None:
            timeout = 60 + 2 * max((p.plan.ends_s for p in self.playing if p.plan), default=0.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [p for p in self.playing if p.view.get("status") not in ENDED]
            if not running:
                break
            for playing in running:
                self._follow(playing)
            time.sleep(every)
        return self.playing

    def _follow(self, playing: Playing) -> None:
        view = playing.view = self._ok(self.http.get(f"/v1/cascades/{playing.cascade_id}"))
        for step in view["steps"]:
            status = step["status"]
            news = f"deferred until {step.get('not_before')}" if status == "deferred" else status
            if status == "pending" or playing.seen.get(step["index"]) == news:
                continue
            if status == "deferred" and step.get("not_before"):
                real = (datetime.fromisoformat(step["not_before"].replace("Z", "+00:00")) - self._cascade_now(view))
                left = real.total_seconds() / self.time_scale
                text = f"{step['channel']:<8} waits ({step.get('reason')}): " + (
                    f"out in about {left:.0f} s" if left >= 1 else "out now")
            else:
                reason = f" ({step['reason']})" if step.get("reason") and status != "sent" else ""
                text = f"{step['channel']:<8} {status}{reason}"
            playing.seen[step["index"]] = news
            self._say(playing, f"step {step['index'] + 1} {text}")
        story = playing.story
        if (story.react_after is not None and not playing.reacted and view["status"] == "running"
                and len(view["steps"]) > story.react_after and view["steps"][story.react_after].get("sent_at")):
            playing.reacted = True
            step = view["steps"][story.react_after]
            if story.signal:
                self._ok(self.http.post("/local/simulate", json={
                    "provider_message_id": step["provider_message_id"], "signal": story.signal}))
                self._say(playing, f"reacts: step {story.react_after + 1} {step['channel']} -> {story.signal} "
                                   "(POST /local/simulate)")
            if story.then_post:
                event = self._event(story.then_post, self._now())
                answer = self._ok(self.http.post("/v1/events", json=event))
                self._say(playing, f"the business posts {event['type']} (POST /v1/events, events/{story.then_post})")
                if answer.get("cascade_id"):  # it starts a cascade of its own too
                    self.playing.append(Playing(Story(story.then_post), event, answer["cascade_id"],
                                                answer["scenario"], story.then_post.removesuffix(".json")))
        if view["status"] in ENDED:
            why = f" ({view['stop_reason']})" if view.get("stop_reason") else ""
            self._say(playing, f"{view['status']}{why}")

    def _cascade_now(self, view: dict[str, Any]) -> datetime:
        from cascade.policy import cascade_now

        return cascade_now(view, self.time_scale, shift_seconds=self.clock_shift)

    def close(self) -> None:
        self.http.close()


def play(base: str, api_key: str, timeout: float | None = None, out: Callable[[str], None] = print,
         tag: str = "") -> list[Playing]:
    """Post every sample event to the stack at ``base``, print the schedule, follow the story to its
    end. Returns each cascade as last seen."""
    demo = Demo(base, api_key, out, tag)
    try:
        demo.start()
        demo.schedule()
        return demo.watch(timeout)
    finally:
        demo.close()


def main() -> None:
    from cascade.local.stack import LocalStack

    os.environ.setdefault("CASCADE_TIME_SCALE", f"{DEMO_TIME_SCALE:g}")
    port = int(os.environ.get("PORT", "3000"))

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    print(f"Starting the local stack on port {port} (CASCADE_TIME_SCALE={os.environ['CASCADE_TIME_SCALE']})…",
          flush=True)
    try:
        stack = LocalStack(port=port, api_key=os.environ.get("CASCADE_API_KEY", "local-dev-key"),
                           time_scale=float(os.environ["CASCADE_TIME_SCALE"]),
                           sms_provider=os.environ.get("SMS_PROVIDER", "sns"),
                           # The functions' own log lines would bury the story: warnings and errors only.
                           parameters={"LogLevel": os.environ.get("LOG_LEVEL", "WARNING")}).start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        sys.exit(f"Port {port} is busy: set PORT to a free one, e.g. PORT=3100 make demo")
    except KeyboardInterrupt:
        sys.exit("Stopped while starting.")
    # The functions share one logger in this process: it may have been made before the stack set the
    # level, so set it here as well.
    from cascade.observability import logger

    logger.setLevel(os.environ.get("LOG_LEVEL", "WARNING"))
    try:
        print(f"Up: API {stack.url} (docs {stack.url}/docs), API key {stack.api_key}. Ctrl-C stops it all.",
              flush=True)
        played = play(stack.url, stack.api_key, out=lambda line: print(line, flush=True))
        over = all(p.view.get("status") in ENDED for p in played)
        print(f"\nThe story is {'over' if over else 'taking longer than planned (the machine is busy?)'}. The stack stays up to look around: {stack.url}/dashboard, "
              f"{stack.url}/local/outbox. Ctrl-C stops it.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping…", flush=True)
        stack.stop()


if __name__ == "__main__":
    main()
