"""Adaptive order: a cascade starts on the channel this customer has reacted on before.

Opt-in per scenario (``adaptive: {enabled: true, holdout: 0.2}``). When a cascade starts:

1. **Arm.** A stable hash of the cascade id, read as a number in [0, 1), below ``holdout`` puts the
   cascade in the ``holdout`` arm (the static, cheap-first order); otherwise it is ``adaptive``.
   The cascade id is derived from the idempotency key, so a repeated event lands in the same arm,
   and over many cascades the holdout share is what was configured. The arm is stored on the
   cascade item (``arm``), where the aggregator counts reach and cost per arm: the report's uplift.
2. **Favourite channel.** For the adaptive arm, the recipient's reactions (``R#<id>`` /
   ``REACTS``, kept by the aggregator from the stream: reactions per channel, ``last_channel``)
   name the channel with the most reactions; a tie goes to the channel of the latest reaction,
   and a tie it does not settle, or no reactions at all, changes nothing.
3. **Reorder.** If a step of the scenario has that channel as its own channel (not as an
   alternative) and the recipient has the contact for it, the first such step moves to the front;
   the others keep their order. The cascade's ``steps`` and the workflow's timers are built from
   the reordered scenario, and the engine loads it reordered by ``step_order`` (the scenario's step
   indices in the order they run), so it walks it like any other. The cascade also records
   ``adapted_from_channel``, so its view shows what moved.

Steps scheduled with ``at`` are refused with adaptive order (their time is tied to their place).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from cascade.scenarios import CHANNELS, CONTACT_FIELD, Scenario

Arm = Literal["adaptive", "holdout"]


@dataclass(frozen=True)
class Plan:
    """The scenario a cascade runs and what to record on its item (empty when not adaptive)."""

    scenario: Scenario
    fields: dict[str, Any] = field(default_factory=dict)


def arm_for(cascade_id: str, holdout: float) -> Arm:
    """``holdout`` for a stable ``holdout`` share of cascade ids, ``adaptive`` for the rest."""
    digest = hashlib.sha256(b"arm:" + cascade_id.encode()).digest()
    return "holdout" if int.from_bytes(digest[:8], "big") / 2**64 < holdout else "adaptive"


def favourite_channel(reactions: dict[str, Any]) -> str | None:
    """The channel the recipient reacted on most (a tie: the latest reaction's), or None."""
    counts = {c: int(reactions[c]) for c in CHANNELS if isinstance(reactions.get(c), int) and reactions[c] > 0}
    if not counts:
        return None
    top = max(counts.values())
    tied = [c for c, n in counts.items() if n == top]
    if len(tied) == 1:
        return tied[0]
    last = reactions.get("last_channel")
    return last if last in tied else None


def reorder(scenario: Scenario, channel: str, recipient: dict[str, Any]) -> tuple[Scenario, list[int]] | None:
    """The scenario with its first step on ``channel`` moved to the front, and the original step
    indices in their new order; None if no step can move (none on it, no contact, already first)."""
    if not recipient.get(CONTACT_FIELD[channel]):
        return None
    index = next((i for i, step in enumerate(scenario.steps) if step.channel == channel), None)
    if not index:  # None, or already the first step
        return None
    order = [index, *(i for i in range(len(scenario.steps)) if i != index)]
    return scenario.model_copy(update={"steps": [scenario.steps[i] for i in order]}), order


def plan(cascade_id: str, scenario: Scenario, recipient: dict[str, Any], store: Any) -> Plan:
    """The order a new cascade runs in (``recipient``: the event's, with bound contacts)."""
    if scenario.adaptive is None or not scenario.adaptive.enabled:
        return Plan(scenario)
    arm = arm_for(cascade_id, scenario.adaptive.holdout)
    if arm == "holdout":
        return Plan(scenario, {"arm": arm})
    channel = favourite_channel(store.get_reactions(recipient["id"]))
    moved = None if channel is None else reorder(scenario, channel, recipient)
    if moved is None:
        return Plan(scenario, {"arm": arm})
    reordered, order = moved
    return Plan(reordered, {"arm": arm, "adapted_from_channel": channel, "step_order": order})


__all__ = ["Arm", "Plan", "arm_for", "favourite_channel", "plan", "reorder"]
