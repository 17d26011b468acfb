"""Nothing goes out after a cascade ends: provider retries ask before every try whether the cascade
still runs and the step is still theirs, never outlive the step's timer, and the steps that never
ran end ``not_sent`` with the cascade's stop reason."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import CLOCK_SHIFT_S, Api, wait_for

pytestmark = pytest.mark.stack

FINAL = ("sent", "delivered", "read", "clicked", "replied", "failed", "skipped", "not_sent")


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


def _copy(text: str, subject: bool = False) -> dict[str, Any]:
    if subject:
        return {loc: {"subject": f"{text} ({loc})", "text": f"{text} {{{{ data.ref }}}}"} for loc in ("ru", "en")}
    return {loc: f"{text} {{{{ data.ref }}}} ({loc})" for loc in ("ru", "en")}


def _save(api: Api, saved: list[str], steps: list[dict[str, Any]], **extra: Any) -> str:
    """A scenario of ``steps`` (no quiet hours: the accelerated clock crosses nights); its trigger."""
    tag = uuid.uuid4().hex[:8]
    scenario = {"name": f"Stop {tag}", "trigger": f"st_{tag}.started", "correlation": "ref", "quiet_hours": None,
                "success": ["read", "replied", f"event:st_{tag}.done"], "steps": steps, **extra}
    resp = api.http.put(f"/v1/scenarios/st-{tag}", json=scenario)
    assert resp.status_code == 201, resp.text
    saved.append(f"st-{tag}")
    return f"st_{tag}"


def _start(api: Api, trigger: str, **contacts: Any) -> tuple[str, dict[str, Any]]:
    event = {"type": f"{trigger}.started", "recipient": {"id": f"st-{uuid.uuid4().hex[:8]}", "locale": "en",
                                                         **contacts},
             "data": {"ref": uuid.uuid4().hex[:6]}}
    return api.start(event), event


def _fault(api: Api, channel: str, mode: str, count: int) -> None:
    resp = api.http.post("/local/faults", json={"channel": channel, "mode": mode, "count": count})
    assert resp.status_code == 200, resp.text


def _faults_left(api: Api, channel: str) -> int:
    return int((api.http.get("/local/faults").json()["faults"].get(channel) or {}).get("remaining", 0))


def _step_final(api: Api, cascade_id: str, index: int) -> dict[str, Any]:
    return dict(wait_for(f"step {index} to end", lambda: (v := api.cascade(cascade_id))["steps"][index]["status"]
                         in FINAL and v))


WHATSAPP_FIRST = [
    # A long timer: the retries (Retry-After 1 s each) fit well inside it, so only a stop ends them.
    {"channel": "whatsapp", "wait": "100h", "whatsapp_template": {"name": "cart_reminder", "params": ["{{ data.ref }}"]},
     "template": _copy("Your order")},
    {"channel": "sms", "wait": "1h", "template": _copy("Your order, by SMS")},
]


@pytest.mark.parametrize("stop", ["cancel", "success event"])
def test_a_stop_during_whatsapp_retries_sends_nothing_after_it(api: Api, stack: Any, saved: list[str],
                                                               stop: str) -> None:
    # Given a WhatsApp step whose provider throttles the first two tries (the third would go through)
    trigger = _save(api, saved, WHATSAPP_FIRST)
    number = f"+1415555{uuid.uuid4().int % 10**4:04d}"
    _fault(api, "whatsapp", "429", count=2)
    cascade_id, event = _start(api, trigger, whatsapp=number, phone=number)
    wait_for("the first try to be throttled", lambda: _faults_left(api, "whatsapp") == 1)

    # When the cascade stops while the step waits to try again
    if stop == "cancel":
        assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200
        reason = "cancelled"
    else:
        resp = api.post_event({"type": f"{trigger}.done", "recipient": {"id": event["recipient"]["id"]},
                               "data": {"ref": event["data"]["ref"]}})
        assert resp.status_code == 202 and resp.json()["stopped"] == [cascade_id], resp.text
        reason = f"event:{trigger}.done"

    # Then no try is made after it: the step ends not_sent with the stop's reason, nothing reaches
    # the customer, and the SMS step never runs
    view = _step_final(api, cascade_id, 0)
    time.sleep(2.5)  # longer than the rest of the retries would have taken
    wa = stack.standin("whatsapp")
    assert [m for m in wa.outbox() if m["to"] == number] == []
    assert not api.outbox(cascade_id)
    view = api.cascade(cascade_id)
    assert [(s["status"], s["reason"]) for s in view["steps"]] == [("not_sent", reason), ("not_sent", reason)]


def test_telegram_retries_never_outlive_their_step(api: Api, saved: list[str]) -> None:
    # Given a last step on Telegram with a 1 s timer (1 h at the test scale), whose provider fails
    # twice: the third try would come 1.5 s in, after the timer
    trigger = _save(api, saved, [{"channel": "telegram", "wait": "1h", "template": _copy("Your order")}])
    _fault(api, "telegram", "500", count=2)
    cascade_id, _ = _start(api, trigger, telegram_chat_id=str(uuid.uuid4().int % 10**9))

    # When the cascade runs out
    view = wait_for("the cascade to end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)
    view = _step_final(api, cascade_id, 0)
    time.sleep(2.5)  # past the moment the third try would have come

    # Then the cascade is exhausted, the step says nothing went out (failed after its tries, or
    # not_sent if a busy machine let the timer run out between two tries), and the customer got no
    # message: what the report says is what happened
    assert view["status"] == "exhausted"
    assert api.cascade(cascade_id)["steps"][0]["status"] in ("failed", "not_sent")
    assert [m for m in api.outbox(cascade_id) if m["channel"] == "telegram"] == []


THREE_STEPS = [
    {"channel": "email", "wait": "100h", "template": _copy("Your order", subject=True)},
    {"channel": "sms", "wait": "1h", "template": _copy("Your order, by SMS")},
    {"channel": "voice", "wait": "1h", "template": _copy("Your order, by call")},
]


@pytest.fixture
def crm(api: Api, stack: Any) -> Iterator[Any]:
    """The CRM stand-in, registered for the test's events."""
    crm = stack.standin("crm")
    assert api.http.put("/v1/webhooks", json={"url": crm.endpoint, "secret": crm.secret}).status_code == 200
    yield crm
    api.http.delete("/v1/webhooks")


