"""Report counters, kept up to date from the table's stream (the AggregatorFunction).

A report must be a few reads however many cascades there were, so nothing is counted when a
report is asked for: every fact is counted once, as it happens, into the items of its scenario and
day (``AGG#<scenario>#<shard>`` / ``D#<day>``, the day its cascade started) with DynamoDB's atomic
``ADD``; a report adds the shards up (:meth:`cascade.store.CascadeStore.aggregates`).

Why shards: a cascade counts about 6 facts, each a transactional update (≈ 2 WCU). In one item,
a scenario at 10 M cascades a day would take 10,000,000 / 86,400 s × 6 × 2 WCU ≈ 1,390 WCU/s on
one key, past the 1,000 WCU/s one partition takes (at ~7 M a day already). Each fact goes to
shard ``crc32(its marker) % REPORT_COUNTER_SHARDS`` (8 by default): ≈ 174 WCU/s per shard at
10 M a day, a sixth of the limit, room for peaks 5× the day's average; 100 M a day wants 16 or
more. A report reads one Query per shard and one for the unsharded item counters were written to
before shards (still counted): 9 Queries, whatever the number of days. Only ever raise the
setting: a lowered one would stop reading the shards above it.

What is counted, from which stream record:

==============================  ==========================================================
record                          counters
==============================  ==========================================================
a cascade is written            ``cascades`` (and ``arm#<arm>#cascades``)
a cascade leaves ``running``    ``ended#<status>``; when it ``succeeded``: ``successes``,
                                ``s#<step>#<channel>#successes`` for the step whose signal
                                did it (the last step sent, for a business event), the
                                time-to-success histogram ``tts#<bucket>``, ``reached``
a touch ``sent``                ``s#<step>#<channel>#sent``, ``…#parts``, ``…#cost_u``, ``cost_u``
a touch ``failed`` / a          ``…#failed``
``failed`` signal
a touch ``skipped``             ``…#suppressed`` (a policy held the customer back: test mode,
                                no consent, opt-out, frequency cap) or ``…#skipped``
a signal that moved its step    the stages it passed, ``…#delivered`` and ``…#read`` (a
                                ``read`` without a ``delivered`` receipt was delivered too),
                                and its own reaction, one of ``…#clicked``, ``…#replied``,
                                ``…#confirmed`` (none implies another); a reaction (read,
                                clicked, replied, confirmed) also counts the cascade
                                ``reached`` once, even after it ended, and the
                                recipient's ``R#<id>`` / ``REACTS`` per channel
a touch ``sent``, a reaction    the contact's ``sends`` since its last reaction
                                (``R#<id>`` / ``CONTACT#<channel>``, :mod:`cascade.contacts`):
                                back to 0 with the reaction's count; one more after a send's
                                count, unless a later reaction was counted first
==============================  ==========================================================

Money is counted in millionths (``cost_u``): the table keeps no floats. A cascade removed
because its workflow could not start is taken back out (``cascades`` − 1).

Each count is written in one transaction with a marker item named by what was counted
(``AGGDONE#<cascade>#started``, ``AGGDONE#<touch key>``, ``AGGDONE#<cascade>#reached``, ...):
a stream record delivered twice, or two records that mean the same thing, count once. Markers
expire after three days (a stream keeps records for one)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cascade.contacts import COUNTED, settle
from cascade.observability import logger
from cascade.policy import parse_time
from cascade.store import STEP_RANK, CascadeStore, default_store, stream_image

# The funnel: delivered ⊇ read ⊇ each of clicked, replied and confirmed. A reaction passes
# delivered and read (a read without a delivery receipt was delivered too), but none of the
# reactions implies another: a pressed 1 is no click, an SMS reply is no click.
PASSED = ("delivered", "read")
ANSWERS = ("clicked", "replied", "confirmed")
FUNNEL = (*PASSED, *ANSWERS)
SIGNAL_STATUS = {"delivered": "delivered", "read": "read", "clicked": "clicked", "replied": "replied",
                 "confirmed": "confirmed"}
REACTIONS = frozenset({"read", "clicked", "replied", "confirmed"})
# Skipped by a policy that protects the customer (reports call these suppressed).
SUPPRESSED = frozenset({"test_mode", "no_consent", "opted_out", "frequency_cap"})
TTS_PER_OCTAVE = 8  # time-to-success buckets: 8 per doubling, about 9 % wide


@dataclass
class Change:
    """Counters to add once: ``marker`` names what they count."""

    marker: str
    scenario: str
    day: str
    counts: dict[str, int]
    reacts: dict[str, str] | None = None  # {"recipient_id", "channel", "at"}
    contact: dict[str, str] | None = None  # {"recipient_id", "channel", "at", "event": "sent" | "reaction"}


def tts_bucket(seconds: float) -> int:
    return int(TTS_PER_OCTAVE * math.log2(1 + max(0.0, seconds)))


def bucket_seconds(bucket: int) -> float:
    """A bucket's middle, in seconds."""
    return float(2 ** ((bucket + 0.5) / TTS_PER_OCTAVE) - 1)


