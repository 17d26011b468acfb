"""The capacity model of ``make bench``: how many cascades a day one account and region sustains,
which limit binds first, and what 1,000 cascades cost, for the design as built and the design
target of issue 12 (shared clock timers), side by side.

Pure functions over two inputs:

- :class:`Counts`, what one fully escalated cascade costs in calls: Step Functions StartExecution
  calls and state transitions, Lambda invocations and seconds, DynamoDB request units (and, per
  key shared by every cascade, the units that land on that one key), API Gateway requests. For the
  built design the bench measures them on the local stack (:mod:`tests.bench`); messages (SES,
  SNS, providers) are left out.
- :class:`Quotas` and :class:`Prices`, the published defaults (sources cited below).

The design target (:class:`ClockDesign`) is computed from the same measured counts with the new
orchestration: no StartExecution per cascade, every timer a due item in a sharded DynamoDB
bucket, one clock workflow per bucket whose transitions are shared by every due item the bucket
fans out in batches, and report counters sharded / configuration cached (issue 12, item 4). Once
the clock is built, its own measured counts replace these parameters.

A rate is sustainable for a day when it is sustainable every second: the model takes an even day
(``peak_factor`` 1); a peak hour ``peak_factor`` times the average divides every figure by it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

DAY_S: Final = 86_400
MONTH_DAYS: Final = 30


@dataclass(frozen=True)
class Quotas:
    """Default quotas per account and region (us-east-1, us-west-2, eu-west-1 where they differ).

    - Step Functions: StartExecution bucket 1,300, refill 300/s (150/s in other regions);
      StateTransition bucket 5,000, refill 1,500/s (500/s in other regions; new accounts start
      lower); 1,000,000 open Standard executions.
      https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html (awsdocs
      aws-step-functions-developer-guide, doc_source/limits.md: "Quotas related to API action
      throttling", "Quotas related to state throttling")
    - Lambda: 1,000 concurrent executions.
      https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    - DynamoDB: a partition takes 1,000 WCU/s and 3,000 RCU/s; an on-demand table 40,000 RRU/s and
      40,000 WRU/s by default ("bounded by 40,000 table-level read and write throughput").
      https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Limits.html and
      https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html
    - API Gateway: 10,000 requests/s per account and region across all APIs (burst 5,000).
      https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
    """

    sfn_start_execution_per_s: float = 300
    sfn_transitions_per_s: float = 1_500
    sfn_open_executions: float = 1_000_000
    lambda_concurrency: float = 1_000
    ddb_partition_wcu_per_s: float = 1_000
    ddb_partition_rcu_per_s: float = 3_000
    ddb_table_wru_per_s: float = 40_000
    ddb_table_rru_per_s: float = 40_000
    apigw_account_rps: float = 10_000
    # The template's own HttpApi throttle, per route (ApiRateLimit): POST /v1/events takes one
    # request per cascade, and a stop (POST /v1/signals) has a route, and so a budget, of its own.
    # template.yaml's default (it was a fixed 200 rps: 17.3 M triggers a day).
    api_route_rps: float = 4_000


# Quotas that only AWS Support raises for Step Functions; the 100 M goal must hold without them.
STEP_FUNCTIONS_LIMITS: Final = ("Step Functions StartExecution", "Step Functions transitions",
                                "Step Functions open executions")


@dataclass(frozen=True)
class Prices:
    """List prices, us-east-1, USD, with the volume tiers that matter at 100 M cascades a day.

    - Step Functions Standard: $0.025 per 1,000 state transitions. https://aws.amazon.com/step-functions/pricing/
    - Lambda arm64: $0.20 per million requests; $0.0000133334 per GB-s for the first 7.5 billion
      GB-s a month, $0.0000120001 for the next 11.25 billion, $0.0000106667 beyond.
      https://aws.amazon.com/lambda/pricing/
    - DynamoDB on demand: $0.625 per million write request units, $0.125 per million read request
      units. https://aws.amazon.com/dynamodb/pricing/on-demand/
    - API Gateway HTTP API: $1.00 per million requests for the first 300 million a month, $0.90
      beyond. https://aws.amazon.com/api-gateway/pricing/
    """

    sfn_per_transition: float = 0.025 / 1_000
    lambda_per_request: float = 0.20 / 1_000_000
    lambda_gb_s_tiers: tuple[tuple[float, float], ...] = (
        (7.5e9, 0.0000133334), (11.25e9, 0.0000120001), (math.inf, 0.0000106667))
    ddb_per_wru: float = 0.625 / 1_000_000
    ddb_per_rru: float = 0.125 / 1_000_000
    http_api_tiers: tuple[tuple[float, float], ...] = ((300e6, 1.00 / 1_000_000), (math.inf, 0.90 / 1_000_000))


@dataclass(frozen=True)
class HotKey:
    """Request units one cascade spends on one key that every cascade of a scenario shares."""

    wru: float = 0.0
    rru: float = 0.0
    cacheable: bool = False  # configuration read through: a per-container cache can absorb it
    spread: int = 1  # keys (shards) of this kind the units are spread over, as measured


@dataclass(frozen=True)
class Counts:
    """The calls one fully escalated cascade makes (messages excluded)."""

    steps: int
    timers: int  # waits that end in a timeout: one per step (the last one ends it as exhausted)
    lifetime_h: float  # how long the cascade stays open: its timers summed
    start_executions: float
    transitions: float
    lambda_invokes: float
    lambda_s_per_invoke: float
    lambda_memory_gb: float
    ddb_wru: float
    ddb_rru: float
    api_requests: float
    hot_keys: Mapping[str, HotKey] = field(default_factory=dict)
    defers: int = 0  # quiet hours / caps / at: deferrals (4 transitions each in the built design)


@dataclass(frozen=True)
class ClockDesign:
    """Issue 12's design target: shared clock timers. Parameters, until the clock is built and measured.

    ``bucket_s``: the width of a due bucket, and so the clock's cadence (p99 lateness ≤ 5 s needs ≤ 5).
    ``batch_size``: due items per fan-out batch (one Lambda invoke, ``transitions_per_batch`` transitions).
    ``transitions_per_run``: a clock run's own states (Wait, read the bucket, the Map, the end).
    ``due_shards``: DynamoDB partitions a bucket's due items are spread over.
    ``counter_shards``: report counter items per scenario and day (item 4).
    ``cache_ttl_s``: how long a container keeps configuration, scenario index and circuit state.
    ``clock_lead_s``: how far ahead a clock run is started (its Wait): open executions = lead / bucket.
    ``due_item_kb``: the size of a due item; a put and a claim (delete) each cost 1 WRU per KB.
    ``diet_wru``: the write units per cascade the issue aims at (≤ 40); printed beside
    the measured figure, never used for the goals until measured.
    """

    bucket_s: float = 2.0
    batch_size: int = 100
    transitions_per_run: float = 4
    transitions_per_batch: float = 1
    due_shards: int = 32
    counter_shards: int = 32
    cache_ttl_s: float = 5.0
    clock_lead_s: float = 3_600
    due_item_kb: float = 1.0
    diet_wru: float = 40.0

    @property
    def runs_per_day(self) -> float:
        return DAY_S / self.bucket_s


def due_items(c: Counts) -> int:
    """Every step send and every defer is a due item; so is the final timeout that ends the cascade."""
    return c.steps + c.defers + 1


def clock_counts(c: Counts, d: ClockDesign, cascades_per_day: float) -> Counts:
    """The same cascade on the clock design, at a daily volume (the clock's own transitions are
    shared by every cascade of the day; the fewer the cascades, the more each one carries)."""
    items = due_items(c)
    runs = d.runs_per_day
    per_cascade_runs = runs * d.transitions_per_run / max(cascades_per_day, 1.0)
    batches = items / d.batch_size
    built_invokes = c.lambda_invokes
    # The step sender still does each step's work; it is invoked once per batch instead of per step.
    work_s = built_invokes * c.lambda_s_per_invoke
    invokes = 1 + batches + runs / max(cascades_per_day, 1.0)  # ingest, batches, the clock's bucket read
    hot = {name: HotKey(wru=k.wru * k.spread / max(d.counter_shards, k.spread),
                        rru=0.0 if k.cacheable else k.rru * k.spread / max(d.counter_shards, k.spread),
                        spread=max(d.counter_shards, k.spread))
           for name, k in c.hot_keys.items()}
    hot["due bucket shard"] = HotKey(wru=2 * d.due_item_kb / d.due_shards)
    return replace(
        c, start_executions=runs / max(cascades_per_day, 1.0),
        transitions=per_cascade_runs + batches * d.transitions_per_batch,
        lambda_invokes=invokes, lambda_s_per_invoke=work_s / invokes,
        ddb_wru=c.ddb_wru + items * 2 * d.due_item_kb,
        ddb_rru=c.ddb_rru + items * 0.5 * d.due_item_kb / 4,  # the bucket's query: 0.5 RRU per 4 KB read
        hot_keys=hot, defers=c.defers)


# -- limits ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    name: str
    per_day: float  # the most new cascades a day this limit lets through
    raisable: bool  # by a quota request that is not a Step Functions one (or by the template)


def limits(c: Counts, q: Quotas, *, open_executions_per_cascade: float = 1.0,
           clock_open: float = 0.0, peak_factor: float = 1.0) -> list[Limit]:
    """Every limit's ceiling on new cascades a day, from the counts of one cascade."""

    def per_day(capacity_per_s: float, use_per_cascade: float) -> float:
        if use_per_cascade <= 0:
            return math.inf
        return capacity_per_s / use_per_cascade * DAY_S / peak_factor

    out = [
        Limit("Step Functions StartExecution", per_day(q.sfn_start_execution_per_s, c.start_executions), False),
        Limit("Step Functions transitions", per_day(q.sfn_transitions_per_s, c.transitions), False),
    ]
    if open_executions_per_cascade > 0:
        # Little's law: open = arrivals per hour × hours open.
        hours_open = c.lifetime_h * open_executions_per_cascade
        out.append(Limit("Step Functions open executions",
                         (q.sfn_open_executions - clock_open) / hours_open * 24 / peak_factor, False))
    out += [
        Limit("Lambda concurrency", per_day(q.lambda_concurrency, c.lambda_invokes * c.lambda_s_per_invoke), True),
        Limit("DynamoDB table writes", per_day(q.ddb_table_wru_per_s, c.ddb_wru), True),
        Limit("DynamoDB table reads", per_day(q.ddb_table_rru_per_s, c.ddb_rru), True),
        Limit("API Gateway account rate", per_day(q.apigw_account_rps, c.api_requests), True),
        Limit("template route throttle (ApiRateLimit)", per_day(q.api_route_rps, 1.0), True),
    ]
    for name, key in sorted(c.hot_keys.items()):
        if key.wru:
            out.append(Limit(f"DynamoDB partition writes: {name}", per_day(q.ddb_partition_wcu_per_s, key.wru), False))
        if key.rru:
            out.append(Limit(f"DynamoDB partition reads: {name}", per_day(q.ddb_partition_rcu_per_s, key.rru), False))
    return out


def binding(ls: list[Limit]) -> Limit:
    """The limit that binds first: the lowest ceiling."""
    return min(ls, key=lambda limit: limit.per_day)


# -- cost ------------------------------------------------------------------------------------------


def _tiered(monthly_units: float, tiers: tuple[tuple[float, float], ...]) -> float:
    """The monthly bill for ``monthly_units`` under volume tiers ``(units in tier, price per unit)``."""
    cost, left = 0.0, monthly_units
    for size, price in tiers:
        take = min(left, size)
        cost += take * price
        left -= take
        if left <= 0:
            break
    return cost


def cost_per_thousand(c: Counts, p: Prices, cascades_per_day: float) -> dict[str, float]:
    """USD per 1,000 cascades at a daily volume (volume tiers applied to a 30-day month), itemised."""
    month = cascades_per_day * MONTH_DAYS
    gb_s = c.lambda_invokes * c.lambda_s_per_invoke * c.lambda_memory_gb
    per = 1_000 / month
    return {
        "Step Functions": 1_000 * c.transitions * p.sfn_per_transition,
        "Lambda requests": 1_000 * c.lambda_invokes * p.lambda_per_request,
        "Lambda duration": _tiered(month * gb_s, p.lambda_gb_s_tiers) * per,
        "DynamoDB writes": 1_000 * c.ddb_wru * p.ddb_per_wru,
        "DynamoDB reads": 1_000 * c.ddb_rru * p.ddb_per_rru,
        "API Gateway": _tiered(month * c.api_requests, p.http_api_tiers) * per,
    }


# -- the two designs side by side -----------------------------------------------------------------

VOLUMES: Final = (1_000_000, 10_000_000, 100_000_000)
GOAL_DEFAULT_QUOTAS_PER_DAY: Final = 10_000_000
GOAL_NO_SFN_RAISE_PER_DAY: Final = 100_000_000
GOAL_TRANSITIONS_PER_STEP: Final = 0.1
GOAL_COST_PER_THOUSAND: Final = 0.05
TARGET_LABEL: Final = "design target (not built yet)"


@dataclass
class Column:
    label: str
    limits: list[Limit]
    binds: Limit
    costs: dict[int, dict[str, float]]  # volume -> items
    transitions_per_step_at_1m: float
    without_sfn_raise: float  # cascades a day once every raisable quota is raised: Step Functions and partitions bind
    raise_needed: list[str]  # raisable limits under the 100 M goal

    def total(self, volume: int) -> float:
        return sum(self.costs[volume].values())


def column(label: str, counts_at: dict[int, Counts], q: Quotas, p: Prices, *, open_per_cascade: float,
           clock_open: float = 0.0) -> Column:
    """A design's column: ``counts_at`` gives the per-cascade counts at each volume (the built design's
    do not depend on the volume; the clock's shared transitions do). Limits are judged at the top volume."""
    top = counts_at[max(counts_at)]
    ls = limits(top, q, open_executions_per_cascade=open_per_cascade, clock_open=clock_open)
    hard = [limit for limit in ls if not limit.raisable]
    one_m = counts_at[min(counts_at)]
    return Column(
        label=label, limits=ls, binds=binding(ls),
        costs={v: cost_per_thousand(c, p, v) for v, c in counts_at.items()},
        transitions_per_step_at_1m=one_m.transitions / one_m.steps,
        without_sfn_raise=binding(hard).per_day,
        raise_needed=[limit.name for limit in ls if limit.raisable and limit.per_day < GOAL_NO_SFN_RAISE_PER_DAY])


def compare(built: Counts, q: Quotas | None = None, p: Prices | None = None,
            d: ClockDesign | None = None) -> tuple[Column, Column]:
    q, p, d = q or Quotas(), p or Prices(), d or ClockDesign()
    old = column("built (measured)", dict.fromkeys(VOLUMES, built), q, p, open_per_cascade=1.0)
    new = column(TARGET_LABEL, {v: clock_counts(built, d, v) for v in VOLUMES}, q, p, open_per_cascade=0.0,
                 clock_open=d.clock_lead_s / d.bucket_s)
    return old, new


def goals(col: Column) -> list[tuple[str, bool]]:
    """The issue's goals, judged on one column."""
    return [
        (f"≥ {GOAL_DEFAULT_QUOTAS_PER_DAY / 1e6:.0f} M cascades/day within default quotas "
         f"({col.binds.per_day / 1e6:,.1f} M, {col.binds.name} binds)",
         col.binds.per_day >= GOAL_DEFAULT_QUOTAS_PER_DAY),
        (f"≥ {GOAL_NO_SFN_RAISE_PER_DAY / 1e6:.0f} M with no Step Functions quota raise "
         f"({col.without_sfn_raise / 1e6:,.1f} M; raise only: {', '.join(col.raise_needed) or 'nothing'})",
         col.without_sfn_raise >= GOAL_NO_SFN_RAISE_PER_DAY),
        (f"≤ {GOAL_TRANSITIONS_PER_STEP} transitions per step at 1 M/day ({col.transitions_per_step_at_1m:.3f})",
         col.transitions_per_step_at_1m <= GOAL_TRANSITIONS_PER_STEP),
        (f"≤ ${GOAL_COST_PER_THOUSAND} per 1,000 cascades at 10 M/day (${col.total(10_000_000):.4f})",
         col.total(10_000_000) <= GOAL_COST_PER_THOUSAND),
    ]


def _m(n: float) -> str:
    return "unbounded" if math.isinf(n) else f"{n / 1e6:,.1f} M"


def report(built: Counts, preset: str, q: Quotas | None = None, p: Prices | None = None,
           d: ClockDesign | None = None) -> str:
    """The side-by-side table ``make bench`` prints."""
    q, d = q or Quotas(), d or ClockDesign()
    old, new = compare(built, q, p, d)
    w = 40
    lines = [f"   {preset}: {built.steps} steps, {built.lifetime_h:g} h open; per cascade measured: "
             f"{built.start_executions:g} StartExecution, {built.transitions:g} transitions, "
             f"{built.lambda_invokes:g} Lambda invokes, {built.ddb_wru:g} WRU, {built.ddb_rru:g} RRU, "
             f"{built.api_requests:g} API request, {built.defers} quiet-hours/cap deferrals",
             f"   {'new cascades a day, per limit':<44}{old.label:>{w}}{new.label:>{w}}"]
    names = [limit.name for limit in old.limits] + [limit.name for limit in new.limits
                                                      if limit.name not in {o.name for o in old.limits}]
    by = [{limit.name: limit for limit in col.limits} for col in (old, new)]
    for name in names:
        cells = [_m(b[name].per_day) if name in b else "-" for b in by]
        lines.append(f"   {name:<44}" + "".join(f"{cell:>{w}}" for cell in cells))
    lines.append(f"   {'binds first':<44}" + "".join(f"{col.binds.name:>{w}}" for col in (old, new)))
    lines.append(f"   {'sustainable (default quotas)':<44}" + "".join(f"{_m(col.binds.per_day):>{w}}" for col in (old, new)))
    lines.append(f"   {'with no Step Functions raise':<44}"
                 + "".join(f"{_m(col.without_sfn_raise):>{w}}" for col in (old, new)))
    lines.append(f"   {'transitions per step at 1 M/day':<44}"
                 + "".join(f"{col.transitions_per_step_at_1m:>{w}.3f}" for col in (old, new)))
    for v in VOLUMES:
        lines.append(f"   {f'USD per 1,000 cascades at {v / 1e6:g} M/day':<44}"
                     + "".join(f"{col.total(v):>{w}.4f}" for col in (old, new)))
    for item in old.costs[VOLUMES[1]]:
        lines.append(f"   {f'  of which {item} (10 M/day)':<44}"
                     + "".join(f"{col.costs[VOLUMES[1]][item]:>{w}.4f}" for col in (old, new)))
    lines.append(f"   design target parameters: bucket {d.bucket_s:g} s, batches of {d.batch_size}, "
                 f"{d.transitions_per_run:g} transitions per clock run + {d.transitions_per_batch:g} per batch, "
                 f"{d.due_shards} due shards, {d.counter_shards} counter shards, caches {d.cache_ttl_s:g} s")
    diet = compare(replace(built, ddb_wru=d.diet_wru), q, p, d)[1]
    lines.append(f"   at the write goal ({d.diet_wru:g} WRU a cascade; measured now: {built.ddb_wru:g}) the design target "
                 f"would cost ${diet.total(VOLUMES[1]):.4f} per 1,000 at 10 M/day; {diet.binds.name} would bind at "
                 f"{_m(diet.binds.per_day)}")
    lines.append(f"   template: ApiRateLimit {q.api_route_rps:,.0f} rps per route allows "
                 f"{_m(q.api_route_rps * DAY_S)} triggers a day (and as many stops, on their own route)")
    lines.append("   goals:")
    for col in (old, new):
        for text, ok in goals(col):
            lines.append(f"     [{'pass' if ok else 'FAIL'}] {col.label}: {text}")
    lines.append("     [n/a ] stop latency p95 ≤ 1 s from signal to succeeded: a local stack measurement, not the model's")
    return "\n".join(lines)
