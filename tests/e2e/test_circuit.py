"""A provider that keeps failing is skipped for new steps until it recovers: the cascade moves to
its next channel at once instead of retrying a provider that is down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CIRCUIT_COOLDOWN_S, CIRCUIT_THRESHOLD, Api, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def healthy_after(api: Api, stack: Any) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")
    from cascade.store import CascadeStore

    CascadeStore(stack.table_name).close_circuit("email")


def _cart() -> dict[str, Any]:
    return {"type": "cart.abandoned",
            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "email": "sam@example.com",
                          "telegram_chat_id": str(uuid.uuid4().int % 10**9), "consent": {"marketing": True}},
            "data": {"cart_id": f"cart-{uuid.uuid4().hex[:6]}", "cart_url": "https://shop.test/cart/1"}}


def _step0(api: Api, cascade_id: str, status: str) -> dict[str, Any]:
    return dict(wait_for(f"the email step to be {status}",
                         lambda: (v := api.cascade(cascade_id))["steps"][0]["status"] == status and v, timeout=30))


def _remaining(api: Api) -> int:
    return int(api.http.get("/local/faults").json()["faults"]["email"]["remaining"])


def test_a_provider_that_keeps_failing_is_skipped_until_it_recovers(api: Api) -> None:
    assert api.http.post("/local/faults", json={"channel": "email", "mode": "500", "count": 1000}).status_code == 200
    failing = [api.start(_cart()) for _ in range(CIRCUIT_THRESHOLD)]
    for cascade_id in failing:
        _step0(api, cascade_id, "failed")
    calls = 1000 - _remaining(api)
    assert calls == CIRCUIT_THRESHOLD * 3  # every send was tried three times

    # The circuit is open: the next cascade does not touch SES and goes to Telegram at once.
    skipped = api.start(_cart())
    view = _step0(api, skipped, "skipped")
    assert view["steps"][0]["reason"] == "provider_down"
    # Skipped, not waited on: the Telegram step follows (the deadline is only how long a busy machine may take).
    wait_for("the Telegram step", lambda: [m for m in api.outbox(skipped) if m["channel"] == "telegram"], timeout=30)
    assert 1000 - _remaining(api) == calls

    # SES recovers; after the cooldown one trial send closes the circuit and email flows again.
    api.http.delete("/local/faults")
    time.sleep(CIRCUIT_COOLDOWN_S + 0.5)
    trial = api.start(_cart())
    _step0(api, trial, "sent")
    after = api.start(_cart())
    _step0(api, after, "sent")
    for cascade_id in [*failing, skipped, trial, after]:
        api.http.post(f"/v1/cascades/{cascade_id}/cancel")
