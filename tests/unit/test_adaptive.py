"""Adaptive order: which cascades keep the static order (a stable holdout share), which channel a
recipient prefers, and how the scenario snapshot is reordered so it starts there."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
from pydantic import ValidationError

from cascade.adaptive import arm_for, favourite_channel, plan, reorder
from cascade.scenarios import Scenario, presets
from cascade.store import CascadeStore

CART = presets()["abandoned-cart"]
SAM = {"id": "cust-1", "email": "sam@example.com", "phone": "+14155550123", "telegram_chat_id": "123"}


def adaptive_cart(holdout: float = 0.2) -> Scenario:
    return Scenario.model_validate({**CART.model_dump(), "adaptive": {"enabled": True, "holdout": holdout}},
                                   context={"stored": True})


def cascade_in(arm: str, holdout: float = 0.2) -> str:
    return next(cid for cid in (f"c_{i:024x}" for i in count()) if arm_for(cid, holdout) == arm)


def test_the_arm_is_stable_per_cascade_and_the_holdout_share_is_as_configured() -> None:
    ids = [f"c_{i:024x}" for i in range(20000)]
    assert [arm_for(cid, 0.2) for cid in ids[:50]] == [arm_for(cid, 0.2) for cid in ids[:50]]
    for share in (0.1, 0.2, 0.5, 0.9):
        held = sum(arm_for(cid, share) == "holdout" for cid in ids) / len(ids)
        assert held == pytest.approx(share, abs=0.015)
    assert all(arm_for(cid, 0) == "adaptive" for cid in ids[:1000])
    # Raising the share only adds cascades to the holdout: none changes sides the other way.
    assert all(arm_for(cid, 0.3) == "holdout" for cid in ids[:2000] if arm_for(cid, 0.2) == "holdout")


@pytest.mark.parametrize(("reactions", "channel"), [
    ({}, None),
    ({"sms": 3, "email": 1, "last_channel": "email", "last_at": "2025-01-01T00:00:00Z"}, "sms"),
    ({"sms": 2, "email": 2, "last_channel": "email"}, "email"),  # a tie: the latest reaction's channel
    ({"sms": 2, "email": 2, "voice": 1, "last_channel": "voice"}, None),  # a tie the latest does not settle
    ({"sms": 0, "last_channel": "sms"}, None),
])
def test_the_favourite_channel_is_the_one_reacted_on_most(reactions: dict[str, Any], channel: str | None) -> None:
    assert favourite_channel(reactions) == channel


def test_the_favourite_channels_step_moves_first_and_the_rest_keep_their_order() -> None:
    moved = reorder(CART, "sms", SAM)
    assert moved is not None
    scenario, order = moved
    assert order == [2, 0, 1, 3]
    assert [s.channel for s in scenario.steps] == ["sms", "email", "telegram", "voice"]
    assert [s.wait for s in scenario.steps] == [2 * 3600, 24 * 3600, 6 * 3600, 24 * 3600]  # each keeps its own wait
    # The snapshot a cascade stores reads back as the same reordered scenario.
    again = Scenario.model_validate_json(scenario.model_dump_json(), context={"stored": True})
    assert [s.channel for s in again.steps] == ["sms", "email", "telegram", "voice"]
    assert [s.channel for s in CART.steps] == ["email", "telegram", "sms", "voice"]  # the preset is untouched


@pytest.mark.parametrize(("channel", "recipient"), [
    ("sms", {"id": "c", "email": "a@b.co"}),  # no phone: the SMS step cannot go first
    ("email", SAM),  # already first
    ("whatsapp", {**SAM, "whatsapp": "+14155550123"}),  # only an alternative of the Telegram step
    ("viber", {**SAM, "viber_id": "abc="}),  # no step on it
])
def test_nothing_moves_without_a_step_on_that_channel_and_a_contact_for_it(channel: str,
                                                                           recipient: dict[str, Any]) -> None:
    assert reorder(CART, channel, recipient) is None


def _reacted(store: CascadeStore, recipient_id: str, **counts: Any) -> None:
    item = {"pk": {"S": f"R#{recipient_id}"}, "sk": {"S": "REACTS"}}
    for name, value in counts.items():
        item[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    store.db.put_item(TableName=store.table, Item=item)


def test_an_adaptive_cascade_starts_on_the_recipients_channel_a_holdout_one_does_not(store: CascadeStore) -> None:
    _reacted(store, "cust-1", sms=2, email=1, last_channel="sms", last_at="2025-01-01T10:00:00Z")
    scenario = adaptive_cart()
    adapted = plan(cascade_in("adaptive"), scenario, SAM, store)
    assert [s.channel for s in adapted.scenario.steps] == ["sms", "email", "telegram", "voice"]
    assert adapted.fields == {"arm": "adaptive", "adapted_from_channel": "sms", "step_order": [2, 0, 1, 3]}
    held = plan(cascade_in("holdout"), scenario, SAM, store)
    assert [s.channel for s in held.scenario.steps] == ["email", "telegram", "sms", "voice"]
    assert held.fields == {"arm": "holdout"}
    # No history: the adaptive arm keeps the static order (and still says which arm it is).
    fresh = plan(cascade_in("adaptive"), scenario, {**SAM, "id": "cust-new"}, store)
    assert (fresh.scenario is scenario, fresh.fields) == (True, {"arm": "adaptive"})
    # A scenario without adaptive order reads nothing and records nothing.
    assert plan(cascade_in("adaptive"), CART, SAM, store).fields == {}


def test_adaptive_order_is_refused_with_scheduled_steps_and_a_holdout_over_90_percent() -> None:
    appointment = presets()["appointment"].model_dump()
    assert any(step.get("at") for step in appointment["steps"])
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate({**appointment, "adaptive": {"enabled": True}}, context={"stored": True})
    assert [e["loc"] for e in info.value.errors()] == [("adaptive",)]
    assert "scheduled with `at`" in info.value.errors()[0]["msg"]
    # Switched off, it may stay in the scenario.
    Scenario.model_validate({**appointment, "adaptive": {"enabled": False}}, context={"stored": True})
    for bad in ({"enabled": True, "holdout": 0.95}, {"holdout": 0.1}, {"enabled": "yes"}, {"enabled": True, "x": 1}):
        with pytest.raises(ValidationError) as info:
            Scenario.model_validate({**CART.model_dump(), "adaptive": bad}, context={"stored": True})
        assert info.value.errors()[0]["loc"][0] == "adaptive"
    default = Scenario.model_validate({**CART.model_dump(), "adaptive": {"enabled": True}}, context={"stored": True})
    assert default.adaptive is not None and default.adaptive.holdout == 0.2
