"""Race safety: once a cascade is stopped, no message goes out, even when a stop and a step's
timer fire together. The step function is invoked exactly as the workflow invokes it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import boto3
import pytest

from tests.conftest import TIME_SCALE, Api, wait_for

pytestmark = pytest.mark.stack


def _event() -> dict[str, Any]:
    return {"type": "delivery.failed", "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": "+77011234567"},
            "data": {"order_id": "R-1", "reschedule_url": "https://shop.test/r/R-1"}}


def _run_step(stack: Any, cascade_id: str, step: int) -> dict[str, Any]:
    """What the workflow does when the step's timer fires: invoke the step function with a token."""
    resp = boto3.client("lambda", region_name="us-east-1").invoke(
        FunctionName=stack.functions["StepFunction"],
        Payload=json.dumps({"cascade_id": cascade_id, "step": step, "task_token": f"token-{uuid.uuid4()}"}))
    return dict(json.loads(resp["Payload"].read()))


def test_a_timer_that_fires_after_a_stop_sends_nothing(api: Api, stack: Any) -> None:
    # abandoned-cart: the email's 24 h timer (6 s here) leaves time to cancel before it fires.
    cascade_id = api.start({"type": "cart.abandoned",
                            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "email": "sam@example.com",
                                          "telegram_chat_id": "777", "consent": {"marketing": True}},
                            "data": {"cart_id": "c-1", "cart_url": "https://shop.test/cart/1"}})
    wait_for("the first SMS", lambda: api.outbox(cascade_id))
    assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200
    before = api.outbox(cascade_id)
    assert _run_step(stack, cascade_id, 1) == {"outcome": "stopped"}
    assert _run_step(stack, cascade_id, 2) == {"outcome": "stopped"}
    assert api.outbox(cascade_id) == before  # the late timers sent nothing
    assert api.cascade(cascade_id)["steps"][2]["status"] == "not_sent"  # for good: the cancel ended it


def test_stop_and_timer_together_never_send_after_the_stop(api: Api, stack: Any) -> None:
    """Many cascades; for each, a cancel and the next step race on two threads. Whichever wins,
    no step goes out twice and nothing goes out once the cascade is cancelled."""
    cascades = [api.start(_event()) for _ in range(6)]
    for cid in cascades:
        wait_for("the first SMS", lambda cid=cid: api.outbox(cid))
    outcomes: dict[str, Any] = {}

    def timer(cid: str) -> None:
        outcomes[cid] = _run_step(stack, cid, 1)

    def cancel(cid: str) -> None:
        api.http.post(f"/v1/cascades/{cid}/cancel")

    threads = [threading.Thread(target=f, args=(cid,)) for cid in cascades for f in (timer, cancel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after_stop = {cid: api.outbox(cid) for cid in cascades}
    for cid in cascades:
        view = api.cascade(cid)
        assert view["status"] == "cancelled"
        steps = [m["step"] for m in after_stop[cid]]
        assert len(steps) == len(set(steps)), "a step was sent twice"
        if outcomes[cid]["outcome"] == "sent":  # the timer claimed step 1 before the stop landed
            assert steps.count(1) == 1
    # Past every remaining timer (22 h of cascade time), nothing more has gone out.
    time.sleep(22 * 3600 / TIME_SCALE + 1)
    assert {cid: api.outbox(cid) for cid in cascades} == after_stop
