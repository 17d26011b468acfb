"""No hot item, on the local stack: while many cascades of one scenario run, every DynamoDB
request the handlers make is counted per key (a botocore hook on the stack's own client). No key
is written by every cascade (the report counters spread over their shards) and the items every
cascade reads (the scenario index, the CRM webhook, a circuit) are read a few times per cache
period, not once per cascade. Run with ``-s`` to see the counts."""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

CASCADES = 24
CONFIG_KEYS = ("SCENARIOS", "WEBHOOK", "CIRCUIT#email")


class KeyMeter:
    """Reads and writes per partition key, from the parameters of every DynamoDB request."""

    WRITES = {"PutItem", "UpdateItem", "DeleteItem"}

    def __init__(self) -> None:
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        if op == "GetItem":
            self.reads[_pk(params["Key"])] += 1
        elif op in self.WRITES:
            self.writes[_pk(params.get("Key") or params["Item"])] += 1
        elif op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                if kind != "ConditionCheck":
                    self.writes[_pk(body.get("Key") or body["Item"])] += 1
        elif op == "BatchGetItem":
            for request in params["RequestItems"].values():
                for key in request["Keys"]:
                    self.reads[_pk(key)] += 1


def _pk(key: dict[str, Any]) -> str:
    return str(key["pk"]["S"])


@pytest.fixture
def meter() -> Iterator[KeyMeter]:
    from cascade.aws import client

    counting = KeyMeter()
    events = client("dynamodb").meta.events  # the one client every handler's store uses
    events.register("before-parameter-build.dynamodb", counting, unique_id="hot-key-meter")
    yield counting
    events.unregister("before-parameter-build.dynamodb", unique_id="hot-key-meter")


@pytest.fixture
def scenario(api: Api, saved: list[str]) -> str:
    """One email, then the cascade is exhausted (an hour of cascade time: moments here)."""
    sid = f"hot-{uuid.uuid4().hex[:8]}"
    body = {"name": "Hot keys", "trigger": f"{sid.replace('-', '_')}.started", "correlation": "ref",
            "default_locale": "en", "success": ["clicked"],
            "steps": [{"channel": "email", "wait": "1h",
                       "template": {locale: {"subject": "Hi", "text": "Hello {{ recipient.name }}"}
                                    for locale in ("en", "ru")}}]}
    resp = api.http.put(f"/v1/scenarios/{sid}", json=body)
    assert resp.status_code == 201, resp.text
    saved.append(sid)
    return sid


def test_no_key_is_written_or_read_by_every_cascade(api: Api, stack: Any, scenario: str, meter: KeyMeter) -> None:
    from cascade.local import streams
    from cascade.store import default_store

    # Given many cascades of one scenario, started together
    began = time.monotonic()
    people = [f"hot-{uuid.uuid4().hex[:8]}" for _ in range(CASCADES)]
    ids = [api.start({"type": f"{scenario.replace('-', '_')}.started",
                      "recipient": {"id": rid, "name": "Ann", "email": f"{rid}@example.com"},
                      "data": {"ref": rid}}) for rid in people]
    for cid in ids:
        wait_for("the cascade to end", lambda cid=cid: api.cascade(cid)["status"] != "running", timeout=60)
    assert streams.wait_idle(timeout=60)
    elapsed = time.monotonic() - began
    # The report counts them all
    report = api.http.get(f"/v1/reports/scenarios/{scenario}").json()
    assert report["totals"]["cascades"] == CASCADES

    store = default_store()
    counters = {k: n for k, n in meter.writes.items() if k.startswith(f"AGG#{scenario}")}
    print(f"\n{CASCADES} cascades in {elapsed:.1f} s; counter writes per key: {dict(sorted(counters.items()))}")
    print("reads: " + ", ".join(f"{k} {meter.reads[k]}" for k in CONFIG_KEYS))
    print("most written keys: " + ", ".join(f"{k} {n}" for k, n in meter.writes.most_common(5)))

    # Then the counters spread over the shards: none takes much more than its share
    total = sum(counters.values())
    assert total >= 3 * CASCADES  # started, sent, ended: at least
    assert max(counters.values()) <= 2 * math.ceil(total / store.counter_shards) + 4, counters
    # And no other key is written by every cascade (a cascade's own items take a handful each)
    others = {k: n for k, n in meter.writes.items() if not k.startswith("AGG#")}
    assert max(others.values()) <= CASCADES // 2, meter.writes.most_common(5)
    # And the items every cascade reads are read a few times per cache period, not per cascade
    periods = elapsed / store.cache_seconds if store.cache_seconds else math.inf
    for key in CONFIG_KEYS:
        assert meter.reads[key] <= periods + 3, (key, meter.reads[key], f"{elapsed:.1f} s")
