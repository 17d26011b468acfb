"""Stored scenarios against a real (moto) DynamoDB table: presets as defaults, overrides and custom
scenarios in versions, trigger routing from one index item, and 422s that name the field at fault."""

from __future__ import annotations

from typing import Any

import pytest

from cascade import scenario_store
from cascade.errors import Conflict, FieldError, NotFound, ValidationFailed
from cascade.scenarios import Scenario, presets
from cascade.store import CascadeStore


def custom(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "parcel-lost", "name": "Parcel lost", "trigger": "parcel.lost", "correlation": "parcel_id",
        "success": ["replied", "event:parcel.found"],
        "steps": [{"channel": "sms", "wait": "2h",
                   "template": {"ru": "Посылка {{ data.parcel_id }} потерялась.",
                                "en": "Parcel {{ data.parcel_id }} is lost."}}],
    }
    body.update(changes)
    return body


def override_of(scenario_id: str, text: str) -> Scenario:
    body = presets()[scenario_id].model_dump(mode="json")
    body["steps"][0]["template"]["en"]["text"] = text
    return Scenario.model_validate(body)


def save(store: CascadeStore, body: dict[str, Any], expected: int | None = None) -> tuple[Any, bool]:
    scenario, _ = scenario_store.parse(body["id"], body)
    return scenario_store.save(scenario, expected, store)


def test_the_presets_are_the_defaults(store: CascadeStore) -> None:
    listed = {s["id"]: s for s in scenario_store.all_scenarios(store)}
    assert set(presets()) <= set(listed)
    assert listed["delivery-failed"] == {"id": "delivery-failed", "name": "Delivery failed",
                                         "trigger": "delivery.failed", "purpose": "transactional", "version": 0,
                                         "source": "preset", "steps": len(presets()["delivery-failed"].steps)}
    found = scenario_store.by_trigger("delivery.failed", store)
    assert found is not None and found.scenario is presets()["delivery-failed"] and found.version == 0
    assert "delivery-failed" in scenario_store.stopped_by("delivery.rescheduled", store)
    assert scenario_store.get("no-such-thing", store) is None


def test_a_custom_scenario_routes_its_trigger_and_each_save_is_a_new_version(store: CascadeStore) -> None:
    first, created = save(store, custom())
    assert created and (first.version, first.source) == (1, "custom")
    routed = scenario_store.by_trigger("parcel.lost", store)
    assert routed is not None and routed.scenario.id == "parcel-lost" and routed.version == 1
    assert scenario_store.stopped_by("parcel.found", store) == ["parcel-lost"]
    second, created = save(store, custom(name="Parcel lost in transit"))
    assert not created and second.version == 2
    # Every version stays readable (a cascade names the one it runs on).
    old = store.scenario_version("parcel-lost", 1)
    assert old is not None and Scenario.model_validate_json(old["scenario_json"]).name == "Parcel lost"
    listed = {s["id"]: s for s in scenario_store.all_scenarios(store)}
    assert listed["parcel-lost"]["version"] == 2 and listed["parcel-lost"]["name"] == "Parcel lost in transit"


def test_an_override_replaces_its_preset_until_deleted(store: CascadeStore) -> None:
    saved, created = scenario_store.save(override_of("delivery-failed", "Changed words."), None, store)
    assert not created and (saved.version, saved.source) == (1, "override")
    routed = scenario_store.by_trigger("delivery.failed", store)
    assert routed is not None and routed.source == "override"
    assert routed.scenario.steps[0].template["en"].text == "Changed words."
    scenario_store.delete("delivery-failed", store)
    back = scenario_store.get("delivery-failed", store)
    assert back is not None and (back.version, back.source) == (0, "preset")
    # Version numbers never repeat: the next save after a delete is 2, not 1 again.
    again, _ = scenario_store.save(override_of("delivery-failed", "Again."), None, store)
    assert again.version == 2
    scenario_store.delete("delivery-failed", store)
    with pytest.raises(NotFound, match="preset"):
        scenario_store.delete("delivery-failed", store)


def test_an_override_that_moves_the_trigger_frees_the_old_one(store: CascadeStore) -> None:
    body = presets()["delivery-failed"].model_dump(mode="json")
    body["trigger"] = "delivery.failed_twice"
    scenario_store.save(Scenario.model_validate(body), None, store)
    assert scenario_store.by_trigger("delivery.failed", store) is None
    moved = scenario_store.by_trigger("delivery.failed_twice", store)
    assert moved is not None and moved.scenario.id == "delivery-failed"


def test_a_deleted_custom_scenario_is_gone(store: CascadeStore) -> None:
    save(store, custom())
    scenario_store.delete("parcel-lost", store)
    assert scenario_store.get("parcel-lost", store) is None
    assert scenario_store.by_trigger("parcel.lost", store) is None
    assert "parcel-lost" not in {s["id"] for s in scenario_store.all_scenarios(store)}
    with pytest.raises(NotFound):
        scenario_store.delete("parcel-lost", store)
    # Saved again, it is new (201) and carries on the numbering.
    back, created = save(store, custom())
    assert created and back.version == 2


def test_one_scenario_per_trigger(store: CascadeStore) -> None:
    with pytest.raises(Conflict, match=r"'delivery\.failed' already starts scenario 'delivery-failed'"):
        save(store, custom(trigger=["parcel.lost", "delivery.failed"]))
    save(store, custom())
    with pytest.raises(Conflict, match="parcel-lost"):
        save(store, custom(id="parcel-gone", trigger="parcel.lost"))
    assert scenario_store.get("parcel-gone", store) is None


