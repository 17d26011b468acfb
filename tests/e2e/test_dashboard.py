"""The dashboard in a real browser (Debian's headless Chromium driven by Playwright) against the
local stack: real cascades of a scenario of their own (read, clicked, a Telegram button, an SMS
reply, a bounced email, silence), then the page must show the same numbers as the API's report,
a cascade's timeline, the customer card and a forecast. Screenshots go to
``test-artifacts/dashboard/``."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.numbers import get_currency_precision
from playwright.sync_api import Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import API_KEY, Api, wait_for

pytestmark = pytest.mark.stack

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
# No sandbox (CI runs as root), and nothing that phones home: the machine's network is closed.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
COUNTERS = ("sent", "delivered", "read", "clicked", "replied", "confirmed", "failed", "skipped", "suppressed",
            "successes")
WIDTH = 1280  # a laptop's browser window: every page must fit it


# ---- the page's formatting rules (app.js), to read what it shows ----------------------------

def _number(text: str) -> float:
    found = re.search(r"-?[\d,]*\.?\d+", text)
    assert found, f"no number in {text!r}"
    return float(found.group().replace(",", ""))


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _time(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _about(value: float | None) -> str:
    """An expected count: a whole number, "≈" when rounded (half up, as Math.round), "<1" under 0.5."""
    if value is None:
        return "—"
    whole = math.floor(value + 0.5)
    if abs(value - whole) < 1e-6:
        return f"{whole:,}"
    return "<1" if 0 < value < 0.5 else f"≈{whole:,}"


def assert_money(shown: str, value: float | None, currency: str) -> None:
    if value is None:
        assert shown == "—", shown
        return
    assert (shown.startswith(("$", "<$")) if currency == "USD" else currency in shown), (shown, currency)
    digits = get_currency_precision(currency)  # the currency's own digits: cents for USD
    unit = 10.0 ** -digits
    if shown.startswith("<"):  # a sum under half a cent (an email's $0.0001) is not shown as nothing
        assert 0 < value < unit / 2 and _number(shown) == unit, (shown, value)
        return
    decimals = re.search(r"[\d,]+(?:\.(\d+))?", shown)
    assert decimals and len(decimals.group(1) or "") == digits, (shown, digits)
    assert abs(_number(shown) - value) <= unit / 2 + 1e-9, (shown, value)


def assert_share(shown: str, value: float | None) -> None:
    if value is None:
        assert shown == "—", shown
        return
    assert shown.endswith("%") and abs(_number(shown) - value * 100) <= 0.05 + 1e-9, (shown, value)


# ---- the browser ------------------------------------------------------------------------------

@dataclass
class Browser:
    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def text(self, testid: str) -> str:
        return (self.by(testid).text_content() or "").strip()  # SVG labels have no inner text

    def by(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    def wait(self, testid: str, timeout: float = 30_000) -> None:
        """Wait for an element; if it never comes, keep a screenshot and say what the page showed."""
        try:
            self.by(testid).wait_for(timeout=timeout)
        except PlaywrightTimeout:
            self.shot(f"failed-{testid}")
            shown = [e.strip() for e in self.by("error").all_inner_texts()]
            raise AssertionError(f"{testid} never showed; the page's errors: {shown}") from None

    def enter_key(self, key: str) -> None:
        self.by("key-panel").wait_for(state="visible")
        self.by("key-input").fill(key)
        self.by("key-save").click()

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def overflow(self) -> dict[str, Any]:
        """What sticks out sideways: the page past the window, and any table, chart, card or figure
        wider than its own box (a table that scrolls inside its card does not fit either)."""
        return dict(self.page.evaluate("""() => {
            const boxes = [...document.querySelectorAll('.table-wrap, .chart-wrap, .card, .stat, td, th, dd')];
            const name = (e) => e.getAttribute('data-testid') || e.querySelector('[data-testid]')?.getAttribute('data-testid')
                || e.className || e.tagName;
            return {page: document.documentElement.scrollWidth, window: window.innerWidth,
                    boxes: boxes.filter((e) => e.scrollWidth > e.clientWidth + 1).map(name)};
        }"""))

    def fits(self, name: str) -> None:
        """The page as it is fits the window: checked, then kept as a screenshot."""
        self.shot(name)
        assert self.overflow() == {"page": WIDTH, "window": WIDTH, "boxes": []}, name


@pytest.fixture
def browser(api: Api, tmp_path: Path) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; CI installs it)")
    with sync_playwright() as pw:
        # A fresh profile per test: no key kept from an earlier test.
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": WIDTH, "height": 900}, accept_downloads=True)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)  # a busy machine: two cores, a whole stack
        b = Browser(page=page, base=api.base)
        page.on("pageerror", lambda exc: b.errors.append(str(exc)))
        page.on("request", lambda req: b.requests.append(req.url))
        try:
            yield b
        finally:
            context.close()
    assert not b.errors, f"the page threw: {b.errors}"
    foreign = [u for u in b.requests if not u.startswith((api.base, "data:", "blob:"))]
    assert not foreign, f"the page must load nothing from elsewhere: {foreign}"


# ---- a scenario of its own, and a mixed batch of real cascades --------------------------------

def _save_scenario(api: Api) -> str:
    """Email → Telegram with a button → SMS, a day each (6 s here: time to react under load); success is
    any reaction."""
    sid = f"dash-{uuid.uuid4().hex[:8]}"
    text = "Order {{ data.ref }} is ready: https://shop.test/o/{{ data.ref }}"
    body = {
        "name": "Dashboard check", "trigger": f"{sid.replace('-', '_')}.ready", "correlation": "ref",
        "default_locale": "en", "quiet_hours": None, "success": ["read", "clicked", "replied", "confirmed"],
        "steps": [
            {"channel": "email", "wait": "24h", "template": {locale: {
                "subject": "Order {{ data.ref }}", "text": f"Hello {{{{ recipient.name }}}}. {text}"}
                for locale in ("en", "ru")}},
            {"channel": "telegram", "wait": "24h", "template": dict.fromkeys(("en", "ru"), text),
             "buttons": [{"text": {"en": "Got it", "ru": "Понятно"}, "signal": "read"}]},
            {"channel": "sms", "wait": "24h",
             "template": dict.fromkeys(("en", "ru"), "Order {{ data.ref }}: reply YES to keep it")},
        ],
    }
    resp = api.http.put(f"/v1/scenarios/{sid}", json=body)
    assert resp.status_code == 201, resp.text
    return sid


@pytest.fixture(scope="module")
def scenario(api: Api) -> Iterator[str]:
    """The scenario of the mixed batch: its report must not move while the page is read."""
    sid = _save_scenario(api)
    yield sid
    api.http.delete(f"/v1/scenarios/{sid}")


@pytest.fixture
def live_scenario(api: Api) -> Iterator[str]:
    """Another one, for a cascade started while the page is open."""
    sid = _save_scenario(api)
    yield sid
    api.http.delete(f"/v1/scenarios/{sid}")


def _event(sid: str) -> dict[str, Any]:
    rid = f"dash-{uuid.uuid4().hex[:8]}"
    return {"type": f"{sid.replace('-', '_')}.ready",
            "recipient": {"id": rid, "name": "Ann", "locale": "en", "email": f"{rid}@example.com",
                          "telegram_chat_id": str(uuid.uuid4().int % 10**9),
                          "phone": f"+1415555{uuid.uuid4().int % 10**4:04d}"},
            "data": {"ref": uuid.uuid4().hex[:6]}}


def _message(api: Api, cascade_id: str, channel: str) -> dict[str, Any]:
    return dict(wait_for(f"the {channel} message of {cascade_id}", lambda: next(
        (m for m in api.outbox(cascade_id) if m["channel"] == channel), None), timeout=30))


def _days() -> tuple[str, str]:
    """A few days around today: the cascades count on the (stack's) day they started."""
    today = datetime.now(UTC).date()
    return (today - timedelta(days=2)).isoformat(), (today + timedelta(days=2)).isoformat()


def _report(api: Api, sid: str) -> dict[str, Any]:
    start, end = _days()
    resp = api.http.get(f"/v1/reports/scenarios/{sid}", params={"from": start, "to": end})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.fixture(scope="module")
def batch(api: Api, scenario: str) -> dict[str, Any]:
    """Six cascades, every one finished and counted by the report before any page opens."""
    ids = {name: api.start(_event(scenario)) for name in ("read", "clicked", "button", "reply", "bounce", "silent")}
    assert api.simulate(_message(api, ids["read"], "email")["provider_message_id"], "read").status_code == 200
    assert api.simulate(_message(api, ids["clicked"], "email")["provider_message_id"], "clicked").status_code == 200
    assert api.simulate(_message(api, ids["bounce"], "email")["provider_message_id"], "failed").status_code == 200
    assert api.simulate(_message(api, ids["button"], "telegram")["provider_message_id"], "read").status_code == 200
    sms = _message(api, ids["reply"], "sms")
    assert api.simulate(sms["provider_message_id"], "replied", text="YES").status_code == 200
    views = {name: wait_for(f"the {name} cascade to end", lambda c=cid: (v := api.cascade(c))["status"] != "running"
                            and v, timeout=90) for name, cid in ids.items()}
    assert {n: v["status"] for n, v in views.items()} == {
        "read": "succeeded", "clicked": "succeeded", "button": "succeeded", "reply": "succeeded",
        "bounce": "exhausted", "silent": "exhausted"}
    sent = {ch: sum(1 for cid in ids.values() for m in api.outbox(cid) if m["channel"] == ch)
            for ch in ("email", "telegram", "sms")}

    last: list[dict[str, Any]] = []

    def counted() -> dict[str, Any] | None:
        report = _report(api, scenario)
        by_channel = {ch: sum(r["sent"] for r in report["steps"] if r["channel"] == ch) for ch in sent}
        steps = report["steps"]
        done = (report["totals"]["cascades"] == 6 and report["totals"]["successes"] == 4
                and report["totals"]["reached"] == 4 and sum(report["ended"].values()) == 6 and by_channel == sent
                and sum(r["failed"] for r in steps) == 1 and sum(r["replied"] for r in steps) == 1)
        stable = done and last == [report]  # and unchanged since the previous look
        last[:] = [report]
        return report if stable else None

    report = wait_for("the report to count the six cascades", counted, timeout=60, every=0.5)
    return {"ids": ids, "views": views, "report": report}


# ---- the tests --------------------------------------------------------------------------------

def test_the_page_is_served_without_a_key_and_asks_for_one_once(api: Api, browser: Browser) -> None:
    page = httpx.get(f"{api.base}/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(f"{api.base}/dashboard/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{api.base}/dashboard/secrets.txt").status_code == 404
    assert httpx.get(f"{api.base}/v1/scenarios").status_code == 401  # the data stays behind the key

    b = browser
    b.page.goto(f"{api.base}/dashboard")
    b.by("key-panel").wait_for(state="visible")
    b.shot("key-prompt")
    b.enter_key("not-the-key")
    b.by("key-error").wait_for(state="visible")
    assert "refused" in b.text("key-error")
    b.enter_key(API_KEY)
    b.by("scenario-abandoned-cart").wait_for()
    assert b.by("key-panel").is_hidden()

    b.page.reload()  # kept in this browser: no prompt again
    b.by("scenario-abandoned-cart").wait_for()
    assert b.by("key-panel").is_hidden()
    b.by("change-key").click()  # a way to change it
    assert b.by("key-panel").is_visible() and b.by("key-input").input_value() == API_KEY
    b.by("key-forget").click()
    b.page.reload()
    b.by("key-panel").wait_for(state="visible")


def test_the_scenario_view_shows_the_reports_numbers(api: Api, browser: Browser, scenario: str,
                                                     batch: dict[str, Any]) -> None:
    b = browser
    report = _report(api, scenario)
    assert report == batch["report"], "every cascade had ended: the report must not change any more"
    totals, cur = report["totals"], report["currency"]
    start, end = _days()
    b.page.goto(f"{api.base}/dashboard")
    b.enter_key(API_KEY)
    b.by("range-from").fill(start)
    b.by("range-to").fill(end)
    b.by(f"scenario-{scenario}").click()
    b.wait("totals")
    assert b.text("scenario-title") == "Dashboard check"

    assert b.text("total-cascades") == _count(totals["cascades"]) == "6"
    assert b.text("total-successes") == _count(totals["successes"]) == "4"
    assert b.text("total-reached") == _count(totals["reached"])
    assert_share(b.text("total-reach"), totals["reach"])
    assert_share(b.text("total-success-rate"), totals["success_rate"])
    assert_money(b.text("total-cost"), totals["cost"], cur)
    assert_money(b.text("total-cost-per-success"), totals["cost_per_success"], cur)
    assert b.text("total-median-tts") == _duration(totals["median_time_to_success_s"])
    assert report["ended"] == {"succeeded": 4, "exhausted": 2}
    for status, n in report["ended"].items():
        assert b.text(f"ended-{status}") == _count(n)
    base = report["baseline"]
    assert b.text("baseline-channel") == base["channel"] == "email"
    assert b.text("baseline-sent") == _count(base["sent"])
    assert b.text("baseline-successes") == _count(base["successes"])
    assert_share(b.text("baseline-reach"), base["reach"])
    assert_money(b.text("baseline-cost"), base["cost"], cur)

    # The funnel: every counter of every step, in the table and on the chart.
    assert {(r["index"], r["channel"]) for r in report["steps"]} == {(0, "email"), (1, "telegram"), (2, "sms")}
    for row in report["steps"]:
        key = f"step-{row['index']}-{row['channel']}"
        for counter in COUNTERS:
            assert b.text(f"{key}-{counter}") == _count(row[counter]), (key, counter)
        assert_money(b.text(f"{key}-cost"), row["cost"], cur)
        assert b.text(f"funnel-{row['index']}-{row['channel']}-sent") == _count(row["sent"])
        assert b.text(f"funnel-{row['index']}-{row['channel']}-successes") == _count(row["successes"])
    email = next(r for r in report["steps"] if r["channel"] == "email")
    assert (email["sent"], email["failed"], email["successes"]) == (6, 1, 2)

    # Channels: reach (successes there / cascades) against cost.
    for ch in ("email", "telegram", "sms"):
        rows = [r for r in report["steps"] if r["channel"] == ch]
        won = sum(r["successes"] for r in rows)
        assert b.text(f"channel-{ch}-sent") == _count(sum(r["sent"] for r in rows))
        assert b.text(f"channel-{ch}-successes") == _count(won)
        assert_share(b.text(f"channel-{ch}-reach"), won / totals["cascades"])
        assert_money(b.text(f"channel-{ch}-cost"), sum(r["cost"] for r in rows), cur)

    # Live: nothing of this scenario runs; the recent list has all six.
    b.wait("live-recent-count")
    wait_for("the live lists", lambda: b.text("live-recent-count") == "(6)")
    assert b.text("live-running-count") == "(0)"
    for name, cid in batch["ids"].items():
        assert b.text(f"recent-{cid}-status") == batch["views"][name]["status"]
    b.fits("scenario")

    # The CSV download is the API's CSV.
    with b.page.expect_download() as download:
        b.by("csv-download").click()
    got = Path(download.value.path()).read_text(encoding="utf-8")
    want = api.http.get(f"/v1/reports/scenarios/{scenario}", params={"from": start, "to": end, "format": "csv"})
    assert want.status_code == 200 and got == want.text
    assert list(csv.reader(io.StringIO(got)))[-1][0] == "total"
    assert download.value.suggested_filename == f"{scenario}_{start}_{end}.csv"


def test_a_new_cascade_shows_up_running_then_leaves_the_running_list(api: Api, browser: Browser,
                                                                     live_scenario: str) -> None:
    b = browser
    b.page.goto(f"{api.base}/dashboard#/scenarios/{live_scenario}")
    b.enter_key(API_KEY)
    b.wait("live-running-count")
    wait_for("the empty lists", lambda: b.text("live-running-count") == "(0)")
    cascade_id = api.start(_event(live_scenario))
    try:
        b.by(f"running-{cascade_id}").wait_for(timeout=30_000)  # the list refreshes by itself
        assert b.text(f"running-{cascade_id}-status") == "running"
        b.fits("live")
    finally:
        assert api.http.post(f"/v1/cascades/{cascade_id}/cancel").status_code == 200
    b.by(f"running-{cascade_id}").wait_for(state="detached", timeout=30_000)
    b.by(f"recent-{cascade_id}-status").wait_for()
    wait_for("the cancel on the page", lambda: b.text(f"recent-{cascade_id}-status") == "cancelled")


def test_a_cascade_timeline_and_the_customer_card(api: Api, browser: Browser, scenario: str,
                                                   batch: dict[str, Any]) -> None:
    b = browser
    cascade_id = batch["ids"]["button"]  # email unread, the Telegram button pressed
    view = api.cascade(cascade_id)
    b.page.goto(f"{api.base}/dashboard#/scenarios/{scenario}")
    b.enter_key(API_KEY)
    b.by(f"recent-{cascade_id}-link").click()
    b.wait("cascade-timeline")
    assert b.page.url.endswith(f"#/cascades/{cascade_id}")
    assert b.text("cascade-id") == cascade_id
    assert b.text("cascade-status") == view["status"] == "succeeded"
    assert b.text("cascade-stop-reason") == view["stop_reason"] == "read"
    assert b.text("cascade-scenario") == scenario
    assert b.text("cascade-created-at") == _time(view["created_at"])
    assert b.text("cascade-finished-at") == _time(view["finished_at"])
    for step in view["steps"]:
        p = f"cascade-step-{step['index']}"
        assert b.text(f"{p}-channel") == step["channel"]
        assert b.text(f"{p}-status") == step["status"]
        if step["sent_at"]:
            assert b.text(f"{p}-sent-at") == _time(step["sent_at"])
    assert [s["status"] for s in view["steps"]] == ["sent", "read", "not_sent"]
    # The Telegram step's own story: sent, then the button press.
    wait_for("the step's events", lambda: b.by("cascade-step-1-events").count() == 1)
    assert b.text("cascade-step-1-event-0-kind") == "sent"
    assert b.text("cascade-step-1-event-1-kind") == "signal" and b.text("cascade-step-1-event-1-status") == "read"
    b.fits("cascade")

    b.by("cascade-recipient").click()
    b.wait("touches")
    card = api.http.get(f"/v1/recipients/{view['recipient_id']}/timeline").json()
    touches = card["touches"]
    assert b.text("recipient-id") == view["recipient_id"]
    assert b.text("reacts-on") == card["reacts_on"]["channel"] == "telegram"
    assert b.text("reacts-count-telegram") == _count(card["reacts_on"]["counts"]["telegram"])
    assert b.text("recipient-touches") == _count(len(touches))
    assert b.text("recipient-sent") == _count(sum(1 for t in touches if t["kind"] == "sent")) == "2"
    assert_money(b.text("recipient-cost"), card["cost"], card["currency"])
    for n, touch in enumerate(touches):
        assert b.text(f"touch-{n}-at") == _time(touch["at"])
        assert b.text(f"touch-{n}-channel") == touch["channel"]
        assert b.text(f"touch-{n}-kind") == touch["kind"]
        assert b.text(f"touch-{n}-status") == touch["status"]
        assert b.text(f"touch-{n}-cascade") == touch["cascade_id"]
        if touch["cost"] is not None:
            assert_money(b.text(f"touch-{n}-cost"), touch["cost"], card["currency"])
        if touch.get("summary"):
            assert b.text(f"touch-{n}-summary") == touch["summary"]
    assert [(t["channel"], t["kind"]) for t in touches] == [("email", "sent"), ("telegram", "sent"),
                                                            ("telegram", "signal")]
    b.fits("customer")


def test_the_customer_card_shows_each_contacts_health(api: Api, browser: Browser, batch: dict[str, Any]) -> None:
    b = browser
    rid = batch["views"]["bounce"]["recipient_id"]  # its email bounced for good
    contacts = wait_for("the bounce on the card", lambda: (found := {
        c["channel"]: c for c in api.http.get(f"/v1/recipients/{rid}/timeline").json()["contacts"]}
    ).get("email", {}).get("health") == "invalid" and found)
    b.page.goto(f"{api.base}/dashboard#/recipients/{rid}")
    b.enter_key(API_KEY)
    b.wait("recipient-contacts")
    assert b.text("contact-email-health") == "invalid" and b.text("contact-email-reason") == "hard_bounce"
    for channel, contact in contacts.items():
        assert b.text(f"contact-{channel}-health") == contact["health"]
    b.fits("customer-contacts")


def test_the_forecast_beside_the_actual_results(api: Api, browser: Browser, scenario: str,
                                                batch: dict[str, Any]) -> None:
    b = browser
    report = _report(api, scenario)
    start, end = _days()
    b.page.goto(f"{api.base}/dashboard#/scenarios/{scenario}?from={start}&to={end}")
    b.enter_key(API_KEY)
    b.wait("forecast-reach")  # a first forecast comes with the view
    b.by("forecast-audience").fill("2500")
    b.by("forecast-run").click()
    wait_for("the forecast for 2,500", lambda: b.by("forecast-audience-shown").count()
             and b.text("forecast-audience-shown") == "2,500")
    resp = api.http.post(f"/v1/scenarios/{scenario}/forecast", json={"audience": 2500})
    assert resp.status_code == 200, resp.text
    f = resp.json()
    assert_share(b.text("forecast-reach"), f["reach"])
    assert b.text("forecast-successes") == _about(f["successes"])
    assert_money(b.text("forecast-cost"), f["cost"], f["currency"])
    assert b.text("forecast-p50") == _duration(f["time_to_success_s"]["p50"])
    assert b.text("forecast-p90") == _duration(f["time_to_success_s"]["p90"])
    assert_share(b.text("forecast-single-reach"), f["single_channel"]["reach"])
    assert_money(b.text("forecast-single-cost"), f["single_channel"]["cost"], f["currency"])
    assert b.text("forecast-rates-source") == f"rates: {f['rates_source']}"
    # The scenario's own cascades decide who gets each step.
    assert (f["condition_source"], f["condition_customers"]) == ("history", len(batch["views"]))
    assert b.text("forecast-condition-source") == f"conditions: history ({len(batch['views'])} customers)"
    for step in f["steps"]:
        i = step["index"]
        assert b.text(f"forecast-step-{i}-channel") == step["channel"]
        # Expected counts as whole customers, never "926.8 successes".
        assert b.text(f"forecast-step-{i}-sends") == _about(step["expected_sends"])
        assert b.text(f"forecast-step-{i}-successes") == _about(step["expected_successes"])
        assert_money(b.text(f"forecast-step-{i}-cost"), step["cost"], f["currency"])
        # Beside the actual: each step's share of successes, forecast vs this period.
        assert_share(b.text(f"compare-step-{i}-forecast"), step["expected_successes"] / f["audience"])
        won = sum(r["successes"] for r in report["steps"] if r["index"] == i)
        assert_share(b.text(f"compare-step-{i}-actual"), won / report["totals"]["cascades"])
    assert_share(b.text("compare-reach-forecast"), f["reach"])
    assert_share(b.text("compare-reach-actual"), report["totals"]["reach"])
    assert_share(b.text("compare-reach-single"), f["single_channel"]["reach"])
    b.by("forecast-section").scroll_into_view_if_needed()
    b.fits("forecast")
    # Seven customers: fractions of a customer are expected (5.6 Telegram messages), shown rounded.
    b.by("forecast-audience").fill("7")
    b.by("forecast-run").click()
    wait_for("the forecast for 7", lambda: b.text("forecast-audience-shown") == "7")
    f = api.http.post(f"/v1/scenarios/{scenario}/forecast", json={"audience": 7}).json()
    counts = {"forecast-successes": f["successes"]} | {
        f"forecast-step-{s['index']}-{kind}": s[f"expected_{kind}"] for s in f["steps"] for kind in ("sends", "successes")}
    shown = {testid: b.text(testid) for testid in counts}
    assert shown == {testid: _about(value) for testid, value in counts.items()}
    assert any(text.startswith("≈") for text in shown.values()) and not any("." in text for text in shown.values())
    assert_money(b.text("forecast-cost"), f["cost"], f["currency"])


def test_the_customer_card_of_an_id_with_a_space_a_quote_and_cyrillic(api: Api, browser: Browser) -> None:
    """The page asks for /v1/recipients/<encodeURIComponent(id)>/timeline; the API decodes it."""
    from urllib.parse import quote

    b = browser
    rid = f'Анна "Q" {uuid.uuid4().hex[:6]}'
    cascade_id = api.start({"type": "delivery.failed", "recipient": {"id": rid, "phone": "+77011234567"},
                            "data": {"order_id": uuid.uuid4().hex[:6], "reschedule_url": "https://shop.test/r"}})
    wait_for("the first SMS", lambda: api.outbox(cascade_id))
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")
    b.page.goto(f"{api.base}/dashboard#/recipients/{quote(rid, safe='')}")
    b.enter_key(API_KEY)
    b.wait("touches")
    assert b.text("recipient-id") == rid
    assert b.text("touch-0-cascade") == cascade_id


def test_a_step_has_one_number_in_the_operator_task_the_csv_and_the_dashboard(
        api: Api, browser: Browser, stack: Any) -> None:
    # Given a VIP delivery whose three SMS went unanswered: the operator's task is its fourth step
    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "delivery-failed-vip.json").read_text())
    event.pop("idempotency_key")
    rid = f"vip-{uuid.uuid4().hex[:8]}"
    event["recipient"] |= {"id": rid, "phone": f"+7701{uuid.uuid4().int % 10**7:07d}"}
    event["data"]["order_id"] = f"V-{uuid.uuid4().hex[:6]}"
    cascade_id = api.start(event)
    desk = stack.standin("operator")
    task = wait_for("the operator task", lambda: desk.tasks.get(f"op_{cascade_id}_3"), timeout=40)["task"]
    index = task["step"]  # the API's index, from 0
    number = task["step_number"]
    assert (index, number) == (3, 4)
    assert task["text"].splitlines()[0].endswith(f"шаг {number} из 4")  # what the operator reads
    # Then the CSV report says the same step number
    start, end = _days()

    def operator_row() -> dict[str, str] | None:
        resp = api.http.get("/v1/reports/scenarios/delivery-failed",
                            params={"from": start, "to": end, "format": "csv"})
        return next((r for r in csv.DictReader(io.StringIO(resp.text)) if r["channel"] == "operator"), None)

    assert wait_for("the operator's row in the CSV", operator_row)["step"] == str(number)
    # And so do the funnel, the cascade's timeline and the customer card
    b = browser
    b.page.goto(f"{api.base}/dashboard#/scenarios/delivery-failed?from={start}&to={end}")
    b.enter_key(API_KEY)
    b.wait(f"step-{index}-operator-index")
    assert b.text(f"step-{index}-operator-index") == f"Step {number}"
    b.page.goto(f"{api.base}/dashboard#/cascades/{cascade_id}")
    b.wait(f"cascade-step-{index}-channel")
    label = b.by(f"cascade-step-{index}").locator(".step-head b").text_content()
    assert (label, b.text(f"cascade-step-{index}-channel")) == (f"Step {number}", "operator")
    wait_for("the operator's touch", lambda: any(t["channel"] == "operator" for t in api.http.get(
        f"/v1/recipients/{rid}/timeline").json()["touches"]))
    b.page.goto(f"{api.base}/dashboard#/recipients/{rid}")
    b.wait("touches-table")
    rows = b.by("touches-table").locator("tbody tr:not(.text)")  # a touch's text has a row of its own
    steps = {b.text(f"touch-{n}-channel"): b.text(f"touch-{n}-step") for n in range(rows.count())}
    assert steps["operator"] == str(number)
    api.http.post(f"/v1/cascades/{cascade_id}/cancel")


