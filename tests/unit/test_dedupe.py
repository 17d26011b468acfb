"""The dedupe key of running triggers, on a real (moto) table: held by one running cascade at a
time, released when it ends, and taken over from a cascade that ended without releasing it (the
state machine's MarkFailed writes the status directly)."""

from __future__ import annotations

from typing import Any

from cascade.ingest import _create_or_join
from cascade.store import CascadeStore, _dump

KEY = "DEDUPE#k"


def _cascade(cid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({"cascade_id": cid, "status": "running", "recipient": {"id": "r1"}, "dedupe_key": KEY},
            {"cascade_id": cid})


def test_one_running_cascade_holds_the_key_until_it_ends(store: CascadeStore) -> None:
    assert _create_or_join(*_cascade("c1"), store) is None
    assert (_create_or_join(*_cascade("c2"), store) or {}).get("cascade_id") == "c1"
    assert store.get("c2") is None  # nothing of the duplicate was written
    assert store.finish("c1", "cancelled", "cancelled", "2026-11-29T10:00:00Z") is not None
    assert store.dedupe_holder(KEY) is None
    assert _create_or_join(*_cascade("c3"), store) is None
    assert store.dedupe_holder(KEY) == "c3"


def test_a_key_left_by_a_cascade_marked_failed_is_taken_over(store: CascadeStore) -> None:
    assert _create_or_join(*_cascade("c1"), store) is None
    store.db.update_item(TableName=store.table, Key=_dump({"pk": "C#c1", "sk": "C"}),
                         UpdateExpression="SET #s = :failed", ExpressionAttributeNames={"#s": "status"},
                         ExpressionAttributeValues=_dump({":failed": "failed"}))
    assert _create_or_join(*_cascade("c2"), store) is None
    assert store.dedupe_holder(KEY) == "c2"
    store.finish("c1", "cancelled", None, "2026-11-29T10:00:00Z")  # a late release of c1 frees nothing of c2's
    assert store.dedupe_holder(KEY) == "c2"


def test_a_discarded_cascade_frees_its_key(store: CascadeStore) -> None:
    assert _create_or_join(*_cascade("c1"), store) is None
    store.discard("c1", "r1", KEY)
    assert store.dedupe_holder(KEY) is None
