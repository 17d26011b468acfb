"""Race safety: once a cascade is stopped, no message goes out, even when a stop and a step's
timer fire together. The step function is invoked exactly as the workflow invokes it."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import boto3
import pytest

from tests.conftest import Api, wait_for

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
    cascade_id = api.start(_event())
    wait_for("the first SMS", lambda: api.outbox(cascade_id))
    assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200
    assert _run_step(stack, cascade_id, 1) == {"outcome": "stopped"}
    assert len(api.outbox(cascade_id)) == 1
    assert api.cascade(cascade_id)["steps"][1]["status"] == "pending"


def test_stop_and_timer_together_never_send_after_the_stop(api: Api, stack: Any) -> None:
    """Many cascades; for each, a cancel and the next step race on two threads. Whichever wins,
    a message exists only if its step was claimed before the cascade finished."""
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
    for cid in cascades:
        view = api.cascade(cid)
        assert view["status"] == "cancelled"
        sent = [m for m in api.outbox(cid) if m["step"] == 1]
        if outcomes[cid]["outcome"] == "stopped":
            assert sent == [] and view["steps"][1]["status"] == "pending"
        else:
            assert outcomes[cid]["outcome"] == "sent"
            assert len(sent) == 1
