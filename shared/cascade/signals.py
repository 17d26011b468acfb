"""What customers do: a provider's signal moves a step forward and, if it is one of the
scenario's success signals, stops the cascade at once."""

from __future__ import annotations

from typing import Any

from cascade import aws, consent, contacts, facts, intents
from cascade.channels.base import Signal
from cascade.errors import Conflict, FieldError, NotFound
from cascade.observability import logger
from cascade.planning import hashed
from cascade.scenario_store import of_cascade
from cascade.store import STEP_RANK, CascadeStore, default_store, now_iso

# A signal's effect on the step's status: each says what it is (a pressed 1 is no reply).
STEP_STATUS = {"delivered": "delivered", "read": "read", "clicked": "clicked", "replied": "replied",
               "confirmed": "confirmed"}
ANSWERS = ("replied", "confirmed")  # the customer answered: the step keeps the reply and its intent


def stop(cascade_id: str, status: str, reason: str | None, store: CascadeStore | None = None,
         step: int | None = None) -> bool:
    """End a running cascade now (``step``: the step whose signal succeeded). False if it had
    already ended."""
    store = store or default_store()
    old = store.finish(cascade_id, status, reason, now_iso(), success_step=step)
    if old is None:
        return False
    token = old.get("task_token")
    if token:
        aws.resume(token, {"status": status, "stop_reason": reason})
    logger.info("cascade stopped", cascade_id=cascade_id, status=status, stop_reason=reason)
    return True


def locate(sig: Signal, store: CascadeStore) -> dict[str, Any] | None:
    """Which cascade step a provider's signal is about."""
    if sig.provider_message_id:
        ref = store.get_message(sig.provider_message_id, sig.channel)
        if ref:
            return {**ref, "provider_message_id": sig.provider_message_id}
    if sig.chat_id:
        chat = sig.chat_id if sig.channel == "telegram" else hashed(sig.chat_id)
        return store.get_last_chat_message(sig.channel, chat)
    return None


def receive(sig: Signal, store: CascadeStore | None = None) -> str | None:
    """Apply a provider's signal. Returns the cascade id it belonged to, if any."""
    store = store or default_store()
    ref = locate(sig, store)
    if ref is None:
        logger.info("signal for an unknown message", channel=sig.channel, signal=sig.signal)
        return None
    if consent.stops(sig):  # STOP opts out of the channel; it is not a success reply
        consent.stop_reply(sig, ref, store)
        return str(ref["cascade_id"])
    if consent.starts(sig):  # START lifts the opt-out; it is not a success reply either
        consent.start_reply(sig, ref, store)
        return str(ref["cascade_id"])
    contacts.heard(sig, ref, store)  # a hard bounce, an unknown number: the contact is invalid
    apply(ref["cascade_id"], int(ref["step"]), sig.signal, store, ref.get("provider_message_id"), sig.text)
    return str(ref["cascade_id"])


REPLY_CHARS = 500


