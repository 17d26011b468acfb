"""The forecast's arithmetic: the articles' 85 % reach for the cart cascade vs 20 % for email
alone, its cost from the price table, when the reactions arrive, and observed rates replacing
the defaults once a scenario has enough history."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cascade import prices
from cascade.forecast import DEFAULT_RATES, MIN_SAMPLE, ForecastIn, forecast, percentile
from cascade.scenarios import CHANNELS, presets

CART = presets()["abandoned-cart"]


def cart(audience: int = 1000, history: dict[str, dict[str, int]] | None = None,
         table: dict[str, float] | None = None, **body: Any) -> Any:
    return forecast(CART, ForecastIn.model_validate({"audience": audience, **body}), history,
                    table if table is not None else prices.table(), "USD")


def test_every_channel_has_a_default_rate_between_0_and_1() -> None:
    assert set(DEFAULT_RATES) == set(CHANNELS)
    assert all(0 < rate < 1 for rate in DEFAULT_RATES.values())


def test_the_cart_cascade_reaches_85_percent_where_email_alone_reaches_20() -> None:
    result = cart()
    assert result.reach == pytest.approx(0.85, abs=0.001)
    assert result.successes == pytest.approx(850)
    assert result.rates == {"email": 0.2, "telegram": 0.5, "sms": 0.375, "voice": 0.4}
    assert (result.rates_source, result.samples) == ("default", {"email": 0, "telegram": 0, "sms": 0, "voice": 0})
    # The articles' "+40 %, +15 %, +10 %": each step reaches a share of those still silent.
    assert [(s.index, s.channel, s.expected_sends, s.expected_successes) for s in result.steps] == [
        (0, "email", 1000, 200), (1, "telegram", 800, 400), (2, "sms", 400, 150), (3, "voice", 250, 100)]
    assert result.single_channel.channel == "email"
    assert result.single_channel.reach == pytest.approx(0.20)


def test_the_cost_is_each_steps_sends_times_its_price() -> None:
    result = cart()  # the default USD list prices
    assert [s.cost for s in result.steps] == pytest.approx([1000 * 0.0001, 0.0, 400 * 0.0079, 250 * 0.05])
    assert result.cost == pytest.approx(0.1 + 3.16 + 12.5)
    assert result.single_channel.cost == pytest.approx(0.1)
    assert result.currency == "USD"
    # The articles' tenge figures: email ~0.05, a messenger 15, SMS 15, a robot call 35.
    tenge = prices.table('{"email": 0.05, "telegram": 15, "sms": 15, "voice": 35}')
    result = cart(table=tenge)
    assert result.cost == pytest.approx(1000 * 0.05 + 800 * 15 + 400 * 15 + 250 * 35)
    assert result.single_channel.cost == pytest.approx(50)


def test_reactions_arrive_within_each_steps_wait_after_the_earlier_ones() -> None:
    result = cart()
    # Weights 20/85, 40/85, 15/85, 10/85 over [0, 24 h], [24 h, 30 h], [30 h, 32 h], [32 h, 56 h]:
    # the median falls 56.25 % into the Telegram wait, p90 15 % into the call's day.
    assert result.time_to_success_s.p50 == 86400 + 12150
    assert result.time_to_success_s.p90 == 115200 + 12960
    silent = cart(rates={channel: 0 for channel in CHANNELS})
    assert silent.reach == 0 and silent.successes == 0
    assert silent.time_to_success_s.p50 is None and silent.time_to_success_s.p90 is None
    assert [s.expected_sends for s in silent.steps] == [1000] * 4  # no one reacts: everyone gets every step
    assert silent.cost == pytest.approx(1000 * (0.0001 + 0.0079 + 0.05))


def test_percentiles_of_consecutive_uniform_intervals() -> None:
    assert percentile([(0, 100, 1.0)], 0.5) == 50
    assert percentile([(0, 100, 1.0), (100, 200, 1.0)], 0.9) == 180
    assert percentile([(0, 100, 0.0), (100, 300, 0.5)], 0.5) == 200
    assert percentile([(0, 100, 0.0)], 0.5) is None


def test_a_step_after_the_ttl_is_never_sent() -> None:
    otp = presets()["otp"].model_copy(update={"ttl": 60})  # SMS 45 s, Telegram cut to 15 s, then expired
    result = forecast(otp, ForecastIn(audience=100), None, prices.table(), "USD")
    assert [s.expected_sends for s in result.steps] == [100, pytest.approx(62.5), 0]
    assert result.steps[2].cost == 0


def test_observed_rates_replace_the_defaults_once_a_channel_has_enough_sends() -> None:
    history = {"email": {"sent": 40, "successes": 12}, "telegram": {"sent": 5, "successes": 5}}
    result = cart(history=history)
    assert result.rates["email"] == pytest.approx(0.3)
    assert result.rates["telegram"] == 0.5  # 5 sends are too few: the default stays
    assert result.samples == {"email": 40, "telegram": 0, "sms": 0, "voice": 0}
    assert result.rates_source == "mixed"
    assert result.steps[1].expected_sends == pytest.approx(700)
    # A request may ask for fewer sends per channel; all observed → "observed".
    everything = {c: {"sent": 5, "successes": 1} for c in ("email", "telegram", "sms", "voice")}
    result = cart(history=everything, min_sample=5)
    assert (result.rates_source, set(result.rates.values())) == ("observed", {0.2})
    assert cart(history=everything).rates_source == "default"  # below MIN_SAMPLE
    assert MIN_SAMPLE == 20


def test_given_rates_win_over_history_and_defaults() -> None:
    history = {"email": {"sent": 100, "successes": 50}}
    result = cart(history=history, rates={"email": 0.1, "telegram": 0.2, "sms": 0.3, "voice": 0.4, "push": 1})
    assert result.rates == {"email": 0.1, "telegram": 0.2, "sms": 0.3, "voice": 0.4}  # push: not a step here
    assert (result.rates_source, result.samples["email"]) == ("given", 0)
    assert result.reach == pytest.approx(1 - 0.9 * 0.8 * 0.7 * 0.6)
    assert cart(history=history, rates={"sms": 0.9}).rates_source == "mixed"


@pytest.mark.parametrize(("body", "field"), [
    ({"audience": 0}, "audience"),
    ({"audience": 10**9 + 1}, "audience"),
    ({"audience": "100"}, "audience"),
    ({"audience": 1.5}, "audience"),
    ({}, "audience"),
    ({"audience": 10, "rates": {"sms": 1.2}}, "rates.sms"),
    ({"audience": 10, "rates": {"sms": -0.1}}, "rates.sms"),
    ({"audience": 10, "rates": {"fax": 0.5}}, "rates.fax"),
    ({"audience": 10, "rates": ["sms"]}, "rates"),
    ({"audience": 10, "min_sample": 0}, "min_sample"),
    ({"audience": 10, "people": 3}, "people"),
    ({"audience": 10, "sample": []}, "sample"),
    ({"audience": 10, "sample": [{"recipient": {"id": "a"}}] * 1001}, "sample"),
    ({"audience": 10, "sample": [{"data": {}}]}, "sample.0.recipient"),
    ({"audience": 10, "sample": [{"recipient": {"id": "a", "email": "nope"}}]}, "sample.0.recipient.email"),
    ({"audience": 10, "sample": [{"recipient": {"id": "a"}, "data": []}]}, "sample.0.data"),
    ({"audience": 10, "sample": {"recipient": {"id": "a"}}}, "sample"),
])
def test_bad_input_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ForecastIn.model_validate(body)
    fields = [".".join(str(p) for p in error["loc"]) for error in info.value.errors()]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


# ---- who gets which step: `when` and `alternatives` on a sample or on recent cascades ---------

DELIVERY = presets()["delivery-failed"]  # three SMS, then an operator's call for VIP orders only


def order(n: int, **data: Any) -> dict[str, Any]:
    return {"recipient": {"id": f"r{n}", "phone": f"+7701123{n:04d}"},
            "data": {"order_id": f"A-{n}", "reschedule_url": "https://shop.example/r", **data}}


def test_the_vip_only_operator_step_is_not_billed_for_ordinary_orders() -> None:
    ordinary = [order(n) for n in range(10)]
    result = forecast(DELIVERY, ForecastIn.model_validate({"audience": 1000, "sample": ordinary}), None,
                      prices.table(), "USD")
    assert (result.condition_source, result.condition_customers) == ("sample", 10)
    operator = result.steps[3]
    assert (operator.channel, operator.expected_sends, operator.cost, operator.applies) == ("operator", 0, 0, 0)
    assert operator.channels == {}
    # Three SMS only: 1000 × (1 + 0.625 + 0.390625) sends at one part each.
    assert result.cost == pytest.approx(round(2015.625 * 0.0079, 2))
    assert result.reach == pytest.approx(1 - 0.625 ** 3)
    # Before: no one to evaluate on, so the operator was billed to everyone still silent.
    blind = forecast(DELIVERY, ForecastIn(audience=1000), None, prices.table(), "USD")
    assert blind.condition_source == "none" and blind.steps[3].expected_sends == pytest.approx(1000 * 0.625 ** 3)
    assert blind.steps[3].cost == pytest.approx(round(1000 * 0.625 ** 3 * 0.5, 2))


def test_a_condition_true_for_a_share_of_the_customers_reaches_only_that_share() -> None:
    sample = [order(n, priority="vip") for n in range(3)] + [order(n) for n in range(3, 10)]
    result = forecast(DELIVERY, ForecastIn.model_validate({"audience": 1000, "sample": sample}), None,
                      prices.table(), "USD")
    operator = result.steps[3]
    assert operator.applies == pytest.approx(0.3)
    assert operator.expected_sends == pytest.approx(0.3 * 1000 * 0.625 ** 3, abs=0.001)
    assert operator.expected_successes == pytest.approx(operator.expected_sends * 0.7, abs=0.001)
    assert operator.cost == round(operator.expected_sends * 0.5, 2)


def test_the_recent_cascades_stand_in_when_no_sample_is_given_and_the_sample_wins() -> None:
    recent = [{**order(n, priority="vip"), "event_type": "delivery.failed"} for n in range(4)]
    result = forecast(DELIVERY, ForecastIn(audience=100), None, prices.table(), "USD", recent=recent)
    assert (result.condition_source, result.condition_customers) == ("history", 4)
    assert result.steps[3].applies == 1
    body = ForecastIn.model_validate({"audience": 100, "sample": [order(1)]})
    result = forecast(DELIVERY, body, None, prices.table(), "USD", recent=recent)
    assert (result.condition_source, result.condition_customers, result.steps[3].applies) == ("sample", 1, 0)
    assert forecast(DELIVERY, ForecastIn(audience=100), None, prices.table(), "USD", recent=[]).condition_source \
        == "none"


def test_alternatives_go_out_on_the_channel_each_customer_can_be_reached_on() -> None:
    # The cart's step 2 is Telegram, or WhatsApp for customers without a Telegram chat.
    telegram = {"recipient": {"id": "t", "email": "t@example.com", "telegram_chat_id": "42"}}
    whatsapp = {"recipient": {"id": "w", "email": "w@example.com", "whatsapp": "+77011234567",
                              "phone": "+77011234567"}}
    result = cart(1000, sample=[telegram, whatsapp, whatsapp, whatsapp])
    step = result.steps[1]
    assert step.channel == "telegram" and step.expected_sends == pytest.approx(800)
    assert step.channels == {"telegram": pytest.approx(200), "whatsapp": pytest.approx(600)}
    assert step.cost == round(600 * 0.0147, 2)  # Telegram is free
    assert result.rates["whatsapp"] == 0.5
    # Without a phone there is no SMS or call for the Telegram customer: the engine skips both.
    assert result.steps[2].applies == 0.75 and result.steps[2].expected_sends == pytest.approx(0.75 * 400)


def test_a_skipped_step_takes_no_time_and_a_condition_that_fails_counts_as_false() -> None:
    scenario = CART.model_copy(update={"steps": [
        CART.steps[0].model_copy(update={"when": "data.total > 100"}), *CART.steps[1:]]})
    # No total: comparing None with 100 fails for this customer, so step 1 is skipped and the
    # Telegram step starts at once (its successes arrive within its own 6 h).
    customer = {"recipient": {"id": "x", "email": "x@example.com", "telegram_chat_id": "7"}, "data": {}}
    result = forecast(scenario, ForecastIn.model_validate({"audience": 10, "sample": [customer]}), None,
                      prices.table(), "USD")
    assert [s.expected_sends for s in result.steps] == [0, 10, 0, 0]
    assert result.time_to_success_s.p50 == 3 * 3600


def test_percentiles_of_overlapping_intervals_and_points() -> None:
    # Two customers' timelines: one reacts within [0, 100], the other within [50, 150].
    assert percentile([(0, 100, 1.0), (50, 150, 1.0)], 0.5) == 75
    assert percentile([(0, 100, 1.0), (50, 150, 1.0)], 0.25) == 50
    assert percentile([(10, 10, 1.0), (0, 100, 1.0)], 0.5) == 10  # half the weight at 10 at once
    assert percentile([(10, 10, 1.0)], 0.9) == 10


@pytest.mark.parametrize(("value", "currency", "rounded"), [
    (157.60000000000002, "USD", 157.6), (0.125, "USD", 0.13), (0.0001, "USD", 0.0), (1234.5, "JPY", 1235.0),
    (1.2345, "KWD", 1.235), (12.345, "KZT", 12.35)])
def test_money_is_rounded_to_the_currencys_minor_unit(value: float, currency: str, rounded: float) -> None:
    assert prices.round_money(value, currency) == rounded


def test_forecast_costs_carry_no_float_noise() -> None:
    # 10 000 × 0.0001 + 4 000 × 0.0079 + 2 500 × 0.05 is 157.60000000000002 in floats.
    assert cart(10000).cost == 157.6
    # The yen has no minor unit: 300 + 3 080 + 12.5 is 3 393 yen (half up), the call step 13.
    in_yen = forecast(CART, ForecastIn(audience=1000), None, prices.table('{"email": 0.3, "sms": 7.7}'), "JPY")
    assert [s.cost for s in in_yen.steps] == [300, 0, 3080, 13] and in_yen.cost == 3393


def test_the_recent_cascades_are_read_by_key_and_index_at_most_200_never_scanned() -> None:
    """Days with cascades come from the scenario's daily counters; then the newest cascades from
    the ByScenarioDay index (the table as template.yaml declares it) and their items by key."""
    import json
    from datetime import UTC, datetime, timedelta

    import boto3
    from moto import mock_aws

    from cascade.forecast import HISTORY_CASCADES, recent_customers
    from cascade.local.template import load
    from cascade.store import CascadeStore

    props = load()["Resources"]["CascadeTable"]["Properties"]
    today = datetime.now(UTC).date()
    days = {today: 150, today - timedelta(days=3): 100, today - timedelta(days=40): 5}
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST", **{
            k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")})
        store = CascadeStore("t", db)
        for day, many in days.items():
            store._put({"pk": "AGG#df", "sk": f"D#{day.isoformat()}", "cascades": many})
            for n in range(many):
                at, cid = f"{day.isoformat()}T10:{n // 60:02d}:{n % 60:02d}Z", f"c_{day:%m%d}_{n:03d}"
                store._put({"pk": f"C#{cid}", "sk": "C", "cascade_id": cid, "status": "running", "created_at": at,
                            "sd": f"df#{day.isoformat()}", "sdk": f"C#{at}#{cid}", "event_type": "delivery.failed",
                            "recipient": {"id": cid, "phone": "+14155550100"}, "scenario_json": "{}",
                            "data_json": json.dumps({"order_id": cid, "priority": "vip" if n % 2 else "normal"})})
        calls: list[str] = []
        db.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
        found = recent_customers("df", store)
    assert len(found) == HISTORY_CASCADES == 200
    # All 150 of today, then the newest 50 of three days ago; none of 40 days ago.
    ids = {c["recipient"]["id"] for c in found}
    assert sum(i.startswith(f"c_{today:%m%d}") for i in ids) == 150
    earlier = today - timedelta(days=3)
    assert {i for i in ids if not i.startswith(f"c_{today:%m%d}")} == {f"c_{earlier:%m%d}_{n:03d}" for n in range(50, 100)}
    assert {c["data"]["order_id"] for c in found} == ids and {c["event_type"] for c in found} == {"delivery.failed"}
    # The counters: one query per shard and one for the unsharded item of before; one index query
    # per day looked at (today, yesterday, three days ago), two batches of keys: no Scan, and
    # nothing read past the 200.
    assert sorted(calls) == ["BatchGetItem"] * 2 + ["Query"] * (1 + store.counter_shards + 3), calls
