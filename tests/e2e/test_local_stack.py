"""The local stack itself, as a client and a developer see it: it answers many clients at once,
each for its own request and in its own function's name; it takes a burst of connections; it
answers an unknown method or route the way API Gateway does, in the API's error shape; and a
client that gives up leaves nothing in the console."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import API_KEY, Api, captured_log_lines, wait_for

pytestmark = pytest.mark.stack

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ROOT = Path(__file__).resolve().parents[2]


def _in_parallel(clients: int, jobs: list[Callable[[httpx.Client], Any]], base: str) -> list[Any]:
    """Run ``jobs`` on ``clients`` keep-alive connections at once; results in the jobs' order."""
    local = threading.local()
    made: list[httpx.Client] = []
    lock = threading.Lock()

    def run(job: Callable[[httpx.Client], Any]) -> Any:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=base, timeout=60, headers=AUTH)
            with lock:
                made.append(local.http)
        return job(local.http)

    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            return list(pool.map(run, jobs))
    finally:
        for http in made:
            http.close()


def test_parallel_clients_on_different_routes_each_get_the_answer_to_their_own_request(api: Api) -> None:
    """Telegram and Viber bind links, timelines and consent views for different recipients, all at
    once: every answer is for the route and the recipient that asked (one execution environment
    per concurrent invocation, as on Lambda)."""

    def bind(recipient: str, channel: str) -> Callable[[httpx.Client], tuple[str, str, int, str]]:
        def job(http: httpx.Client) -> tuple[str, str, int, str]:
            resp = http.post(f"/v1/recipients/{recipient}/bind/{channel}")
            return recipient, channel, resp.status_code, resp.json().get("link", "")
        return job

    def read(recipient: str, what: str) -> Callable[[httpx.Client], tuple[str, str, int, str]]:
        def job(http: httpx.Client) -> tuple[str, str, int, str]:
            resp = http.get(f"/v1/recipients/{recipient}/{what}")
            return recipient, what, resp.status_code, resp.json().get("recipient_id", "")
        return job

    def grant(recipient: str, what: str) -> Callable[[httpx.Client], tuple[str, str, int, str]]:
        def job(http: httpx.Client) -> tuple[str, str, int, str]:  # a body to validate, beside GETs with none
            resp = http.put(f"/v1/recipients/{recipient}/consent",
                            json={"channel": "sms", "purpose": "marketing", "granted": True})
            return recipient, what, resp.status_code, resp.json().get("recipient_id", "")
        return job

    run = uuid.uuid4().hex[:6]
    kinds = [lambda r: bind(r, "telegram"), lambda r: bind(r, "viber"), lambda r: read(r, "timeline"),
             lambda r: read(r, "consent"), lambda r: grant(r, "grant")]
    jobs = [kinds[i % 5](f"par-{run}-{i}") for i in range(300)]
    answers = _in_parallel(16, jobs, api.base)
    expected: dict[str, Callable[[str, str], bool]] = {
        "telegram": lambda recipient, got: got.startswith("https://t.me/"),
        "viber": lambda recipient, got: got.startswith("viber://"),
        "timeline": lambda recipient, got: got == recipient,
        "consent": lambda recipient, got: got == recipient,
        "grant": lambda recipient, got: got == recipient,
    }
    wrong = [(recipient, what, status, got) for recipient, what, status, got in answers
             if status != 200 or not expected[what](recipient, got)]
    assert wrong == []


@pytest.fixture
def log_lines() -> Iterator[list[dict[str, Any]]]:
    with captured_log_lines(logging.INFO) as lines:
        yield lines


def test_each_log_line_names_the_function_that_wrote_it(api: Api, stack: Any,
                                                        log_lines: list[dict[str, Any]]) -> None:
    """Events go in (the ingest function logs "cascade started") while their steps run (the step
    function logs each step) and bind links are handed out, all at once: each line carries the
    name of the function whose invocation wrote it."""
    run = uuid.uuid4().hex[:6]

    cascades: list[str] = []

    def post(i: int) -> Callable[[httpx.Client], int]:
        def job(http: httpx.Client) -> int:
            event = json.loads((ROOT / "events" / "delivery-failed.json").read_text(encoding="utf-8"))
            event.pop("idempotency_key")
            event["recipient"]["id"] = event["data"]["order_id"] = f"log-{run}-{i}"
            resp = http.post("/v1/events", json=event)
            if resp.status_code == 202:
                cascades.append(resp.json()["cascade_id"])
            return resp.status_code
        return job

    def bind(i: int) -> Callable[[httpx.Client], int]:
        return lambda http: http.post(f"/v1/recipients/log-{run}-{i}/bind/telegram").status_code

    jobs = [post(i) if i % 2 else bind(i) for i in range(80)]
    ingest_before = stack_environments(stack, "IngestFunction")
    assert set(_in_parallel(12, jobs, api.base)) == {200, 202}
    wait_for("the first steps' log lines",
             lambda: sum(1 for line in list(log_lines) if line.get("message") == "step sent") >= 10, timeout=60)
    ingest, step = stack.functions["IngestFunction"], stack.functions["StepFunction"]
    started = [line for line in list(log_lines) if line.get("message") == "cascade started"]
    steps = [line for line in list(log_lines) if str(line.get("message", "")).startswith("step ")]
    for cascade_id in cascades:  # done with them
        api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    assert len(started) == 40
    assert {line.get("function_name") for line in started} == {ingest}
    assert {line.get("function_name") for line in steps} == {step}
    # Each line's context is its own function's, as Lambda gives it (ARN and memory included).
    for line in started + steps:
        logical = "IngestFunction" if line["function_name"] == ingest else "StepFunction"
        assert line["function_arn"] == stack.deployed.arns[logical]
    # A cold start is each execution environment's first invocation, not the process's.
    cold = [line for line in started if line["cold_start"]]
    assert len(cold) == stack_environments(stack, "IngestFunction") - ingest_before