def _finished_event(api: Api, cascade_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        events = api.http.get("/local/crm", params={"cascade_id": cascade_id}).json()["events"]
        return next((e for e in events if e["type"] == "cascade.finished"), None)

    return dict(wait_for("cascade.finished at the CRM", finished))


@pytest.mark.parametrize("ending", ["cancelled", "read", "event"])
def test_steps_that_never_ran_end_not_sent_with_the_stop_reason(api: Api, saved: list[str], crm: Any,
                                                                ending: str) -> None:
    # Given a cascade waiting on its first step (an email, with a long timer)
    trigger = _save(api, saved, THREE_STEPS)
    cascade_id, event = _start(api, trigger, email="st@example.com", phone="+14155550177")
    email = wait_for("the email", lambda: api.outbox(cascade_id))[0]

    # When it stops
    if ending == "cancelled":
        assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200
        reason = "cancelled"
    elif ending == "read":
        assert api.simulate(email["provider_message_id"], "read").status_code == 200
        reason = "read"
    else:
        resp = api.post_event({"type": f"{trigger}.done", "recipient": {"id": event["recipient"]["id"]},
                               "data": {"ref": event["data"]["ref"]}})
        assert resp.status_code == 202, resp.text
        reason = f"event:{trigger}.done"

    # Then the steps after it say so at once, for good, in the API and in the CRM's finished event
    view = api.cascade(cascade_id)
    assert view["status"] == ("cancelled" if ending == "cancelled" else "succeeded")
    assert [(s["status"], s["reason"]) for s in view["steps"][1:]] == [("not_sent", reason)] * 2
    assert view["steps"][0]["status"] in ("sent", "delivered", "read")
    finished = _finished_event(api, cascade_id)
    assert [(s["status"], s.get("reason")) for s in finished["steps"][1:]] == [("not_sent", reason)] * 2


def test_a_cascade_that_runs_out_of_time_ends_its_remaining_steps_not_sent(api: Api, saved: list[str]) -> None:
    # Given a cascade whose ttl (1 h) ends during its first step's wait
    trigger = _save(api, saved, [{**THREE_STEPS[0], "wait": "2h"}, *THREE_STEPS[1:]], ttl="1h")
    cascade_id, _ = _start(api, trigger, email="st@example.com", phone="+14155550177")

    # When the ttl runs out
    view = wait_for("the cascade to expire", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v)

    # Then it is expired, and the steps it never reached are not_sent because of the ttl
    assert (view["status"], view["stop_reason"]) == ("expired", "ttl")
    assert view["steps"][0]["status"] in ("sent", "delivered")
    assert [(s["status"], s["reason"]) for s in view["steps"][1:]] == [("not_sent", "ttl")] * 2


def test_an_exhausted_cascade_leaves_no_step_pending(api: Api, saved: list[str]) -> None:
    # Given a cascade whose second step has no contact and whose steps all run out
    trigger = _save(api, saved, [{**THREE_STEPS[0], "wait": "1h"}, THREE_STEPS[1]])
    cascade_id, _ = _start(api, trigger, email="st@example.com")
    view = wait_for("the cascade to end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v,
                    timeout=60)

    # Then every step has a final status
    assert view["status"] == "exhausted"
    assert [s["status"] for s in view["steps"]] == ["sent", "skipped"]


def _cascade_clock_now() -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=CLOCK_SHIFT_S)).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _scheduled(api: Api, saved: list[str], hours_ahead: float) -> tuple[str, str]:
    """A cascade whose second step is held back until ``hours_ahead`` (cascade time) from now."""
    trigger = _save(api, saved, [
        {"channel": "email", "wait": "1h", "template": _copy("Booked", subject=True)},
        {"channel": "sms", "at": "data.at", "wait": "1h", "template": _copy("Reminder")},
    ])
    event = {"type": f"{trigger}.started",
             "recipient": {"id": f"st-{uuid.uuid4().hex[:8]}", "locale": "en", "email": "st@example.com",
                           "phone": "+14155550178"},
             "data": {"ref": uuid.uuid4().hex[:6], "at": _iso(_cascade_clock_now() + timedelta(hours=hours_ahead))}}
    return api.start(event), trigger


