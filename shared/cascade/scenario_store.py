"""Scenarios as the business edits them: the bundled presets are the defaults; a scenario saved
through the API (``PUT /v1/scenarios/{id}``) overrides the preset of the same id, or adds a custom one.

Every save is a new immutable version (``SCN#<id>`` / ``V#<000001>``). One index item
(``SCENARIOS`` / ``INDEX``) maps each stored id to its head version, triggers and stop events, so
routing an event is one GetItem, never a scan. Version 0 is the bundled preset. Deleting removes
the stored scenario from routing (an override's preset comes back; a custom one is gone) but keeps
its entry, flagged ``deleted``, so version numbers never repeat. A cascade carries the scenario it
started with: a save changes new cascades only, a running one finishes on its version. The cascade
item does not copy the scenario (4 KB and more, rewritten by every update of the cascade): it keeps
``scenario_version`` and ``scenario_ref``, the immutable version's sort key, ``V#<000001>`` for a
saved version or ``P#<content hash>`` for a bundled preset. The first container that starts a
cascade on a preset's text stores that text once (``SCN#<id>`` / ``P#<hash>``, put if absent), so a
cascade still finishes on it after a deploy changed the preset. :func:`of_cascade` loads a cascade's
scenario, from a bounded per-container cache (versions never change). Cascades written before this
carry the scenario itself (``scenario_json``), which is read as it is.

The index is read on every event, so one key takes every event's read: past 3,000 a second it
would be a hot partition. Each container therefore keeps it for ``CONFIG_CACHE_SECONDS`` (5 s by
default; :mod:`cascade.hot_cache`). A save or delete reads it fresh (consistently, so the
conditional write sees the latest ``rev``) and forgets the container's copy, so in the container
that saved it a scenario is in effect at the next event; other containers route on it within the
cache's seconds. Set ``CONFIG_CACHE_SECONDS=0`` to read it on every event again (one strongly
consistent GetItem, $0.125 per million events at on-demand prices). Scenario versions never
change, so each container parses a version once and keeps it.

Writes replace the whole index under an optimistic lock (its ``rev``), in the same transaction as the
new version item: two saves racing for one trigger cannot both win (the loser re-checks and gets 409).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from cascade.errors import Conflict, FieldError, NotFound, ValidationFailed
from cascade.scenarios import Scenario, presets
from cascade.store import CascadeStore, default_store, now_iso

Source = Literal["preset", "custom", "override"]
# The index is one item (400 KB at most) and deleted entries stay in it: cap what it may hold.
MAX_STORED = 500
_WRITE_TRIES = 5
_parsed: dict[tuple[str, str, int], Scenario] = {}  # (table, id, version) -> scenario; versions never change
_CACHED_REFS = 256
_by_ref: OrderedDict[tuple[str, str, str], Scenario] = OrderedDict()  # (table, id, ref) -> scenario, LRU
_preset_refs: dict[int, tuple[Scenario, str]] = {}  # id(preset) -> (preset, its ref)
_kept: set[tuple[str, str, str]] = set()  # preset versions this container has stored (table, id, ref)


class ScenarioSummary(BaseModel):
    id: str
    name: str
    trigger: str | list[str]
    purpose: Literal["transactional", "marketing"]
    version: int = Field(description="0: the bundled preset; each save adds one")
    source: Source = Field(description="preset (bundled), override (a saved preset), custom (saved, no preset)")
    steps: int = Field(description="number of steps")


class ScenarioList(BaseModel):
    scenarios: list[ScenarioSummary]


class SmsPartsView(BaseModel):
    step: int = Field(description="the step's index in `steps`")
    locale: str
    encoding: Literal["GSM-7", "UCS-2"]
    parts: int = Field(description="billed parts of the sample text, links counted as the tracked links they become")
    chars_left: int = Field(description="characters that still fit before one more part is billed")


class StoredScenario(Scenario):
    """A scenario as ``GET /v1/scenarios/{id}`` shows it. Sent back with ``PUT``, its ``version``
    must still be current (409 otherwise: someone saved in between); ``source`` and ``sms`` are ignored."""

    version: int
    source: Source
    sms: list[SmsPartsView] = Field(
        default_factory=list, description="every SMS step in every locale, rendered against sample data: parts "
                                          "and the characters left before the next part (cascade.limits.sms_budget)")


@dataclass(frozen=True)
class Versioned:
    """A scenario as it is in effect: which version, and where it comes from."""

    scenario: Scenario
    version: int
    source: Source

    def view(self, api_base: str | None = None) -> StoredScenario:
        """With its SMS budget, links counted as ``<api_base>/r/<token>`` (as the save-time check
        counts them when the API's address is not given: ``limits.TRACKED_LINK_CHARS``)."""
        from cascade.limits import sms_budget

        sms = [SmsPartsView.model_validate(b) for b in sms_budget(self.scenario, api_base)]
        return StoredScenario.model_construct(**dict(self.scenario), version=self.version, source=self.source,
                                              sms=sms)


def _entry(scenario: Scenario, version: int, source: Source) -> dict[str, Any]:
    """What the index keeps about a scenario: enough to route events and list scenarios."""
    return {"version": version, "source": source, "trigger": scenario.trigger, "triggers": scenario.triggers,
            "stop_events": scenario.stop_events, "name": scenario.name, "purpose": scenario.purpose,
            "steps": len(scenario.steps), "deleted": False}


class Catalog:
    """The scenarios in effect, as of one read of the index."""

    def __init__(self, index: dict[str, Any], store: CascadeStore) -> None:
        self.rev: int = int(index.get("rev", 0))
        self.stored: dict[str, dict[str, Any]] = dict(index.get("scenarios") or {})
        self.store = store

    def entries(self) -> dict[str, dict[str, Any]]:
        """id → index entry of every scenario in effect: stored ones first, then untouched presets."""
        live = {sid: e for sid, e in self.stored.items() if not e.get("deleted")}
        for sid, scenario in presets().items():
            if sid not in live:
                live[sid] = _entry(scenario, 0, "preset")
        return live

    def get(self, scenario_id: str) -> Versioned | None:
        entry = self.entries().get(scenario_id)
        return None if entry is None else self._load(scenario_id, entry)

    def by_trigger(self, event_type: str) -> Versioned | None:
        for sid, entry in self.entries().items():
            if event_type in entry["triggers"]:
                return self._load(sid, entry)
        return None

    def stopped_by(self, event_type: str) -> list[str]:
        """Ids of the scenarios that this event type completes (``success: event:<type>``)."""
        return [sid for sid, entry in self.entries().items() if event_type in entry["stop_events"]]

    def summaries(self) -> list[dict[str, Any]]:
        return [{"id": sid, "name": e["name"], "trigger": e["trigger"], "purpose": e["purpose"],
                 "version": e["version"], "source": e["source"], "steps": e["steps"]}
                for sid, e in sorted(self.entries().items())]

    def clash(self, scenario: Scenario) -> tuple[str, str] | None:
        """(trigger, other scenario id) when another scenario in effect starts on one of its triggers:
        one scenario per event type keeps routing unambiguous."""
        for sid, entry in self.entries().items():
            if sid == scenario.id:
                continue
            for trigger in scenario.triggers:
                if trigger in entry["triggers"]:
                    return trigger, sid
        return None

    def _load(self, scenario_id: str, entry: dict[str, Any]) -> Versioned:
        version, source = int(entry["version"]), entry["source"]
        if source == "preset":
            return Versioned(presets()[scenario_id], 0, "preset")
        key = (self.store.table, scenario_id, version)
        scenario = _parsed.get(key)
        if scenario is None:
            item = self.store.scenario_version(scenario_id, version)
            if item is None:
                raise NotFound(f"scenario {scenario_id!r} version {version} is missing")
            try:
                scenario = Scenario.model_validate_json(item["scenario_json"], context={"stored": True})
            except ValidationError:
                # Saved under older rules that it no longer meets: say so rather than fail later.
                raise Conflict(f"scenario {scenario_id!r} version {version} no longer passes validation; "
                               "save it again") from None
            if len(_parsed) > 512:
                _parsed.clear()
            _parsed[key] = scenario
        return Versioned(scenario, version, source)


def catalog(store: CascadeStore | None = None, fresh: bool = False) -> Catalog:
    """The scenarios in effect now: the index as this container read it up to a few seconds ago,
    or (``fresh``, to change it) one consistent read."""
    store = store or default_store()
    return Catalog(store.scenario_index(fresh), store)


def get(scenario_id: str, store: CascadeStore | None = None) -> Versioned | None:
    """The stored override or custom scenario, else the preset, else None."""
    return catalog(store).get(scenario_id)


def all_scenarios(store: CascadeStore | None = None) -> list[dict[str, Any]]:
    """Every scenario in effect, summarised: id, name, trigger, purpose, version, source, steps."""
    return catalog(store).summaries()


def by_trigger(event_type: str, store: CascadeStore | None = None) -> Versioned | None:
    return catalog(store).by_trigger(event_type)


def stopped_by(event_type: str, store: CascadeStore | None = None) -> list[str]:
    return catalog(store).stopped_by(event_type)


def save(scenario: Scenario, expected_version: int | None = None,
         store: CascadeStore | None = None) -> tuple[Versioned, bool]:
    """Store ``scenario`` as its id's next version. Returns it and whether a new custom scenario was
    created. ``expected_version`` (the version the client read) guards against lost updates."""
    store = store or default_store()
    source: Source = "override" if scenario.id in presets() else "custom"
    for _ in range(_WRITE_TRIES):
        cat = catalog(store, fresh=True)
        current = cat.entries().get(scenario.id)
        if expected_version is not None and (current is None or int(current["version"]) != expected_version):
            now = "does not exist" if current is None else f"is at version {current['version']}"
            raise Conflict(f"scenario {scenario.id!r} {now}, not version {expected_version}; read it again")
        clash = cat.clash(scenario)
        if clash is not None:
            raise Conflict(f"trigger {clash[0]!r} already starts scenario {clash[1]!r}")
        prior = cat.stored.get(scenario.id)
        if prior is None and len(cat.stored) >= MAX_STORED:
            raise Conflict(f"at most {MAX_STORED} scenario ids can be stored (deleted ones count)")
        version = int(prior["version"]) + 1 if prior else 1
        entries = {**cat.stored, scenario.id: _entry(scenario, version, source)}
        item = {"scenario_id": scenario.id, "version": version, "scenario_json": scenario.model_dump_json(),
                "saved_at": now_iso()}
        if store.write_scenario_index(cat.rev, entries, item):
            _parsed[(store.table, scenario.id, version)] = scenario
            return Versioned(scenario, version, source), current is None
    raise Conflict("scenarios are being changed concurrently; try again")


def preset_ref(scenario: Scenario) -> str:
    """A bundled preset's immutable identity: ``P#`` and a hash of its content (hashed once per object)."""
    known = _preset_refs.get(id(scenario))
    if known is None or known[0] is not scenario:
        known = scenario, "P#" + hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()[:20]
        _preset_refs[id(scenario)] = known
    return known[1]


def ref_of(chosen: Versioned, store: CascadeStore) -> str:
    """The immutable version a new cascade of ``chosen`` refers to (``scenario_ref``). A preset's
    text is stored the first time this container uses it (put if absent: one write per container)."""
    if chosen.source != "preset":
        return f"V#{chosen.version:06d}"
    ref = preset_ref(chosen.scenario)
    key = (store.table, chosen.scenario.id, ref)
    if key not in _kept:
        store.keep_preset_version(chosen.scenario.id, ref, chosen.scenario.model_dump_json())
        _kept.add(key)
    return ref


def of_cascade(cascade: dict[str, Any], store: CascadeStore | None = None) -> Scenario:
    """The scenario a cascade runs: the version it started on, in its own step order (adaptive)."""
    if cascade.get("scenario_json"):  # written before cascades referred to their version
        return Scenario.model_validate_json(cascade["scenario_json"], context={"stored": True})
    store = store or default_store()
    scenario_id, ref = cascade["scenario_id"], cascade["scenario_ref"]
    key = (store.table, scenario_id, ref)
    scenario = _by_ref.get(key)
    if scenario is not None:
        _by_ref.move_to_end(key)
    else:
        bundled = presets().get(scenario_id)
        if bundled is not None and ref.startswith("P#") and preset_ref(bundled) == ref:
            scenario = bundled
        else:
            item = store.scenario_item(scenario_id, ref)
            if item is None:
                raise NotFound(f"scenario {scenario_id!r} {ref} is missing")
            scenario = Scenario.model_validate_json(item["scenario_json"], context={"stored": True})
        _by_ref[key] = scenario
        if len(_by_ref) > _CACHED_REFS:
            _by_ref.popitem(last=False)
    order = cascade.get("step_order")
    if order:
        scenario = scenario.model_copy(update={"steps": [scenario.steps[int(i)] for i in order]})
    return scenario


# "steps[2].template.ru (ru): SMS is 4 parts" -> field "steps.2.template.ru"
_PROBLEM = re.compile(r"^(steps\[\d+\][^\s:]*)(?: \(\w+\))?: (.+)$", re.DOTALL)


def parse(scenario_id: str, raw: Any) -> tuple[Scenario, int | None]:
    """A PUT body: the scenario (its id, if given, must be the path's) and the version the client
    read, if it says. Every problem is a 422 naming the field, e.g. ``steps.2.template.ru``."""
    if not isinstance(raw, dict):
        raise FieldError("body", "a scenario is a JSON object")
    body = dict(raw)
    body.pop("source", None)
    body.pop("sms", None)
    expected = body.pop("version", None)
    if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int) or expected < 0):
        raise FieldError("version", "the version you read: a whole number, 0 for a preset")
    body.setdefault("id", scenario_id)
    if body["id"] != scenario_id:
        raise FieldError("id", f"must match the path ({scenario_id!r})")
    try:
        # The schema first; rendering every step needs a scenario that passed it.
        scenario = Scenario.model_validate(body, context={"stored": True})
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc.errors()) from None
    from cascade.limits import problems

    found = [_problem(text) for text in problems(scenario)] + _condition_problems(scenario)
    if found:
        raise ValidationFailed(found)
    return scenario, expected


