"""POST /v1/scenarios/{id}/forecast on the local stack: the articles' arithmetic for the cart
cascade (85 % reach vs 20 % for email alone, and its cost), bad input named, unknown scenarios
404, and a scenario's own history replacing the default rates once real cascades have run."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

# The default USD list prices (cascade.prices): email, Telegram, one SMS part, a robot call.
EMAIL, TELEGRAM, SMS, VOICE = 0.0001, 0.0, 0.0079, 0.05
CONTRACT = {"audience", "reach", "successes", "cost", "currency", "steps", "time_to_success_s", "single_channel",
            "rates", "rates_source", "samples"}


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
    # Half the reactions have come by 27 h 22 m (in the Telegram step), 90 % by 35 h 36 m (the call).
    assert body["time_to_success_s"] == {"p50": 98550, "p90": 128160}
    # The preset itself, whatever history the suite gave it, forecasts the same on the same rates.
    given = forecast(api, "abandoned-cart", {"audience": 10000, "rates": body["rates"]}).json()
    assert (given["reach"], given["cost"], given["rates_source"]) == (body["reach"], body["cost"], "given")


@pytest.mark.parametrize(("body", "field"), [
    ({"audience": 0}, "audience"),
    ({"audience": 10**9 + 1}, "audience"),
    ({"audience": "1000"}, "audience"),
    ({}, "audience"),
    ({"audience": 100, "rates": {"sms": 1.5}}, "rates.sms"),
    ({"audience": 100, "rates": {"pigeon": 0.5}}, "rates.pigeon"),
    ({"audience": 100, "min_sample": 0}, "min_sample"),
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
