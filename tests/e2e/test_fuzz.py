"""Whatever is posted, the answer is never a 5xx: odd JSON and near-valid events alike get a
4xx naming what is wrong (or a 202 when they happen to be valid)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api

pytestmark = pytest.mark.stack

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
odd = st.one_of(st.none(), st.integers(), st.text(max_size=30), st.lists(st.integers(), max_size=3),
                st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.booleans())
near_valid = st.fixed_dictionaries(
    {"type": st.sampled_from(["delivery.failed", "cart.abandoned", "order.placed", "x.y"]) | odd,
     "recipient": st.fixed_dictionaries(
         {"id": st.text(max_size=10) | odd},
         optional={"phone": st.sampled_from(["+77011234567", "+1", "12345", ""]) | odd,
                   "email": st.sampled_from(["a@b.co", "nope", ""]) | odd,
                   "telegram_chat_id": st.sampled_from(["123", "-100", "abc"]) | odd,
                   "locale": st.sampled_from(["ru", "en", "english"]) | odd,
                   "timezone": st.sampled_from(["Europe/Moscow", "Nowhere/City"]) | odd}) | odd,
     "data": st.fixed_dictionaries({}, optional={"order_id": odd, "cart_id": odd,
                                                 "reschedule_url": st.just("https://x.test/r") | odd,
                                                 "cart_url": st.just("https://x.test/c") | odd}) | odd},
    optional={"idempotency_key": st.text(max_size=8) | odd, "scenario": st.sampled_from(["abandoned-cart"]) | odd},
)


def _check(api: Api, body: bytes) -> None:
    resp = api.http.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert resp.status_code in (202, 400, 409, 413, 422), (resp.status_code, resp.text, body[:300])
    answer: dict[str, Any] = resp.json()
    if resp.status_code == 202:
        if "cascade_id" in answer:  # a valid event slipped through: don't let it run on
            api.http.post(f"/v1/cascades/{answer['cascade_id']}/cancel")
    else:
        assert answer["error"]
        if resp.status_code == 422:
            assert all(d["field"] and d["message"] for d in answer["details"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_any_json_gets_a_4xx_or_202(api: Api, body: Any) -> None:
    _check(api, json.dumps(body).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=near_valid)
def test_near_valid_events_get_a_4xx_or_202(api: Api, event: dict[str, Any]) -> None:
    _check(api, json.dumps(event).encode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_get_a_4xx(api: Api, raw: bytes) -> None:
    _check(api, raw)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(update=json_values | st.fixed_dictionaries(
    {"update_id": st.integers() | odd},
    optional={"callback_query": st.fixed_dictionaries({"id": st.text(max_size=5) | odd}, optional={
                  "data": st.sampled_from(["sig:read", "sig:x", ""]) | odd,
                  "message": st.fixed_dictionaries({"message_id": st.integers() | odd},
                                                   optional={"chat": st.fixed_dictionaries({"id": odd})}) | odd}) | odd,
              "message": st.fixed_dictionaries({"message_id": st.integers() | odd},
                                               optional={"text": odd, "chat": odd, "reply_to_message": odd}) | odd}))
def test_odd_telegram_updates_with_the_right_secret_get_a_4xx_or_200(api: Api, stack: Any, update: Any) -> None:
    resp = api.http.post("/webhooks/telegram", json=update,
                         headers={"X-Telegram-Bot-Api-Secret-Token": stack.telegram.secret_token})
    assert resp.status_code in (200, 400, 422), (resp.status_code, resp.text, update)


nasty_values = st.recursive(
    st.floats() | st.integers() | st.text(st.characters(categories=("Cs", "Ll", "Nd")), max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=nasty_values)
def test_nan_infinity_and_lone_surrogates_in_data_are_never_a_5xx_nor_stored(api: Api, value: Any) -> None:
    body = {"type": "delivery.failed", "recipient": {"id": "fuzz-nasty", "phone": "+77011234567"},
            "data": {"order_id": "o-1", "reschedule_url": "https://x.test/r", "extra": value}}
    text = json.dumps(body, allow_nan=True).encode()  # NaN, Infinity and "\ud83d" as some clients write them
    resp = api.http.post("/v1/events", content=text, headers={"content-type": "application/json"})
    assert resp.status_code in (202, 400, 409, 422), (resp.status_code, resp.text, text[:300])
    constants: list[str] = []
    json.loads(text, parse_constant=constants.append)
    if constants:  # NaN or ±Infinity somewhere
        assert resp.status_code == 400 and "JSON number" in resp.json()["error"], resp.text
    if resp.status_code == 400:
        assert resp.json()["error"].startswith("body is not valid JSON")
    if resp.status_code == 202 and "cascade_id" in resp.json():  # a valid event: don't let it run on
        api.http.post(f"/v1/cascades/{resp.json()['cascade_id']}/cancel")
