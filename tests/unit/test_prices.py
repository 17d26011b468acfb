"""The price table behind previews and reports: documented defaults, overridable per deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from cascade import prices
from cascade.settings import Settings, settings


def test_defaults_cover_every_channel_at_list_prices() -> None:
    from cascade.scenarios import CHANNELS

    assert set(prices.DEFAULT_PRICES) == set(CHANNELS)
    table = prices.table()
    assert table["email"] == 0.0001 and table["telegram"] == 0.0 and table["push"] == 0.000001
    assert (table["sms"], table["whatsapp"], table["viber"]) == (0.0079, 0.0147, 0.01)
    assert (table["voice"], table["operator"]) == (0.05, 0.50)


def test_an_sms_costs_its_price_per_part() -> None:
    table = prices.table()
    assert prices.cost("sms", 3, table) == pytest.approx(0.0237)
    assert prices.cost("sms", None, table) == 0.0079  # one part when not said
    assert prices.cost("voice", 3, table) == 0.05  # parts mean nothing for a call
    assert prices.cost("telegram", None, table) == 0.0


def test_prices_json_overrides_some_channels_and_keeps_the_rest() -> None:
    table = prices.table('{"sms": 0.045, "voice": 0.12}')
    assert table["sms"] == 0.045 and table["voice"] == 0.12 and table["email"] == 0.0001
    assert prices.cost("sms", 2, table) == 0.09


@pytest.mark.parametrize(("raw", "message"), [
    ("{sms: 1}", "not JSON"),
    ("[1, 2]", "must be an object"),
    ('{"fax": 0.1}', "'fax' is not a channel"),
    ('{"sms": -1}', "must be a number >= 0"),
    ('{"sms": "cheap"}', "must be a number >= 0"),
    ('{"sms": true}', "must be a number >= 0"),
])
def test_a_bad_price_table_is_refused_at_start_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.model_validate({"TABLE_NAME": "t", "PRICES_JSON": raw})


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TABLE_NAME", "unit")
    monkeypatch.setenv("PRICES_JSON", json.dumps({"sms": 0.03}))
    monkeypatch.setenv("PRICE_CURRENCY", "EUR")
    settings.cache_clear()
    prices._configured.cache_clear()
    yield
    monkeypatch.undo()
    settings.cache_clear()
    prices._configured.cache_clear()


def test_the_deployment_prices_and_currency_come_from_its_settings(configured: None) -> None:
    assert prices.currency() == "EUR"
    assert prices.prices()["sms"] == 0.03 and prices.prices()["email"] == 0.0001
    assert prices.cost("sms", 2) == 0.06


def test_without_settings_the_currency_is_usd() -> None:
    assert Settings.model_validate({"TABLE_NAME": "t"}).price_currency == "USD"
    assert Settings.model_validate({"TABLE_NAME": "t"}).prices_json == ""
