"""The operator desk as the last resort of a VIP delivery-failed cascade: after three unanswered
SMS a signed task with the full context reaches the desk; the desk's signed outcome stops the
cascade or ends the step; forged, unsigned or stale outcomes change nothing; and the desk itself
refuses tasks that are not signed with the shared secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

SAMPLE_VIP = Path(__file__).resolve().parents[2] / "events" / "delivery-failed-vip.json"
RU_MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
             "ноября", "декабря")
# 2 h + 22 h + 24 h of SMS steps: 1 + 6 + 6 s at test speed.
REACHES_DESK_S = 40


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


@pytest.fixture
def desk(stack: Any) -> Any:
    return stack.standin("operator")


def delivery_failed(priority: str | None = "vip") -> dict[str, Any]:
    phone = f"+7701{uuid.uuid4().int % 10**7:07d}"
    data = {"order_id": f"V-{uuid.uuid4().hex[:6]}", "reschedule_url": "https://shop.test/orders/r"}
    if priority:
        data["priority"] = priority
    return {"type": "delivery.failed",
            "recipient": {"id": f"cust-{uuid.uuid4().hex[:8]}", "name": "Анна", "locale": "ru", "phone": phone,
                          "timezone": "Asia/Almaty"},
            "data": data}


def task_of(desk: Any, cascade_id: str) -> dict[str, Any]:
    kept = wait_for("the task at the desk", lambda: desk.tasks.get(f"op_{cascade_id}_3"), timeout=REACHES_DESK_S)
    return dict(kept["task"])


def signed(secret: str, body: dict[str, Any], timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return raw, {"content-type": "application/json", "x-cascade-timestamp": stamp, "x-cascade-signature": f"v1={mac}"}


def test_a_vip_cascade_reaches_the_desk_with_the_full_context_and_a_confirmed_call_stops_it(
        api: Api, desk: Any) -> None:
    event = delivery_failed()
    cascade_id = api.start(event)
    task = task_of(desk, cascade_id)
    # Who to call, and why: the script is the step's text, in the customer's language.
    assert task["recipient"]["phone"] == event["recipient"]["phone"]
    assert (task["recipient"]["name"], task["recipient"]["timezone"]) == ("Анна", "Asia/Almaty")
    assert task["scenario"] == {"id": "delivery-failed", "name": "Delivery failed"}
    assert event["data"]["order_id"] in task["reason"] and "Позвоните" in task["reason"]
    assert task["data"] == event["data"]
    # What was already tried, and when: the three SMS, as the cascade recorded them.
    view = api.cascade(cascade_id)
    assert [(h["step"], h["channel"], h["status"], h["sent_at"]) for h in task["history"]] == [
        (s["index"], "sms", "sent", s["sent_at"]) for s in view["steps"][:3]]
    assert all(h["sent_at"] for h in task["history"])
    assert task["callback_url"] == f"{api.base}/webhooks/operator"
    assert view["steps"][3]["status"] == "sent" and view["steps"][3]["provider_message_id"] == task["task_id"]
    entry = next(m for m in api.outbox(cascade_id) if m["channel"] == "operator")
    assert entry["to"] == event["recipient"]["phone"] and entry["text"] == task["text"]
    resp = api.simulate(task["task_id"], "confirmed", text="Delivery moved to tomorrow 10:00-12:00")
    assert resp.status_code == 200, resp.text
    view = api.cascade(cascade_id)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "confirmed")
    assert view["steps"][3]["status"] == "confirmed"  # the desk confirmed: not a mere reply
    assert view["steps"][3]["reply"] == "Delivery moved to tomorrow 10:00-12:00"  # the operator's note


def test_the_desk_reads_the_task_in_russian_with_steps_from_1_and_local_times(api: Api, desk: Any) -> None:
    # Given the sample VIP event (a Russian-speaking customer in Almaty)
    with open(SAMPLE_VIP, encoding="utf-8") as f:
        event = json.load(f)
    event.pop("idempotency_key")
    event["recipient"] |= {"id": f"cust-{uuid.uuid4().hex[:8]}", "phone": f"+7701{uuid.uuid4().int % 10**7:07d}"}
    event["data"]["order_id"] = f"V-{uuid.uuid4().hex[:6]}"
    cascade_id = api.start(event)
    # When the three SMS go unanswered, the desk gets its task
    task_of(desk, cascade_id)
    view = api.cascade(cascade_id)
    # Then what the operator reads (the desk's record) is Russian, counts steps from 1 and gives
    # times as people write them, in the customer's zone
    text = next(m for m in api.outbox(cascade_id) if m["channel"] == "operator")["text"]
    lines = text.splitlines()
    assert lines[0] == "Позвонить клиенту · Delivery failed · шаг 4 из 4"
    assert lines[1] == f"Клиент: Анна, {event['recipient']['phone']}"
    assert lines[2].startswith("Местное время клиента: ")
    assert event["data"]["order_id"] in lines[3]  # the script: the preset's operator text
    assert lines[4] == "Что уже было:"
    almaty = ZoneInfo("Asia/Almaty")
    for n, (line, step) in enumerate(zip(lines[5:], view["steps"][:3], strict=True), start=1):
        sent = datetime.fromisoformat(step["sent_at"].replace("Z", "+00:00")).astimezone(almaty)
        month = RU_MONTHS[sent.month - 1]
        assert line == f"Шаг {n} · SMS · отправлено · {sent.day} {month}, {sent:%H:%M}", line
    assert "step 0" not in text.lower()


def test_a_failed_call_ends_the_step_and_the_cascade_runs_out(api: Api, desk: Any) -> None:
    cascade_id = api.start(delivery_failed())
    task = task_of(desk, cascade_id)
    assert api.simulate(task["task_id"], "failed", text="No answer").status_code == 200
    view = wait_for("the end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    assert (view["status"], view["stop_reason"]) == ("exhausted", None)
    assert view["steps"][3]["status"] == "failed"


def test_forged_unsigned_or_stale_outcomes_are_refused_and_change_nothing(api: Api, desk: Any) -> None:
    cascade_id = api.start(delivery_failed())
    task = task_of(desk, cascade_id)
    outcome = {"task_id": task["task_id"], "outcome": "confirmed"}
    forged = signed("not-the-shared-secret", outcome)
    stale = signed(desk.secret, outcome, timestamp=int(time.time()) - 600)
    for body, headers in [(json.dumps(outcome).encode(), {"content-type": "application/json"}), forged, stale]:
        resp = httpx.post(task["callback_url"], content=body, headers=headers, timeout=30)
        assert resp.status_code == 401, resp.text
    view = api.cascade(cascade_id)
    assert view["status"] == "running" and view["steps"][3]["status"] == "sent"
    # The same outcome, signed now with the shared secret, is taken.
    body, headers = signed(desk.secret, outcome)
    assert httpx.post(task["callback_url"], content=body, headers=headers, timeout=30).status_code == 200
    assert (api.cascade(cascade_id)["status"], api.cascade(cascade_id)["stop_reason"]) == ("succeeded", "confirmed")


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"task_id": "op_c_nosuchcascade_3", "outcome": "confirmed"}, 404, None),
    ({"task_id": "op_c_x_3", "outcome": "reached"}, 422, "outcome"),
    ({"outcome": "confirmed"}, 422, "task_id"),
    ([1, 2], 422, "body"),
])
def test_a_signed_outcome_for_no_task_or_with_bad_fields_is_refused(api: Api, desk: Any, body: Any, status: int,
                                                                     field: str | None) -> None:
    raw, headers = signed(desk.secret, body)
    resp = httpx.post(f"{api.base}/webhooks/operator", content=raw, headers=headers, timeout=30)
    assert resp.status_code == status, resp.text
    if field:
        assert field in [d["field"] for d in resp.json()["details"]]


def test_the_desk_refuses_tasks_not_signed_with_the_shared_secret(api: Api, desk: Any) -> None:
    task = {"task_id": "op_c_forged_0", "cascade_id": "c_forged", "recipient": {"phone": "+77010000001"},
            "reason": "call me", "callback_url": f"{api.base}/webhooks/operator"}
    url = f"{desk.url}/tasks"
    raw, _ = signed(desk.secret, task)
    for headers in [{"content-type": "application/json"}, signed("guessed-secret", task)[1],
                    signed(desk.secret, task, timestamp=int(time.time()) - 600)[1]]:
        assert httpx.post(url, content=raw, headers=headers, timeout=30).status_code == 401
    assert "op_c_forged_0" not in desk.tasks


def test_when_the_desk_does_not_trust_our_signature_the_step_fails_for_good(api: Api, desk: Any) -> None:
    # The desk's secret was rotated and ours was not: every task we sign is refused with a 401.
    shared, refused = desk.secret, len(desk.refused)
    cascade_id = api.start(delivery_failed())
    wait_for("the third SMS", lambda: api.cascade(cascade_id)["steps"][2]["status"] == "sent", timeout=REACHES_DESK_S)
    desk.secret = "rotated-" + shared
    try:
        view = wait_for("the end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v, timeout=40)
    finally:
        desk.secret = shared
    assert view["status"] == "exhausted"
    assert view["steps"][3]["status"] == "failed" and "401" in view["steps"][3]["reason"]
    assert f"op_{cascade_id}_3" not in desk.tasks
    assert [r["reason"] for r in desk.refused[refused:]] == ["bad signature"]  # seen once: a 401 is not retried


def test_an_order_that_is_not_vip_never_reaches_the_desk(api: Api, desk: Any) -> None:
    cascade_id = api.start(delivery_failed(priority="regular"))
    view = wait_for("the end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v, timeout=60)
    assert view["status"] == "exhausted"
    assert [s["status"] for s in view["steps"]] == ["sent", "sent", "sent", "skipped"]
    assert view["steps"][3]["reason"] == "condition"
    assert f"op_{cascade_id}_3" not in desk.tasks
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["sms"] * 3
