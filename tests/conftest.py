"""Shared fixtures. End-to-end tests run against one local stack per session: moto as AWS
(executing the real state machine over the real handlers) and the Telegram stand-in."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

# 4 cascade hours per real second: the 24 h email wait takes 6 s, a 2 h SMS wait 1 s.
TIME_SCALE = 14400.0
API_KEY = "test-key-0123456789"
# The stack's clock starts the session at 10:00 UTC today (UTC is the presets' default time zone),
# so quiet hours (21:00-09:00) fall where the tests expect them, whatever time it really is.
_now = datetime.now(UTC)
CLOCK_SHIFT_S = (_now.replace(hour=10, minute=0, second=0, microsecond=0) - _now).total_seconds()
# A provider failing 3 sends in a row is skipped for 3 s (the defaults are 5 and 300 s).
CIRCUIT_THRESHOLD = 3
CIRCUIT_COOLDOWN_S = 3


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from cascade.local.stack import LocalStack

    local = LocalStack(port=0, api_key=API_KEY, time_scale=TIME_SCALE, stack_name="cascade-test",
                       clock_shift_seconds=CLOCK_SHIFT_S,
                       parameters={"CircuitFailureThreshold": str(CIRCUIT_THRESHOLD),
                                   "CircuitCooldownSeconds": str(CIRCUIT_COOLDOWN_S)}).start()
    yield local
    local.stop()


class Api:
    """The public surface, as a client sees it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {API_KEY}"})

    def post_event(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post("/v1/events", json=body, **kwargs)

    def cascade(self, cascade_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/v1/cascades/{cascade_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def outbox(self, cascade_id: str | None = None) -> list[dict[str, Any]]:
        params = {"cascade_id": cascade_id} if cascade_id else None
        return list(self.http.get("/local/outbox", params=params).json()["messages"])

    def simulate(self, provider_message_id: str, signal: str, **extra: Any) -> httpx.Response:
        return self.http.post("/local/simulate", json={"provider_message_id": provider_message_id, "signal": signal,
                                                       **extra})

    def post_together(self, body: dict[str, Any], clients: int = 8) -> list[httpx.Response]:
        """The same event from ``clients`` clients at once (a webhook retried while the first is
        in flight), each on its own connection."""
        answers: list[httpx.Response] = []
        go = threading.Barrier(clients)

        def post() -> None:
            go.wait()
            answers.append(httpx.post(f"{self.base}/v1/events", json=body, timeout=60,
                                      headers={"Authorization": self.http.headers["Authorization"]}))

        threads = [threading.Thread(target=post) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return answers

    def start(self, body: dict[str, Any]) -> str:
        resp = self.post_event(body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["cascade_id"])


@pytest.fixture(scope="session")
def api(stack: Any) -> Api:
    return Api(stack.url)


@pytest.fixture
def saved(api: Api) -> Iterator[list[str]]:
    """Ids of the scenarios a test saves: deleted afterwards, so presets are back for other tests."""
    ids: list[str] = []
    yield ids
    for scenario_id in ids:
        api.http.delete(f"/v1/scenarios/{scenario_id}")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    """Poll until ``check()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


# A step's timer in tests that assert "at once": 400 h is 100 s here, so an escalation that comes
# even tens of seconds late on a busy machine is still told apart from the timer running out.
LONG_WAIT = "400h"
LONG_WAIT_HOURS = 400


def long_waits(api: Api, saved: list[str], preset: str, *steps: int) -> str:
    """A copy of scenario ``preset`` under its own id and trigger whose ``steps`` wait
    :data:`LONG_WAIT`. Returns the trigger to send as the event's ``type``; ``saved`` deletes the
    copy after the test."""
    scenario = api.http.get(f"/v1/scenarios/{preset}").json()
    for key in ("version", "source", "id"):
        scenario.pop(key, None)
    for index in steps:
        scenario["steps"][index]["wait"] = LONG_WAIT
    tag = uuid.uuid4().hex[:8]
    trigger = f"{preset.replace('-', '_')}_{tag}.started"
    resp = api.http.put(f"/v1/scenarios/{preset}-{tag}", json={**scenario, "trigger": trigger})
    assert resp.status_code == 201, resp.text
    saved.append(f"{preset}-{tag}")
    return trigger


class _Lines(logging.Handler):
    """The stack's log lines as they would be written (Powertools' JSON), formatted in the thread
    that logs them, where the invocation's keys live."""

    def __init__(self) -> None:
        from cascade.observability import logger

        super().__init__(logging.DEBUG)
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def captured_log_lines(level: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every line the functions' logger writes meanwhile, as parsed JSON (at ``level`` if given)."""
    from cascade.observability import logger

    handler, before = _Lines(), logger.log_level
    logger.addHandler(handler)
    if level is not None:
        logger.setLevel(level)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
