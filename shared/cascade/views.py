"""Read side: a cascade as the API shows it, and a recipient's timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cascade import contacts, prices, signals
from cascade.errors import Conflict, NotFound
from cascade.facts import amount
from cascade.models import CascadeList, CascadeSummary, CascadeView, ContactHealth, ReactsOn, StepView, Timeline, Touch
from cascade.scenarios import CHANNELS
from cascade.store import CascadeStore, default_store


def cascade_view(cascade_id: str, store: CascadeStore | None = None) -> CascadeView:
    store = store or default_store()
    item = store.get(cascade_id)
    if item is None:
        raise NotFound(f"no cascade {cascade_id!r}")
    steps = [
        StepView(index=s["index"], channel=s["channel"],
                 status="pending" if s["status"] == "sending" else s["status"],
                 provider_message_id=s.get("provider_message_id"), sent_at=s.get("sent_at"), reason=s.get("reason"),
                 reply=s.get("reply"), intent=s.get("intent"), not_before=s.get("not_before"))
        for s in item["steps"]
    ]
    return CascadeView(cascade_id=item["cascade_id"], scenario=item["scenario_id"],
                       scenario_version=item.get("scenario_version"), status=item["status"],
                       stop_reason=item.get("stop_reason"), recipient_id=item["recipient"]["id"],
                       created_at=item["created_at"], finished_at=item.get("finished_at"), steps=steps,
                       arm=item.get("arm"), adapted_from_channel=item.get("adapted_from_channel"),
                       step_order=item.get("step_order"))


def cancel(cascade_id: str, store: CascadeStore | None = None) -> CascadeView:
    store = store or default_store()
    if not signals.stop(cascade_id, "cancelled", "cancelled", store):
        current = cascade_view(cascade_id, store)  # 404 if unknown
        if current.status != "cancelled":
            raise Conflict(f"cascade already {current.status}")
    return cascade_view(cascade_id, store)


def timeline(recipient_id: str, store: CascadeStore | None = None) -> Timeline:
    """The customer card: every touch across cascades (what went out, on which channel, what it
    cost, what the customer did) and the channel this customer reacts on."""
    store = store or default_store()
    touches = []
    for t in store.touches(recipient_id):
        price = t.get("price_u")
        touches.append(Touch.model_validate({**t, "cost": amount(int(price)) if price is not None else None}))
    touches.sort(key=lambda t: t.at)
    reactions = store.get_reactions(recipient_id)
    counts = {k: int(v) for k, v in reactions.items() if k in CHANNELS}
    last = reactions.get("last_channel")
    best = max(counts, key=lambda ch: (counts[ch], ch == last)) if counts else None
    return Timeline(recipient_id=recipient_id, touches=touches,
                    reacts_on=ReactsOn(channel=best, counts=counts, last_channel=last,
                                       last_at=reactions.get("last_at")),
                    cost=round(sum(t.cost or 0.0 for t in touches), 6),
                    currency=prices.currency(),
                    contacts=[ContactHealth.model_validate(c) for c in contacts.card(recipient_id, store)])


def recent(scenario_id: str, status: str | None, limit: int, days: int = 7,
           store: CascadeStore | None = None) -> CascadeList:
    """A scenario's cascades of the last ``days`` days, newest first (the dashboard's live list)."""
    store = store or default_store()
    today = datetime.now(UTC).date()
    found = store.recent_cascades(scenario_id, [(today - timedelta(days=n)).isoformat() for n in range(days)],
                                  status, limit)
    return CascadeList(cascades=[CascadeSummary(
        cascade_id=c["cascade_id"], scenario=scenario_id, status=c.get("status", "running"),
        recipient_id=c.get("recipient_id"), created_at=c["created_at"], finished_at=c.get("finished_at"),
        arm=c.get("arm")) for c in found])


__all__ = ["cancel", "cascade_view", "recent", "timeline"]
