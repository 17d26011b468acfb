"""Reports on the local stack: a mixed batch of real cascades (read, clicked, exhausted, failed,
skipped, a late read) of a scenario of their own; the report's counts and costs must equal what
the outbox and the signals say, the CSV must match the JSON, and the customer card must list
every touch with its cost."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

from cascade.segments import sms_info
from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

PRICES = {"email": 0.0001, "sms": 0.0079}  # the defaults (cascade.prices)


@pytest.fixture(scope="module")
def scenario(api: Api) -> str:
    """Email, then SMS: success is a read, a click or a reply."""
    sid = f"report-{uuid.uuid4().hex[:8]}"
    body = {
        "name": "Report check", "trigger": f"{sid.replace('-', '_')}.started", "correlation": "ref",
        "default_locale": "en", "success": ["read", "clicked", "replied"],
        "steps": [
            {"channel": "email", "wait": "24h", "template": {locale: {
                "subject": "Your order {{ data.ref }}",
                "text": "Hello {{ recipient.name }}, your order {{ data.ref }} is ready: https://shop.test/o"}
                for locale in ("en", "ru")}},
            {"channel": "sms", "wait": "24h",
             "template": {locale: "Order {{ data.ref }} is ready: https://shop.test/o" for locale in ("en", "ru")}},
        ],
    }
    resp = api.http.put(f"/v1/scenarios/{sid}", json=body)
    assert resp.status_code == 201, resp.text
    return sid


def _event(sid: str, *, email: bool = True) -> tuple[dict[str, Any], str]:
    rid = f"card-{uuid.uuid4().hex[:8]}"
    recipient = {"id": rid, "name": "Ann", "locale": "en", "phone": f"+1415555{uuid.uuid4().int % 10**4:04d}",
                 **({"email": f"{rid}@example.com"} if email else {})}
    return {"type": f"{sid.replace('-', '_')}.started", "recipient": recipient,
            "data": {"ref": uuid.uuid4().hex[:6]}}, rid


def _message(api: Api, cascade_id: str, channel: str) -> dict[str, Any]:
    return dict(wait_for(f"the {channel} message", lambda: next(
        (m for m in api.outbox(cascade_id) if m["channel"] == channel), None), timeout=30))


def _ended(api: Api, cascade_id: str) -> dict[str, Any]:
    return dict(wait_for("the cascade to end", lambda: (v := api.cascade(cascade_id))["status"] != "running" and v,
                         timeout=40))


def _report(api: Api, sid: str, **params: str) -> Any:
    resp = api.http.get(f"/v1/reports/scenarios/{sid}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json() if params.get("format") != "csv" else resp.text


@pytest.fixture(scope="module")
def batch(api: Api, scenario: str) -> dict[str, Any]:
    """Six cascades: read at once, clicked on SMS, exhausted, email refused (failed), no email
    (skipped), and a late read after the cascade was exhausted."""
    ids: dict[str, str] = {}
    recipients: dict[str, str] = {}
    # The email provider refuses the first email of the "failed" cascade (started alone).
    assert api.http.post("/local/faults", json={"channel": "email", "mode": "reject", "count": 1}).status_code == 200
    event, recipients["failed"] = _event(scenario)
    ids["failed"] = api.start(event)
    _message(api, ids["failed"], "sms")
    api.http.delete("/local/faults")
    for name, has_email in (("read", True), ("clicked", True), ("exhausted", True), ("no_email", False),
                            ("late", True)):
        event, recipients[name] = _event(scenario, email=has_email)
        ids[name] = api.start(event)
    email = {n: _message(api, ids[n], "email") for n in ("read", "clicked", "exhausted", "late")}
    assert api.simulate(email["read"]["provider_message_id"], "read").status_code == 200
    sms = _message(api, ids["clicked"], "sms")
    assert api.simulate(sms["provider_message_id"], "clicked").status_code == 200
    views = {n: _ended(api, cid) for n, cid in ids.items()}
    assert api.simulate(email["late"]["provider_message_id"], "read").status_code == 200
    wait_for("the late read", lambda: api.cascade(ids["late"])["steps"][0]["status"] == "read")
    return {"ids": ids, "recipients": recipients, "views": views}


def _expected_cost(messages: list[dict[str, Any]]) -> float:
    return sum(PRICES[m["channel"]] * (sms_info(m["text"])["parts"] if m["channel"] == "sms" else 1)
               for m in messages)


def test_the_report_counts_what_the_outbox_and_the_signals_say(api: Api, scenario: str,
                                                              batch: dict[str, Any]) -> None:
    ids, views = batch["ids"], batch["views"]
    assert views["read"]["status"] == views["clicked"]["status"] == "succeeded"
    assert {views[n]["status"] for n in ("exhausted", "failed", "no_email", "late")} == {"exhausted"}
    report = wait_for("the report to count every reaction", lambda: (
        r := _report(api, scenario))["totals"]["reached"] == 3 and r, timeout=30)
    messages = [m for cid in ids.values() for m in api.outbox(cid)]
    sent = {ch: sum(1 for m in messages if m["channel"] == ch) for ch in ("email", "sms")}
    assert sent == {"email": 4, "sms": 5}

    totals = report["totals"]
    assert totals["cascades"] == 6
    assert totals["successes"] == 2 and totals["reached"] == 3  # the late read reached, but did not succeed
    assert totals["reach"] == pytest.approx(0.5, abs=1e-4)
    assert totals["cost"] == pytest.approx(_expected_cost(messages), abs=1e-6)
    assert totals["cost_per_success"] == pytest.approx(totals["cost"] / 2, abs=1e-6)
    # One read at once, one click after the email's 24 h: within the two steps' 48 h, however busy the machine.
    assert totals["median_time_to_success_s"] is not None and totals["median_time_to_success_s"] < 48 * 3600
    assert report["ended"] == {"succeeded": 2, "exhausted": 4}

    rows = {(s["index"], s["channel"]): s for s in report["steps"]}
    email, sms = rows[(0, "email")], rows[(1, "sms")]
    assert email["sent"] == 4 and email["failed"] == 1 and email["skipped"] == 1
    assert email["read"] == 2 and email["delivered"] == 2  # a read message was delivered too
    assert email["successes"] == 1 and email["clicked"] == 0
    assert sms["sent"] == 5 and sms["clicked"] == 1 and sms["successes"] == 1
    assert sms["cost"] == pytest.approx(_expected_cost([m for m in messages if m["channel"] == "sms"]), abs=1e-6)
    assert report["baseline"]["channel"] == "email" and report["baseline"]["successes"] == 1
    assert report["baseline"]["reach"] == pytest.approx(1 / 6, abs=1e-4)
    assert report["currency"] == "USD"


def test_the_csv_export_matches_the_json(api: Api, scenario: str, batch: dict[str, Any]) -> None:
    report = wait_for("the report", lambda: (r := _report(api, scenario))["totals"]["reached"] == 3 and r)
    rows = list(csv.DictReader(io.StringIO(_report(api, scenario, format="csv"))))
    # People read the CSV: its steps count from 1, where the JSON's index counts from 0.
    assert [(int(r["step"]), r["channel"]) for r in rows[:-1]] == [(s["index"] + 1, s["channel"])
                                                                     for s in report["steps"]]
    for row, step in zip(rows[:-1], report["steps"], strict=True):
        assert {k: int(row[k]) for k in ("sent", "delivered", "read", "clicked", "failed", "skipped", "successes")} == {
            k: step[k] for k in ("sent", "delivered", "read", "clicked", "failed", "skipped", "successes")}
        assert float(row["cost"]) == pytest.approx(step["cost"])
    assert rows[-1]["step"] == "total" and int(rows[-1]["successes"]) == report["totals"]["successes"]
    assert float(rows[-1]["cost"]) == pytest.approx(report["totals"]["cost"])


def test_the_customer_card_lists_every_touch_with_its_cost_and_the_channel_that_worked(
        api: Api, batch: dict[str, Any]) -> None:
    rid, cid = batch["recipients"]["clicked"], batch["ids"]["clicked"]
    card = wait_for("the reaction on the card", lambda: (
        c := api.http.get(f"/v1/recipients/{rid}/timeline").json())["reacts_on"]["channel"] and c)
    kinds = [(t["kind"], t["channel"], t["status"]) for t in card["touches"]]
    assert kinds == [("sent", "email", "sent"), ("sent", "sms", "sent"), ("signal", "sms", "clicked")]
    outbox = api.outbox(cid)
    sent = [t for t in card["touches"] if t["kind"] == "sent"]
    assert [t["provider_message_id"] for t in sent] == [m["provider_message_id"] for m in outbox]
    assert sent[0]["summary"].startswith("Your order") and "ready" in sent[1]["summary"]
    assert sent[0]["provider"] == "ses" and sent[1]["provider"] == "sns"
    assert card["cost"] == pytest.approx(_expected_cost(outbox), abs=1e-6)
    assert card["reacts_on"]["channel"] == "sms" and card["reacts_on"]["counts"] == {"sms": 1}


def test_the_live_list_shows_the_scenarios_cascades_newest_first(api: Api, scenario: str,
                                                                  batch: dict[str, Any]) -> None:
    listed = api.http.get("/v1/cascades", params={"scenario": scenario}).json()["cascades"]
    assert {c["cascade_id"] for c in listed} == set(batch["ids"].values())
    assert [c["created_at"] for c in listed] == sorted((c["created_at"] for c in listed), reverse=True)
    assert api.http.get("/v1/cascades", params={"scenario": scenario, "status": "running"}).json()["cascades"] == []
    done = api.http.get("/v1/cascades", params={"scenario": scenario, "status": "succeeded"}).json()["cascades"]
    assert {c["cascade_id"] for c in done} == {batch["ids"]["read"], batch["ids"]["clicked"]}


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-11-20", "to": "2026-11-01"}, "from"), ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
])
def test_a_bad_day_range_is_a_422_naming_the_field(api: Api, scenario: str, params: dict[str, str],
                                                   field: str) -> None:
    resp = api.http.get(f"/v1/reports/scenarios/{scenario}", params=params)
    assert resp.status_code == 422, resp.text
    assert field in resp.text


def test_an_unknown_scenario_has_no_report_and_the_list_needs_a_scenario(api: Api) -> None:
    assert api.http.get("/v1/reports/scenarios/no-such-scenario").status_code == 404
    assert api.http.get("/v1/cascades").status_code == 422
