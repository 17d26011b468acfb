"""The recorded facts: one touch item for every message sent, skipped or failed and for every
signal, written where it happens (engine, signals, consent, WhatsApp's fallback).

A touch lives under its recipient (``R#<recipient_id>`` / ``T#<at>#<cascade_id>#<step>#<kind>#<status>``:
the customer card is one query) and carries the scenario and the day its cascade started
(``sd`` = ``<scenario>#<day>``, the ``ByScenarioDay`` index: a day's facts of one scenario). A
cascade's whole funnel counts on the day it started, so a report for a day range reads whole
cascades. The table's stream carries each new touch to :mod:`cascade.aggregate`, which keeps the
report's counters; the cascade item itself tells when a cascade started and how it ended.

What a touch records beyond its kind and status:

- ``sent``: ``provider``, ``parts`` (SMS parts, else 1), ``price_u`` (what the message cost, from
  :mod:`cascade.prices`, in millionths of the currency: the table keeps no floats) and ``summary`` (the text as sent, up to 480 characters: a whole SMS of up to
  seven parts, any messenger message or call script of the presets, an e-mail's subject and its
  first lines; none for scenarios with secret data such as an OTP code);
- ``signal``: ``from`` (the step's status before) and ``moved`` (whether the signal moved the step
  forward: a late ``delivered`` after ``read`` moves nothing and counts nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cascade import prices
from cascade.segments import sms_info

if TYPE_CHECKING:
    from cascade.channels.base import Channel, Outgoing

SUMMARY_CHARS = 480


def day_of(cascade: dict[str, Any]) -> str:
    """The day (UTC) a cascade started: its facts count on that day."""
    return str(cascade["created_at"])[:10]


def touch(cascade: dict[str, Any], step: int, channel: str, kind: str, status: str, *, at: str,
          **extra: Any) -> dict[str, Any]:
    """A touch of ``cascade``'s step, ready for :meth:`cascade.store.CascadeStore.put_touch`."""
    return {
        "at": at, "cascade_id": cascade["cascade_id"], "scenario": cascade["scenario_id"], "step": step,
        "channel": channel, "kind": kind, "status": status, "recipient_id": cascade["recipient"]["id"],
        "day": day_of(cascade), **({"arm": cascade["arm"]} if cascade.get("arm") else {}),
        **{k: v for k, v in extra.items() if v is not None},
    }


def sent(adapter: Channel, message: Outgoing, secret: bool) -> dict[str, Any]:
    """What a sent message adds to its touch: provider, parts, price and a summary."""
    parts = sms_info(message.text)["parts"] if adapter.name == "sms" else 1
    summary = None if secret else " ".join(f"{message.subject or ''} {message.text}".split())[:SUMMARY_CHARS]
    return {"provider": adapter.provider, "parts": parts, "price_u": micros(prices.cost(adapter.name, parts)),
            "summary": summary}


def micros(amount: float) -> int:
    return round(amount * 1_000_000)


def amount(micro_units: int) -> float:
    return round(micro_units / 1_000_000, 6)


__all__ = ["SUMMARY_CHARS", "amount", "day_of", "micros", "sent", "touch"]