def apply(cascade_id: str, index: int, signal: str, store: CascadeStore,
          provider_message_id: str | None = None, text: str | None = None) -> None:
    cascade = store.get(cascade_id)
    if cascade is None:
        return
    step = cascade["steps"][index]
    channel_name = step["channel"]
    scenario = of_cascade(cascade, store).model_dump(mode="json")
    if scenario.get("secret_data"):
        text = None  # a customer may type the code back: such a scenario keeps no replies
    intent = answer_intent(signal, text, scenario, cascade["recipient"].get("locale"))
    if signal == "failed":
        moved = store.set_step(cascade_id, index, status="failed", reason="provider_reported",
                               only_from=("sent", "delivered"))
    else:
        new = STEP_STATUS[signal]
        lower = tuple(s for s, rank in STEP_RANK.items() if rank < STEP_RANK[new] and s not in ("pending",))
        reply = text[:REPLY_CHARS] if text and signal in ANSWERS else None
        moved = store.set_step(cascade_id, index, status=new, only_from=lower, reply=reply, intent=intent)
        if not moved and signal in ANSWERS and step["status"] in ANSWERS and (intent or not step.get("intent")):
            # A later answer on an answered step: the step shows it (an answer with an intent is
            # not overwritten by one without); the funnel counted the step once already.
            store.set_step(cascade_id, index, status=step["status"], only_from=(step["status"],), reply=reply,
                           intent=intent)
    store.put_touch(cascade["recipient"]["id"], facts.touch(
        cascade, index, channel_name, "signal", signal, at=now_iso(), provider_message_id=provider_message_id,
        text=text[:REPLY_CHARS] if text else None, intent=intent, moved=moved, **{"from": step["status"]}))
    logger.info("signal", cascade_id=cascade_id, step=index, channel=channel_name, signal=signal, intent=intent,
                moved=moved)
    if cascade["status"] != "running":
        return
    won = success_of(scenario["success"], signal, intent)
    if won is not None:
        stop(cascade_id, "succeeded", won, store, step=index)
    elif signal == "failed" and cascade.get("current_step") == index and cascade.get("task_token"):
        # The provider gave up on the message we are waiting on: no point waiting out the timer.
        aws.escalate(cascade["task_token"], "provider_reported_failure")


def answer_intent(signal: str, text: str | None, scenario: dict[str, Any], locale: str | None) -> str | None:
    """What an answer means: a confirmation is ``confirm``; a reply (or a pressed key other than
    1) has the scenario's intent whose keywords it carries, if any."""
    if signal == "confirmed":
        return intents.CONFIRM
    if signal != "replied" or not text:
        return None
    known = scenario.get("reply_intents") or {}
    if not known:
        return None
    # The locale the cascade wrote in (as planning.pick_locale chose it).
    available = scenario["steps"][0]["template"]
    chosen = next((c for c in (locale, (locale or "").split("-")[0], scenario.get("default_locale"), "en")
                   if c and c in available), "en")
    return intents.match(text, known, chosen)


def success_of(success: list[str], signal: str, intent: str | None) -> str | None:
    """The success signal this signal is (``replied:<intent>`` for an answer with that intent),
    or None: a reply with no intent does not end a cascade that waits for one."""
    if signal in success:
        return signal
    if signal in ANSWERS and intent is not None and f"replied:{intent}" in success:
        return f"replied:{intent}"
    return None


def report(signal: str, cascade_id: str | None, provider_message_id: str | None,
           store: CascadeStore | None = None) -> tuple[str, int]:
    """A signal reported through the API. Returns (cascade id, step) it was applied to."""
    store = store or default_store()
    if provider_message_id is not None:
        ref = store.get_message(provider_message_id)
        if ref is None:
            raise NotFound(f"no message {provider_message_id!r}")
        if cascade_id is not None and cascade_id != ref["cascade_id"]:
            raise FieldError("cascade_id", "is not the cascade of that provider_message_id")
        cascade_id, index = str(ref["cascade_id"]), int(ref["step"])
    else:
        assert cascade_id is not None
        cascade = store.get(cascade_id)
        if cascade is None:
            raise NotFound(f"no cascade {cascade_id!r}")
        sent = [s["index"] for s in cascade["steps"] if s.get("provider_message_id")]
        if not sent:
            raise Conflict("nothing has been sent in this cascade yet")
        index = max(sent)
    apply(cascade_id, index, signal, store, provider_message_id)
    return cascade_id, index


def click(token: str, store: CascadeStore | None = None) -> str | None:
    """A tracked link was opened: record ``clicked`` and return where to send the browser."""
    store = store or default_store()
    link = store.get_link(token)
    if link is None:
        return None
    apply(link["cascade_id"], int(link["step"]), "clicked", store)
    return str(link["url"])


__all__ = ["answer_intent", "apply", "click", "locate", "receive", "report", "stop", "success_of"]
