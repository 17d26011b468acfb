"""Scenario reports from the counters :mod:`cascade.aggregate` keeps: one query per counter shard
(and one for the counters of before the shards) per report, whatever the number of cascades (a
report reads one item per day of its range and shard, added up by day in the store).

``GET /v1/reports/scenarios/{id}?from=YYYY-MM-DD&to=YYYY-MM-DD`` counts the cascades that started
on those days (UTC; default: the last 30 days), with everything that happened to them since.

- ``steps``: one row per step and channel (a step sent on an alternative channel has a row of its
  own): sent, delivered, read, clicked, replied, confirmed, failed, skipped, suppressed, the
  successes attributed to it (the cascade's success came from its message) and what it cost.
  The funnel is cumulative only where it is true: delivered ⊇ read ⊇ each of clicked, replied and
  confirmed (a reaction was read and delivered; a pressed 1 is no click and no reply).
- ``totals``: cascades; ``reached`` (the customer reacted to something: read, clicked, replied,
  confirmed, or the cascade succeeded) and ``reach`` (its share); ``successes`` (cascades that
  ended succeeded); cost; cost per success; median time to success (cascade time, from a
  histogram with buckets about 9 % wide).
- ``baseline``: what step 1 alone achieved - its successes, reach and cost - the single-channel
  mailing the cascade replaces.
- ``adaptive``: for scenarios with adaptive order, the same totals for the adaptive cascades and
  the holdout that kept the static order, and the difference.

``?format=csv`` gives the step rows (``step`` counted from 1) and a total row."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from cascade import prices, wording
from cascade.aggregate import bucket_seconds
from cascade.errors import FieldError
from cascade.facts import amount
from cascade.store import CascadeStore, default_store

COUNTERS = ("sent", "delivered", "read", "clicked", "replied", "confirmed", "failed", "skipped", "suppressed",
            "successes")
DEFAULT_DAYS = 30
MAX_DAYS = 366
ARMS = ("adaptive", "holdout")


def day_range(from_day: str | None, to_day: str | None, today: datetime | None = None) -> tuple[str, str]:
    """The report's days; 422 naming ``from`` or ``to`` when they are not dates or not in order."""
    end = _day("to", to_day) if to_day else (today or datetime.now(UTC)).date()
    start = _day("from", from_day) if from_day else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise FieldError("from", "must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise FieldError("from", f"a report covers at most {MAX_DAYS} days")
    return start.isoformat(), end.isoformat()


def _day(name: str, value: str) -> Any:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise FieldError(name, "must be a date like 2026-11-23") from None


def _sum(items: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for item in items:
        for key, value in item.items():
            if key not in ("pk", "sk") and isinstance(value, int):
                total[key] = total.get(key, 0) + value
    return total


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _per(cost_u: int, successes: int) -> float | None:
    return amount(round(cost_u / successes)) if successes else None


def _median_seconds(c: dict[str, int]) -> int | None:
    buckets = sorted((int(k[4:]), n) for k, n in c.items() if k.startswith("tts#") and n > 0)
    total = sum(n for _, n in buckets)
    if not total:
        return None
    seen = 0
    for bucket, n in buckets:
        seen += n
        if seen * 2 >= total:
            return round(bucket_seconds(bucket))
    return None  # pragma: no cover - the loop always reaches half


def _steps(c: dict[str, int]) -> list[dict[str, Any]]:
    rows: dict[tuple[int, str], dict[str, int]] = {}
    for key, value in c.items():
        parts = key.split("#")
        if len(parts) == 4 and parts[0] == "s":
            rows.setdefault((int(parts[1]), parts[2]), {})[parts[3]] = value
    return [{"index": index, "channel": channel, **{k: row.get(k, 0) for k in COUNTERS},
             "parts": row.get("parts", 0), "cost": amount(row.get("cost_u", 0))}
            for (index, channel), row in sorted(rows.items())]


def _totals(c: dict[str, int], prefix: str = "") -> dict[str, Any]:
    cascades, reached, successes = (c.get(prefix + k, 0) for k in ("cascades", "reached", "successes"))
    cost_u = c.get(prefix + "cost_u", 0)
    return {"cascades": cascades, "reached": reached, "reach": _share(reached, cascades), "successes": successes,
            "success_rate": _share(successes, cascades), "cost": amount(cost_u),
            "cost_per_success": _per(cost_u, successes)}


def scenario_report(scenario_id: str, from_day: str, to_day: str,
                    store: CascadeStore | None = None) -> dict[str, Any]:
    """The report of the cascades of ``scenario_id`` that started from ``from_day`` to ``to_day``."""
    store = store or default_store()
    return summarise(scenario_id, from_day, to_day, store.aggregates(scenario_id, from_day, to_day))


def summarise(scenario_id: str, from_day: str, to_day: str, counters: list[dict[str, Any]]) -> dict[str, Any]:
    """The report from the scenario's counter items of those days."""
    c = _sum(counters)
    steps = _steps(c)
    totals = {**_totals(c), "median_time_to_success_s": _median_seconds(c)}
    first = [s for s in steps if s["index"] == 0]
    base = max(first, key=lambda s: s["sent"]) if first else None
    baseline = {
        "channel": base["channel"] if base else None, "sent": base["sent"] if base else 0,
        "successes": base["successes"] if base else 0,
        "reach": _share(base["successes"], totals["cascades"]) if base else 0.0,
        "cost": base["cost"] if base else 0.0,
        "cost_per_success": (round(base["cost"] / base["successes"], 6) if base and base["successes"] else None),
    }
    report: dict[str, Any] = {
        "scenario": scenario_id, "from": from_day, "to": to_day, "currency": prices.currency(),
        "totals": totals, "steps": steps, "baseline": baseline,
        "ended": {k.split("#", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("ended#")},
    }
    if any(k.startswith("arm#") for k in c):
        arms = {arm: _totals(c, f"arm#{arm}#") for arm in ARMS}
        a, h = arms["adaptive"], arms["holdout"]
        arms["uplift"] = {"reach": round(a["reach"] - h["reach"], 4),
                          "success_rate": round(a["success_rate"] - h["success_rate"], 4)}
        report["adaptive"] = arms
    return report


def channel_history(scenario_id: str, store: CascadeStore | None = None, days: int = 90,
                    today: datetime | None = None) -> dict[str, dict[str, int]]:
    """Per channel, over the scenario's last ``days`` days: messages sent and the successes they
    brought (the forecast's observed rates)."""
    store = store or default_store()
    end = (today or datetime.now(UTC)).date()
    c = _sum(store.aggregates(scenario_id, (end - timedelta(days=days - 1)).isoformat(), end.isoformat()))
    history: dict[str, dict[str, int]] = {}
    for row in _steps(c):
        seen = history.setdefault(row["channel"], {"sent": 0, "successes": 0})
        seen["sent"] += row["sent"]
        seen["successes"] += row["successes"]
    return history


CSV_COLUMNS = ("step", "channel", *COUNTERS, "cost")


def report_csv(report: dict[str, Any]) -> str:
    """The step rows of a report, and a total row, as CSV. A spreadsheet is read by people: its
    ``step`` counts from 1, as the dashboard and the operator's task do (JSON keeps ``index``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for step in report["steps"]:
        writer.writerow([wording.step_number(step["index"]), *(step[k] for k in CSV_COLUMNS[1:])])
    total = {k: sum(s[k] for s in report["steps"]) for k in COUNTERS}
    total["successes"] = report["totals"]["successes"]
    writer.writerow(["total", "", *(total[k] for k in COUNTERS), report["totals"]["cost"]])
    return out.getvalue()


__all__ = ["COUNTERS", "CSV_COLUMNS", "channel_history", "day_range", "report_csv", "scenario_report", "summarise"]
