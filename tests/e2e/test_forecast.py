"""POST /v1/scenarios/{id}/forecast on the local stack: the articles' arithmetic for the cart
cascade (85 % reach vs 20 % for email alone, and its cost), bad input named, unknown scenarios
404, and a scenario's own history replacing the default rates once real cascades have run."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Api, long_waits, wait_for

pytestmark = pytest.mark.stack

# The default USD list prices (cascade.prices): email, Telegram, one SMS part, a robot call.
EMAIL, TELEGRAM, SMS, VOICE = 0.0001, 0.0, 0.0079, 0.05
CONTRACT = {"audience", "reach", "successes", "cost", "currency", "steps", "time_to_success_s", "single_channel",
            "rates", "rates_source", "samples", "condition_source", "condition_customers"}
# Someone reachable on every channel: each step goes out on its own channel.
EVERYWHERE = {"recipient": {"id": "everywhere", "email": "e@example.com", "phone": "+14155550100",
                            "telegram_chat_id": "100", "whatsapp": "+14155550100", "viber_id": "v100",
                            "push_token": "token-0123456789"}}


def save(api: Api, saved: list[str], scenario_id: str, body: dict[str, Any]) -> None:
    resp = api.http.put(f"/v1/scenarios/{scenario_id}", json=body)
    assert resp.status_code == 201, resp.text
    saved.append(scenario_id)


def forecast(api: Api, scenario_id: str, body: Any) -> httpx.Response:
    return api.http.post(f"/v1/scenarios/{scenario_id}/forecast", json=body)


def test_a_cart_cascade_without_history_forecasts_the_articles_85_percent_and_its_cost(api: Api,
                                                                                       saved: list[str]) -> None:
    # A copy of the cart preset under a new id has no history of its own: the articles' rates apply.
    cart = api.http.get("/v1/scenarios/abandoned-cart").json()
    for key in ("version", "source", "id"):
        cart.pop(key)
    scenario_id = f"cart-{uuid.uuid4().hex[:8]}"
    save(api, saved, scenario_id, {**cart, "trigger": f"cart_{uuid.uuid4().hex[:8]}.abandoned"})
    resp = forecast(api, scenario_id, {"audience": 10000})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == CONTRACT
    assert body["reach"] == pytest.approx(0.85, abs=0.001) and body["successes"] == pytest.approx(8500)
    assert body["single_channel"] == {"channel": "email", "reach": pytest.approx(0.20), "cost": pytest.approx(1.0)}
    assert [(s["index"], s["channel"], s["expected_sends"], s["expected_successes"]) for s in body["steps"]] == [
        (0, "email", 10000, 2000), (1, "telegram", 8000, 4000), (2, "sms", 4000, 1500), (3, "voice", 2500, 1000)]
    assert body["cost"] == pytest.approx(10000 * EMAIL + 8000 * TELEGRAM + 4000 * SMS + 2500 * VOICE)
    assert body["currency"] == "USD"
    assert (body["rates_source"], body["rates"]) == ("default", {"email": 0.2, "telegram": 0.5, "sms": 0.375,
                                                                 "voice": 0.4})
    assert body["samples"] == {"email": 0, "telegram": 0, "sms": 0, "voice": 0}
    assert (body["condition_source"], body["condition_customers"]) == ("none", 0)  # no cascades of its own yet
    # Half the reactions have come by 27 h 22 m (in the Telegram step), 90 % by 35 h 36 m (the call).
    assert body["time_to_success_s"] == {"p50": 98550, "p90": 128160}
    # The preset itself, whatever history the suite gave it, forecasts the same on the same rates
    # for customers reachable on every step's own channel.
    given = forecast(api, "abandoned-cart", {"audience": 10000, "rates": body["rates"], "sample": [EVERYWHERE]})
    assert given.status_code == 200, given.text
    assert (given.json()["reach"], given.json()["cost"], given.json()["rates_source"]) == (
        body["reach"], body["cost"], "given")


@pytest.mark.parametrize(("body", "field"), [
    ({"audience": 0}, "audience"),
    ({"audience": 10**9 + 1}, "audience"),
    ({"audience": "1000"}, "audience"),
    ({}, "audience"),
    ({"audience": 100, "rates": {"sms": 1.5}}, "rates.sms"),
    ({"audience": 100, "rates": {"pigeon": 0.5}}, "rates.pigeon"),
    ({"audience": 100, "min_sample": 0}, "min_sample"),
    ({"audience": 100, "sample": []}, "sample"),
    ({"audience": 100, "sample": [{"recipient": {"id": "a"}}] * 1001}, "sample"),
    ({"audience": 100, "sample": [{"recipient": {"id": "a", "phone": "+14155550100"}, "data": "vip"}]},
     "sample.0.data"),
    ({"audience": 100, "sample": [{"recipient": {"id": "a", "email": "not-an-address"}}]},
     "sample.0.recipient.email"),
    ({"audience": 100, "sample": [{"customer": {"id": "a"}}]}, "sample.0.customer"),
])
def test_bad_input_is_a_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    resp = forecast(api, "abandoned-cart", body)
    assert resp.status_code == 422, resp.text
    fields = [d["field"] for d in resp.json()["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


def test_an_unknown_scenario_is_a_404(api: Api) -> None:
    resp = forecast(api, "no-such-scenario", {"audience": 100})
    assert resp.status_code == 404
    assert "no-such-scenario" in resp.json()["error"]


def _email_then_sms(tag: str) -> dict[str, Any]:
    return {
        "name": "Forecast history", "trigger": f"fc_{tag}.started", "correlation": "ref", "quiet_hours": None,
        "success": ["read", "replied"],
        # Two days (12 s here) for the email: time enough to start 20 cascades before any escalates.
        "steps": [{"channel": "email", "wait": "2d",
                   "template": {"ru": {"subject": "Заказ {{ data.ref }}", "text": "Ваш заказ {{ data.ref }}."},
                                "en": {"subject": "Order {{ data.ref }}", "text": "Your order {{ data.ref }}."}}},
                  {"channel": "sms", "wait": "1d",
                   "template": {"ru": "Заказ {{ data.ref }}: ответьте ДА.", "en": "Order {{ data.ref }}: reply YES."}}],
    }


def test_with_history_the_forecast_switches_to_the_observed_rates(api: Api, saved: list[str]) -> None:
    tag = uuid.uuid4().hex[:8]
    scenario_id = f"fc-{tag}"
    save(api, saved, scenario_id, _email_then_sms(tag))
    assert forecast(api, scenario_id, {"audience": 100}).json()["rates_source"] == "default"
    # 20 customers: 5 open the email; of the 15 who then get the SMS, 6 reply.
    cascades = []
    for n in range(20):
        cascades.append(api.start({"type": f"fc_{tag}.started", "idempotency_key": f"fc-{tag}-{n}",
                                   "recipient": {"id": f"fc-{tag}-{n}", "locale": "en", "email": f"c{n}@example.com",
                                                 "phone": f"+1415555{n:04d}"},
                                   "data": {"ref": f"{tag}-{n}"}}))
        if n < 5:
            email = wait_for("the email", lambda cid=cascades[-1]: api.outbox(cid))[0]
            assert api.simulate(email["provider_message_id"], "read").status_code == 200
    for cascade_id in cascades[5:11]:
        sms = wait_for("the SMS", lambda cid=cascade_id: [m for m in api.outbox(cid) if m["channel"] == "sms"])[0]
        assert api.simulate(sms["provider_message_id"], "replied", text="YES").status_code == 200
    wait_for("every cascade to end", lambda: all(api.cascade(c)["status"] != "running" for c in cascades),
             timeout=60)
    statuses = [api.cascade(c)["status"] for c in cascades]
    assert statuses.count("succeeded") == 11 and statuses.count("exhausted") == 9

    # Email has 20 sends (>= 20, MIN_SAMPLE): observed 5/20; SMS has 15, too few: its default stays.
    def mixed() -> dict[str, Any] | None:
        body = dict(forecast(api, scenario_id, {"audience": 100}).json())
        return body if body["samples"] == {"email": 20, "sms": 0} else None

    body = wait_for("the aggregator to count the sends", mixed, timeout=60, every=0.3)
    assert (body["rates_source"], body["rates"]) == ("mixed", {"email": 0.25, "sms": 0.375})
    assert [s["expected_sends"] for s in body["steps"]] == [100, 75]
    # Asked to trust 15 sends, the SMS rate is observed too: 6 replies of 15.
    body = forecast(api, scenario_id, {"audience": 100, "min_sample": 15}).json()
    assert (body["rates_source"], body["samples"]) == ("observed", {"email": 20, "sms": 15})
    assert body["rates"] == {"email": 0.25, "sms": 0.4}
    assert body["reach"] == pytest.approx(1 - 0.75 * 0.6)
    # Given rates still win.
    assert forecast(api, scenario_id, {"audience": 100, "rates": {"email": 0.5, "sms": 0.5}}).json()[
        "rates_source"] == "given"


# ---- who gets which step: delivery-failed calls an operator for VIP orders only ----------------

def _order(n: int, tag: str, **data: Any) -> dict[str, Any]:
    return {"recipient": {"id": f"fc-{tag}-{n}", "locale": "en", "phone": f"+1415556{n:04d}"},
            "data": {"order_id": f"{tag}-{n}", "reschedule_url": "https://shop.example/reschedule", **data}}


def test_ordinary_orders_are_not_billed_the_vip_operator_call(api: Api) -> None:
    tag = uuid.uuid4().hex[:8]
    ordinary = [_order(n, tag) for n in range(5)]
    # The preset's default SMS rate, whatever other tests' cascades made of its history.
    resp = forecast(api, "delivery-failed", {"audience": 1000, "rates": {"sms": 0.375}, "sample": ordinary})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["condition_source"], body["condition_customers"]) == ("sample", 5)
    operator = body["steps"][3]
    assert (operator["channel"], operator["expected_sends"], operator["expected_successes"], operator["cost"],
            operator["applies"], operator["channels"]) == ("operator", 0, 0, 0, 0, {})
    assert [s["expected_sends"] for s in body["steps"][:3]] == [1000, 625, 390.625]
    # Only the three SMS are paid for, in whole cents.
    assert body["cost"] == round((1000 + 625 + 390.625) * SMS, 2) == 15.92
    # One VIP order in four: the operator calls a quarter of those still silent after three SMS.
    vip = forecast(api, "delivery-failed", {"audience": 1000, "rates": {"sms": 0.375, "operator": 0.7},
                                            "sample": [*ordinary[:3], _order(9, tag, priority="vip")]}).json()
    assert vip["steps"][3]["applies"] == 0.25
    assert vip["steps"][3]["expected_sends"] == pytest.approx(0.25 * 390.625 * 0.625, abs=0.001)
    assert vip["steps"][3]["cost"] == round(0.25 * 390.625 * 0.625 * 0.5, 2) == 30.52


def test_without_a_sample_the_scenarios_recent_cascades_decide_who_gets_a_step(api: Api, saved: list[str]) -> None:
    # A copy of delivery-failed whose first SMS waits long: its cascades stay at step 1 meanwhile.
    trigger = long_waits(api, saved, "delivery-failed", 0)
    scenario_id = saved[-1]
    tag = uuid.uuid4().hex[:8]
    assert forecast(api, scenario_id, {"audience": 100}).json()["condition_source"] == "none"
    # Its last cascades: one VIP order in four.
    cascades = [api.start({"type": trigger, "idempotency_key": f"fc-{tag}-{n}", **order})
                for n, order in enumerate([_order(0, tag, priority="vip"), *(_order(n, tag) for n in range(1, 4))])]
    try:
        body = forecast(api, scenario_id, {"audience": 100}).json()
        assert (body["condition_source"], body["condition_customers"]) == ("history", 4)
        assert body["steps"][3]["applies"] == 0.25
        assert body["steps"][3]["expected_sends"] == pytest.approx(0.25 * 100 * 0.625 ** 3, abs=0.001)
        # A sample wins over the history: ordinary orders only, no operator.
        body = forecast(api, scenario_id, {"audience": 100, "sample": [_order(7, tag)]}).json()
        assert (body["condition_source"], body["steps"][3]["expected_sends"]) == ("sample", 0)
    finally:
        for cascade_id in cascades:
            api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_alternatives_forecast_the_channel_each_customer_is_reached_on(api: Api) -> None:
    # The cart's step 2: Telegram, or WhatsApp (a paid template) for customers without a chat.
    telegram = {"recipient": {"id": "t", "email": "t@example.com", "telegram_chat_id": "42"}}
    whatsapp = {"recipient": {"id": "w", "email": "w@example.com", "whatsapp": "+14155550101"}}
    body = forecast(api, "abandoned-cart", {"audience": 1000, "rates": {"email": 0.2, "telegram": 0.5,
                                                                        "whatsapp": 0.5, "sms": 0.375, "voice": 0.4},
                                            "sample": [telegram, whatsapp]}).json()
    step = body["steps"][1]
    assert (step["channel"], step["expected_sends"], step["channels"]) == (
        "telegram", 800, {"telegram": 400, "whatsapp": 400})
    assert step["cost"] == round(400 * 0.0147, 2) == 5.88
    # Neither has a phone: no SMS and no call, so nothing after step 2 is sent or paid for.
    assert [(s["expected_sends"], s["cost"], s["applies"]) for s in body["steps"][2:]] == [(0, 0, 0), (0, 0, 0)]
    assert body["reach"] == pytest.approx(0.6)


def test_the_api_document_describes_the_sample_and_the_condition_source(api: Api) -> None:
    doc = httpx.get(f"{api.base}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    sample = schemas["ForecastIn"]["properties"]["sample"]
    assert any(s.get("maxItems") == 1000 and s.get("minItems") == 1 for s in sample.get("anyOf", [sample])), sample
    assert set(schemas["SampleCustomer"]["properties"]) == {"recipient", "data"}
    assert schemas["ForecastView"]["properties"]["condition_source"]["enum"] == ["sample", "history", "none"]
    assert {"applies", "channels"} <= set(schemas["ForecastStep"]["properties"])
