"""Nothing a stream consumer gives up on is lost: on the local stack, a CRM event that fails every
try ends, after the mapping's retries, as an on-failure record in the failed-events queue (the
batch's place in the stream, as Lambda writes it), and ``python -m cascade.aws_redrive`` reads those
records back from the stream and delivers them; an SES event the SNS-fed function gave up on is
redriven as it was, and stops its cascade."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cascade.aws_redrive import Redrive
from cascade.channels.crm import ATTEMPTS
from cascade.local import template
from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture
def crm(api: Api, stack: Any) -> Iterator[Any]:
    crm = stack.standin("crm")
    resp = api.http.put("/v1/webhooks", json={"url": crm.endpoint, "secret": crm.secret})
    assert resp.status_code == 200, resp.text
    yield crm
    assert api.http.delete("/v1/webhooks").status_code == 204


def _outbound_tries() -> int:
    """Deliveries one record gets before the mapping gives up: every attempt of the mapping
    (the first and MaximumRetryAttempts more), each with the CRM client's own tries."""
    mapping = template.load()["Resources"]["OutboundFunction"]["Properties"]["Events"]["Facts"]["Properties"]
    return (int(mapping["MaximumRetryAttempts"]) + 1) * ATTEMPTS


def _drain(sqs: Any, queue: str) -> None:
    """Empty the queue of what earlier tests left (PurgeQueue allows one call a minute)."""
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def _events(api: Api, cascade_id: str) -> list[dict[str, Any]]:
    resp = api.http.get("/local/crm", params={"cascade_id": cascade_id})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["events"])


def test_a_crm_event_that_always_fails_waits_in_the_queue_and_a_redrive_delivers_it(
        api: Api, stack: Any, crm: Any) -> None:
    sqs = boto3.client("sqs", region_name=stack.deployed.region)
    queue = stack.deployed.outputs["FailedEventsQueueUrl"]
    _drain(sqs, queue)
    # Given a CRM that refuses this customer's first event on every try the stream will make
    recipient_id = f"cust-{uuid.uuid4().hex[:8]}"
    armed = api.http.post("/local/crm", json={"fail": _outbound_tries(), "recipient_id": recipient_id,
                                              "status": 503})
    assert armed.status_code == 200, armed.text
    # When a cascade starts for them
    cascade_id = api.start({"type": "order.shipped", "recipient": {"id": recipient_id, "phone": "+77015550101"},
                            "data": {"order_id": "O-1", "track_number": "TRK1"}})

    # Then the event is given up on, not dropped: its batch's place waits in the queue
    def waiting() -> list[dict[str, Any]]:
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
        if int(attrs["Attributes"]["ApproximateNumberOfMessages"]) == 0:
            return []
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    records = wait_for("the failed batch in the queue", waiting, timeout=120, every=0.5)
    outbound = stack.functions["OutboundFunction"]
    assert all(r["requestContext"]["functionArn"].endswith(f":function:{outbound}") for r in records)
    assert all(r["requestContext"]["condition"] == "RetryAttemptsExhausted" for r in records)
    info = records[0]["DDBStreamBatchInfo"]
    assert info["streamArn"] == stack.deployed.stream_arns["CascadeTable"]
    assert int(info["startSequenceNumber"]) <= int(info["endSequenceNumber"]) and info["batchSize"] >= 1
    assert "cascade.started" not in [e["type"] for e in _events(api, cascade_id)]
    # ...and nothing in the record names the customer
    assert recipient_id not in json.dumps(records) and "+77015550101" not in json.dumps(records)

    # When an operator redrives the queue
    result = Redrive(sqs, boto3.client("lambda", region_name=stack.deployed.region),
                     boto3.client("dynamodbstreams", region_name=stack.deployed.region)).run(queue)

    # Then the CRM has the event (once), and the queue is empty
    assert (result.done, result.left) == (len(records), [])
    started = wait_for("cascade.started at the CRM",
                       lambda: [e for e in _events(api, cascade_id) if e["type"] == "cascade.started"])
    assert len(started) == 1 and started[0]["recipient_id"] == recipient_id
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_an_ses_event_the_function_gave_up_on_is_redriven_as_it_was(api: Api, stack: Any,
                                                                    saved: list[str]) -> None:
    """SNS invokes asynchronously; after Lambda's tries the on-failure record keeps the whole event
    (``requestPayload``). The local SNS delivery runs the function inside the publish, so here the
    record is put in the queue as Lambda writes it, for an open of a real cascade's e-mail."""
    sqs = boto3.client("sqs", region_name=stack.deployed.region)
    queue = stack.deployed.outputs["FailedEventsQueueUrl"]
    _drain(sqs, queue)
    # One e-mail that waits 30 days for its open (3 minutes here): the cascade is still waiting
    # when the open is redriven, however busy the machine.
    tag = uuid.uuid4().hex[:8]
    scenario = {"name": "Invoice", "trigger": f"invoice_{tag}.issued", "correlation": "invoice_id",
                "success": ["read"], "steps": [{"channel": "email", "wait": "30d", "template": {
                    "ru": {"subject": "Ваш счёт", "text": "Счёт {{ data.invoice_id }} готов."},
                    "en": {"subject": "Your invoice", "text": "Invoice {{ data.invoice_id }} is ready."}}}]}
    resp = api.http.put(f"/v1/scenarios/invoice-{tag}", json=scenario)
    assert resp.status_code in (200, 201), resp.text
    saved.append(f"invoice-{tag}")
    cascade_id = api.start({"type": f"invoice_{tag}.issued",
                            "recipient": {"id": f"cust-{tag}", "email": "sam@example.com", "locale": "en"},
                            "data": {"invoice_id": "I-1"}})
    email = wait_for("the email", lambda: api.outbox(cascade_id))[0]
    payload = json.loads((template.ROOT / "events" / "aws-events-ses-open.json").read_text(encoding="utf-8"))
    open_event = json.loads(payload["Records"][0]["Sns"]["Message"])
    open_event["mail"].update(messageId=email["provider_message_id"], destination=[email["to"]])
    payload["Records"][0]["Sns"]["Message"] = json.dumps(open_event)
    function_arn = stack.deployed.arns["AwsEventsFunction"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
        "version": "1.0", "timestamp": "2026-11-23T10:05:03.000Z",
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{function_arn}:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Task timed out after 30.00 seconds"}}))
    assert api.cascade(cascade_id)["status"] == "running"

    result = Redrive(sqs, boto3.client("lambda", region_name=stack.deployed.region),
                     boto3.client("dynamodbstreams", region_name=stack.deployed.region)).run(queue)

    assert (result.done, result.left) == (1, [])
    view = api.cascade(cascade_id)
    assert (view["status"], view["stop_reason"]) == ("succeeded", "read")