def stack_environments(stack: Any, logical: str) -> int:
    from cascade.local import lambdas

    return lambdas.environments().get(stack.functions[logical], 0)


def test_functions_run_by_a_stream_or_a_topic_log_in_their_own_name(
        api: Api, stack: Any, log_lines: list[dict[str, Any]]) -> None:
    """The CRM function (fed by the table's stream) and the AWS events function (subscribed to the
    inbound SMS topic) each log in their own name, ARN and memory size, not in a made-up or another's."""
    crm = stack.standin("crm")
    # A secret the CRM does not know: it refuses each event, and the CRM function says so.
    assert api.http.put("/v1/webhooks", json={"url": crm.endpoint, "secret": "not-the-crm-secret-0"}).status_code == 200
    cascade_id = "c_none"
    try:
        run = uuid.uuid4().hex[:8]
        cascade_id = api.start({"type": "delivery.failed", "recipient": {"id": f"log-{run}", "phone": "+77011234567"},
                                "data": {"order_id": run, "reschedule_url": "https://shop.test/r"}})
        sms = wait_for("the SMS", lambda: next((m for m in api.outbox(cascade_id) if m["channel"] == "sms"), None))
        assert api.simulate(sms["provider_message_id"], "replied", text="OK").status_code == 200
        wait_for("the CRM function's line", lambda: any(
            line.get("message") == "crm refused the event: dropped" and line.get("cascade_id") == cascade_id
            for line in list(log_lines)), timeout=60)
    finally:
        assert api.http.delete("/v1/webhooks").status_code == 204
        api.http.post(f"/v1/cascades/{cascade_id}/cancel")
        assert api.http.delete("/local/crm").status_code in (200, 204)  # forget what it refused
    lines = list(log_lines)
    refused = [line for line in lines if line.get("message") == "crm refused the event: dropped"]
    signal = [line for line in lines if line.get("message") == "signal" and line.get("cascade_id") == cascade_id]
    outbound, events = stack.functions["OutboundFunction"], stack.functions["AwsEventsFunction"]
    assert refused and {(line["function_name"], line["function_arn"], line["function_memory_size"])
                        for line in refused} == {(outbound, stack.deployed.arns["OutboundFunction"], 256)}
    assert [(line["function_name"], line["function_arn"]) for line in signal] == [
        (events, stack.deployed.arns["AwsEventsFunction"])]


