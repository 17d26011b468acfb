"""What one message costs per channel, for previews and reports: an estimate, not an invoice.

Defaults are list prices in USD for a US-like destination (change them per deployment with the
``PricesJson`` parameter, e.g. ``{"sms": 0.045, "voice": 0.12}`` for Kazakhstan, and the currency
with ``PriceCurrency``):

==========  =========  ================================================================
channel     default    what it is
==========  =========  ================================================================
email       0.0001     SES: $0.10 per 1,000 emails
sms         0.0079     SNS transactional SMS to the US, per part (each part is billed)
whatsapp    0.0147     Cloud API, one conversation-opening template, between a utility
                       (~0.004) and a marketing (~0.025) template; replies within the
                       24 h window are free, so this is the cost of reaching out
viber       0.01       a business message (session rates vary by country)
telegram    0          the Bot API is free
push        0.000001   SNS mobile push: $0.50 per million
voice       0.05       a short robot call (about a minute)
operator    0.50       a person's call: a task in the call centre
==========  =========  ================================================================
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

DEFAULT_PRICES: dict[str, float] = {
    "email": 0.0001,
    "sms": 0.0079,
    "whatsapp": 0.0147,
    "viber": 0.01,
    "telegram": 0.0,
    "push": 0.000001,
    "voice": 0.05,
    "operator": 0.50,
}
DEFAULT_CURRENCY = "USD"


def parse_overrides(raw: str) -> dict[str, float]:
    """``PRICES_JSON``: a JSON object of channel → price per message (per part for SMS), merged
    over the defaults. Raises ValueError naming what is wrong (settings refuse a bad value)."""
    if not raw.strip():
        return {}
    try:
        given: Any = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"PRICES_JSON is not JSON: {exc}") from None
    if not isinstance(given, dict):
        raise ValueError('PRICES_JSON must be an object like {"sms": 0.045}')
    prices: dict[str, float] = {}
    for name, price in given.items():
        if name not in DEFAULT_PRICES:
            raise ValueError(f"PRICES_JSON: {name!r} is not a channel ({', '.join(DEFAULT_PRICES)})")
        if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
            raise ValueError(f"PRICES_JSON: the price of {name} must be a number >= 0")
        prices[name] = float(price)
    return prices


def table(raw: str = "") -> dict[str, float]:
    """The price per message of every channel: the defaults with ``raw`` (PRICES_JSON) over them."""
    return {**DEFAULT_PRICES, **parse_overrides(raw)}


@cache
def _configured() -> tuple[dict[str, float], str]:
    from cascade.settings import settings

    cfg = settings()
    return table(cfg.prices_json), cfg.price_currency


def prices() -> dict[str, float]:
    """This deployment's price table (defaults with PRICES_JSON over them)."""
    return dict(_configured()[0])


def currency() -> str:
    """The currency prices are in (PRICE_CURRENCY, default USD)."""
    return _configured()[1]


def cost(channel: str, sms_parts: int | None = None, price_table: dict[str, float] | None = None) -> float:
    """The estimated cost of one message on ``channel``; an SMS costs its price times its parts
    (one part when not given). ``price_table`` defaults to this deployment's prices."""
    price = (price_table if price_table is not None else _configured()[0])[channel]
    if channel == "sms":
        price *= 1 if sms_parts is None else sms_parts
    return round(price, 8)


def round_money(value: float, currency_code: str) -> float:
    """``value`` rounded half up to the minor unit of ``currency_code`` (Babel's CLDR data: 2 digits
    for USD and KZT, 0 for JPY, 3 for KWD; 2 for a code it does not know), in decimal so that
    float noise (157.60000000000002) goes and 0.125 becomes 0.13."""
    from decimal import ROUND_HALF_UP, Context, Decimal

    from babel.numbers import get_currency_precision

    unit = Decimal(1).scaleb(-get_currency_precision(currency_code))
    # Enough digits for any float (a price table may hold anything): never an InvalidOperation.
    return float(Decimal(repr(value)).quantize(unit, ROUND_HALF_UP, Context(prec=400)))


__all__ = ["DEFAULT_CURRENCY", "DEFAULT_PRICES", "cost", "currency", "parse_overrides", "prices", "round_money",
           "table"]
