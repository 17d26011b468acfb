"""Read side: a cascade as the API shows it, and a recipient's timeline."""

from __future__ import annotations

from cascade import signals
from cascade.errors import Conflict, NotFound
from cascade.models import CascadeView, StepView, Timeline, Touch
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
                 reply=s.get("reply"), not_before=s.get("not_before"))
        for s in item["steps"]
    ]
    return CascadeView(cascade_id=item["cascade_id"], scenario=item["scenario_id"],
                       scenario_version=item.get("scenario_version"), status=item["status"],
                       stop_reason=item.get("stop_reason"), recipient_id=item["recipient"]["id"],
                       created_at=item["created_at"], finished_at=item.get("finished_at"), steps=steps)


def cancel(cascade_id: str, store: CascadeStore | None = None) -> CascadeView:
    store = store or default_store()
    if not signals.stop(cascade_id, "cancelled", "cancelled", store):
        current = cascade_view(cascade_id, store)  # 404 if unknown
        if current.status != "cancelled":
            raise Conflict(f"cascade already {current.status}")
    return cascade_view(cascade_id, store)


def timeline(recipient_id: str, store: CascadeStore | None = None) -> Timeline:
    store = store or default_store()
    touches = [Touch.model_validate(t) for t in store.touches(recipient_id)]
    touches.sort(key=lambda t: t.at)
    return Timeline(recipient_id=recipient_id, touches=touches)


__all__ = ["cancel", "cascade_view", "timeline"]
