"""Accepting events: a trigger starts exactly one cascade; a success event stops matching ones."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from cascade import adaptive, aws, reach, secret_data, signals
from cascade.errors import Conflict, FieldError, ValidationFailed
from cascade.models import EventIn
from cascade.observability import logger
from cascade.planning import body_hash, hashed, new_cascade_id, workflow_input
from cascade.rendering import LINK_FIELD, link_problem
from cascade.scenario_store import Catalog, Versioned, catalog, of_cascade, ref_of
from cascade.scenarios import CONTACT_FIELD, Scenario
from cascade.settings import settings
from cascade.store import CascadeStore, default_store, now_iso


def parse_event(raw: Any) -> EventIn:
    try:
        return EventIn.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None


def accept(raw: Any, api_base: str, store: CascadeStore | None = None) -> dict[str, Any]:
    """Handle one posted event. Returns the 202 body."""
    store = store or default_store()
    event = parse_event(raw)
    # Presets, overridden or joined by scenarios saved through the API (one read of the index).
    scenarios = catalog(store)
    chosen = _scenario_for(event, scenarios)
    # A running cascade stops on its own version's events, even if a later save dropped this one
    # (looked up only for an event that would otherwise be refused).
    stoppers = bool(scenarios.stopped_by(event.type)) or (chosen is None and _stops_running(event, store))
    if chosen is None and not stoppers:
        raise FieldError("type", f"no scenario starts or stops on {event.type!r}")
    answer: dict[str, Any] = {}
    if stoppers:
        answer["stopped"] = stop_matching(event, store)
    if chosen is not None:
        answer.update(start(event, chosen.scenario, raw, api_base, store, scenario_version=chosen.version,
                            scenario_ref=ref_of(chosen, store)))
    return answer


def _stops_running(event: EventIn, store: CascadeStore) -> bool:
    return any(event.type in item.get("stop_events", []) for item in store.open_cascades(event.recipient.id))


def _scenario_for(event: EventIn, scenarios: Catalog) -> Versioned | None:
    if event.scenario is None:
        return scenarios.by_trigger(event.type)
    scenario = scenarios.get(event.scenario)
    if scenario is None:
        raise FieldError("scenario", f"unknown scenario {event.scenario!r}")
    if event.type not in scenario.scenario.triggers:
        if event.type in scenario.scenario.stop_events:
            return None  # its success event, naming it: stops its cascades, starts none
        raise FieldError("scenario", f"scenario {event.scenario!r} starts on "
                                     f"{', '.join(map(repr, scenario.scenario.triggers))}, not on {event.type!r}")
    return scenario


def _check_fits(event: EventIn, scenario: Scenario) -> None:
    problems = [
        {"field": f"data.{name}", "message": f"required by scenario {scenario.id}"}
        for name in scenario.data_fields() if event.data.get(name) in (None, "")
    ]
    links = {name: link_problem(value) for name, value in event.data.items()
             if LINK_FIELD.match(name) and value not in (None, "")}
    problems += [{"field": f"data.{name}", "message": problem} for name, problem in links.items() if problem]
    recipient = event.recipient.model_dump()
    fields = sorted({CONTACT_FIELD[name] for step in scenario.steps for name in step.channels})
    if not any(recipient.get(name) for name in fields):
        problems.append({"field": "recipient", "message": f"needs at least one of {', '.join(fields)}"})
    if problems:
        raise ValidationFailed(problems)


def start(event: EventIn, scenario: Scenario, raw: Any, api_base: str, store: CascadeStore,
          scenario_version: int = 0, scenario_ref: str | None = None) -> dict[str, Any]:
    # Contacts bound earlier (binding links) fill in what the event does not carry.
    bound = {k: v for k, v in store.contacts(event.recipient.id).items()
             if k in type(event.recipient).model_fields and getattr(event.recipient, k) is None}
    if bound:
        event = event.model_copy(update={"recipient": event.recipient.model_copy(update=bound)})
    _check_fits(event, scenario)
    cfg = settings()
    cascade_id = new_cascade_id(event.idempotency_key)
    # Adaptive order (opt-in): the channel this recipient reacts on first, unless in the holdout.
    adapted = adaptive.plan(cascade_id, scenario, event.recipient.model_dump(), store)
    scenario = adapted.scenario
    fingerprint = body_hash(raw, scenario.secret_data)
    correlation_value = str(event.data[scenario.correlation])
    # Secret fields (an OTP code) never reach the table in clear: sealed with KMS, kept apart.
    data, secret = secret_data.split(event.data, scenario.secret_data)
    now = now_iso()
    cascade = {
        "cascade_id": cascade_id,
        "scenario_id": scenario.id,
        # The cascade finishes on this version, whatever is saved later; referred to, not copied
        # (a copy would be rewritten by each of the cascade's updates). Without a ref: a copy.
        **({"scenario_ref": scenario_ref, "correlation_key": scenario.correlation} if scenario_ref
           else {"scenario_json": scenario.model_dump_json()}),
        "scenario_version": scenario_version,
        "status": "running",
        "recipient": event.recipient.model_dump(exclude_none=True),
        "data_json": json.dumps(data, ensure_ascii=False),
        "secret_blob": secret_data.seal(cascade_id, secret, cfg.secret_key_arn) if secret else None,
        "event_type": event.type,
        "correlation_value": correlation_value,
        "created_at": now,
        "updated_at": now,
        "api_base": api_base,
        "body_hash": fingerprint[:32],  # 128 bits tell two bodies apart; half the bytes in every update
        "idempotency_key": event.idempotency_key,
        "dedupe_key": _dedupe_key(event, scenario, correlation_value),
        "steps": [{"channel": s.channel, "status": "pending"} for s in scenario.steps],  # index: the place
        # Reports and the dashboard's live list find cascades by scenario and start day.
        "recipient_id": event.recipient.id,
        "sd": f"{scenario.id}#{now[:10]}",
        "sdk": f"C#{now}#{cascade_id}",
        **adapted.fields,  # arm, adapted_from_channel, step_order
    }
    open_index = {"cascade_id": cascade_id, "scenario_id": scenario.id, "correlation_key": scenario.correlation,
                  "correlation_value": correlation_value, "stop_events": scenario.stop_events, "created_at": now}
    if cascade["dedupe_key"]:
        holder = _create_or_join(cascade, open_index, store)
        if holder is not None:  # a retried webhook: the running cascade already has it in hand
            # As for a repeated idempotency_key: if the first request died between its write and
            # the start, this completes it (the execution is named by the cascade id: one start).
            held = of_cascade(holder, store)
            aws.start_execution(cfg.state_machine_arn, holder["cascade_id"],
                                workflow_input(holder["cascade_id"], held, cfg.time_scale))
            logger.info("duplicate trigger", cascade_id=holder["cascade_id"])
            return {"cascade_id": holder["cascade_id"], "scenario": scenario.id, "status": "running",
                    "duplicate": True}
        created = True
    else:
        created = store.create(cascade, open_index)
    status = "running"
    if not created:
        existing = store.get(cascade_id)
        if existing is None:  # created and discarded meanwhile: let the client try again
            raise Conflict("a request with this idempotency_key is being undone; retry")
        if existing["body_hash"] != fingerprint[:len(existing["body_hash"])]:  # older cascades: all 64
            raise Conflict("idempotency_key was already used with a different event")
        scenario = of_cascade(existing, store)
        status = existing["status"]
        logger.info("duplicate event", cascade_id=cascade_id)
    try:
        # Also on a duplicate: if the first request died between the write and the start, this
        # one completes it. The execution is named by the cascade id, so it starts once.
        aws.start_execution(cfg.state_machine_arn, cascade_id, workflow_input(cascade_id, scenario, cfg.time_scale))
    except Exception:
        if created:
            store.discard(cascade_id, event.recipient.id, cascade["dedupe_key"])
        raise
    if created:
        logger.info("cascade started", cascade_id=cascade_id, scenario=scenario.id, steps=len(scenario.steps))
    answer: dict[str, Any] = {"cascade_id": cascade_id, "scenario": scenario.id, "status": status}
    # Accepted, but every step would be skipped: say why now rather than let it end with nothing sent.
    if warnings := reach.warnings(cascade, scenario, store):
        logger.info("cascade will send nothing", cascade_id=cascade_id, reasons=[w["reason"] for w in warnings])
        answer["warnings"] = warnings
    return answer


def _dedupe_key(event: EventIn, scenario: Scenario, correlation_value: str) -> str | None:
    """One running cascade per scenario, recipient and correlation value (``dedupe: running``); an
    event with an idempotency_key is deduplicated by that key instead."""
    if event.idempotency_key is not None or scenario.dedupe != "running":
        return None
    return "DEDUPE#" + hashed(json.dumps([scenario.id, event.recipient.id, correlation_value], ensure_ascii=False))


def _create_or_join(cascade: dict[str, Any], open_index: dict[str, Any],
                    store: CascadeStore) -> dict[str, Any] | None:
    """Create the cascade unless a running one holds its dedupe key (a conditional write, so of
    concurrent identical triggers exactly one creates). None if created, else the running one.
    A key left by a cascade that ended without releasing it (marked failed) is taken over."""
    stale = None
    for _ in range(5):
        if store.create(cascade, open_index, stale_holder=stale):
            return None
        holder = store.dedupe_holder(cascade["dedupe_key"])
        running = store.get(holder) if holder is not None else None
        if running is not None and running["status"] == "running":
            return running
        stale = holder  # released meanwhile (None), or held by a cascade that is over
    raise Conflict("a cascade for this trigger is starting or ending right now; retry")


def stop_matching(event: EventIn, store: CascadeStore) -> list[str]:
    """Stop the recipient's running cascades that this business event completes."""
    stopped = []
    for item in store.open_cascades(event.recipient.id):
        if event.type not in item.get("stop_events", []):
            continue
        if str(event.data.get(item["correlation_key"], "")) != item["correlation_value"]:
            continue
        if signals.stop(item["cascade_id"], "succeeded", f"event:{event.type}", store):
            stopped.append(item["cascade_id"])
    return stopped


__all__ = ["accept", "parse_event", "start", "stop_matching"]
