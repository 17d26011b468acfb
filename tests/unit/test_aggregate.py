"""The report counters from real stream records (moto's DynamoDB stream of a table with the
stack's keys): each fact counts once, however often its record is delivered."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cascade import aggregate, facts, reports
from cascade.store import CascadeStore

DAY = "2026-11-20"


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CascadeStore, Any]]:
    from cascade.settings import settings

    if "TABLE_NAME" not in os.environ:  # reports name the currency from the settings
        monkeypatch.setenv("TABLE_NAME", "unit")
        settings.cache_clear()
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        desc = db.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "sd", "sdk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "ByScenarioDay", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "sd", "KeyType": "HASH"},
                                                   {"AttributeName": "sdk", "KeyType": "RANGE"}]}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        yield CascadeStore("t", db), desc["TableDescription"]["LatestStreamArn"]
    settings.cache_clear()  # the settings read under this test's TABLE_NAME must not outlive it


def _records(stream_arn: str) -> list[dict[str, Any]]:
    """The table's stream records, as moto keeps them (what Lambda would be handed)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table("t").stream_shard
    assert shard is not None and stream_arn
    records = []
    for item in shard.items:
        record = item.to_json()
        record["dynamodb"] = {k: v for k, v in record["dynamodb"].items() if k != "ApproximateCreationDateTime"}
        records.append(record)
    return [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"].startswith(("C#", "R#"))]


def _cascade(store: CascadeStore, cid: str, rid: str, arm: str | None = None) -> dict[str, Any]:
    at = f"{DAY}T10:00:00Z"
    cascade = {"cascade_id": cid, "scenario_id": "cart", "status": "running", "recipient": {"id": rid},
               "recipient_id": rid, "created_at": at, "sd": f"cart#{DAY}", "sdk": f"C#{at}#{cid}", "arm": arm,
               "steps": [{"index": 0, "channel": "email", "status": "pending"},
                         {"index": 1, "channel": "sms", "status": "pending"}]}
    assert store.create(cascade, {"cascade_id": cid})
    return cascade


def _sent(store: CascadeStore, cascade: dict[str, Any], step: int, channel: str, price_u: int, at: str) -> None:
    store.set_step(cascade["cascade_id"], step, status="sent", sent_at=at)
    store.put_touch(cascade["recipient_id"], facts.touch(cascade, step, channel, "sent", "sent", at=at,
                                                         price_u=price_u, parts=1, provider="x"))


def _signal(store: CascadeStore, cascade: dict[str, Any], step: int, channel: str, status: str, before: str,
            moved: bool, at: str) -> None:
    store.put_touch(cascade["recipient_id"], facts.touch(cascade, step, channel, "signal", status, at=at,
                                                         moved=moved, **{"from": before}))


def _story(store: CascadeStore) -> None:
    """c1: email read (no delivery receipt first), a late 'delivered' moves nothing, succeeded on step 0.
    c2: email, SMS clicked, succeeded on step 1 an hour after it started. c3: email skipped
    (no consent), SMS sent, exhausted."""
    c1 = _cascade(store, "c1", "r1", arm="adaptive")
    _sent(store, c1, 0, "email", 100, f"{DAY}T10:00:01Z")
    _signal(store, c1, 0, "email", "read", "sent", True, f"{DAY}T10:05:00Z")
    _signal(store, c1, 0, "email", "delivered", "read", False, f"{DAY}T10:05:01Z")
    store.finish("c1", "succeeded", "read", f"{DAY}T10:05:00Z", success_step=0)
    c2 = _cascade(store, "c2", "r2", arm="holdout")
    _sent(store, c2, 0, "email", 100, f"{DAY}T10:00:01Z")
    _sent(store, c2, 1, "sms", 7900, f"{DAY}T10:30:00Z")
    _signal(store, c2, 1, "sms", "clicked", "sent", True, f"{DAY}T11:00:00Z")
    store.finish("c2", "succeeded", "clicked", f"{DAY}T11:00:00Z", success_step=1)
    c3 = _cascade(store, "c3", "r3", arm="holdout")
    store.put_touch("r3", facts.touch(c3, 0, "email", "skipped", "no_consent", at=f"{DAY}T10:00:01Z"))
    _sent(store, c3, 1, "sms", 7900, f"{DAY}T10:00:02Z")
    store.finish("c3", "exhausted", None, f"{DAY}T12:00:00Z")


def _report(store: CascadeStore) -> dict[str, Any]:
    return reports.scenario_report("cart", DAY, DAY, store)


def test_the_story_is_counted_per_step_and_channel(table: tuple[CascadeStore, str]) -> None:
    store, stream = table
    _story(store)
    assert aggregate.handle({"Records": _records(stream)}, store, time_scale=1.0) == {"batchItemFailures": []}
    report = _report(store)
    assert report["totals"] == {"cascades": 3, "reached": 2, "reach": pytest.approx(0.6667), "successes": 2,
                                "success_rate": pytest.approx(0.6667), "cost": pytest.approx(0.016),
                                "cost_per_success": pytest.approx(0.008), "median_time_to_success_s": pytest.approx(
                                    300, rel=0.1)}
    rows = {(s["index"], s["channel"]): s for s in report["steps"]}
    email = rows[(0, "email")]
    assert {k: email[k] for k in ("sent", "delivered", "read", "successes", "suppressed", "skipped")} == {
        "sent": 2, "delivered": 1, "read": 1, "successes": 1, "suppressed": 1, "skipped": 0}
    assert rows[(1, "sms")]["sent"] == 2 and rows[(1, "sms")]["clicked"] == 1
    assert rows[(1, "sms")]["delivered"] == 1 and rows[(1, "sms")]["read"] == 1  # a click passed both stages
    assert rows[(1, "sms")]["successes"] == 1 and rows[(1, "sms")]["cost"] == pytest.approx(0.0158)
    assert report["baseline"] == {"channel": "email", "sent": 2, "successes": 1, "reach": pytest.approx(0.3333),
                                  "cost": pytest.approx(0.0002), "cost_per_success": pytest.approx(0.0002)}
    assert report["ended"] == {"exhausted": 1, "succeeded": 2}
    arms = report["adaptive"]
    assert arms["adaptive"]["cascades"] == 1 and arms["adaptive"]["successes"] == 1
    assert arms["holdout"]["cascades"] == 2 and arms["holdout"]["successes"] == 1
    assert arms["uplift"]["success_rate"] == pytest.approx(0.5)
    assert store.get_reactions("r2")["sms"] == 1 and store.get_reactions("r2")["last_channel"] == "sms"


def test_a_replayed_batch_or_record_counts_nothing_twice(table: tuple[CascadeStore, str]) -> None:
    store, stream = table
    _story(store)
    records = _records(stream)
    aggregate.handle({"Records": records}, store, time_scale=1.0)
    once = _report(store)
    aggregate.handle({"Records": records}, store, time_scale=1.0)  # the whole batch again
    aggregate.handle({"Records": records[len(records) // 2:]}, store, time_scale=1.0)  # retried from the middle
    assert _report(store) == once
    assert store.get_reactions("r1") == {"email": 1, "last_channel": "email", "last_at": f"{DAY}T10:05:00Z"}


def test_a_record_that_cannot_be_counted_is_named_and_the_rest_wait(table: tuple[CascadeStore, str]) -> None:
    store, stream = table
    _story(store)
    records = _records(stream)
    gone = CascadeStore("no-such-table", store.db)  # the counters cannot be written
    answer = aggregate.handle({"Records": records}, gone, time_scale=1.0)
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    # Retried from that record against the real table, everything counts once.
    aggregate.handle({"Records": records}, store, time_scale=1.0)
    assert _report(store)["totals"]["cascades"] == 3


def test_a_cascade_whose_workflow_never_started_is_taken_back_out(table: tuple[CascadeStore, str]) -> None:
    store, stream = table
    _cascade(store, "c9", "r9")
    store.discard("c9", "r9")
    aggregate.handle({"Records": _records(stream)}, store, time_scale=1.0)
    assert _report(store)["totals"]["cascades"] == 0


def test_time_to_success_is_cascade_time_and_the_median_is_within_a_bucket() -> None:
    for seconds in (1, 59, 300, 3600, 86400):
        middle = aggregate.bucket_seconds(aggregate.tts_bucket(seconds))
        assert abs(middle - seconds) <= 0.1 * seconds + 1
    record_scale = 60.0  # a local stack at 60× reports an hour for a real minute
    changes = aggregate.changes({"eventName": "MODIFY", "dynamodb": {
        "Keys": {"pk": {"S": "C#c"}, "sk": {"S": "C"}},
        "OldImage": {"status": {"S": "running"}},
        "NewImage": {"cascade_id": {"S": "c"}, "scenario_id": {"S": "s"}, "status": {"S": "succeeded"},
                     "created_at": {"S": f"{DAY}T10:00:00Z"}, "finished_at": {"S": f"{DAY}T10:01:00Z"},
                     "steps": {"L": []}}}}, record_scale)
    assert changes[0].counts["tts_sum_s"] == 3600


def test_a_confirmed_call_is_no_click_and_an_sms_reply_no_click_either(table: tuple[CascadeStore, str]) -> None:
    """The funnel is cumulative only where it is true: delivered ⊇ read ⊇ each of clicked, replied
    and confirmed. Pressing 1 on a call is confirmed (and read, delivered); an SMS reply is
    replied (and read, delivered); neither is a click, and neither is the other."""
    store, stream = table
    call = _cascade(store, "c1", "r1")
    _sent(store, call, 1, "voice", 100, f"{DAY}T10:00:01Z")
    _signal(store, call, 1, "voice", "confirmed", "sent", True, f"{DAY}T10:01:00Z")
    sms = _cascade(store, "c2", "r2")
    _sent(store, sms, 1, "sms", 100, f"{DAY}T10:00:01Z")
    _signal(store, sms, 1, "sms", "replied", "sent", True, f"{DAY}T10:01:00Z")
    _signal(store, sms, 1, "sms", "replied", "replied", False, f"{DAY}T10:02:00Z")  # a second reply: counted once
    aggregate.handle({"Records": _records(stream)}, store, time_scale=1.0)
    rows = {s["channel"]: s for s in _report(store)["steps"]}
    stages = ("delivered", "read", "clicked", "replied", "confirmed")
    assert {k: rows["voice"][k] for k in stages} == {"delivered": 1, "read": 1, "clicked": 0, "replied": 0,
                                                      "confirmed": 1}
    assert {k: rows["sms"][k] for k in stages} == {"delivered": 1, "read": 1, "clicked": 0, "replied": 1,
                                                    "confirmed": 0}
    assert _report(store)["totals"]["reached"] == 2