def changes(record: dict[str, Any], time_scale: float = 1.0) -> list[Change]:
    """What one stream record adds to the counters (nothing for most records)."""
    ddb = record.get("dynamodb") or {}
    keys = stream_image(ddb.get("Keys")) or {}
    pk, sk = str(keys.get("pk", "")), str(keys.get("sk", ""))
    new, old = stream_image(ddb.get("NewImage")), stream_image(ddb.get("OldImage"))
    name = record.get("eventName")
    if pk.startswith("C#") and sk == "C":
        return _cascade(name, old, new, time_scale)
    if sk.startswith("T#") and name == "INSERT" and new and new.get("day"):
        return _touch(f"{pk}#{sk}", new)
    return []


def _arm(item: dict[str, Any], counter: str, n: int = 1) -> dict[str, int]:
    return {f"arm#{item['arm']}#{counter}": n} if item.get("arm") else {}


def _cascade(name: Any, old: dict[str, Any] | None, new: dict[str, Any] | None, time_scale: float) -> list[Change]:
    item = new or old
    if not item or "scenario_id" not in item or "created_at" not in item:
        return []
    cid, scenario, day = str(item["cascade_id"]), str(item["scenario_id"]), str(item["created_at"])[:10]
    if name == "INSERT" and new:
        return [Change(f"{cid}#started", scenario, day, {"cascades": 1, **_arm(new, "cascades")})]
    if name == "REMOVE" and old and old.get("status") == "running":
        return [Change(f"{cid}#discarded", scenario, day, {"cascades": -1, **_arm(old, "cascades", -1)})]
    if name != "MODIFY" or not old or not new or old.get("status") != "running" or new.get("status") == "running":
        return []
    status = str(new["status"])
    counts = {f"ended#{status}": 1}
    found: list[Change] = []
    if status == "succeeded":
        counts.update({"successes": 1, **_arm(new, "successes")})
        step = _success_step(new)
        if step is not None:
            counts[f"s#{step}#{new['steps'][step]['channel']}#successes"] = 1
        if new.get("finished_at"):
            elapsed = parse_time(new["finished_at"]) - parse_time(new["created_at"])
            seconds = elapsed.total_seconds() * time_scale
            counts.update({f"tts#{tts_bucket(seconds)}": 1, "tts_n": 1, "tts_sum_s": round(seconds)})
        found.append(_reached(cid, scenario, day, new))
    return [Change(f"{cid}#finished", scenario, day, counts), *found]


def _success_step(cascade: dict[str, Any]) -> int | None:
    """The step that succeeded: named by the signal, else the last one that went out."""
    if cascade.get("success_step") is not None:
        return int(cascade["success_step"])
    sent = [s["index"] for s in cascade.get("steps", []) if s.get("sent_at")]
    return int(max(sent)) if sent else None


