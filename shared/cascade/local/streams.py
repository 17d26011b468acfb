"""DynamoDB stream → Lambda, the way an event source mapping delivers on AWS.

moto records stream records and, for a table with a mapping, hands each new record to the
function at once, inside the write that made it. On AWS the mapping polls: the function runs
later, apart from the writer, with records in order and in batches; a batch that fails is
retried (from the first record the function reports in ``batchItemFailures``, or whole) with
backoff until it succeeds or runs out of attempts. This module does the same in the local stack:
moto's hand-over only queues the records, and one worker thread per mapping delivers them,
filtered by the mapping's ``FilterCriteria`` as Lambda would."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("cascade.local.streams")


@dataclass
class Mapping:
    function_name: str
    batch_size: int = 100
    window_s: float = 0.05
    max_attempts: int = 10
    filters: list[dict[str, Any]] = field(default_factory=list)
    pending: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    busy: bool = False
    stopped: threading.Event = field(default_factory=threading.Event)
    delivered: int = 0
    failed_batches: int = 0
    function_arn: str = ""
    on_failure: str = ""  # DestinationConfig.OnFailure: the SQS queue ARN that gets a dropped batch's metadata
    # Lambda's IteratorAge: how old the oldest record of the last batch was when it was handed over.
    iterator_age_s: float = 0.0
    max_iterator_age_s: float = 0.0


MAPPINGS: dict[str, Mapping] = {}  # function ARN → mapping
_lock = threading.Lock()
# The local stack's waits are short: Lambda's batching window and retry backoff, scaled down.
WINDOW_SCALE = 0.025
BACKOFF_S = (0.05, 0.1, 0.2, 0.4, 0.8)
RETAINED = 1000  # stream records moto keeps per table, for reading a failed batch back


def matches(pattern: Any, value: Any) -> bool:
    """An EventBridge-style filter pattern (the subset Lambda's FilterCriteria use here: nested
    objects, lists of allowed values, ``{"prefix": ...}``, ``{"anything-but": [...]}`` and
    ``{"exists": bool}``)."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if isinstance(sub, list) and any(isinstance(s, dict) and "exists" in s for s in sub):
                if (key in value) != bool(next(s["exists"] for s in sub if isinstance(s, dict) and "exists" in s)):
                    return False
                continue
            if key not in value or not matches(sub, value[key]):
                return False
        return True
    if isinstance(pattern, list):
        return any(_leaf(p, value) for p in pattern)
    return bool(pattern == value)


def _leaf(allowed: Any, value: Any) -> bool:
    if isinstance(allowed, dict) and "prefix" in allowed:
        return isinstance(value, str) and value.startswith(str(allowed["prefix"]))
    if isinstance(allowed, dict) and "anything-but" in allowed:
        refused = allowed["anything-but"]
        return value not in (refused if isinstance(refused, list) else [refused])
    return bool(allowed == value)


def wanted(mapping: Mapping, record: dict[str, Any]) -> bool:
    return not mapping.filters or any(matches(f, record) for f in mapping.filters)


