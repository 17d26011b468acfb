"""No hot item: report counters spread over shards and added up when read (old unsharded counters
still count), and the items every cascade reads kept per container for a few seconds, a change
made through the container seen at once."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from cascade import reports, scenario_store
from cascade.circuit import Circuit
from cascade.hot_cache import HOT, HotCache
from cascade.scenarios import presets
from cascade.store import CascadeStore

DAY = "2026-11-20"


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, dynamo: Any) -> Iterator[Any]:
    from cascade.settings import settings

    if "TABLE_NAME" not in os.environ:  # reports name the currency from the settings
        monkeypatch.setenv("TABLE_NAME", "unit")
        settings.cache_clear()
    HOT.clear()
    yield dynamo
    HOT.clear()
    settings.cache_clear()  # the settings read under this test's TABLE_NAME must not outlive it


def _calls(client: Any) -> Counter[tuple[str, str]]:
    """(operation, pk) of every request the client makes from now on."""
    seen: Counter[tuple[str, str]] = Counter()

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        key = params.get("Key") or params.get("Item") or {}
        seen[(model.name, str(key.get("pk", {}).get("S", "")))] += 1

    client.meta.events.register("before-parameter-build.dynamodb", count)
    return seen


# -- report counters ---------------------------------------------------------------------------


def test_counts_spread_over_the_shards_and_the_report_adds_them_up(db: Any) -> None:
    # Given 300 cascades of one scenario, each counting its start and a sent email
    store = CascadeStore("t", db)
    for n in range(300):
        assert store.count_once(f"c{n}#started", "cart", DAY, {"cascades": 1})
        assert store.count_once(f"R#r{n}#T#{DAY}T10:00:00Z#c{n}#0#sent", "cart", DAY,
                                {"s#0#email#sent": 1, "s#0#email#cost_u": 100, "cost_u": 100})
    # Then no item took every count: each of the 8 shards took about an eighth of the 600
    items = db.scan(TableName="t")["Items"]
    counters = Counter(i["pk"]["S"] for i in items if i["pk"]["S"].startswith("AGG#"))
    assert set(counters) == {f"AGG#cart#{n}" for n in range(8)}
    per_shard = Counter({k: 0 for k in counters})
    for item in items:
        if item["pk"]["S"].startswith("AGG#"):
            per_shard[item["pk"]["S"]] += int(item.get("cascades", {"N": "0"})["N"]) + int(
                item.get("s#0#email#sent", {"N": "0"})["N"])
    assert sum(per_shard.values()) == 600 and max(per_shard.values()) <= 600 // 8 * 2
    # And the report shows the same totals as one item would have
    report = reports.scenario_report("cart", DAY, DAY, store)
    assert report["totals"]["cascades"] == 300 and report["totals"]["cost"] == pytest.approx(0.03)
    assert report["steps"][0]["sent"] == 300


def test_counters_written_before_the_shards_still_count(db: Any) -> None:
    # Given a day counted into the one unsharded item before the change, and more facts after it
    db.put_item(TableName="t", Item={"pk": {"S": "AGG#cart"}, "sk": {"S": f"D#{DAY}"}, "cascades": {"N": "40"},
                                     "successes": {"N": "10"}, "s#0#email#sent": {"N": "40"}})
    db.put_item(TableName="t", Item={"pk": {"S": "AGG#cart"}, "sk": {"S": "D#2026-11-19"}, "cascades": {"N": "7"}})
    store = CascadeStore("t", db)
    for n in range(5):
        store.count_once(f"c{n}#started", "cart", DAY, {"cascades": 1})
        store.count_once(f"c{n}#finished", "cart", DAY, {"successes": 1, "ended#succeeded": 1})
    # When the report and the day rows are read
    report = reports.scenario_report("cart", "2026-11-19", DAY, store)
    rows = store.aggregates("cart", "2026-11-19", DAY)
    # Then old and new are added up, one row per day
    assert report["totals"]["cascades"] == 52 and report["totals"]["successes"] == 15
    assert report["steps"][0]["sent"] == 40 and report["ended"] == {"succeeded": 5}
    assert [(r["sk"], r["cascades"]) for r in rows] == [("D#2026-11-19", 7), (f"D#{DAY}", 45)]


def test_a_report_is_one_query_per_shard_and_one_more_whatever_the_days(db: Any) -> None:
    store = CascadeStore("t", db)
    for day in ("2026-01-01", "2026-06-01", DAY):
        for n in range(20):
            store.count_once(f"{day}c{n}#started", "cart", day, {"cascades": 1})
    calls = _calls(db)
    report = reports.scenario_report("cart", "2026-01-01", DAY, store)
    assert report["totals"]["cascades"] == 60
    assert sum(calls.values()) == 1 + 8 and {op for op, _ in calls} == {"Query"}


# -- per-container cache -----------------------------------------------------------------------


def test_the_cache_keeps_a_value_for_its_seconds_and_forgets_it_on_a_change() -> None:
    now = [100.0]
    cache, loads = HotCache(clock=lambda: now[0]), []

    def load() -> dict[str, int]:
        loads.append(1)
        return {"n": len(loads)}

    assert cache.get("k", 5, load) == {"n": 1}
    got = cache.get("k", 5, load)
    got["n"] = 99  # a caller's edit is its own
    assert cache.get("k", 5, load) == {"n": 1} and len(loads) == 1
    now[0] += 5.1
    assert cache.get("k", 5, load) == {"n": 2}
    cache.forget("k")
    assert cache.get("k", 5, load) == {"n": 3}
    assert cache.get("k", 0, load) == {"n": 4} and cache.get("k", 0, load) == {"n": 5}  # 0: never kept


def test_a_read_begun_before_a_change_does_not_keep_its_older_answer() -> None:
    cache = HotCache()

    def slow_load() -> str:
        cache.forget("k")  # the change lands while the read is under way
        return "old"

    assert cache.get("k", 60, slow_load) == "old"
    assert cache.get("k", 60, lambda: "new") == "new"


def test_the_webhook_is_read_once_per_ttl_and_a_change_here_is_seen_at_once(db: Any) -> None:
    store = CascadeStore("t", db, cache_seconds=60)
    calls = _calls(db)
    assert store.get_webhook() is None
    store.put_webhook({"url": "https://crm.test/a", "events": ["cascade.succeeded"]})
    for _ in range(10):
        assert store.get_webhook() == {"url": "https://crm.test/a", "events": ["cascade.succeeded"]}
    assert calls[("GetItem", "WEBHOOK")] == 2  # once before the change, once after it
    store.delete_webhook()
    assert store.get_webhook() is None


def test_another_container_sees_the_change_within_the_ttl(db: Any) -> None:
    # Given this container read the webhook a moment ago, and another container changes it
    store = CascadeStore("t", db, cache_seconds=0.3)
    store.put_webhook({"url": "https://crm.test/a"})
    assert store.get_webhook() == {"url": "https://crm.test/a"}
    db.put_item(TableName="t", Item={"pk": {"S": "WEBHOOK"}, "sk": {"S": "CONFIG"},
                                     "url": {"S": "https://crm.test/b"}})
    # Then this container answers from its copy until the TTL is over, then the new one
    assert store.get_webhook() == {"url": "https://crm.test/a"}
    import time

    time.sleep(0.4)
    assert store.get_webhook() == {"url": "https://crm.test/b"}


def test_a_saved_scenario_routes_the_next_event_in_this_container(db: Any) -> None:
    store = CascadeStore("t", db, cache_seconds=60)
    calls = _calls(db)
    assert scenario_store.by_trigger("cart.abandoned", store) is not None  # cached from now on
    for _ in range(20):
        scenario_store.by_trigger("cart.abandoned", store)
    assert calls[("GetItem", "SCENARIOS")] == 1
    # When an override of the preset is saved, then deleted
    custom = presets()["abandoned-cart"].model_copy(update={"name": "Cart, ours"})
    scenario_store.save(custom, store=store)
    found = scenario_store.by_trigger("cart.abandoned", store)
    assert found is not None and found.scenario.name == "Cart, ours" and found.version == 1
    scenario_store.save(custom.model_copy(update={"name": "Cart, ours again"}), expected_version=1, store=store)
    found = scenario_store.by_trigger("cart.abandoned", store)
    assert found is not None and found.version == 2
    scenario_store.delete("abandoned-cart", store)
    found = scenario_store.by_trigger("cart.abandoned", store)
    assert found is not None and found.source == "preset"


def test_an_opened_circuit_skips_the_channel_at_once_and_is_read_once_per_ttl(db: Any) -> None:
    store = CascadeStore("t", db, cache_seconds=60)
    circuit = Circuit(store, threshold=2, cooldown_seconds=300)
    calls = _calls(db)
    for _ in range(10):
        assert circuit.allows("email", circuit.state("email"))
    assert calls[("GetItem", "CIRCUIT#email")] == 1
    circuit.failed("email", now=1000.0)
    circuit.failed("email", now=1000.0)
    assert not circuit.allows("email", circuit.state("email"), now=1001.0)  # open, seen at once
    circuit.succeeded("email", circuit.state("email"))
    assert circuit.state("email").failures == 0  # closed, seen at once