def _reached(cid: str, scenario: str, day: str, item: dict[str, Any]) -> Change:
    return Change(f"{cid}#reached", scenario, day, {"reached": 1, **_arm(item, "reached")})


def _touch(key: str, t: dict[str, Any]) -> list[Change]:
    prefix = f"s#{t['step']}#{t['channel']}#"
    kind, status = t.get("kind"), str(t.get("status"))
    counts: dict[str, int] = {}
    found: list[Change] = []
    if kind == "sent":
        price = int(t.get("price_u") or 0)
        counts = {prefix + "sent": 1, prefix + "parts": int(t.get("parts") or 1), prefix + "cost_u": price,
                  "cost_u": price, **_arm(t, "cost_u", price)}
    elif kind == "failed":
        counts = {prefix + "failed": 1}
    elif kind == "skipped":
        counts = {prefix + ("suppressed" if status in SUPPRESSED else "skipped"): 1}
    elif kind == "signal" and t.get("moved"):
        if status == "failed":
            counts = {prefix + "failed": 1}
        elif status in SIGNAL_STATUS:
            before = STEP_RANK.get(str(t.get("from")), STEP_RANK["sent"])
            after = STEP_RANK[SIGNAL_STATUS[status]]
            counts = {prefix + stage: 1 for stage in PASSED if before < STEP_RANK[stage] <= after}
            if status in ANSWERS:  # a step's status only rises, so each reaction counts once per step
                counts[prefix + status] = 1
        if status in REACTIONS:
            found.append(_reached(str(t["cascade_id"]), str(t["scenario"]), str(t["day"]), t))
    if not counts and not found:
        return []
    reacts = ({"recipient_id": str(t["recipient_id"]), "channel": str(t["channel"]), "at": str(t["at"])}
              if kind == "signal" and t.get("moved") and status in REACTIONS and t.get("recipient_id") else None)
    contact = None
    if t.get("recipient_id") and t["channel"] in COUNTED and (kind == "sent" or reacts):
        contact = {"recipient_id": str(t["recipient_id"]), "channel": str(t["channel"]), "at": str(t["at"]),
                   "event": "sent" if kind == "sent" else "reaction"}
    return [Change(key, str(t["scenario"]), str(t["day"]), counts, reacts, contact), *found]


def apply(change: Change, store: CascadeStore) -> bool:
    """Count ``change`` once. False if it had been counted already."""
    contact = change.contact
    counted = store.count_once(change.marker, change.scenario, change.day, change.counts, change.reacts,
                               contact if contact and contact["event"] == "reaction" else None)
    if counted and contact:
        if contact["event"] == "sent":  # after the marker: a crash in between loses a send, never counts one twice
            store.count_contact_send(contact)
        settle(store, contact["recipient_id"], contact["channel"], at=contact["at"])  # inactive, or active again
    return counted


def handle(event: dict[str, Any], store: CascadeStore | None = None,
           time_scale: float | None = None) -> dict[str, Any]:
    """A batch of stream records. Stops at the first record it cannot count and names it in
    ``batchItemFailures``: the event source mapping retries from there, in order."""
    if time_scale is None:
        from cascade.settings import settings

        time_scale = settings().time_scale
    store = store or default_store()
    counted = skipped = 0
    for record in event.get("Records", []):
        try:
            for change in changes(record, time_scale):
                if apply(change, store):
                    counted += 1
                else:
                    skipped += 1
        except Exception:
            logger.exception("could not count a stream record", event_id=record.get("eventID"))
            sequence = (record.get("dynamodb") or {}).get("SequenceNumber")
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    if counted or skipped:
        logger.debug("counted", changes=counted, already_counted=skipped)
    return {"batchItemFailures": []}


__all__ = ["FUNNEL", "REACTIONS", "SUPPRESSED", "Change", "apply", "bucket_seconds", "changes", "handle", "tts_bucket"]