def register(function_arn: str, function_name: str, spec: dict[str, Any]) -> None:
    """A mapping from the template (``AWS::Lambda::EventSourceMapping`` properties)."""
    filters = [json.loads(f["Pattern"]) for f in (spec.get("FilterCriteria") or {}).get("Filters", [])]
    mapping = Mapping(function_name=function_name, batch_size=int(spec.get("BatchSize", 100)),
                      window_s=float(spec.get("MaximumBatchingWindowInSeconds", 0)) * WINDOW_SCALE or 0.02,
                      max_attempts=int(spec.get("MaximumRetryAttempts", 10)) + 1, filters=filters,
                      function_arn=function_arn,
                      on_failure=((spec.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination", ""))
    with _lock:
        MAPPINGS[function_arn] = mapping
    threading.Thread(target=_deliver, args=(mapping,), name=f"stream-{function_name}", daemon=True).start()


def _send(self: Any, function_arn: str, items: list[Any], source: str) -> str:
    """Stands in for moto's hand-over (``LambdaBackend.send_dynamodb_items``): queue, don't run."""
    mapping = MAPPINGS.get(function_arn)
    if mapping is None:
        return "ignored"
    from moto.core.utils import unix_time

    for item in items[-1:]:  # moto hands over its shard after each write: the newest record is the new one
        record = item.to_json()
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if created is not None and not isinstance(created, int | float):
            dynamodb["ApproximateCreationDateTime"] = unix_time(created)
        event = {"eventID": record["eventID"], "eventName": record["eventName"],
                 "eventVersion": record["eventVersion"], "eventSource": record["eventSource"],
                 "awsRegion": self.region_name, "dynamodb": dynamodb, "eventSourceARN": source}
        if wanted(mapping, event):
            mapping.pending.put(event)
    _retain(self.account_id, self.region_name, source)
    return ""  # moto keeps them: GetRecords reads a failed batch back, as from a stream (24 h on AWS)


def _retain(account_id: str, region: str, stream_arn: str) -> None:
    """Keep the last :data:`RETAINED` records of the table's stream (memory stays bounded); the
    sequence numbers go on from where the dropped ones ended."""
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends[account_id][region].get_table(stream_arn.split("/")[1]).stream_shard
    extra = len(shard.items) - RETAINED if shard is not None else 0
    if shard is not None and extra > 0:
        del shard.items[:extra]
        shard.starting_sequence_number += extra


def _batch(mapping: Mapping) -> list[dict[str, Any]]:
    try:
        batch = [mapping.pending.get(timeout=0.5)]
    except queue.Empty:
        return []
    deadline = time.monotonic() + mapping.window_s
    while len(batch) < mapping.batch_size:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            batch.append(mapping.pending.get(timeout=left))
        except queue.Empty:
            break
    return batch


def _deliver(mapping: Mapping) -> None:
    from cascade.local import lambdas

    while not mapping.stopped.is_set():
        batch = _batch(mapping)
        if not batch:
            continue
        mapping.busy = True
        created = batch[0]["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, int | float):
            mapping.iterator_age_s = max(0.0, time.time() - created)
            mapping.max_iterator_age_s = max(mapping.max_iterator_age_s, mapping.iterator_age_s)
        attempt = 0
        try:
            while batch and attempt < mapping.max_attempts:
                failed_from = _invoke(lambdas, mapping, batch)
                if failed_from is None:
                    mapping.delivered += len(batch)
                    batch = []
                    break
                mapping.delivered += failed_from
                batch = batch[failed_from:]
                mapping.failed_batches += 1
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
            if batch and mapping.on_failure:
                try:
                    _to_failure_destination(mapping, batch, attempt)
                except Exception:
                    log.exception("%s: %d stream records dropped: the failure destination refused them",
                                  mapping.function_name, len(batch))
            elif batch:
                log.warning("%s: %d stream records dropped after %d attempts", mapping.function_name, len(batch),
                            attempt)
        finally:
            mapping.busy = False


def _to_failure_destination(mapping: Mapping, batch: list[dict[str, Any]], attempts: int) -> None:
    """What Lambda sends to a stream mapping's on-failure queue: where the batch is in the stream
    (shard, first and last sequence number), not the records themselves."""
    import uuid
    from datetime import UTC, datetime

    import boto3

    first, last = batch[0], batch[-1]
    region, stream_arn = first["awsRegion"], first["eventSourceARN"]
    shards = boto3.client("dynamodbstreams", region_name=region).describe_stream(
        StreamArn=stream_arn)["StreamDescription"]["Shards"]

    def arrival(record: dict[str, Any]) -> str:
        created = float(record["dynamodb"].get("ApproximateCreationDateTime") or time.time())
        return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    body = {"version": "1.0", "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": mapping.function_arn,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "DDBStreamBatchInfo": {"shardId": shards[-1]["ShardId"] if shards else "",
                                   "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                                   "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                                   "approximateArrivalOfFirstRecord": arrival(first),
                                   "approximateArrivalOfLastRecord": arrival(last),
                                   "batchSize": len(batch), "streamArn": stream_arn}}
    sqs = boto3.client("sqs", region_name=region)
    url = sqs.get_queue_url(QueueName=mapping.on_failure.rsplit(":", 1)[-1])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    log.warning("%s: %d stream records sent to the failure destination after %d attempts", mapping.function_name,
                len(batch), attempts)


def _invoke(lambdas: Any, mapping: Mapping, batch: list[dict[str, Any]]) -> int | None:
    """Run the function on ``batch``; None if it all went through, else the position to retry from."""
    try:
        result = lambdas.run(mapping.function_name, {"Records": batch})
    except Exception:
        log.exception("%s failed on a batch of %d stream records", mapping.function_name, len(batch))
        return 0
    failures = (result or {}).get("batchItemFailures") or [] if isinstance(result, dict) else []
    if not failures:
        return None
    ids = [r["dynamodb"].get("SequenceNumber") for r in batch]
    positions = [ids.index(f.get("itemIdentifier")) for f in failures if f.get("itemIdentifier") in ids]
    return min(positions) if positions else 0


def idle() -> bool:
    """Nothing queued or being delivered (tests and benchmarks wait for this)."""
    return all(m.pending.empty() and not m.busy for m in MAPPINGS.values())


def wait_idle(timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if idle():
            time.sleep(0.02)
            if idle():
                return True
        time.sleep(0.02)
    return False


def install() -> None:
    from moto.awslambda.models import LambdaBackend

    LambdaBackend.send_dynamodb_items = _send  # type: ignore[method-assign]


def stop(function_arns: list[str]) -> None:
    """The stack stops: its mappings deliver nothing more."""
    with _lock:
        for arn in function_arns:
            mapping = MAPPINGS.pop(arn, None)
            if mapping is not None:
                mapping.stopped.set()


__all__ = ["MAPPINGS", "Mapping", "idle", "install", "matches", "register", "stop", "wait_idle"]