@pytest.mark.parametrize(("port", "expected"), [
    ("taken", "port {port} is in use: set PORT={next} make run"),
    ("3x", "PORT=3x is not a port number: set PORT=3000 make run"),
])
def test_a_busy_or_bad_port_is_one_line_that_names_port(port: str, expected: str) -> None:
    """`make run` on a port another program holds: one line that says which and what to set, a
    non-zero exit, no traceback (and nothing started)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = taken.getsockname()[1]
        value = str(number) if port == "taken" else port
        done = subprocess.run([sys.executable, "-m", "cascade.local"], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PORT": value}, timeout=120, check=False)
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.splitlines() == [expected.format(port=number, next=number + 1)]


def test_a_burst_of_new_connections_is_accepted_and_answered(api: Api) -> None:
    """192 clients (32 clients' worth of new connections, six each) connect at the same instant: each
    is accepted at once and answered; none is reset or left waiting for its connection."""
    gate = threading.Barrier(192, timeout=60)
    failures: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()
    # The kernel completes a connection that the listen queue has room for at once, however busy
    # the machine; one it has no room for waits for the client's SYN to be sent again (1 s, 3 s...).
    timeout = httpx.Timeout(60, connect=2.5)

    def client() -> None:
        gate.wait()
        try:
            with httpx.Client(base_url=api.base, timeout=timeout, headers=AUTH) as http:  # a new connection
                status = http.get("/v1/no-such-route").status_code
        except httpx.HTTPError as exc:
            with lock:
                failures.append(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(192)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert failures == []
    assert statuses == [404] * 192


@pytest.mark.parametrize(("method", "path", "status", "field"), [
    ("OPTIONS", "/v1/events", 405, "method"),
    ("DELETE", "/v1/events", 405, "method"),
    ("BREW", "/v1/cascades/c_1", 405, "method"),
    ("GET", "/v1/no-such-route", 404, "path"),
    ("POST", "/nowhere", 404, "path"),
    ("PROPFIND", "/nowhere", 404, "path"),
])
def test_an_unknown_method_or_route_is_a_json_404_or_405_in_the_api_error_shape(
        api: Api, method: str, path: str, status: int, field: str) -> None:
    resp = api.http.request(method, path)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body["error"], str) and body["error"]
    assert [d["field"] for d in body["details"]] == [field]
    if status == 405:
        assert resp.headers["allow"]


def test_head_on_a_route_that_does_not_take_it_is_a_405_without_a_body(api: Api) -> None:
    resp = api.http.head("/v1/events")
    assert resp.status_code == 405
    assert resp.content == b""
    assert "POST" in resp.headers["allow"]


def _request_then_hang_up(base: str, request: bytes) -> None:
    """Send ``request`` and close at once with a reset (SO_LINGER 0): the answer has nowhere to go."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.sendall(request)
    sock.close()


def _gateway_threads(stack: Any) -> set[threading.Thread]:
    """The gateway's threads that are serving a connection now."""
    return {t for t in threading.enumerate()
            if getattr(getattr(t, "_target", None), "__self__", None) is stack.gateway.httpd}


def test_a_client_that_gives_up_leaves_no_traceback_in_the_console(
        api: Api, stack: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    host = urlsplit(api.base).netloc
    before = _gateway_threads(stack)
    # Gone before reading its answer (the answer is written to a reset connection).
    for _ in range(3):
        _request_then_hang_up(api.base, (f"GET /v1/cascades/c_000000000000000000000000 HTTP/1.1\r\nHost: {host}\r\n"
                                         f"Authorization: Bearer {API_KEY}\r\n\r\n").encode())
    # Gone mid-request: 10 of the 1,000 bytes announced.
    for _ in range(3):
        _request_then_hang_up(api.base, (f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n"
                                         f"Authorization: Bearer {API_KEY}\r\n\r\n" + "x" * 10).encode())
    wait_for("the server to be done with those connections",
             lambda: not _gateway_threads(stack) - before,
             timeout=60)
    assert api.http.get("/v1/cascades/c_000000000000000000000000").status_code == 404  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "Exception occurred during processing" not in err
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("cascade")] == []


def test_the_stacks_own_aws_services_wait_longer_than_a_provider(stack: Any) -> None:
    """DynamoDB and Step Functions calls are not cut off at the provider timeout (3 s here): under
    load moto answers slowly, and giving up then fails requests that would have succeeded."""
    from cascade.aws import client

    for service in ("dynamodb", "stepfunctions"):
        config = client(service).meta.config
        assert config.read_timeout > stack.provider_timeout_seconds
        assert config.retries["total_max_attempts"] > 1
    assert client("sns").meta.config.read_timeout == stack.provider_timeout_seconds


def test_pressing_a_button_on_a_telegram_message_without_one_is_a_422_not_a_traceback(
        api: Api, saved: list[str], capfd: pytest.CaptureFixture[str]) -> None:
    """`/local/simulate` with read or confirmed on a Telegram message that has no button: the
    simulator says so (422 naming the signal), and the console shows no traceback."""
    step = {"channel": "telegram", "wait": "24h", "template": dict.fromkeys(("en", "ru"), "Order {{ data.ref }}")}
    scenario = {"name": "No button", "trigger": "no_button.ready", "correlation": "ref", "default_locale": "en",
                "quiet_hours": None, "success": ["read", "replied"], "steps": [step]}
    resp = api.http.put("/v1/scenarios/no-button", json=scenario)
    assert resp.status_code == 201, resp.text
    saved.append("no-button")
    cascade_id = api.start({"type": "no_button.ready", "data": {"ref": "R-1"},
                            "recipient": {"id": f"nb-{uuid.uuid4().hex[:8]}", "telegram_chat_id": "5550001"}})
    message = wait_for("the Telegram message", lambda: next(iter(api.outbox(cascade_id)), None))
    capfd.readouterr()
    resp = api.simulate(message["provider_message_id"], "read")
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    assert resp.status_code == 422, resp.text
    assert [d["field"] for d in resp.json()["details"]] == ["signal"]
    assert "Traceback" not in capfd.readouterr().out