def test_a_stale_version_is_refused(store: CascadeStore) -> None:
    save(store, custom())
    save(store, custom(), expected=1)
    with pytest.raises(Conflict, match="is at version 2, not version 1"):
        save(store, custom(), expected=1)
    # A preset's version is 0 until it is overridden.
    scenario_store.save(override_of("courier", "Hi."), 0, store)


def test_writes_lock_the_index_so_concurrent_saves_cannot_both_win(store: CascadeStore) -> None:
    index = store.scenario_index()
    assert store.write_scenario_index(index["rev"], {})
    assert not store.write_scenario_index(index["rev"], {})  # written meanwhile: read again


def test_what_get_shows_can_be_sent_back(store: CascadeStore) -> None:
    preset = scenario_store.get("clinic", store)
    assert preset is not None
    shown = preset.view().model_dump(mode="json")
    assert (shown["version"], shown["source"]) == (0, "preset")
    scenario, expected = scenario_store.parse("clinic", shown)
    assert scenario == presets()["clinic"] and expected == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"steps": [{"channel": "sms", "wait": "soon", "template": {"ru": "a", "en": "b"}}]}, "steps.0.wait"),
    ({"steps": [{"channel": "sms", "wait": "1h", "template": {"en": "b"}}]}, "steps.0.template"),
    ({"steps": [{"channel": "pigeon", "wait": "1h", "template": {"ru": "a", "en": "b"}}]}, "steps.0.channel"),
    ({"trigger": "Parcel Lost"}, "trigger"),
    ({"colour": "blue"}, "colour"),
    ({"id": "another-id"}, "id"),
    ({"version": "latest"}, "version"),
])
def test_bad_scenarios_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises((ValidationFailed, FieldError)) as caught:
        scenario_store.parse("parcel-lost", custom(**change))
    assert field in [d["field"] for d in caught.value.details]


def test_messages_that_cannot_render_or_fit_name_the_step_and_locale() -> None:
    steps = [
        {"channel": "email", "wait": "1h",
         "template": {"ru": {"subject": "Тема", "text": "Текст"}, "en": {"subject": "Hi", "text": "Text"}}},
        {"channel": "sms", "wait": "1h",
         "template": {"ru": "Коротко.", "en": "Hello {{ data.nowhere.deep }}"}},
        {"channel": "sms", "wait": "1h", "template": {"ru": "Очень длинное сообщение. " * 40, "en": "Short."}},
    ]
    with pytest.raises(ValidationFailed) as caught:
        scenario_store.parse("parcel-lost", custom(steps=steps))
    fields = {d["field"]: d["message"] for d in caught.value.details}
    assert set(fields) == {"steps.1.template.en", "steps.2.template.ru"}
    assert "parts" in fields["steps.2.template.ru"]


def test_body_must_be_an_object() -> None:
    with pytest.raises(FieldError):
        scenario_store.parse("parcel-lost", ["not", "a", "scenario"])


def test_a_cascade_loads_the_version_it_refers_to(store: CascadeStore) -> None:
    first, _ = save(store, custom())
    ref = scenario_store.ref_of(first, store)
    assert ref == "V#000001"
    save(store, custom(name="Parcel lost again"))  # version 2: the cascade keeps version 1
    scenario_store._by_ref.clear()
    assert scenario_store.of_cascade({"scenario_id": "parcel-lost", "scenario_ref": ref}, store).name == "Parcel lost"


def test_a_preset_version_is_stored_once_and_outlives_a_change_of_the_preset(store: CascadeStore) -> None:
    chosen = scenario_store.get("abandoned-cart", store)
    assert chosen is not None and chosen.source == "preset"
    ref = scenario_store.ref_of(chosen, store)
    assert ref == scenario_store.preset_ref(presets()["abandoned-cart"]) and ref.startswith("P#")
    stored = store.scenario_item("abandoned-cart", ref)
    assert stored is not None and Scenario.model_validate_json(stored["scenario_json"]) == chosen.scenario
    # The bundled text changes (a later deploy, a fresh container): the stored version still loads.
    bundled = presets()
    original = bundled["abandoned-cart"]
    bundled["abandoned-cart"] = override_of("abandoned-cart", "Other words")
    scenario_store._by_ref.clear()
    try:
        loaded = scenario_store.of_cascade({"scenario_id": "abandoned-cart", "scenario_ref": ref}, store)
    finally:
        bundled["abandoned-cart"] = original
    assert loaded == original


def test_a_cascade_runs_in_its_own_step_order_and_an_old_one_on_its_copy(store: CascadeStore) -> None:
    preset = presets()["abandoned-cart"]
    ref = scenario_store.preset_ref(preset)
    moved = scenario_store.of_cascade({"scenario_id": "abandoned-cart", "scenario_ref": ref,
                                       "step_order": [2, 0, 1, 3]}, store)
    assert [s.channel for s in moved.steps] == ["sms", "email", "telegram", "voice"]
    assert [s.channel for s in presets()["abandoned-cart"].steps] == ["email", "telegram", "sms", "voice"]
    copy = override_of("abandoned-cart", "From the copy")
    old = scenario_store.of_cascade({"scenario_id": "abandoned-cart", "scenario_json": copy.model_dump_json(),
                                     "scenario_version": 0}, store)
    assert old.steps[0].template["en"].text == "From the copy"
