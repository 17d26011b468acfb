"""The checks at the edges, one by one: the strict JSON parser, and where a CRM webhook may go
(at registration, and again at delivery, since DNS can change)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cascade import http, outbound
from cascade.channels import crm
from cascade.errors import FieldError
from cascade.local.crm import CrmStandIn

SECRET = "unit-crm-secret-0123456789"


# -- the JSON parser ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "word"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (b"[" * (http.MAX_DEPTH + 1) + b"]" * (http.MAX_DEPTH + 1), "nested"),
    (b'{"a": {"b": "x\\ud83d"}}', "a.b holds a lone UTF-16 surrogate"),
    (b'{"\\udc00": 1}', "surrogate"),
    (b'[NaN]', "NaN"), (b'{"n": Infinity}', "Infinity"), (b'{"n": -Infinity}', "-Infinity"),
    (b'{"n": 1e400}', "too large"), (b'{"n": -1e400}', "too large"),
    (b"\xff\xfe{}", "UTF-8"), (b"a=1&b=2", "not valid JSON"), (b"1" * 5000, "not valid JSON"),
])
def test_the_parser_refuses_what_is_not_strict_json_with_a_sentence(body: bytes, word: str) -> None:
    with pytest.raises(http.HttpError) as caught:
        http.loads(body)
    assert caught.value.status == 400
    assert word in caught.value.body["error"]
    assert caught.value.body["details"]
    http.respond(400, caught.value.body)["body"].encode("utf-8")  # the answer itself encodes


def test_the_parser_takes_ordinary_json() -> None:
    text = '{"a": [1, 2.5, -3e10, null, true], "b": "Анна 😀 \\ud83d\\ude00", "c": {"d": []}}'
    assert http.loads(text.encode()) == {"a": [1, 2.5, -3e10, None, True], "b": "Анна 😀 😀", "c": {"d": []}}
    nested: Any = []
    for _ in range(http.MAX_DEPTH - 1):
        nested = [nested]
    assert http.loads(str(nested).encode()) == nested


# -- where CRM webhooks may go -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "localhost",
                                  "api.localhost", "::1", "::ffff:127.0.0.1", "169.254.169.254", "0xA9FEA9FE",
                                  "2852039166", "fd00:ec2::254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                                  "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "0.0.0.0", "::",  # noqa: S104 - refused, not bound
                                  "fe80::1", "224.0.0.1", "2002:7f00:1::"])
def test_non_public_addresses_are_refused_in_every_spelling(host: str) -> None:
    assert crm.host_problem(host, allow_loopback=False) is not None


@pytest.mark.parametrize("host", ["8.8.8.8", "2606:4700:4700::1111", "crm.does-not-resolve.invalid"])
def test_public_addresses_and_unresolved_names_pass_registration(host: str) -> None:
    assert crm.host_problem(host, allow_loopback=False) is None


def test_the_local_stack_may_allow_loopback_but_never_the_metadata_service() -> None:
    assert crm.host_problem("127.0.0.1", allow_loopback=True) is None
    assert crm.host_problem("localhost", allow_loopback=True) is None
    assert crm.host_problem("169.254.169.254", allow_loopback=True) is not None
    assert crm.host_problem("fd00:ec2::254", allow_loopback=True) is not None


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The resolver's answers, per name (a DNS server we control)."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return answers


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings as on AWS: no loopback webhooks."""
    from cascade.settings import settings

    monkeypatch.setenv("TABLE_NAME", os.environ.get("TABLE_NAME", "unit"))
    monkeypatch.delenv("CASCADE_CRM_ALLOW_LOOPBACK", raising=False)
    settings.cache_clear()
    yield
    monkeypatch.undo()
    settings.cache_clear()


def test_registration_refuses_a_name_that_resolves_to_a_private_address(dns: dict[str, list[str]],
                                                                          aws: None) -> None:
    dns["crm.shop.test"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(FieldError) as caught:
        outbound.parse({"url": "https://crm.shop.test/hook", "secret": SECRET})
    assert caught.value.details[0]["field"] == "url" and "10.0.0.7" in caught.value.details[0]["message"]
    with pytest.raises(FieldError):
        outbound.parse({"url": "https://[::ffff:169.254.169.254]/hook", "secret": SECRET})
    dns["crm.shop.test"] = ["93.184.216.34"]
    assert outbound.parse({"url": "https://crm.shop.test/hook", "secret": SECRET}).url == "https://crm.shop.test/hook"


def test_delivery_refuses_a_name_that_now_resolves_to_a_private_address(dns: dict[str, list[str]],
                                                                        aws: None) -> None:
    dns["crm.shop.test"] = ["169.254.169.254"]
    sent: list[httpx.Request] = []
    client = httpx.Client(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    event = {"id": "evt_1", "type": "cascade.started"}
    assert crm.deliver(event, "https://crm.shop.test/hook", SECRET, client, sleep=lambda s: None) == "refused"
    assert sent == []  # nothing left the service


def test_delivery_connects_to_the_address_it_checked(dns: dict[str, list[str]], aws: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The name resolves before each try; the POST goes to that address with the name as Host."""
    from cascade.settings import settings

    desk = CrmStandIn(secret=SECRET)
    desk.start()
    try:
        port = desk.endpoint.split(":")[2].split("/")[0]
        url = f"http://crm.shop.test:{port}/events"
        dns["crm.shop.test"] = ["127.0.0.1"]
        target = crm.pin(url, allow_loopback=True)
        assert target.url == f"http://127.0.0.1:{port}/events" and target.headers == {"host": f"crm.shop.test:{port}"}
        assert crm.pin("https://crm.shop.test/events", allow_loopback=True).extensions == {
            "sni_hostname": "crm.shop.test"}  # TLS checks the certificate against the name
        event = {"id": "evt_2", "type": "cascade.started", "cascade_id": "c_1"}
        with httpx.Client(timeout=5) as client:
            assert crm.deliver(event, url, SECRET, client, sleep=lambda s: None) == "refused"  # loopback, on AWS
            assert desk.received() == []
            monkeypatch.setenv("CASCADE_CRM_ALLOW_LOOPBACK", "1")  # as the local stack sets it
            settings.cache_clear()
            assert crm.deliver(event, url, SECRET, client, sleep=lambda s: None) == "delivered"
        assert desk.received() == [event]
    finally:
        desk.stop()


# -- the API function's own answers for routes it does not have ------------------------------------------


def _request(method: str, path: str) -> dict[str, Any]:
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": {},
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "unit"}, "stage": "$default"},
            "isBase64Encoded": False}


def test_a_wrong_method_is_a_405_and_an_unknown_route_a_404_with_the_error_shape(aws: None) -> None:
    import json

    from cascade.api import build_app

    app = build_app()
    answer = app.resolve(_request("POST", "/dashboard"), None)
    assert answer["statusCode"] == 405 and answer["headers"]["Allow"] == "GET"
    body = json.loads(answer["body"])
    assert set(body) == {"error", "details"} and "POST" in body["error"] and body["details"] == []
    answer = app.resolve(_request("GET", "/dashboard/a/b"), None)
    assert answer["statusCode"] == 404 and json.loads(answer["body"])["details"] == []