def test_a_deferred_step_that_is_sent_keeps_no_stale_deferral(api: Api, saved: list[str]) -> None:
    # Given a step held back 40 cascade hours (10 s here: long enough to see it held on a busy machine)
    cascade_id, _ = _scheduled(api, saved, hours_ahead=40)
    wait_for("the step to be deferred", lambda: api.cascade(cascade_id)["steps"][1]["status"] == "deferred")

    # When it goes out
    view = wait_for("the SMS step to be sent",
                    lambda: (v := api.cascade(cascade_id))["steps"][1]["status"] in ("sent", "delivered") and v)

    # Then it shows no deferral reason and no not_before any more
    assert (view["steps"][1]["reason"], view["steps"][1]["not_before"]) == (None, None)
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_a_deferred_step_of_a_cancelled_cascade_ends_not_sent(api: Api, saved: list[str]) -> None:
    # Given a step held back for days
    cascade_id, _ = _scheduled(api, saved, hours_ahead=24 * 30)
    wait_for("the step to be deferred", lambda: api.cascade(cascade_id)["steps"][1]["status"] == "deferred")

    # When the cascade is cancelled
    assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200

    # Then the step is not_sent because of the cancel, with no deferral left
    step = api.cascade(cascade_id)["steps"][1]
    assert (step["status"], step["reason"], step["not_before"]) == ("not_sent", "cancelled", None)
