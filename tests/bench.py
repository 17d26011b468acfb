"""What a cascade costs to run, and how quickly its handlers start: ``make bench``.

Three figures, each with the goal it is held to:

1. **State transitions per fully escalated cascade.** Step Functions Standard bills every state
   entered, so the number of transitions a cascade takes when nobody answers (every step sent,
   every timer run out) is what the workflow costs at worst. It is counted from the real
   execution history of the real state machine, run by moto on the local stack, for the
   ``delivery-failed`` and ``abandoned-cart`` presets. Goal: at most 2.5 transitions per step.

2. **AWS cost per 1,000 such cascades** at us-east-1 list prices, itemised: Step Functions,
   Lambda requests and duration, DynamoDB on demand, and the HTTP API. Transitions and Lambda
   invocations are measured (from the same histories), and so are the DynamoDB requests the
   handlers make (they run in this process: a botocore hook counts them and sizes each write
   DynamoDB's way, see :class:`DynamoMeter`); the write units are split by item, the cascade item's
   writes shown with the sizes they were billed on. Goal: at most 40 WRU per cascade.
   Lambda duration is a stated assumption. Message prices (email, SMS, messengers, calls) are left out: they
   depend on the channel mix, not on this design, and dwarf the rest anyway.

3. **Cold import time of the ingest handler**, as a ratio to ``import boto3`` alone. The ingest
   function sits on the request path, so its cold start is what a caller waits for; boto3 is
   the floor any AWS handler pays. Both are timed in fresh interpreters, interleaved, one
   untimed warm-up each (so bytecode caches exist), then the median of several runs.
   Goal: at most 1.3. The step handler is reported the same way, for information.

4. **Report cost as data grows.** A scenario report reads the per-day counters the stream
   aggregator keeps, so its read units and latency must not grow with the number of cascades.
   Measured in-process on moto: synthetic cascades of one scenario spread over 10 days (sent,
   read, clicked, succeeded and exhausted in fixed shares) go through the real aggregator, as
   stream records, in batches of 100; the facts themselves are written too. At 1×, 10× and 100×
   the cascades, the 10-day report is timed (median of repeated calls) and its read units are
   sized from the items it reads (moto does not meter); for contrast, so are the read units of
   reading the same facts from the ``ByScenarioDay`` index, which is what a report without
   counters would have to do.

6. **Capacity model** (:mod:`tests.capacity`): from the calls one fully escalated cascade made
   in part 1 (every AWS call counted by a botocore ``before-call`` hook; the request units per
   DynamoDB key, a key being *shared* when two cascades of the same preset both touched it), and
   the published default quotas and prices: new cascades a day per account and region, the limit
   that binds first and the cost per 1,000 cascades at 1 M, 10 M and 100 M a day, for the built
   design and for issue 12's design target (shared clock timers, not built yet), with the goals.

5. **The local stack under load** (:mod:`tests.bench_load`): ``--cascades N`` cascades (default
   2,000) from 3 and then 32 clients, to completion: throughput, errors (must be 0), the
   aggregator's lag, and memory before, after and once the cascades have ended.

The report is printed and the same figures are written to ``test-artifacts/bench.json`` (part 5
to ``test-artifacts/bench-load.json``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import boto3
import httpx

from tests import capacity

ROOT: Final = Path(__file__).resolve().parent.parent
ARTIFACT: Final = ROOT / "test-artifacts" / "bench.json"
REGION: Final = "us-east-1"
API_KEY: Final = "bench-key"
# One cascade day per real second: the longest timer (24 h) takes one second.
TIME_SCALE: Final = 86400.0
CASCADE_DEADLINE_S: Final = 120.0
POLL_EVERY_S: Final = 0.2

TRANSITIONS_PER_STEP_GOAL: Final = 2.5
CASCADE_WRU_GOAL: Final = 40  # issue 12: write units per fully escalated 4-step cascade
IMPORT_RATIO_GOAL: Final = 1.3
IMPORT_RUNS: Final = 7

# List prices, us-east-1, USD.
SFN_PER_TRANSITION: Final = 0.025 / 1_000
LAMBDA_PER_REQUEST: Final = 0.20 / 1_000_000
LAMBDA_PER_GB_S_ARM: Final = 0.0000133334
DDB_PER_WRU: Final = 0.625 / 1_000_000
DDB_PER_RRU: Final = 0.125 / 1_000_000
HTTP_API_PER_REQUEST: Final = 1.00 / 1_000_000

# Assumptions (not measured here).
LAMBDA_MEMORY_GB: Final = 512 / 1024
LAMBDA_SECONDS_PER_INVOKE: Final = 0.100
INGEST_INVOKES_PER_CASCADE: Final = 1
API_REQUESTS_PER_CASCADE: Final = 1

CASCADES: Final = 1_000


# -- 1. state transitions ------------------------------------------------------------------------


@dataclass
class Transitions:
    preset: str
    cascade_id: str
    transitions: int
    steps: int
    lambda_invokes: int
    states_entered: dict[str, int]
    step_statuses: list[str]
    ddb_wru: float
    ddb_rru: float
    ddb_calls: dict[str, int]
    ddb_writes: dict[str, Any]  # WRU by item shape, the cascade item's writes and final size
    aws_calls: dict[str, int] = field(default_factory=dict)
    key_units: dict[str, dict[str, float]] = field(default_factory=dict)  # pk -> wru, rru
    transitions_per_step: float = field(init=False)
    meets_goal: bool = field(init=False)

    def __post_init__(self) -> None:
        self.transitions_per_step = self.transitions / self.steps
        self.meets_goal = self.transitions_per_step <= TRANSITIONS_PER_STEP_GOAL


def _morning_zone() -> str:
    """A time zone where it is about 10:00 now, so that the cascade's sends fall in the day and no
    quiet hours defer them: the figures are those of the plain 4-step cascade whatever the hour
    the bench runs (a deferral is counted, and modelled, on its own)."""
    offset = (10 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is UTC+3


def _event_body(preset: str) -> dict[str, Any]:
    """The sample event for a preset, made unique so that every run starts a fresh cascade."""
    body: dict[str, Any] = json.loads((ROOT / "events" / f"{preset}.json").read_text(encoding="utf-8"))
    body.pop("idempotency_key", None)
    suffix = uuid.uuid4().hex[:8]
    body["recipient"]["id"] = f"bench-{suffix}"
    body["recipient"]["timezone"] = _morning_zone()
    if preset == "abandoned-cart":
        # Every contact present, so every step (email, Telegram, SMS, robot call) really sends.
        body["recipient"].update({"email": f"sam+{suffix}@example.com", "telegram_chat_id": str(uuid.uuid4().int % 10**9),
                                  "phone": f"+1415555{uuid.uuid4().int % 10**4:04d}"})
        body["data"]["cart_id"] = f"cart-{suffix}"
    else:
        body["data"]["order_id"] = f"bench-{suffix}"
        body["recipient"]["phone"] = f"+7701{uuid.uuid4().int % 10**7:07d}"  # its chat keys are its own
    return body


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it, from its wire form (``{"name": {"S": "..."}}``): each
    attribute's name plus its value; a string its UTF-8 bytes, a number about one byte per two
    digits plus one, a list or map 3 bytes plus one per element plus the elements (a map's names too)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return (len(v.lstrip("-").replace(".", "").strip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_bytes(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(e) for k, e in v.items())
    if kind == "SS":
        return sum(len(e.encode()) for e in v)
    if kind == "NS":
        return sum(_value_bytes({"N": e}) for e in v)
    return sum(len(e) for e in v)  # BS


def write_units(size_before: int, size_after: int, transactional: bool = False) -> int:
    """Write request units of one write, DynamoDB's way: 1 per started KB of the larger of the item
    before and after (at least 1), doubled inside a transaction."""
    return max(1, -(-max(size_before, size_after) // 1024)) * (2 if transactional else 1)


# The ByScenarioDay index (template.yaml): a write that changes these attributes writes the index too.
INDEXED: Final = ("sd", "sdk", "cascade_id", "recipient_id", "status", "created_at", "finished_at", "arm", "step",
                  "channel", "kind")


class DynamoMeter:
    """DynamoDB request units spent by the handlers, which run in this process.

    moto answers ``ReturnConsumedCapacity`` with a fixed figure whatever the item, so the units are
    computed DynamoDB's way: every written item (put, update, delete, condition check; in a
    transaction or a batch) is read before and after the request with a client of its own, and
    costs :func:`write_units` of the larger size (:func:`item_bytes`), plus one unit when the write
    changes what the ``ByScenarioDay`` index projects. ``wru_by_item`` splits the total by key
    shape (``C#/C``: the cascade item). Reads: 1 RRU per 4 KB strongly consistent, half that
    eventually consistent, taken as one unit per request."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.aws_calls: Counter[str] = Counter()
        self.keys: dict[str, Counter[str]] = {}  # pk -> wru, rru
        self.wru_by_item: Counter[str] = Counter()
        self.cascade_writes: list[int] = []  # the bytes each write of the cascade item was billed on
        self._raw: Any = None

    def install(self) -> None:
        boto3.setup_default_session(region_name=REGION)
        boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb", self._count)
        boto3.DEFAULT_SESSION.events.register("before-call", self._call)
        boto3.DEFAULT_SESSION.events.register("after-call.dynamodb", self._after)

    def _call(self, model: Any, **_: Any) -> None:
        """Every AWS call the handlers make, by service and operation."""
        self.aws_calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _key(self, key: dict[str, Any] | None, what: str, units: float) -> None:
        pk = (key or {}).get("pk", {}).get("S")
        if pk is not None:
            self.keys.setdefault(pk, Counter())[what] += units

    def reset(self) -> None:
        raw = self._raw
        self.__init__()  # type: ignore[misc]
        self._raw = raw

    def _read(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        if self._raw is None:  # unhooked: its reads are not counted
            self._raw = boto3.session.Session(region_name=REGION).client("dynamodb")
        return dict(self._raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {})

    def _count(self, params: dict[str, Any], model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        op = model.name
        self.calls[op] += 1
        writes: list[tuple[str, dict[str, Any], dict[str, Any] | None, bool]] = []  # table, key, new item, txn
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            item = params.get("Item")
            key = params.get("Key") or {"pk": item["pk"], "sk": item["sk"]}  # type: ignore[index]
            writes.append((params["TableName"], key, item, False))
        elif op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                key = body.get("Key") or {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}
                writes.append((body["TableName"], key, body.get("Item") if kind == "Put" else None, True))
        elif op == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    body = request.get("PutRequest") or request.get("DeleteRequest")
                    key = body.get("Key") or {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}
                    writes.append((table, key, body.get("Item"), False))
        elif op in ("GetItem", "Query"):
            units = 1.0 if params.get("ConsistentRead") else 0.5
            self.rru += units
            if op == "GetItem":
                self._key(params.get("Key"), "rru", units)
            else:
                found = re.search(r"\bpk\s*=\s*(:\w+)", params.get("KeyConditionExpression", ""))
                pk = params.get("ExpressionAttributeValues", {}).get(found.group(1)) if found else None
                self._key({"pk": pk} if pk and "IndexName" not in params else None, "rru", units)
        if writes and context is not None:
            context["meter"] = [(t, k, self._read(t, k), txn) for t, k, _, txn in writes]

    def _after(self, model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        for table, key, before, txn in (context or {}).pop("meter", []):
            after = self._read(table, key)
            units = write_units(item_bytes(before), item_bytes(after), txn)
            if any(before.get(a) != after.get(a) for a in INDEXED) and (before.get("sd") or after.get("sd")):
                units += 1
            shape = f"{key['pk']['S'].split('#')[0]}#/{key['sk']['S'].split('#')[0]}"
            self.wru += units
            self.wru_by_item[shape] += units
            self._key(key, "wru", units)
            if shape == "C#/C":
                self.cascade_writes.append(max(item_bytes(before), item_bytes(after)))

    def totals(self) -> tuple[float, float]:
        return self.wru, self.rru


METER: Final = DynamoMeter()


def _own_session() -> boto3.session.Session:
    """The bench's own calls (polling, reading back) go through a session the meter does not hook."""
    return boto3.session.Session(region_name=REGION)


def _cascade_item_bytes(table: str, cascade_id: str) -> int:
    item = _own_session().client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"C#{cascade_id}"}, "sk": {"S": "C"}})["Item"]
    return item_bytes(item)


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The whole history of the execution, once it has finished."""
    deadline = time.monotonic() + CASCADE_DEADLINE_S
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still running after {CASCADE_DEADLINE_S:g}s")
        time.sleep(POLL_EVERY_S)
    if status != "SUCCEEDED":
        raise RuntimeError(f"execution {execution_arn} ended {status}")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def measure_transitions(stack: Any, preset: str) -> Transitions:
    api = httpx.Client(base_url=stack.url, timeout=30, headers={"Authorization": f"Bearer {API_KEY}"})
    with api:
        METER.reset()
        resp = api.post("/v1/events", json=_event_body(preset))
        if resp.status_code != 202:
            raise RuntimeError(f"{preset}: POST /v1/events answered {resp.status_code}: {resp.text}")
        cascade_id = str(resp.json()["cascade_id"])
        execution_arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + cascade_id
        events = _history(_own_session().client("stepfunctions"), execution_arn)
        # The stream-fed functions (report counters, CRM events) are part of a cascade's cost.
        from cascade.local import streams

        if not streams.wait_idle(timeout=CASCADE_DEADLINE_S):
            raise RuntimeError("the stream-fed functions did not catch up")
        calls = dict(METER.calls)
        wru, rru = METER.totals()
        # A preset's text is stored once per container and version, not per cascade.
        once = sum(units for shape, units in METER.wru_by_item.items() if shape == "SCN#/P")
        wru -= once
        writes = {"by_item": dict(METER.wru_by_item), "cascade_item_writes": len(METER.cascade_writes),
                  "cascade_item_write_bytes": list(METER.cascade_writes),
                  "cascade_item_bytes": _cascade_item_bytes(stack.table_name, cascade_id),
                  "once_per_container": once}
        aws_calls = dict(METER.aws_calls)
        key_units = {pk: {"wru": u["wru"], "rru": u["rru"]} for pk, u in METER.keys.items()
                     if not pk.startswith("SCN#")}  # a preset's text: once per container, not per cascade
        view = api.get(f"/v1/cascades/{cascade_id}").json()
    if view["status"] != "exhausted":
        raise RuntimeError(f"cascade {cascade_id} ended {view['status']!r}, not exhausted: {view}")
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    invokes = [e for e in events if e["type"] == "TaskScheduled"
               and e.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda"]
    return Transitions(
        preset=preset, cascade_id=cascade_id, transitions=len(entered), steps=len(view["steps"]),
        lambda_invokes=len(invokes),
        states_entered=dict(Counter(e["stateEnteredEventDetails"]["name"] for e in entered)),
        step_statuses=[s["status"] for s in view["steps"]], ddb_wru=wru, ddb_rru=rru, ddb_calls=calls,
        aws_calls=aws_calls, key_units=key_units, ddb_writes=writes,
    )


# -- 2. cost ---------------------------------------------------------------------------------------


@dataclass
class Cost:
    preset: str
    items: dict[str, float]
    total: float
    step_functions_share_pct: float


def cost_per_thousand(t: Transitions) -> Cost:
    invokes = t.lambda_invokes + INGEST_INVOKES_PER_CASCADE
    items = {
        "Step Functions Standard": CASCADES * t.transitions * SFN_PER_TRANSITION,
        "Lambda requests": CASCADES * invokes * LAMBDA_PER_REQUEST,
        "Lambda duration": CASCADES * invokes * LAMBDA_SECONDS_PER_INVOKE * LAMBDA_MEMORY_GB * LAMBDA_PER_GB_S_ARM,
        "DynamoDB writes": CASCADES * t.ddb_wru * DDB_PER_WRU,
        "DynamoDB reads": CASCADES * t.ddb_rru * DDB_PER_RRU,
        "API Gateway HTTP API": CASCADES * API_REQUESTS_PER_CASCADE * HTTP_API_PER_REQUEST,
    }
    total = sum(items.values())
    return Cost(t.preset, items, total, 100 * items["Step Functions Standard"] / total)


ASSUMPTIONS: Final = [
    f"Lambda: {LAMBDA_MEMORY_GB * 1024:.0f} MB arm64, ~{LAMBDA_SECONDS_PER_INVOKE * 1000:.0f} ms per "
    f"invoke; invokes = the workflow's Lambda tasks (from the history) + {INGEST_INVOKES_PER_CASCADE} ingest call",
    "DynamoDB on demand: request units from the handlers' measured requests (see DynamoMeter)",
    f"API Gateway: {API_REQUESTS_PER_CASCADE} HTTP API request per cascade (the POST /v1/events)",
]
EXCLUDED: Final = (
    "message prices (SES e-mail, SMS, WhatsApp, Viber, calls, operators; Telegram is free); provider "
    "webhooks and SES delivery events via SNS; status reads; CloudWatch Logs, X-Ray, Secrets Manager; free tiers"
)


# -- 6. capacity model -----------------------------------------------------------------------------


def capacity_counts(first: Transitions, second: Transitions) -> capacity.Counts:
    """The capacity model's input from two measured cascades of one preset: the calls of the first,
    and the keys both touched (shared by every cascade of the scenario, so hot at scale)."""
    from cascade import scenarios
    from cascade.planning import capped_waits

    waits = capped_waits(scenarios.presets()[first.preset])
    hot: dict[str, capacity.HotKey] = {}
    mine, theirs = _by_class(first.key_units), _by_class(second.key_units)
    for name, keys in mine.items():
        others = theirs.get(name, {})
        if not set(keys) & set(others):
            continue  # each cascade its own key (C#…, R#…): no key of this kind is shared
        # Shared, possibly spread over shards: a shard takes the kind's units over the keys seen.
        spread = len(set(keys) | set(others))
        wru, rru = (sum(u[what] for u in keys.values()) for what in ("wru", "rru"))
        hot[name] = capacity.HotKey(wru=wru / spread, rru=rru / spread, cacheable=not wru, spread=spread)
    return capacity.Counts(
        steps=first.steps, timers=len(waits), lifetime_h=sum(waits) / 3600,
        start_executions=first.aws_calls.get("stepfunctions.StartExecution", 0),
        transitions=first.transitions, lambda_invokes=first.lambda_invokes + INGEST_INVOKES_PER_CASCADE,
        lambda_s_per_invoke=LAMBDA_SECONDS_PER_INVOKE, lambda_memory_gb=LAMBDA_MEMORY_GB,
        ddb_wru=first.ddb_wru, ddb_rru=first.ddb_rru, api_requests=API_REQUESTS_PER_CASCADE, hot_keys=hot,
        defers=first.states_entered.get("Defer", 0))


def template_quotas() -> capacity.Quotas:
    """The default quotas, with the route throttle the template deploys by default."""
    from cascade.local import template

    return capacity.Quotas(api_route_rps=float(template.load()["Parameters"]["ApiRateLimit"]["Default"]))


def _by_class(key_units: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for pk, units in key_units.items():
        out.setdefault(_key_class(pk), {})[pk] = units
    return out


def _key_class(pk: str) -> str:
    """A shared key by its kind and names (``AGG#abandoned-cart``, ``CIRCUIT#sms``), ids shown as …."""
    head, *rest = pk.split("#")
    return "#".join([head, *(part if re.fullmatch(r"[a-z][a-z-]*", part) else "…" for part in rest)])


# -- 4. reports as data grows -----------------------------------------------------------------------

REPORT_BASE_CASCADES: Final = 10
REPORT_SCALES: Final = (1, 10, 100)
REPORT_DAYS: Final = 10
REPORT_RUNS: Final = 9


@dataclass
class ReportScale:
    scale: int
    cascades: int
    report_ms: float  # the query on moto, which scans its whole table, plus the summary
    summary_ms: float  # the report built from the counter items it read: this project's code
    report_rru: float
    counter_items: int
    facts_rru: float
    facts_items: int
    counted_cascades: int


def _rru(items: list[dict[str, Any]]) -> float:
    """Eventually consistent query: 0.5 RRU per 4 KB read, the items' sizes summed."""
    size = sum(len(json.dumps(i, default=str).encode()) for i in items)
    return 0.5 * max(1, -(-size // 4096))


def _synthetic_records(n: int, start: int) -> list[dict[str, Any]]:
    """Stream records (new images) of ``n`` cascades of the ``bench-report`` scenario: an email, an
    SMS for those who did not read it, one in three read, one in five clicked the SMS."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    records: list[dict[str, Any]] = []

    def record(name: str, key: dict[str, str], new: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        body = {"Keys": {k: ser.serialize(v) for k, v in key.items()},
                "NewImage": {k: ser.serialize(v) for k, v in new.items()},
                "SequenceNumber": str(len(records) + start * 100)}
        if old is not None:
            body["OldImage"] = {k: ser.serialize(v) for k, v in old.items()}
        records.append({"eventID": uuid.uuid4().hex, "eventName": name, "dynamodb": body})

    for i in range(start, start + n):
        day = f"2026-10-{1 + i % REPORT_DAYS:02d}"
        cid, rid, at = f"b{i}", f"r{i}", f"{day}T10:00:00Z"
        steps = [{"index": 0, "channel": "email", "status": "sent", "sent_at": at},
                 {"index": 1, "channel": "sms", "status": "sent", "sent_at": at}]
        cascade = {"cascade_id": cid, "scenario_id": "bench-report", "status": "running", "created_at": at,
                   "recipient": {"id": rid}, "steps": steps}
        record("INSERT", {"pk": f"C#{cid}", "sk": "C"}, cascade)
        touch = {"cascade_id": cid, "scenario": "bench-report", "recipient_id": rid, "day": day, "at": at}
        record("INSERT", {"pk": f"R#{rid}", "sk": f"T#{at}#{cid}#0#sent#sent"},
               {**touch, "step": 0, "channel": "email", "kind": "sent", "status": "sent", "price_u": 100, "parts": 1})
        read, clicked = i % 3 == 0, i % 5 == 0 and i % 3 != 0
        if read:
            record("INSERT", {"pk": f"R#{rid}", "sk": f"T#{at}#{cid}#0#signal#read"},
                   {**touch, "step": 0, "channel": "email", "kind": "signal", "status": "read", "moved": True,
                    "from": "sent"})
        else:
            record("INSERT", {"pk": f"R#{rid}", "sk": f"T#{at}#{cid}#1#sent#sent"},
                   {**touch, "step": 1, "channel": "sms", "kind": "sent", "status": "sent", "price_u": 7900,
                    "parts": 1})
        if clicked:
            record("INSERT", {"pk": f"R#{rid}", "sk": f"T#{at}#{cid}#1#signal#clicked"},
                   {**touch, "step": 1, "channel": "sms", "kind": "signal", "status": "clicked", "moved": True,
                    "from": "sent"})
        ended = {**cascade, "status": "succeeded" if read or clicked else "exhausted",
                 "finished_at": f"{day}T11:00:00Z", **({"success_step": 0 if read else 1} if read or clicked else {})}
        record("MODIFY", {"pk": f"C#{cid}", "sk": "C"}, ended, cascade)
    return records


def measure_reports() -> list[ReportScale]:
    from boto3.dynamodb.types import TypeDeserializer
    from moto import mock_aws

    from cascade import aggregate, reports
    from cascade.local import moto_speed
    from cascade.store import CascadeStore

    moto_speed.install()  # as on the local stack: a transaction's backup copies what it touches
    os.environ.pop("AWS_ENDPOINT_URL", None)  # the stack pointed clients at its moto server
    des = TypeDeserializer()
    results: list[ReportScale] = []
    with mock_aws():
        db = boto3.client("dynamodb", region_name=REGION)
        db.create_table(
            TableName="bench", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "sd", "sdk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "ByScenarioDay", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "sd", "KeyType": "HASH"},
                                                   {"AttributeName": "sdk", "KeyType": "RANGE"}]}])
        store = CascadeStore("bench", db)
        loaded = 0
        for scale in REPORT_SCALES:
            target = REPORT_BASE_CASCADES * scale
            records = _synthetic_records(target - loaded, loaded)
            for r in records:  # the facts themselves, as the handlers write them
                new = {k: des.deserialize(v) for k, v in r["dynamodb"]["NewImage"].items()}
                if r["dynamodb"]["Keys"]["sk"]["S"].startswith("T#"):
                    store.put_touch(new["recipient_id"], new)
            for i in range(0, len(records), 100):
                aggregate.handle({"Records": records[i:i + 100]}, store, time_scale=1.0)
            loaded = target
            first, last = "2026-10-01", f"2026-10-{REPORT_DAYS:02d}"
            timings, own = [], []
            for _ in range(REPORT_RUNS):
                t0 = time.perf_counter()
                counters = store.aggregates("bench-report", first, last)
                t1 = time.perf_counter()
                report_body = reports.summarise("bench-report", first, last, counters)
                t2 = time.perf_counter()
                timings.append((t2 - t0) * 1000)
                own.append((t2 - t1) * 1000)
            facts: list[dict[str, Any]] = []
            for n in range(REPORT_DAYS):
                kwargs: dict[str, Any] = {"TableName": "bench", "IndexName": "ByScenarioDay",
                                          "KeyConditionExpression": "sd = :sd",
                                          "ExpressionAttributeValues": {":sd": {"S": f"bench-report#2026-10-{n + 1:02d}"}}}
                while True:
                    resp = db.query(**kwargs)
                    facts.extend(resp["Items"])
                    if "LastEvaluatedKey" not in resp:
                        break
                    kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
            results.append(ReportScale(scale=scale, cascades=target, report_ms=statistics.median(timings),
                                       summary_ms=statistics.median(own),
                                       report_rru=_rru(counters), counter_items=len(counters),
                                       facts_rru=_rru(facts),
                                       facts_items=len(facts), counted_cascades=report_body["totals"]["cascades"]))
    return results


# -- 3. cold import --------------------------------------------------------------------------------

_TIME_BOTO3: Final = """\
import time
t0 = time.perf_counter()
import boto3
print(f"{(time.perf_counter() - t0) * 1000:.3f}")
"""

_TIME_HANDLER: Final = """\
import importlib.util, sys, time
t0 = time.perf_counter()
code_dir, path = sys.argv[1], sys.argv[2]
sys.path.insert(0, code_dir)
spec = importlib.util.spec_from_file_location("handler_app", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(f"{(time.perf_counter() - t0) * 1000:.3f}")
"""

# The ingest handler loads its request path (pydantic models, scenarios) with the first request:
# this times the handler import plus that load (validation of a sample event, no AWS calls).
_TIME_FIRST_REQUEST: Final = _TIME_HANDLER.replace('print(f"', """import json
from cascade import ingest, scenarios
ingest.parse_event(json.load(open(sys.argv[3])))
scenarios.presets()
print(f\"""", 1)


@dataclass
class ImportTimes:
    runs: int
    boto3_ms: float
    ingest_ms: float
    step_ms: float
    first_request_ms: float
    ingest_ratio: float
    step_ratio: float
    first_request_ratio: float
    meets_goal: bool
    samples_ms: dict[str, list[float]]


def _time_in_fresh_interpreter(code: str, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update({"TABLE_NAME": "x", "AWS_DEFAULT_REGION": REGION})
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure_imports() -> ImportTimes:
    subjects = {
        "boto3": (_TIME_BOTO3,),
        "ingest": (_TIME_HANDLER, str(ROOT / "functions" / "ingest"), str(ROOT / "functions" / "ingest" / "app.py")),
        "step": (_TIME_HANDLER, str(ROOT / "functions" / "step"), str(ROOT / "functions" / "step" / "app.py")),
        "first_request": (_TIME_FIRST_REQUEST, str(ROOT / "functions" / "ingest"),
                          str(ROOT / "functions" / "ingest" / "app.py"), str(ROOT / "events" / "delivery-failed.json")),
    }
    for args in subjects.values():  # warm-up: bytecode caches written, files in the page cache
        _time_in_fresh_interpreter(*args)
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(IMPORT_RUNS):
        for name, args in subjects.items():
            samples[name].append(_time_in_fresh_interpreter(*args))
    median = {name: statistics.median(values) for name, values in samples.items()}
    ingest_ratio = median["ingest"] / median["boto3"]
    return ImportTimes(runs=IMPORT_RUNS, boto3_ms=median["boto3"], ingest_ms=median["ingest"],
                       step_ms=median["step"], first_request_ms=median["first_request"], ingest_ratio=ingest_ratio,
                       step_ratio=median["step"] / median["boto3"],
                       first_request_ratio=median["first_request"] / median["boto3"],
                       meets_goal=ingest_ratio <= IMPORT_RATIO_GOAL,
                       samples_ms=samples)


# -- report ----------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "ok" if ok else "OVER GOAL"


def report(transitions: list[Transitions], costs: list[Cost], imports: ImportTimes,
           reports: list[ReportScale], counts: dict[str, capacity.Counts] | None = None) -> str:
    lines = [f"cascade bench: local stack (moto), time scale {TIME_SCALE:g}x, Python {platform.python_version()}", ""]
    lines += [f"1. State transitions per fully escalated cascade (goal ≤ {TRANSITIONS_PER_STEP_GOAL} transitions per step)",
              f"   {'preset':<18}{'transitions':>12}{'steps':>7}{'per step':>10}{'lambda tasks':>14}"]
    for t in transitions:
        entered = ", ".join(f"{name}×{n}" for name, n in t.states_entered.items())
        lines.append(f"   {t.preset:<18}{t.transitions:>12}{t.steps:>7}{t.transitions_per_step:>10.2f}"
                     f"{t.lambda_invokes:>14}   {_verdict(t.meets_goal)}  ({entered})")
        if any(status != "sent" for status in t.step_statuses):
            lines.append(f"   warning: {t.preset} steps were {t.step_statuses}, not all sent")
    lines += ["", f"2. AWS cost per {CASCADES:,} fully escalated cascades, USD at {REGION} list prices",
              f"   {'':<26}" + "".join(f"{c.preset:>18}" for c in costs)]
    for item in costs[0].items:
        lines.append(f"   {item:<26}" + "".join(f"{c.items[item]:>18.4f}" for c in costs))
    lines.append(f"   {'total':<26}" + "".join(f"{c.total:>18.4f}" for c in costs))
    lines.append(f"   {'Step Functions share':<26}" + "".join(f"{c.step_functions_share_pct:>17.1f}%" for c in costs))
    for t in transitions:
        calls = ", ".join(f"{op} {n}" for op, n in sorted(t.ddb_calls.items()))
        lines.append(f"   measured DynamoDB for one {t.preset} cascade: {t.ddb_wru:g} WRU, {t.ddb_rru:g} RRU ({calls})")
        w = t.ddb_writes
        sizes = w["cascade_item_write_bytes"]
        lines.append(f"     write units by item: {', '.join(f'{k} {v}' for k, v in sorted(w['by_item'].items()))}"
                     f" (SCN#/P once per container, not counted); the cascade item: {w['by_item'].get('C#/C', 0)} WRU "
                     f"in {w['cascade_item_writes']} writes billed on {min(sizes, default=0)}-{max(sizes, default=0)} "
                     f"bytes (goal ≤ {CASCADE_WRU_GOAL} WRU for the whole cascade: {_verdict(t.ddb_wru <= CASCADE_WRU_GOAL)})")
    lines += [f"   assumption: {a}" for a in ASSUMPTIONS]
    lines.append(f"   excluded: {EXCLUDED}")
    lines += ["", f"3. Cold import, median of {imports.runs} fresh interpreters each, interleaved "
                  f"(goal ≤ {IMPORT_RATIO_GOAL})",
              f"   import boto3              {imports.boto3_ms:8.1f} ms",
              f"   ingest handler            {imports.ingest_ms:8.1f} ms   ratio {imports.ingest_ratio:.2f}   "
              f"{_verdict(imports.meets_goal)}",
              f"   step handler              {imports.step_ms:8.1f} ms   ratio {imports.step_ratio:.2f}   (information)",
              f"   ingest + request path     {imports.first_request_ms:8.1f} ms   ratio {imports.first_request_ratio:.2f}   "
              "(information: what the first request adds, models and scenarios loaded)"]
    lines += ["", f"4. A {REPORT_DAYS}-day scenario report as the cascades grow (goal: flat read units)",
              f"   {'scale':>7}{'cascades':>10}{'report ms':>11}{'summary ms':>12}{'report RRU':>12}"
              f"{'counter items':>15}{'facts RRU':>11}{'fact items':>12}"]
    for r in reports:
        lines.append(f"   {r.scale:>6}×{r.cascades:>10,}{r.report_ms:>11.2f}{r.summary_ms:>12.3f}{r.report_rru:>12g}"
                     f"{r.counter_items:>15}{r.facts_rru:>11g}{r.facts_items:>12,}")
    first, last = reports[0], reports[-1]
    # Counter items fill up as more kinds of outcome occur, then stop growing: 10× and 100× must match.
    flat = last.counter_items <= first.counter_items and last.report_rru <= reports[-2].report_rru
    lines += [f"   at {last.scale}× / 1×: counter items read {last.counter_items / first.counter_items:.2f}×, read units "
              f"{last.report_rru / first.report_rru:.2f}×, summary time {last.summary_ms / first.summary_ms:.2f}×; "
              f"reading the facts instead: {last.facts_rru / first.facts_rru:.0f}× the read units   {_verdict(flat)}",
              "   (report ms grows here because moto answers a Query by scanning its whole table; DynamoDB "
              "reads only the items in the key range)"]
    if counts:
        lines += ["", "6. Capacity per account and region, and AWS cost (messages excluded): built design, measured, "
                      f"beside the {capacity.TARGET_LABEL}"]
        for t in transitions:
            calls = ", ".join(f"{op} {n}" for op, n in sorted(t.aws_calls.items()))
            lines.append(f"   AWS calls of one {t.preset} cascade: {calls}")
        for preset, c in counts.items():
            lines += ["", capacity.report(c, preset, template_quotas())]
    return "\n".join(lines)


def _capacity_json(c: capacity.Counts) -> dict[str, Any]:
    old, new = capacity.compare(c, template_quotas())
    return {"counts": {**asdict(c), "hot_keys": {k: asdict(v) for k, v in c.hot_keys.items()}},
            "columns": [{"label": col.label, "binds": col.binds.name, "per_day": col.binds.per_day,
                         "without_step_functions_raise": col.without_sfn_raise,
                         "limits": {limit.name: limit.per_day for limit in col.limits},
                         "usd_per_1000": {str(v): col.total(v) for v in capacity.VOLUMES},
                         "goals": [{"goal": text, "pass": ok} for text, ok in capacity.goals(col)]}
                        for col in (old, new)]}


def main(argv: list[str] | None = None) -> int:
    import argparse

    from tests import bench_load

    parser = argparse.ArgumentParser(description="make bench: what a cascade costs, and the local stack under load")
    parser.add_argument("--cascades", type=int, default=bench_load.DEFAULT_CASCADES,
                        help="cascades per load run in part 5 (default 2,000); 0 skips part 5")
    parser.add_argument("--capacity-only", action="store_true",
                        help="only part 6, the capacity model (four cascades on the local stack, ~a minute)")
    args = parser.parse_args(argv)
    # Imports first, while no stack threads compete for the CPU.
    imports = None if args.capacity_only else measure_imports()

    from cascade.local.stack import LocalStack

    METER.install()  # before the stack: its handlers' clients come from the default session
    stack = LocalStack(port=0, api_key=API_KEY, time_scale=TIME_SCALE, stack_name="cascade-bench").start()
    try:
        # The handlers run in this process; their INFO lines would bury the report.
        from cascade.observability import logger

        logger.setLevel(logging.WARNING)
        transitions = [measure_transitions(stack, preset) for preset in ("delivery-failed", "abandoned-cart")]
        # A second cascade of each: the keys both touched are the ones every cascade shares.
        again = [measure_transitions(stack, t.preset) for t in transitions]
    finally:
        stack.stop()
    counts = {t.preset: capacity_counts(t, u) for t, u in zip(transitions, again, strict=True)}
    if imports is None:
        for t in transitions:
            print(f"   AWS calls of one {t.preset} cascade: " + ", ".join(f"{op} {n}" for op, n in sorted(t.aws_calls.items())))
        print("\n" + "\n\n".join(capacity.report(c, preset, template_quotas()) for preset, c in counts.items()))
        return 0
    costs = [cost_per_thousand(t) for t in transitions]
    # Another stack, before the in-process moto of part 4 resets the shared backends.
    load = bench_load.measure_load(args.cascades) if args.cascades > 0 else None
    reports = measure_reports()  # in-process moto: only once the stack (a moto server) is down

    print(report(transitions, costs, imports, reports, counts))
    if load is not None:
        print("\n" + bench_load.report(load))
        bench_load.write(load)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps({
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "time_scale": TIME_SCALE,
        "transitions": {"goal_per_step": TRANSITIONS_PER_STEP_GOAL, "presets": [asdict(t) for t in transitions]},
        "cost_per_1000_usd": {"cascades": CASCADES, "assumptions": ASSUMPTIONS,
                              "excluded": EXCLUDED, "presets": [asdict(c) for c in costs]},
        "cold_import": {"goal_ratio": IMPORT_RATIO_GOAL, **asdict(imports)},
        "reports": {"days": REPORT_DAYS, "scales": [asdict(r) for r in reports]},
        "capacity": {preset: _capacity_json(c) for preset, c in counts.items()},
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten to {ARTIFACT.relative_to(ROOT)}" + (f" and {bench_load.ARTIFACT.relative_to(ROOT)}" if load else ""))
    return 1 if load is not None and load.errors else 0


if __name__ == "__main__":
    sys.exit(main())
