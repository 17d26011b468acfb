"""``POST /v1/scenarios/{id}/forecast``: what a scenario would achieve for an audience before it
is launched — expected sends, reactions and cost per step, total reach, when the reactions come,
and what the cheap first channel alone would achieve.

The model
---------
A cascade walks its steps while the customer stays silent, so step *i* is sent to everyone the
earlier steps did not reach. Each channel has a **rate**: the share of the customers a step on it
is sent to who react (a success signal), among those the earlier steps did not reach. Then

- ``expected_sends[i] = audience × Π_{j<i} (1 − rate[j])``
- ``expected_successes[i] = expected_sends[i] × rate[i]``
- ``reach = 1 − Π_i (1 − rate[i])`` (successes are ``audience × reach``)
- ``cost[i] = expected_sends[i] × price(channel)`` (:func:`cascade.prices.cost`, an SMS of one
  part; the price table and currency are the deployment's).

Default rates reproduce the arithmetic of the articles (seed 004, see DOMAIN.md): the cart
cascade email → Telegram/WhatsApp → SMS → robot call reaches "email 20 %, Telegram +40 %, SMS
+15 %, call +10 %: 85 % vs 20 % for email alone". As shares of those still unreached:

==========  =======  ================================================================
channel     rate     derivation
==========  =======  ================================================================
email       0.20     20 % open (the articles: 15–25 %)
telegram    0.50     +40 % of the whole = 0.40 / 0.80 still unreached
whatsapp    0.50     as Telegram (the articles group the messengers)
viber       0.50     as Telegram
sms         0.375    +15 % = 0.15 / 0.40 still unreached
voice       0.40     +10 % = 0.10 / 0.25 still unreached (the articles: 40–60 % answer)
operator    0.70     the midpoint of the articles' 60–80 %
push        0.10     an assumption: the articles give no figure for push
==========  =======  ================================================================

so 1 − 0.8 × 0.5 × 0.625 × 0.6 = 0.85.

Who gets which step: a step's ``when`` condition and its ``alternatives`` depend on the customer.
They are evaluated, with the engine's own sandboxed evaluator and contact rule, on a set of
customers: the request's ``sample`` (recipients and event data, as events would carry them), or
else the scenario's most recent cascades (their real recipient and data: up to
``HISTORY_CASCADES`` of the last ``HISTORY_DAYS`` days, read through the scenario-and-day index,
never a scan). For each customer a step goes out on the first of its channels they have a contact
for, if its condition holds; otherwise the engine skips it at once (no wait, no cost) and the next
step follows. So a step whose ``when`` is false for a share of the customers reaches only the
rest, and ``condition_source`` says which customers were used (``sample``, ``history``, or
``none``: no one to evaluate on, so every step applies to everyone on its own channel, the model
above). A condition that cannot be evaluated for a customer counts as false for them.

Still not modelled: policies (consent, quiet hours, caps), ``at:`` schedules, and contacts that
providers refused. A step starting at or after the scenario's ``ttl`` is never sent.
``single_channel`` is the scenario's first step alone: scenarios run cheap-first, and the first
step is the cheap channel that can write first (the free Telegram bot cannot start a chat), the
same baseline the scenario report shows (what step 1 alone achieved).

Money is rounded to the currency's minor unit (:func:`cascade.prices.round_money`: cents for USD
and KZT, none for JPY); the total is the rounded sum of the exact step costs. Expected sends and
successes are expectations, not rounded to whole customers.

Time to success: a step's successes arrive uniformly within its wait, after the waits of the
earlier steps the customer got (cut by the ttl, as the workflow's timers are); ``p50`` and ``p90``
are percentiles of that mixture, in cascade seconds from the event (``at:`` schedules and quiet
hours are not modelled).

History: once a scenario has sent on a channel at least ``min_sample`` times (``MIN_SAMPLE``
within the last 90 days; a request may lower or raise it), the observed rate —
successes attributed to that channel's steps / sends — replaces the default. Rates given in the
request win over both. ``rates_source`` says where the rates came from (``given``, ``observed``,
``default``, or ``mixed``), ``samples`` how many sends each observed rate rests on (0 for a rate
that is not observed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import NotFound
from cascade.models import RecipientIn
from cascade.scenarios import CONTACT_FIELD, Channel, Scenario

MIN_SAMPLE = 20
HISTORY_DAYS = 90
HISTORY_CASCADES = 200  # the recent cascades conditions are evaluated on, when no sample is given
MAX_SAMPLE = 1000
MAX_AUDIENCE = 10**9

DEFAULT_RATES: dict[str, float] = {
    "email": 0.20,
    "telegram": 0.50,
    "whatsapp": 0.50,
    "viber": 0.50,
    "sms": 0.375,
    "voice": 0.40,
    "operator": 0.70,
    "push": 0.10,
}

RatesSource = Literal["given", "observed", "default", "mixed"]
ConditionSource = Literal["sample", "history", "none"]
Rate = Annotated[float, Field(ge=0, le=1)]
Route = tuple[str | None, ...]  # per step, the channel it goes out on for a customer (None: skipped)


class SampleCustomer(BaseModel):
    """One customer as the scenario's event would carry them: the contacts decide which of a step's
    channels it goes out on, the recipient and data decide its ``when`` condition."""

    model_config = ConfigDict(extra="forbid")

    recipient: RecipientIn
    data: dict[str, Any] = Field(default_factory=dict)


class ForecastIn(BaseModel):
    """The audience to forecast for, and optionally the rates to assume and customers like it."""

    model_config = ConfigDict(extra="forbid")

    audience: int = Field(strict=True, ge=1, le=MAX_AUDIENCE, description="customers the cascade would start for")
    rates: dict[Channel, Rate] | None = Field(
        default=None, description="channel → share of those a step on it is sent to who react (0..1); "
                                  "overrides the observed and default rates")
    min_sample: int = Field(default=MIN_SAMPLE, strict=True, ge=1, le=10**6,
                            description="sends a channel needs in the scenario's history before its observed "
                                        "rate replaces the default")
    sample: list[SampleCustomer] | None = Field(
        default=None, min_length=1, max_length=MAX_SAMPLE,
        description=f"customers typical of the audience (1..{MAX_SAMPLE}): steps' `when` conditions and "
                    "alternatives are evaluated on them instead of the scenario's recent cascades")


class ForecastStep(BaseModel):
    index: int
    channel: str = Field(description="the step's own channel")
    expected_sends: float
    expected_successes: float
    cost: float = Field(description="in the currency, rounded to its minor unit")
    applies: float = Field(description="share of the customers the step would be sent to if they got this far: "
                                       "its `when` holds and they have a contact on one of its channels "
                                       "(1 when condition_source is none)")
    channels: dict[str, float] = Field(description="expected sends per channel the step goes out on "
                                                   "(its channel, or an alternative for customers without it)")


class Percentiles(BaseModel):
    p50: int | None = Field(description="cascade seconds after the event; null when no one is expected to react")
    p90: int | None


class SingleChannel(BaseModel):
    channel: str = Field(description="the scenario's first (cheapest) channel")
    reach: float
    cost: float


class ForecastView(BaseModel):
    audience: int
    reach: float = Field(description="share of the audience expected to react on some step")
    successes: float
    cost: float = Field(description="in the currency, rounded to its minor unit")
    currency: str
    steps: list[ForecastStep]
    time_to_success_s: Percentiles
    single_channel: SingleChannel = Field(description="the first step's channel alone, sent to everyone")
    rates: dict[str, float] = Field(description="the rate used for each channel the scenario's steps go out on")
    rates_source: RatesSource
    samples: dict[str, int] = Field(description="sends each observed rate rests on (0: not observed)")
    condition_source: ConditionSource = Field(
        description="the customers `when` conditions and alternatives were evaluated on: the request's sample, "
                    "the scenario's recent cascades (history), or none (every step applies to everyone)")
    condition_customers: int = Field(description="how many customers that was (0 for none)")


def pick_rates(channels: Sequence[str], given: Mapping[str, float] | None,
               history: Mapping[str, Mapping[str, int]] | None,
               min_sample: int = MIN_SAMPLE) -> tuple[dict[str, float], dict[str, int], RatesSource]:
    """The rate of each channel (given > observed > default), the sends behind observed ones,
    and where they came from overall."""
    rates: dict[str, float] = {}
    samples: dict[str, int] = {}
    sources: set[str] = set()
    for channel in channels:
        seen = (history or {}).get(channel) or {}
        sent, successes = int(seen.get("sent", 0)), int(seen.get("successes", 0))
        samples[channel] = 0
        if given is not None and channel in given:
            rates[channel], source = float(given[channel]), "given"
        elif sent >= min_sample:
            rates[channel], source = min(1.0, successes / sent), "observed"
            samples[channel] = sent
        else:
            rates[channel], source = DEFAULT_RATES[channel], "default"
        sources.add(source)
    overall: RatesSource = "mixed"
    if len(sources) == 1:
        overall = "given" if "given" in sources else "observed" if "observed" in sources else "default"
    return rates, samples, overall


def percentile(parts: list[tuple[float, float, float]], p: float) -> int | None:
    """The ``p`` quantile of a mixture of uniform distributions given as ``(start, end, weight)``
    intervals (they may overlap; weights need not sum to 1; an empty interval is a point)."""
    total = sum(weight for _, _, weight in parts if weight > 0)
    if total <= 0:
        return None
    target = p * total

    def below(t: float) -> float:  # the weight that has arrived by t, a point at t not counted
        return sum(w * min(1.0, (t - s) / (e - s)) if e > s else w * (t > s)
                   for s, e, w in parts if w > 0 and t > s)

    points = sorted({x for s, e, w in parts if w > 0 for x in (s, e)})
    before, last = 0.0, points[0]
    for point in points:
        reached = below(point)
        if reached >= target:  # within (last, point]: the mixture's weight grows linearly there
            share = (target - before) / (reached - before) if reached > before else 1.0
            return round(last + (point - last) * share)
        at = reached + sum(w for s, e, w in parts if w > 0 and s == e == point)
        if at >= target:
            return round(point)
        before, last = at, point
    return round(points[-1])


def routes(scenario: Scenario, customers: Sequence[Mapping[str, Any]]) -> list[Route]:
    """For each customer (``recipient``, ``data``, optionally ``event_type``), the channel each step
    would go out on — the first of the step's channels they have a contact for, as the engine
    picks — or None where the engine would skip it (no contact, or its ``when`` is false)."""
    from cascade.rendering import compile_condition

    conditions = [compile_condition(step.when) if step.when else None for step in scenario.steps]
    found: list[Route] = []
    for customer in customers:
        recipient = {**dict.fromkeys(RecipientIn.model_fields), **customer["recipient"]}
        event = {"type": customer.get("event_type") or scenario.triggers[0]}
        tried: list[str] = []
        route: list[str | None] = []
        for index, step in enumerate(scenario.steps):
            name = next((n for n in step.channels if recipient.get(CONTACT_FIELD[n])), None)
            condition = conditions[index]
            if name is not None and condition is not None:
                context = {"recipient": recipient, "data": customer.get("data") or {}, "event": event,
                           "cascade": {"id": "c_forecast", "scenario": scenario.id, "step": index,
                                       "tried": list(tried)}}
                try:
                    holds = bool(condition(**context))
                except Exception:  # e.g. comparing a missing number: this customer's step would not go out
                    holds = False
                name = name if holds else None
            if name is not None:
                tried.append(name)
            route.append(name)
        found.append(tuple(route))
    return found


def forecast(scenario: Scenario, body: ForecastIn, history: dict[str, dict[str, int]] | None = None,
             price_table: dict[str, float] | None = None, currency: str | None = None,
             recent: Sequence[Mapping[str, Any]] | None = None) -> ForecastView:
    """The forecast for ``body.audience`` customers (pure: history, prices and the recent cascades'
    customers are passed in). Conditions are evaluated on ``body.sample``, else on ``recent``."""
    from cascade import prices
    from cascade.planning import capped_waits

    table = price_table if price_table is not None else prices.prices()
    currency = currency or prices.currency()
    customers: Sequence[Mapping[str, Any]] = [c.model_dump(exclude_none=True) for c in body.sample or []]
    source: ConditionSource = "sample" if customers else "history" if recent else "none"
    customers = customers or recent or []
    # Customers alike in every step's channel are forecast together.
    paths = Counter(routes(scenario, customers)) if customers else Counter(
        {tuple(step.channel for step in scenario.steps): 1})
    size = sum(paths.values())
    channels = list(dict.fromkeys([step.channel for step in scenario.steps]
                                  + [name for path in paths for name in path if name]))
    given = None if body.rates is None else {str(channel): rate for channel, rate in body.rates.items()}
    rates, samples, rates_source = pick_rates(channels, given, history, body.min_sample)
    waits = capped_waits(scenario)
    count = len(scenario.steps)
    sends: list[dict[str, float]] = [{} for _ in range(count)]
    won, applies = [0.0] * count, [0.0] * count
    arrivals: list[tuple[float, float, float]] = []
    reach = 0.0
    for path, many in paths.items():
        share, unreached, clock = many / size, 1.0, 0
        for index, name in enumerate(path):
            if name is None:  # skipped at once: the next step follows without a wait
                continue
            applies[index] += share
            if scenario.ttl is not None and clock >= scenario.ttl:
                continue
            sends[index][name] = sends[index].get(name, 0.0) + share * unreached
            reached = share * unreached * rates[name]
            won[index] += reached
            arrivals.append((float(clock), float(clock + waits[index]), reached))
            unreached *= 1.0 - rates[name]
            clock += waits[index]
        reach += share * (1.0 - unreached)
    audience = body.audience
    exact = [audience * sum(sent * prices.cost(name, None, table) for name, sent in step.items()) for step in sends]
    steps = [ForecastStep(index=index, channel=step.channel,
                          expected_sends=round(audience * sum(sends[index].values()), 4),
                          expected_successes=round(audience * won[index], 4),
                          cost=prices.round_money(exact[index], currency), applies=round(applies[index], 4),
                          channels={name: round(audience * sends[index][name], 4)
                                    for name in step.channels if name in sends[index]})
             for index, step in enumerate(scenario.steps)]
    first = scenario.steps[0].channel
    return ForecastView(
        audience=audience, reach=round(reach, 6), successes=round(audience * reach, 4),
        cost=prices.round_money(sum(exact), currency), currency=currency, steps=steps,
        time_to_success_s=Percentiles(p50=percentile(arrivals, 0.5), p90=percentile(arrivals, 0.9)),
        single_channel=SingleChannel(channel=first, reach=rates[first],
                                     cost=prices.round_money(audience * prices.cost(first, None, table), currency)),
        rates=rates, rates_source=rates_source, samples=samples,
        condition_source=source, condition_customers=size if customers else 0)


def recent_customers(scenario_id: str, store: Any | None = None, limit: int = HISTORY_CASCADES,
                     days: int = HISTORY_DAYS) -> list[dict[str, Any]]:
    """The recipient, data and event type of the scenario's latest ``limit`` cascades of the last
    ``days`` days: the days that had cascades come from the scenario's daily counters (a query per
    counter shard), then the cascades from the scenario-and-day index, newest first, and their items by key."""
    import json
    from datetime import UTC, datetime, timedelta

    from cascade.store import default_store

    store = store or default_store()
    today = datetime.now(UTC).date()
    rows = store.aggregates(scenario_id, (today - timedelta(days=days - 1)).isoformat(), today.isoformat())
    active = sorted((str(row["sk"])[2:] for row in rows if int(row.get("cascades", 0)) > 0), reverse=True)
    # The latest cascades may not be counted yet (the counters follow the table's stream).
    latest = [today.isoformat(), (today - timedelta(days=1)).isoformat()]
    found = store.recent_cascades(scenario_id, list(dict.fromkeys([*latest, *active])), None, limit)
    items = store.cascade_customers([c["cascade_id"] for c in found]) if found else []
    return [{"recipient": item.get("recipient") or {}, "data": json.loads(item.get("data_json") or "{}"),
             "event_type": item.get("event_type")} for item in items]


def scenario_forecast(scenario_id: str, body: ForecastIn, store: Any | None = None) -> ForecastView:
    """The forecast for the scenario in effect under ``scenario_id``, on its history's rates and,
    unless the request brings a sample, its recent cascades' customers."""
    from cascade import scenario_store

    found = scenario_store.get(scenario_id, store)
    if found is None:
        raise NotFound(f"no scenario {scenario_id!r}")
    history = None
    channels = {name for step in found.scenario.steps for name in step.channels}
    if body.rates is None or not channels <= set(body.rates):  # given rates for every channel need no history
        from cascade import reports

        history = reports.channel_history(scenario_id, store, days=HISTORY_DAYS)
    recent = None if body.sample else recent_customers(scenario_id, store)
    return forecast(found.scenario, body, history, recent=recent)


__all__ = ["DEFAULT_RATES", "HISTORY_CASCADES", "HISTORY_DAYS", "MAX_AUDIENCE", "MAX_SAMPLE", "MIN_SAMPLE",
           "ForecastIn", "ForecastStep", "ForecastView", "Percentiles", "SampleCustomer", "SingleChannel",
           "forecast", "percentile", "pick_rates", "recent_customers", "routes", "scenario_forecast"]
