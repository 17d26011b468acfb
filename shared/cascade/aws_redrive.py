"""Give what is waiting in the failed-events queue to its function again, then delete it.

``python -m cascade.aws_redrive <FailedEventsQueueUrl> [--dry-run]`` (AWS credentials and region from
the environment, as for the AWS CLI). Two kinds of message wait there, both Lambda on-failure
records naming the function (``requestContext.functionArn``):

- a stream batch (``DDBStreamBatchInfo``): only its position is kept, so its records are read back
  from the table's stream (shard, first to last sequence number), filtered by the mapping's
  ``FilterCriteria`` as Lambda would, and invoked as one batch. A stream keeps records for 24 h:
  a batch older than that cannot be read back (reported, and left in the queue);
- an SNS event the SES/SMS function failed on (``requestPayload``): invoked again as it was.

A message is deleted only when its function took it without an error or a batch item failure, so a
redrive can be repeated. Replays are safe: the aggregator counts each fact once and CRM events
keep their ids."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cascade.local.streams import matches


@dataclass
class Redrive:
    sqs: Any
    lam: Any
    streams: Any
    done: int = 0
    left: list[str] = field(default_factory=list)  # why each message that stays, stayed

    def run(self, queue_url: str, dry_run: bool = False) -> Redrive:
        seen: set[str] = set()
        while True:
            messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                                VisibilityTimeout=60).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                return self
            for message in fresh:
                seen.add(message["MessageId"])
                why = self.one(json.loads(message["Body"]), dry_run)
                if why is None and not dry_run:
                    self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    self.done += 1
                elif why is not None:
                    self.left.append(f"{message['MessageId']}: {why}")

    def one(self, record: dict[str, Any], dry_run: bool) -> str | None:
        function = (record.get("requestContext") or {}).get("functionArn", "")
        if "DDBStreamBatchInfo" in record:
            payload: Any = {"Records": self.read_back(function, record["DDBStreamBatchInfo"])}
            if not payload["Records"]:
                return "its records are no longer in the stream (older than 24 h?)"
        elif "requestPayload" in record:
            payload = record["requestPayload"]
        else:
            return "not a Lambda on-failure record"
        if dry_run:
            return None
        answer = self.lam.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
        result = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            return f"{function} failed again: {str(result)[:200]}"
        if isinstance(result, dict) and result.get("batchItemFailures"):
            return f"{function} failed again on part of the batch"
        return None

    def read_back(self, function: str, info: dict[str, Any]) -> list[dict[str, Any]]:
        stream, first, last = info["streamArn"], int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        mappings = self.lam.list_event_source_mappings(FunctionName=function, EventSourceArn=stream)
        patterns = [json.loads(f["Pattern"]) for m in mappings.get("EventSourceMappings", [])
                    for f in (m.get("FilterCriteria") or {}).get("Filters", [])]
        iterator = self.streams.get_shard_iterator(
            StreamArn=stream, ShardId=info["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"]).get("ShardIterator")
        found: list[dict[str, Any]] = []
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            records = page.get("Records", [])
            for raw in records:
                if int(raw["dynamodb"]["SequenceNumber"]) > last:
                    return found
                event = _as_lambda_event(raw, stream)
                if int(raw["dynamodb"]["SequenceNumber"]) >= first and (
                        not patterns or any(matches(p, event) for p in patterns)):
                    found.append(event)
            if not records:
                return found
            iterator = page.get("NextShardIterator")
        return found


def _as_lambda_event(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to a function (epoch seconds, the stream's ARN)."""
    dynamodb = dict(raw["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {**{k: raw[k] for k in ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion") if k in raw},
            "dynamodb": dynamodb, "eventSourceARN": stream_arn}


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m cascade.aws_redrive", description=__doc__.split("\n")[0])
    parser.add_argument("queue_url", help="the stack's FailedEventsQueueUrl output")
    parser.add_argument("--dry-run", action="store_true", help="read everything back, invoke nothing, delete nothing")
    args = parser.parse_args(argv)
    result = Redrive(boto3.client("sqs"), boto3.client("lambda"), boto3.client("dynamodbstreams")).run(
        args.queue_url, args.dry_run)
    print(f"redriven: {result.done}, left in the queue: {len(result.left)}")
    for why in result.left:
        print(f"  {why}")
    return 1 if result.left else 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Redrive", "main"]
