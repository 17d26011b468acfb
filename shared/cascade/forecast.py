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

Simplifications, stated: a step is forecast on its own channel (``alternatives``, used only for
recipients without that contact, are not modelled); a step with a ``when`` condition is counted
as if it applied to everyone; a step starting at or after the scenario's ``ttl`` is never sent.
``single_channel`` is the scenario's first step alone: scenarios run cheap-first, and the first
step is the cheap channel that can write first (the free Telegram bot cannot start a chat), the
same baseline the scenario report shows (what step 1 alone achieved).

Time to success: a step's successes arrive uniformly within its wait, after the earlier steps'
waits (cut by the ttl, as the workflow's timers are); ``p50`` and ``p90`` are percentiles of that
mixture, in cascade seconds from the event (``at:`` schedules and quiet hours are not modelled).

History: once a scenario has sent on a channel at least ``min_sample`` times (``MIN_SAMPLE``
within the last 90 days; a request may lower or raise it), the observed rate —
successes attributed to that channel's steps / sends — replaces the default. Rates given in the
request win over both. ``rates_source`` says where the rates came from (``given``, ``observed``,
``default``, or ``mixed``), ``samples`` how many sends each observed rate rests on (0 for a rate
that is not observed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import NotFound
from cascade.scenarios import Channel, Scenario

MIN_SAMPLE = 20
HISTORY_DAYS = 90
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
Rate = Annotated[float, Field(ge=0, le=1)]


class ForecastIn(BaseModel):
    """The audience to forecast for, and optionally the rates to assume."""

    model_config = ConfigDict(extra="forbid")

    audience: int = Field(strict=True, ge=1, le=MAX_AUDIENCE, description="customers the cascade would start for")
    rates: dict[Channel, Rate] | None = Field(
        default=None, description="channel → share of those a step on it is sent to who react (0..1); "
                                  "overrides the observed and default rates")
    min_sample: int = Field(default=MIN_SAMPLE, strict=True, ge=1, le=10**6,
                            description="sends a channel needs in the scenario's history before its observed "
                                        "rate replaces the default")


class ForecastStep(BaseModel):
    index: int
    channel: str
    expected_sends: float
    expected_successes: float
    cost: float


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
    cost: float
    currency: str
    steps: list[ForecastStep]
    time_to_success_s: Percentiles
    single_channel: SingleChannel = Field(description="the first step's channel alone, sent to everyone")
    rates: dict[str, float] = Field(description="the rate used for each channel the scenario's steps use")
    rates_source: RatesSource
    samples: dict[str, int] = Field(description="sends each observed rate rests on (0: not observed)")


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
    """The ``p`` quantile of a mixture of uniform distributions given as consecutive,
    non-overlapping ``(start, end, weight)`` intervals in time order (weights need not sum to 1)."""
    total = sum(weight for _, _, weight in parts)
    if total <= 0:
        return None
    target, before = p * total, 0.0
    for start, end, weight in parts:
        if weight > 0 and before + weight >= target:
            return round(start + (end - start) * max(0.0, target - before) / weight)
        before += weight
    return round(parts[-1][1])


def forecast(scenario: Scenario, body: ForecastIn, history: dict[str, dict[str, int]] | None = None,
             price_table: dict[str, float] | None = None, currency: str | None = None) -> ForecastView:
    """The forecast for ``body.audience`` customers (pure: history and prices are passed in)."""
    from cascade import prices
    from cascade.planning import capped_waits

    table = price_table if price_table is not None else prices.prices()
    channels = list(dict.fromkeys(step.channel for step in scenario.steps))
    given = None if body.rates is None else {str(channel): rate for channel, rate in body.rates.items()}
    rates, samples, source = pick_rates(channels, given, history, body.min_sample)
    audience = body.audience
    unreached, clock = 1.0, 0
    steps: list[ForecastStep] = []
    arrivals: list[tuple[float, float, float]] = []
    for index, (step, wait) in enumerate(zip(scenario.steps, capped_waits(scenario), strict=True)):
        sent = unreached if scenario.ttl is None or clock < scenario.ttl else 0.0
        reached = sent * rates[step.channel]
        steps.append(ForecastStep(index=index, channel=step.channel, expected_sends=round(audience * sent, 4),
                                  expected_successes=round(audience * reached, 4),
                                  cost=round(audience * sent * prices.cost(step.channel, None, table), 6)))
        arrivals.append((float(clock), float(clock + wait), reached))
        unreached -= reached
        clock += wait
    reach = 1.0 - unreached
    first = scenario.steps[0].channel
    return ForecastView(
        audience=audience, reach=round(reach, 6), successes=round(audience * reach, 4),
        cost=round(sum(s.cost for s in steps), 6), currency=currency or prices.currency(), steps=steps,
        time_to_success_s=Percentiles(p50=percentile(arrivals, 0.5), p90=percentile(arrivals, 0.9)),
        single_channel=SingleChannel(channel=first, reach=rates[first],
                                     cost=round(audience * prices.cost(first, None, table), 6)),
        rates=rates, rates_source=source, samples=samples)


def scenario_forecast(scenario_id: str, body: ForecastIn, store: Any | None = None) -> ForecastView:
    """The forecast for the scenario in effect under ``scenario_id``, on its history's rates."""
    from cascade import scenario_store

    found = scenario_store.get(scenario_id, store)
    if found is None:
        raise NotFound(f"no scenario {scenario_id!r}")
    history = None
    channels = {step.channel for step in found.scenario.steps}
    if body.rates is None or not channels <= set(body.rates):  # given rates for every channel need no history
        from cascade import reports

        history = reports.channel_history(scenario_id, store, days=HISTORY_DAYS)
    return forecast(found.scenario, body, history)


__all__ = ["DEFAULT_RATES", "HISTORY_DAYS", "MAX_AUDIENCE", "MIN_SAMPLE", "ForecastIn", "ForecastStep",
           "ForecastView", "Percentiles", "SingleChannel", "forecast", "percentile", "pick_rates",
           "scenario_forecast"]
