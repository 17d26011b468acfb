"""The cascade item stays small: it refers to its immutable scenario version instead of copying
the scenario, so each of its updates costs one or two write units, not twelve. A cascade still
finishes on the scenario it started with: on a bundled preset whose text a later deploy changed,
and on the copy that a cascade written before the change carries (``scenario_json``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cascade import scenario_store
from cascade.scenarios import Copy, presets
from tests.bench import item_bytes
from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

SMS_STEP = 2


def _cart(phone: str = "+14155550177") -> dict[str, Any]:
    """An abandoned cart with an email and a phone (no Telegram chat): email, WhatsApp, then SMS."""
    tag = uuid.uuid4().hex[:8]
    return {"type": "cart.abandoned",
            "recipient": {"id": f"diet-{tag}", "locale": "en", "email": f"{tag}@example.com", "phone": phone,
                          "consent": {"marketing": True}},
            "data": {"cart_id": f"cart-{tag}", "cart_url": "https://shop.example.com/cart/9"}}


def _item(stack: Any, cascade_id: str) -> dict[str, Any]:
    db = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_endpoint)
    return dict(db.get_item(TableName=stack.table_name, Key={"pk": {"S": f"C#{cascade_id}"}, "sk": {"S": "C"}},
                            ConsistentRead=True)["Item"])


def _sms(api: Api, cascade_id: str) -> str:
    found = wait_for("the cart's SMS step", lambda: [m for m in api.outbox(cascade_id) if m["channel"] == "sms"])
    return str(found[0]["text"])


def _with_sms_text(text: str) -> Any:
    """The abandoned-cart preset with another English SMS text."""
    original = presets()["abandoned-cart"]
    steps = list(original.steps)
    sms = steps[SMS_STEP]
    steps[SMS_STEP] = sms.model_copy(update={"template": {**sms.template, "en": Copy(text=text)}})
    return original.model_copy(update={"steps": steps})


@pytest.fixture
def redeployed() -> Iterator[None]:
    """A later deploy that changed the preset's SMS text: new bundled text, fresh containers."""
    bundled = presets()
    original = bundled["abandoned-cart"]
    bundled["abandoned-cart"] = _with_sms_text("Changed by a later deploy: {{ data.cart_url }}")
    scenario_store._by_ref.clear()
    scenario_store._kept.clear()
    try:
        yield
    finally:
        bundled["abandoned-cart"] = original
        scenario_store._by_ref.clear()
        scenario_store._kept.clear()


def test_a_cascade_refers_to_its_preset_version_and_keeps_it_across_a_deploy(
        api: Api, stack: Any, request: pytest.FixtureRequest) -> None:
    cascade_id = api.start(_cart())
    wait_for("the cart's email", lambda: api.outbox(cascade_id))
    item = _item(stack, cascade_id)
    # No copy of the scenario (4 KB and more before): the version is referred to.
    assert "scenario_json" not in item
    assert item["scenario_ref"]["S"].startswith("P#") and item["scenario_version"] == {"N": "0"}
    assert item_bytes(item) < 1536, item_bytes(item)

    request.getfixturevalue("redeployed")  # the preset's text changes while the cascade waits
    assert _sms(api, cascade_id).startswith("Your cart is still saved. Finish your order here: ")
    # A cascade started after the deploy runs on the new text, under a new reference.
    after = api.start(_cart("+14155550178"))
    assert _sms(api, after).startswith("Changed by a later deploy: ")
    assert _item(stack, after)["scenario_ref"] != item["scenario_ref"]
    for cid in (cascade_id, after):
        assert api.cascade(cid)["status"] in ("running", "exhausted")


def test_a_cascade_that_carries_its_scenario_copy_still_runs_on_it(api: Api, stack: Any) -> None:
    cascade_id = api.start(_cart("+14155550179"))
    wait_for("the cart's email", lambda: api.outbox(cascade_id))
    # As a cascade written before cascades referred to their version: the scenario copied in.
    copy = _with_sms_text("From the copy on the cascade: {{ data.cart_url }}").model_dump_json()
    db = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_endpoint)
    db.update_item(TableName=stack.table_name, Key={"pk": {"S": f"C#{cascade_id}"}, "sk": {"S": "C"}},
                   UpdateExpression="SET scenario_json = :j REMOVE scenario_ref, correlation_key",
                   ExpressionAttributeValues={":j": {"S": copy}})
    assert _sms(api, cascade_id).startswith("From the copy on the cascade: ")
    view = api.cascade(cascade_id)
    assert [s["index"] for s in view["steps"]] == [0, 1, 2, 3]
    assert view["scenario_version"] == 0 and json.loads(copy)["id"] == view["scenario"]