def _condition_problems(scenario: Scenario) -> list[dict[str, str]]:
    """Every step's ``when``, evaluated against the sample context: one that fails here (or reaches
    for Python internals) would fail every cascade of the scenario, so it is refused now."""
    from cascade.limits import sample_context
    from cascade.rendering import holds

    found = []
    for index, step in enumerate(scenario.steps):
        if step.when is None:
            continue
        try:
            holds(step.when, sample_context(scenario, index, scenario.default_locale))
        except Exception as exc:  # any evaluation error: undefined call, type error, sandbox
            found.append({"field": f"steps.{index}.when",
                          "message": f"cannot be evaluated on a sample event: {type(exc).__name__}: {exc}"})
    return found


def _problem(text: str) -> dict[str, str]:
    match = _PROBLEM.match(text)
    if match is None:
        return {"field": "steps", "message": text}
    return {"field": match.group(1).replace("[", ".").replace("]", ""), "message": match.group(2)}


def delete(scenario_id: str, store: CascadeStore | None = None) -> None:
    """Remove a stored scenario from routing: an override's preset comes back, a custom one is gone.
    Running cascades finish on the version they started with."""
    store = store or default_store()
    for _ in range(_WRITE_TRIES):
        cat = catalog(store, fresh=True)
        entry = cat.stored.get(scenario_id)
        if entry is None or entry.get("deleted"):
            if scenario_id in presets():
                raise NotFound(f"scenario {scenario_id!r} is a preset with no saved version to delete")
            raise NotFound(f"no scenario {scenario_id!r}")
        if store.write_scenario_index(cat.rev, {**cat.stored, scenario_id: {**entry, "deleted": True}}):
            return
    raise Conflict("scenarios are being changed concurrently; try again")


__all__ = ["MAX_STORED", "Catalog", "ScenarioList", "ScenarioSummary", "SmsPartsView", "Source", "StoredScenario",
           "Versioned", "all_scenarios", "by_trigger", "catalog", "delete", "get", "of_cascade", "parse", "preset_ref",
           "ref_of", "save", "stopped_by"]
