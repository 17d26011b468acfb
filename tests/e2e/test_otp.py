"""The OTP preset on the local stack: SMS, then WhatsApp, then a robot call reading the code, all
within the code's lifetime; `otp.verified` stops it; the ttl ends it `expired`. The code reaches
the customer's phone (the outbox) and nothing else: no log line, no stored item, no view."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import Any

import boto3
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack


def new_code() -> str:
    # Eight digits starting with 9: long enough that no id, epoch or hex token elsewhere in the
    # table or the logs contains it by chance, so any hit below is a real leak.
    return "9" + "".join(secrets.choice("0123456789") for _ in range(7))


def otp_event(code: str, request_id: str, **recipient: Any) -> dict[str, Any]:
    who = {"id": f"cust-{uuid.uuid4().hex[:8]}", "locale": "ru", "phone": "+77015550101", **recipient}
    return {"type": "otp.requested", "idempotency_key": f"otp-{request_id}", "recipient": who,
            "data": {"request_id": request_id, "code": code}}


def table_items(stack: Any) -> list[str]:
    """Every item of the stack's table, as text."""
    db = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_endpoint)
    items: list[str] = []
    for page in db.get_paginator("scan").paginate(TableName=stack.table_name):
        items.extend(json.dumps(item, ensure_ascii=False, default=str) for item in page["Items"])
    return items


def cascade_item(stack: Any, cascade_id: str) -> dict[str, Any]:
    db = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_endpoint)
    return dict(db.get_item(TableName=stack.table_name, Key={"pk": {"S": f"C#{cascade_id}"}, "sk": {"S": "C"}},
                            ConsistentRead=True)["Item"])


def forms(code: str) -> tuple[str, str]:
    return code, " ".join(code)  # as texted, and as the call reads it


def assert_nowhere(code: str, texts: list[str], where: str) -> None:
    for text in texts:
        for form in forms(code):
            assert form not in text, f"the code is in {where}: {text[:300]}"


def execution_over(stack: Any, cascade_id: str) -> bool:
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{cascade_id}"
    sfn = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=stack.aws_endpoint)
    return str(sfn.describe_execution(executionArn=arn)["status"]) != "RUNNING"


def slow_otp(api: Api, saved: list[str]) -> str:
    """The OTP preset with its waits and ttl scaled up alike (45 s → 16 h): at the suite's time scale
    each step then has seconds, not the 1 s floor, to go out before the next one starts or the code
    expires, on a busy machine too. Returns the copy's trigger."""
    scenario = api.http.get("/v1/scenarios/otp").json()
    for key in ("version", "source", "id"):
        scenario.pop(key, None)
    for step, wait in zip(scenario["steps"], ("16h", "16h", "43h"), strict=True):
        step["wait"] = wait
    tag = uuid.uuid4().hex[:8]
    resp = api.http.put(f"/v1/scenarios/otp-{tag}", json={**scenario, "ttl": "64h", "trigger": f"otp_{tag}.requested"})
    assert resp.status_code == 201, resp.text
    saved.append(f"otp-{tag}")
    return f"otp_{tag}.requested"


def test_otp_falls_back_sms_whatsapp_call_within_its_ttl_and_the_code_stays_out_of_logs_and_table(
        api: Api, stack: Any, saved: list[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)  # what any other library would print on the console
    caplog.set_level(logging.DEBUG, logger="cascade")  # everything of ours (the capture takes all from here on)
    code = new_code()
    # No Telegram chat: the messenger step goes to WhatsApp, outside its 24 h window: the template.
    event = otp_event(code, f"login-{uuid.uuid4().hex[:6]}", whatsapp="+77015550101")
    cascade_id = api.start({**event, "type": slow_otp(api, saved)})

    sms = wait_for("the SMS", lambda: api.outbox(cascade_id))[0]
    assert sms["channel"] == "sms" and sms["text"] == f"Код: {code}. Никому не сообщайте его."
    # While it runs the code is sealed (KMS) in the cascade item, and in clear nowhere in the table.
    running = cascade_item(stack, cascade_id)
    assert "secret_blob" in running and code not in running["data_json"]["S"]
    assert_nowhere(code, table_items(stack), "a stored item while the cascade runs")

    view = wait_for("the cascade to end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v,
                    timeout=60)
    assert (view["status"], view["stop_reason"]) == ("expired", "ttl")
    assert [s["channel"] for s in view["steps"]] == ["sms", "whatsapp", "voice"]
    assert all(s["status"] in ("sent", "delivered") for s in view["steps"]), view["steps"]
    messages = api.outbox(cascade_id)
    assert [m["channel"] for m in messages] == ["sms", "whatsapp", "voice"]
    assert all(m["sent_at"] < view["finished_at"] for m in messages)  # every try inside the code's lifetime
    whatsapp, call = messages[1], messages[2]
    assert whatsapp["text"] == f"[otp_code] {code}"  # the authentication template, the code its parameter
    spoken = " ".join(code)
    assert call["text"].count(spoken) == 2, call["text"]  # read twice, digit by digit
    assert all("http" not in m["text"] and "/r/" not in m["text"] for m in messages)  # sterile: no links

    # Finished: the sealed copy is gone too; the code is in no item, view, timeline or log line.
    assert "secret_blob" not in cascade_item(stack, cascade_id)
    assert_nowhere(code, table_items(stack), "a stored item after the cascade")
    recipient_id = view["recipient_id"]
    views = [api.http.get(f"/v1/cascades/{cascade_id}").text, api.http.get(f"/v1/recipients/{recipient_id}/timeline").text]
    assert_nowhere(code, views, "the API's views")
    ours = [r for r in caplog.records if r.name == "cascade"]
    assert any(getattr(r, "cascade_id", None) == cascade_id for r in ours), "the cascade was logged at all"
    assert_nowhere(code, [f"{r.getMessage()} {r.__dict__}" for r in caplog.records], "a log line")


def test_otp_verified_stops_the_cascade_after_the_sms(api: Api, stack: Any) -> None:
    code, request_id = new_code(), f"pay-{uuid.uuid4().hex[:6]}"
    event = otp_event(code, request_id, locale="en")
    cascade_id = api.start(event)
    sms = wait_for("the SMS", lambda: api.outbox(cascade_id))[0]
    assert sms["text"] == f"Code: {code}. Do not share it with anyone."
    resp = api.post_event({"type": "otp.verified", "recipient": {"id": event["recipient"]["id"]},
                           "data": {"request_id": request_id}})
    assert resp.status_code == 202 and resp.json() == {"stopped": [cascade_id]}
    view = api.cascade(cascade_id)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "event:otp.verified")
    wait_for("the workflow to end", lambda: execution_over(stack, cascade_id))
    assert [m["channel"] for m in api.outbox(cascade_id)] == ["sms"]  # no messenger, no call
    assert "secret_blob" not in cascade_item(stack, cascade_id)


def test_the_same_request_posted_again_is_the_same_cascade(api: Api) -> None:
    """The idempotency fingerprint leaves the code out, so a retried request is recognised
    without the table holding anything derived from the code."""
    code, request_id = new_code(), f"login-{uuid.uuid4().hex[:6]}"
    event = otp_event(code, request_id)
    first = api.post_event(event)
    again = api.post_event(event)
    assert first.status_code == again.status_code == 202
    assert first.json()["cascade_id"] == again.json()["cascade_id"]
    wait_for("the one SMS", lambda: api.outbox(first.json()["cascade_id"]))
    api.http.post(f"/v1/cascades/{first.json()['cascade_id']}/cancel")