def test_every_page_fits_1280_px_and_a_long_touch_opens_whole_on_click(api: Api, browser: Browser) -> None:
    """Long texts and ids everywhere (a long scenario name, a long customer id, an email with a long
    link, a long SMS reply): no page is wider than a 1280 px window, no table scrolls inside its card,
    and on the customer card a touch's text shows two lines, then all of it on a click."""
    b = browser
    sid = f"dash-long-{uuid.uuid4().hex[:6]}"
    link = "https://shop.test/track/" + "0123456789abcdef" * 8
    text = ("Hello {{ recipient.name }}. " + "Your order is packed and waits at the pick-up point, open every day. " * 4
            + link)
    body = {"name": "Orders ready for pick-up at the points that keep them for a week " * 2,
            "trigger": f"{sid.replace('-', '_')}.ready", "correlation": "ref", "default_locale": "en", "quiet_hours": None, "success": ["read", "replied"],
            "steps": [{"channel": "email", "wait": "24h", "template": {locale: {"subject": "Order {{ data.ref }}",
                                                                                "text": text}
                                                                       for locale in ("en", "ru")}},
                      {"channel": "sms", "wait": "24h",
                       "template": dict.fromkeys(("en", "ru"), "Order {{ data.ref }}: reply YES to keep it")}]}
    resp = api.http.put(f"/v1/scenarios/{sid}", json=body)
    assert resp.status_code == 201, resp.text
    try:
        rid = f"customer-{uuid.uuid4().hex}-of-the-pick-up-point-{uuid.uuid4().hex}"
        cascade_id = api.start({"type": body["trigger"], "data": {"ref": "R-1"}, "recipient": {
            "id": rid, "name": "Ann", "locale": "en", "email": "ann@example.com", "phone": "+14155550123"}})
        reply = "Yes, keep it please: " + "I will come on Saturday after work, around seven in the evening. " * 6
        assert api.simulate(_message(api, cascade_id, "sms")["provider_message_id"], "replied",
                            text=reply).status_code == 200
        wait_for("the cascade to end", lambda: api.cascade(cascade_id)["status"] != "running", timeout=60)

        b.page.goto(f"{api.base}/dashboard")
        b.by("key-panel").wait_for(state="visible")
        b.fits("fit-key-prompt")
        b.enter_key(API_KEY)
        b.by(f"scenario-{sid}").wait_for()
        b.fits("fit-home")

        b.by(f"scenario-{sid}").click()
        b.wait("totals")
        b.wait("forecast-reach")
        b.by(f"recent-{cascade_id}").wait_for()
        assert b.text("forecast-condition-source") == "conditions: history (1 customer)"  # its one cascade
        b.fits("fit-scenario")

        b.by(f"recent-{cascade_id}-link").click()
        b.wait("cascade-timeline")
        b.by("cascade-step-1-events").wait_for()
        b.fits("fit-cascade")

        b.by("cascade-recipient").click()
        b.wait("touches")
        touches = api.http.get(f"/v1/recipients/{rid}/timeline").json()["touches"]
        n = next(i for i, t in enumerate(touches) if t["kind"] == "signal")
        assert touches[n]["text"] == reply
        cell = b.by(f"touch-{n}-summary")
        clip = cell.locator(".clip")
        assert cell.text_content() == reply
        assert clip.evaluate("e => e.scrollHeight > e.clientHeight + 1"), "two lines of a long reply at first"
        b.fits("fit-customer")
        cell.click()
        assert cell.get_attribute("aria-expanded") == "true"
        assert clip.evaluate("e => e.scrollHeight <= e.clientHeight + 1"), "all of it after the click"
        b.fits("fit-customer-open")
        cell.click()  # and closed again
        assert cell.get_attribute("aria-expanded") == "false"
        # The email as it was sent, all ~450 characters of it, not only its first line.
        e = next(i for i, t in enumerate(touches) if t["kind"] == "sent" and t["channel"] == "email")
        assert touches[e]["summary"].count("open every day.") == 4, touches[e]["summary"]
        sent = b.by(f"touch-{e}-summary")
        sent.click()
        assert sent.text_content() == touches[e]["summary"]
    finally:
        api.http.delete(f"/v1/scenarios/{sid}")
