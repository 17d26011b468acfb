"""The capacity model's arithmetic on known inputs: which limit binds, and what 1,000 cascades cost."""

from __future__ import annotations

import pytest

from tests import capacity
from tests.capacity import ClockDesign, Counts, HotKey, Quotas

BUILT = Counts(steps=4, timers=4, lifetime_h=56, start_executions=1, transitions=10, lambda_invokes=6,
               lambda_s_per_invoke=0.1, lambda_memory_gb=0.5, ddb_wru=100, ddb_rru=20, api_requests=1)


def _by_name(counts: Counts, **kwargs: float) -> dict[str, float]:
    return {limit.name: limit.per_day for limit in capacity.limits(counts, Quotas(), **kwargs)}


def test_open_executions_bind_a_56_hour_cascade_at_430_thousand_a_day() -> None:
    limits = capacity.limits(BUILT, Quotas())
    first = capacity.binding(limits)
    assert first.name == "Step Functions open executions"
    assert first.per_day == pytest.approx(1_000_000 / 56 * 24)  # ≈ 428,571, the issue's ~430,000
    by = _by_name(BUILT)
    assert by["Step Functions StartExecution"] == pytest.approx(300 * 86_400)  # 25.9 M
    assert by["Step Functions transitions"] == pytest.approx(1_500 / 10 * 86_400)
    assert by["Lambda concurrency"] == pytest.approx(1_000 / 0.6 * 86_400)
    assert by["DynamoDB table writes"] == pytest.approx(40_000 / 100 * 86_400)
    assert by["template route throttle (ApiRateLimit)"] == pytest.approx(4_000 * 86_400)
    old_throttle = capacity.limits(BUILT, Quotas(api_route_rps=200))
    assert {limit.name: limit.per_day for limit in old_throttle}["template route throttle (ApiRateLimit)"] == \
        pytest.approx(17_280_000)  # the fixed 200 rps it replaced


def test_a_short_cascade_is_bound_by_start_execution_and_a_hot_key_by_its_partition() -> None:
    short = Counts(**{**BUILT.__dict__, "lifetime_h": 0.01, "transitions": 1})
    assert capacity.binding(capacity.limits(short, Quotas())).name == "Step Functions StartExecution"
    hot = Counts(**{**short.__dict__, "start_executions": 0, "hot_keys": {"AGG#…": HotKey(wru=12)}})
    first = capacity.binding(capacity.limits(hot, Quotas(), open_executions_per_cascade=0))
    assert first.name == "DynamoDB partition writes: AGG#…"
    assert first.per_day == pytest.approx(1_000 / 12 * 86_400)  # 7.2 M: one scenario's day counter


def test_cost_per_thousand_itemised_at_list_prices() -> None:
    cost = capacity.cost_per_thousand(BUILT, capacity.Prices(), 1_000_000)
    assert cost["Step Functions"] == pytest.approx(0.25)
    assert cost["Lambda requests"] == pytest.approx(0.0012)
    assert cost["Lambda duration"] == pytest.approx(6 * 0.1 * 0.5 * 0.0000133334 * 1_000)
    assert cost["DynamoDB writes"] == pytest.approx(0.0625)
    assert cost["DynamoDB reads"] == pytest.approx(0.0025)
    assert cost["API Gateway"] == pytest.approx(0.001)
    assert sum(cost.values()) == pytest.approx(0.3212, abs=1e-4)


def test_volume_tiers_lower_the_api_price_at_100_million_a_day() -> None:
    cost = capacity.cost_per_thousand(BUILT, capacity.Prices(), 100_000_000)
    month = 100_000_000 * 30
    assert cost["API Gateway"] == pytest.approx((300e6 * 1.0 + (month - 300e6) * 0.9) / 1e6 / month * 1_000)


def test_the_design_target_starts_no_execution_per_cascade_and_shares_the_clock() -> None:
    d = ClockDesign(bucket_s=2, batch_size=100, transitions_per_run=4, transitions_per_batch=1)
    at_1m = capacity.clock_counts(BUILT, d, 1_000_000)
    assert at_1m.start_executions == pytest.approx(43_200 / 1_000_000)  # one clock run per 2 s bucket
    # 43,200 runs × 4 transitions shared by 1 M cascades, plus 5 due items in batches of 100.
    assert at_1m.transitions == pytest.approx(43_200 * 4 / 1_000_000 + 5 / 100)
    assert capacity.clock_counts(BUILT, d, 100_000_000).transitions < at_1m.transitions
    # The step work is the same: Lambda seconds per cascade are kept, invokes are batched.
    assert at_1m.lambda_invokes * at_1m.lambda_s_per_invoke == pytest.approx(6 * 0.1)
    assert at_1m.ddb_wru == pytest.approx(100 + 5 * 2)  # each due item put, then claimed


def test_side_by_side_the_goals_are_judged_per_column() -> None:
    old, new = capacity.compare(BUILT)
    assert new.label == "design target (not built yet)"
    assert old.binds.name == "Step Functions open executions"
    assert "Step Functions" not in new.binds.name
    assert not any(ok for _, ok in capacity.goals(old))
    assert [ok for _, ok in capacity.goals(new)][:3] == [True, True, True]
    text = capacity.report(BUILT, "delivery-failed")
    assert "design target (not built yet)" in text and "[FAIL]" in text and "[pass]" in text


def test_counters_already_in_shards_are_spread_to_the_targets_shards_not_divided_twice() -> None:
    # 12 WRU a cascade on the day's counters, measured over 8 shards: 1.5 WRU per shard.
    sharded = Counts(**{**BUILT.__dict__, "hot_keys": {"AGG#s#…": HotKey(wru=1.5, spread=8)}})
    by = _by_name(sharded)
    assert by["DynamoDB partition writes: AGG#s#…"] == pytest.approx(1_000 / 1.5 * 86_400)
    target = capacity.clock_counts(sharded, ClockDesign(counter_shards=32), 1_000_000)
    assert target.hot_keys["AGG#s#…"].wru == pytest.approx(12 / 32)
    wide = Counts(**{**BUILT.__dict__, "hot_keys": {"AGG#s#…": HotKey(wru=0.25, spread=48)}})
    assert capacity.clock_counts(wide, ClockDesign(counter_shards=32), 1_000_000).hot_keys["AGG#s#…"].wru == \
        pytest.approx(0.25)
