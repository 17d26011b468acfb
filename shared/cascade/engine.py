"""One step of a cascade, as the workflow asks for it: send, skip, or close.

The workflow calls :func:`advance` with a task token and waits on it for the step's timer.
Here we either keep the wait (message sent), end it with *escalate* (nothing to wait for: no
contact, permanent failure), or end it with *resume* (the cascade is over)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cascade import aws, contacts, facts, policy, secret_data
from cascade.channels import Channel, Outgoing, Sent, channel
from cascade.circuit import CircuitState, default_circuit
from cascade.errors import PermanentSendError, RetryableSendError
from cascade.models import RecipientIn
from cascade.observability import logger, mask
from cascade.planning import capped_waits, expired, hashed, pick_locale, real_seconds, ttl_seconds
from cascade.rendering import holds, render, render_string, track_links
from cascade.scenario_store import of_cascade
from cascade.scenarios import CONTACT_FIELD, Scenario
from cascade.settings import settings
from cascade.store import CascadeStore, default_store, now_iso


def advance(cascade_id: str, index: int, token: str, store: CascadeStore | None = None) -> str:
    """Run step ``index``. Returns what happened: sent, skipped, failed, closed or stopped."""
    started = time.monotonic()  # the step's timer started when the workflow invoked us
    store = store or default_store()
    cascade = store.get(cascade_id)
    if cascade is None or cascade["status"] != "running":
        aws.resume(token, {"status": cascade["status"] if cascade else "missing"})
        return "stopped"
    if index > 0 and cascade["steps"][index - 1]["status"] == "pending":
        # Its timer ran out before it ran (a late invocation): it never will, and nothing went out.
        store.set_step(cascade_id, index - 1, status="not_sent", reason="timer", only_from=("pending",))
    elif index > 0 and cascade["steps"][index - 1]["status"] == "sending":
        # A previous attempt that died mid-send (or ran out of retries) left its step behind.
        store.set_step(cascade_id, index - 1, status="failed", reason="send_failed", only_from=("sending",))
    scenario = of_cascade(cascade, store)
    if scenario.ttl is not None and _expired(cascade, scenario, index):
        if store.finish(cascade_id, "expired", "ttl", now_iso()) is not None:
            logger.info("cascade expired", cascade_id=cascade_id, step=index)
        aws.resume(token, {"status": "expired"})
        return "closed"
    if index >= len(scenario.steps):
        if store.finish(cascade_id, "exhausted", None, now_iso()) is not None:
            logger.info("cascade exhausted", cascade_id=cascade_id)
        aws.resume(token, {"status": "exhausted"})
        return "closed"

    step = scenario.steps[index]
    recipient = cascade["recipient"]
    context = _context(cascade, scenario, index)
    # The step's channel, or the first alternative the recipient can be reached on whose
    # provider is not down and that the policies allow.
    reachable = [n for n in step.channels if recipient.get(CONTACT_FIELD[n])]
    circuit = default_circuit(store)
    name, health, reasons = None, CircuitState(), [] if reachable else ["no_contact"]
    known = contacts.screen(store, recipient, reachable)  # a contact a provider refused for good is passed over
    if reachable and not (reachable := [n for n in reachable if not known.invalid(n)]):
        reasons = ["invalid_contact"]
    held: policy.Decision | None = None
    if step.when and not holds(step.when, context):
        reachable, reasons = [], ["condition"]
    clock = policy.cascade_now(cascade, settings().time_scale, shift_seconds=settings().clock_shift_seconds)
    was_deferred = cascade["steps"][index]["status"] == "deferred"
    for candidate in reachable:
        health = circuit.state(candidate)
        if not circuit.allows(candidate, health):
            reasons.append("provider_down")
            continue
        decision = policy.decide(policy.StepContext(cascade, scenario, step, index, candidate, clock, store,
                                                    was_deferred, settings().time_scale))
        if decision.action == "skip":
            reasons.append(decision.reason or "policy")
            continue
        if decision.action == "defer":
            held = decision
        name = candidate
        break
    log: dict[str, Any] = {"cascade_id": cascade_id, "step": index, "channel": name or step.channel}
    if held is not None and held.not_before is not None:
        return _defer(store, cascade, index, token, held.not_before, held.reason or "policy", clock, log,
                      _ttl_end(cascade, scenario))
    if name is None:
        reason = reasons[0]
        if store.set_step(cascade_id, index, status="skipped", reason=reason, only_from=("pending", "deferred"),
                          drop=("not_before",)):
            _touch(store, cascade, index, step.channel, "skipped", reason)
        logger.info("step skipped", reason=reason, **log)
        aws.escalate(token, reason)
        return "skipped"
    adapter = channel(name)
    to = adapter.contact(recipient) or ""

    if store.claim_step(cascade_id, index, token, now_iso(), adapter.name) == "stopped":
        # The cascade stopped between our read and the claim: nothing goes out.
        aws.resume(token, {"status": "stopped"})
        return "stopped"

    reached_provider = False
    # Retries never outlive the step: none starts after its timer (the next step may be out by then).
    deadline = started + real_seconds(capped_waits(scenario)[index], settings().time_scale)
    try:
        message = adapter.prepare(_compose(store, cascade, scenario, index, to, adapter.max_length, context), store)
        reached_provider = True
        sent = send_with_retries(adapter, message, lambda: may_send(store, cascade_id, index, token), deadline)
    except SendStopped as exc:
        # The cascade ended, or the step's timer ran out and the next step took over (which marked
        # this one failed), before this try: nothing went out.
        store.set_step(cascade_id, index, status="not_sent", reason=exc.reason, only_from=("sending", "failed"))
        logger.info("step not sent: the cascade stopped", reason=exc.reason, **log)
        return "stopped"
    except (PermanentSendError, RetryableSendError) as exc:
        # Refused for good, or still failing after the retries: the next step goes out now.
        # Only the latter says the provider is unwell (a refusal is about this one recipient).
        if isinstance(exc, RetryableSendError):
            circuit.failed(adapter.name)
        elif reached_provider:
            circuit.succeeded(adapter.name, health)
        error = secret_data.scrub(str(exc), secret_data.open_(cascade)) if cascade.get("secret_blob") else str(exc)
        if isinstance(exc, PermanentSendError) and exc.invalid_contact:
            contacts.mark_invalid(store, recipient["id"], adapter.name, to, exc.invalid_contact)
        store.set_step(cascade_id, index, status="failed", reason=error[:200], only_from=("sending",))
        _touch(store, cascade, index, adapter.name, "failed", "send_failed")
        logger.warning("send failed, escalating", error=error, **log)
        aws.escalate(token, "send_failed")
        return "failed"

    circuit.succeeded(adapter.name, health)
    known.sent(adapter.name, to)
    now = now_iso()
    # "failed" too: a try already on its way when the next step gave up on this one still landed,
    # and the record says what the customer got.
    store.set_step(cascade_id, index, status="sent", only_from=("sending", "failed"), drop=("reason",),
                   provider_message_id=sent.provider_message_id, sent_at=now)
    ref = {"cascade_id": cascade_id, "step": index, "recipient_id": recipient["id"], "sent_at": now}
    store.put_message(adapter.name, sent.provider_message_id, ref)
    chat = sent.chat_id if adapter.name == "telegram" and sent.chat_id else hashed(to)
    store.put_last_chat_message(adapter.name, chat, {**ref, "provider_message_id": sent.provider_message_id})
    _touch(store, cascade, index, adapter.name, "sent", "sent", sent.provider_message_id, at=now,
           **facts.sent(adapter, message, bool(scenario.secret_data)))
    logger.info("step sent", provider_message_id=sent.provider_message_id, to=mask(to), **log)
    return "sent"


def _defer(store: CascadeStore, cascade: dict[str, Any], index: int, token: str, not_before: datetime, reason: str,
           clock: datetime, log: dict[str, Any], ttl_end: datetime | None = None) -> str:
    """Hold the step back until ``not_before`` (cascade time): the workflow waits, then asks again
    (sooner if the cascade's ttl runs out first: it then ends ``expired``)."""
    until = not_before.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    store.set_step(cascade["cascade_id"], index, status="deferred", reason=reason, not_before=until,
                   only_from=("pending", "deferred"))
    wake = min(not_before, ttl_end) if ttl_end is not None else not_before
    seconds = real_seconds(max(1, math.ceil((wake - clock).total_seconds())), settings().time_scale)
    logger.info("step deferred", reason=reason, not_before=until, wait_s=seconds, **log)
    aws.defer(token, seconds)
    return "deferred"


def _ttl_end(cascade: dict[str, Any], scenario: Scenario) -> datetime | None:
    """When the cascade's ttl runs out, on its clock (None without a ttl)."""
    cfg = settings()
    limit = ttl_seconds(scenario, cfg.time_scale)
    if limit is None:
        return None
    return policy.parse_time(cascade["created_at"]) + timedelta(seconds=cfg.clock_shift_seconds + limit)


def _expired(cascade: dict[str, Any], scenario: Scenario, index: int) -> bool:
    """Past the scenario's ttl, on the cascade's clock (see :func:`cascade.planning.expired`)."""
    cfg = settings()
    elapsed = policy.cascade_now(cascade, cfg.time_scale) - policy.parse_time(cascade["created_at"])
    return expired(scenario, index, elapsed.total_seconds(), cfg.time_scale)


SEND_ATTEMPTS = 3
MAX_BACKOFF_SECONDS = 8.0


class SendStopped(Exception):
    """The step may no longer send (``reason``: the cascade's stop reason, or why the step ended)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def may_send(store: CascadeStore, cascade_id: str, index: int, token: str) -> str | None:
    """None while step ``index`` may still go out: the cascade runs and the step is still ``sending``
    under this task token. Otherwise why not (the cascade's stop reason or status, or ``timer`` when
    the step's timer ran out and the next step took over). Read consistently, right before a try."""
    cascade = store.get(cascade_id)
    if cascade is None or cascade["status"] != "running":
        return _ended(cascade)
    if cascade["steps"][index]["status"] != "sending" or cascade.get("task_token") != token:
        return "timer"
    return None


def still_waiting_on(store: CascadeStore, cascade_id: str, index: int) -> str | None:
    """None while the cascade runs and waits on step ``index`` (a replacement message for a step
    already sent may still go out); otherwise why not."""
    cascade = store.get(cascade_id)
    if cascade is None or cascade["status"] != "running":
        return _ended(cascade)
    return None if cascade.get("current_step") == index else "timer"


def _ended(cascade: dict[str, Any] | None) -> str:
    """Why a cascade that no longer runs sends nothing more: its stop reason, else its status."""
    if cascade is None:
        return "missing"
    return str(cascade.get("stop_reason") or cascade["status"])


def send_with_retries(adapter: Channel, message: Outgoing, check: Callable[[], str | None] | None = None,
                      deadline: float | None = None) -> Sent:
    """Send, retrying throttling, 5xx and timeouts with capped exponential backoff; a provider's
    Retry-After is honoured (up to the cap).

    ``check`` is asked right before every try, the first included: a reason raises
    :class:`SendStopped` and nothing goes out. No retry starts after ``deadline`` (``time.monotonic``,
    the step's timer): the last error is raised instead."""
    from tenacity import Retrying, retry_if_exception_type, wait_exponential

    backoff = wait_exponential(multiplier=0.5, max=MAX_BACKOFF_SECONDS)

    def wait(state: Any) -> float:
        hinted = getattr(state.outcome.exception(), "retry_after", None) or 0
        return min(max(float(hinted), backoff(state)), MAX_BACKOFF_SECONDS)

    def stop(state: Any) -> bool:  # after the last try, or when the next would start after the deadline
        return bool(state.attempt_number >= SEND_ATTEMPTS
                    or (deadline is not None and time.monotonic() + state.upcoming_sleep > deadline))

    def note(state: Any) -> None:
        logger.info("send failed, retrying", channel=adapter.name, attempt=state.attempt_number,
                    error=str(state.outcome.exception()))

    def attempt(outgoing: Outgoing) -> Sent:
        reason = check() if check is not None else None
        if reason is not None:
            raise SendStopped(reason)
        return adapter.send(outgoing)

    retrying = Retrying(retry=retry_if_exception_type(RetryableSendError),
                        stop=stop, wait=wait, before_sleep=note,
                        reraise=True)
    return retrying(attempt, message)


def outgoing(store: CascadeStore, cascade: dict[str, Any], index: int, adapter: Channel) -> Outgoing:
    """Step ``index``'s message on ``adapter``, composed as :func:`advance` composes it: for a channel
    that sends a replacement later (WhatsApp's template after a free text refused for the 24 h window)."""
    scenario = of_cascade(cascade, store)
    to = adapter.contact(cascade["recipient"]) or ""
    return _compose(store, cascade, scenario, index, to, adapter.max_length, _context(cascade, scenario, index))


def _context(cascade: dict[str, Any], scenario: Scenario, index: int) -> dict[str, Any]:
    """What templates and ``when`` conditions see."""
    return {
        # Every recipient field exists in templates (None when not given), so that
        # `{% if recipient.name %}` works under strict undefined variables.
        "recipient": {**dict.fromkeys(RecipientIn.model_fields), **cascade["recipient"]},
        "data": json.loads(cascade["data_json"]),
        "event": {"type": cascade.get("event_type")},
        "cascade": {"id": cascade["cascade_id"], "scenario": scenario.id, "step": index,
                    "tried": [s["channel"] for s in cascade["steps"][:index] if s["status"] not in ("skipped",)]},
    }


def _compose(store: CascadeStore, cascade: dict[str, Any], scenario: Scenario, index: int, to: str,
             max_length: int, context: dict[str, Any]) -> Outgoing:
    step = scenario.steps[index]
    recipient = cascade["recipient"]
    locale = pick_locale(recipient.get("locale"), scenario)
    # Secret data (an OTP code) is opened only here, only to render; the message carries it.
    secret = secret_data.open_(cascade)
    clear = context
    context = {**context, "data": {**context["data"], **secret}} if secret else context
    try:
        subject, text = render(step, locale, context, scenario.timezone)
    except Exception as exc:  # a template that cannot render will not render on retry either
        raise PermanentSendError(secret_data.scrub(f"template: {type(exc).__name__}: {exc}", secret)) from (
            None if secret else exc)

    def remember(token: str, url: str) -> None:
        store.put_link(token, {"url": url, "cascade_id": cascade["cascade_id"], "step": index,
                               "recipient_id": recipient["id"]})

    text = track_links(text, cascade["api_base"], remember)
    if len(text) > max_length:
        raise PermanentSendError(f"text is {len(text)} characters, over the channel's limit")
    buttons: list[tuple[str, str]] = [(b.text.get(locale) or b.text.get("en") or next(iter(b.text.values())), b.signal) for b in step.buttons]
    extra: dict[str, Any] = {
        "recipient": recipient, "data": clear["data"],
        "scenario": {"id": scenario.id, "name": scenario.name, "purpose": scenario.purpose},
        "history": [{"step": s["index"], "channel": s["channel"], "status": s["status"], "sent_at": s.get("sent_at")}
                    for s in cascade["steps"][:index]],
        "steps_total": len(cascade["steps"]),
    }
    if step.whatsapp_template is not None:
        tpl = step.whatsapp_template
        try:
            params = [track_links(render_string(p, context, locale, scenario.timezone), cascade["api_base"], remember)
                      for p in tpl.params]
        except Exception as exc:
            raise PermanentSendError(secret_data.scrub(f"template: {type(exc).__name__}: {exc}", secret)) from (
                None if secret else exc)
        extra["whatsapp_template"] = {"name": tpl.name, "language": tpl.language.get(locale, locale),
                                      "params": params}
    return Outgoing(cascade_id=cascade["cascade_id"], step=index, to=to, text=text, subject=subject, buttons=buttons,
                    locale=locale, api_base=cascade["api_base"], context=extra)


def _touch(store: CascadeStore, cascade: dict[str, Any], index: int, channel_name: str, kind: str, status: str,
           provider_message_id: str | None = None, at: str | None = None, **extra: Any) -> None:
    store.put_touch(cascade["recipient"]["id"], facts.touch(
        cascade, index, channel_name, kind, status, at=at or now_iso(), provider_message_id=provider_message_id,
        **extra))


__all__ = ["SendStopped", "advance", "may_send", "send_with_retries", "still_waiting_on"]
