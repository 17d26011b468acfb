"""Contact hygiene on the local stack: a hard bounce, an invalid number, a number not on WhatsApp,
a blocked bot or an unsubscribed Viber user marks that contact invalid, and later steps on it are
skipped at once (an alternative channel first) until an event brings another value; an SES
complaint refuses marketing email; a contact with no reaction in its last N sends is inactive.
The customer card shows each contact's health, and GET /v1/reports/contacts lists the contacts
to clean, as JSON pages and as CSV."""

from __future__ import annotations

import csv
import io
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest

from tests.conftest import Api, wait_for

pytestmark = pytest.mark.stack

TEXT = {"ru": "Заказ {{ data.ref }} готов.", "en": "Order {{ data.ref }} is ready."}
MAIL = {"ru": {"subject": "Заказ {{ data.ref }}", "text": "Заказ {{ data.ref }} готов."},
        "en": {"subject": "Order {{ data.ref }}", "text": "Order {{ data.ref }} is ready."}}


@pytest.fixture(autouse=True)
def no_faults_after(api: Api) -> Iterator[None]:
    yield
    api.http.delete("/local/faults")


def _step(channel: str, **extra: Any) -> dict[str, Any]:
    return {"channel": channel, "wait": "1h", "template": MAIL if channel == "email" else TEXT, **extra}


def _scenario(api: Api, saved: list[str], steps: list[dict[str, Any]], purpose: str = "transactional") -> str:
    """A custom scenario with these steps; returns its trigger (event type)."""
    tag = uuid.uuid4().hex[:8]
    body = {"name": "Contacts", "trigger": f"hy_{tag}.ready", "correlation": "ref", "quiet_hours": None,
            "purpose": purpose, "success": ["read", "clicked", "replied"], "steps": steps}
    resp = api.http.put(f"/v1/scenarios/hy-{tag}", json=body)
    assert resp.status_code == 201, resp.text
    saved.append(f"hy-{tag}")
    return f"hy_{tag}.ready"


def _start(api: Api, trigger: str, recipient: dict[str, Any]) -> str:
    return api.start({"type": trigger, "recipient": {"locale": "en", "consent": {"marketing": True}, **recipient},
                      "data": {"ref": uuid.uuid4().hex[:8]}})


def _rid() -> str:
    return f"hy-{uuid.uuid4().hex[:8]}"


def _email() -> str:
    return f"hy.{uuid.uuid4().hex[:8]}@example.com"


def _number() -> str:
    while True:
        number = f"+1415{200 + secrets.randbelow(800)}{secrets.randbelow(10**4):04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


def _sent(api: Api, cascade_id: str, channel: str) -> dict[str, Any]:
    return dict(wait_for(f"the {channel} message",
                         lambda: [m for m in api.outbox(cascade_id) if m["channel"] == channel], timeout=30)[0])


def _step_is(api: Api, cascade_id: str, index: int, status: str) -> dict[str, Any]:
    return dict(wait_for(f"step {index} to be {status}",
                         lambda: (s := api.cascade(cascade_id)["steps"][index])["status"] == status and s))


def _health(api: Api, rid: str, channel: str) -> dict[str, Any] | None:
    resp = api.http.get(f"/v1/recipients/{rid}/timeline")
    assert resp.status_code == 200, resp.text
    return next((c for c in resp.json()["contacts"] if c["channel"] == channel), None)


def _health_is(api: Api, rid: str, channel: str, health: str) -> dict[str, Any]:
    return dict(wait_for(f"the card to show {channel} {health}",
                         lambda: (c := _health(api, rid, channel)) is not None and c["health"] == health and c))


def _report_rows(api: Api, **params: Any) -> list[dict[str, Any]]:
    """Every row of the contacts report, following the cursor page by page."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        resp = api.http.get("/v1/reports/contacts", params={**params, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        rows.extend(resp.json()["items"])
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("the report never ended")


# -- invalid contacts ------------------------------------------------------------------------------


def test_a_hard_bounce_marks_the_email_invalid_until_an_event_brings_another_address(api: Api,
                                                                                       saved: list[str]) -> None:
    trigger = _scenario(api, saved, [_step("email"), _step("sms")])
    rid, address, phone = _rid(), _email(), _number()

    first = _start(api, trigger, {"id": rid, "email": address, "phone": phone})
    email = _sent(api, first, "email")
    assert api.simulate(email["provider_message_id"], "failed").status_code == 200  # SES: a permanent bounce
    card = _health_is(api, rid, "email", "invalid")
    assert card["reason"] == "hard_bounce" and card["since"]
    assert card["contact"] != address and card["contact"].endswith("@example.com")  # masked

    # The same address again: the email step is skipped at once, the SMS goes out instead.
    second = _start(api, trigger, {"id": rid, "email": address, "phone": phone})
    skipped = _step_is(api, second, 0, "skipped")
    assert skipped["reason"] == "invalid_contact"
    _sent(api, second, "sms")
    assert [m["channel"] for m in api.outbox(second)] == ["sms"]

    # A new address from the business lifts the mark: the email goes out again.
    third = _start(api, trigger, {"id": rid, "email": _email(), "phone": phone})
    _sent(api, third, "email")
    assert _health(api, rid, "email")["health"] == "ok"  # type: ignore[index]


def test_a_complaint_refuses_marketing_email_but_does_not_invalidate_the_address(api: Api,
                                                                                  saved: list[str]) -> None:
    trigger = _scenario(api, saved, [_step("email"), _step("sms")], purpose="marketing")
    rid, address, phone = _rid(), _email(), _number()
    first = _start(api, trigger, {"id": rid, "email": address, "phone": phone})
    email = _sent(api, first, "email")
    assert api.simulate(email["provider_message_id"], "complained").status_code == 200

    card = _health_is(api, rid, "email", "opted_out")
    assert card["reason"] == "complaint"
    consent = api.http.get(f"/v1/recipients/{rid}/consent").json()["channels"]
    assert consent["email"]["marketing"]["granted"] is False
    # The event's own marketing consent does not override the complaint.
    second = _start(api, trigger, {"id": rid, "email": address, "phone": phone})
    assert _step_is(api, second, 0, "skipped")["reason"] == "opted_out"
    _sent(api, second, "sms")
    assert all(r["recipient_id"] != rid for r in _report_rows(api, state="invalid", limit=200))


@pytest.fixture
def twilio_sms(stack: Any) -> Iterator[None]:
    stack.use_sms_provider("twilio")
    yield
    stack.use_sms_provider("sns")


def test_twilio_21211_on_send_marks_the_number_invalid_for_sms(api: Api, saved: list[str],
                                                               twilio_sms: None) -> None:
    trigger = _scenario(api, saved, [_step("sms"), _step("email")])
    rid, phone = _rid(), _number()
    # Every send is refused until this cascade's is: a count of 1 could go to a cascade an earlier
    # test left running.
    assert api.http.post("/local/faults", json={"channel": "sms", "mode": "reject"}).status_code == 200
    first = _start(api, trigger, {"id": rid, "phone": phone, "email": _email()})
    failed = _step_is(api, first, 0, "failed")
    api.http.delete("/local/faults")
    assert "21211" in failed["reason"]
    card = _health_is(api, rid, "sms", "invalid")
    assert card["reason"] == "invalid_number" and phone not in str(card)

    second = _start(api, trigger, {"id": rid, "phone": phone, "email": _email()})
    assert _step_is(api, second, 0, "skipped")["reason"] == "invalid_contact"
    _sent(api, second, "email")
    assert [m["channel"] for m in api.outbox(second)] == ["email"]


def test_twilio_30005_in_a_status_callback_marks_the_number_invalid(api: Api, saved: list[str],
                                                                    twilio_sms: None) -> None:
    trigger = _scenario(api, saved, [_step("sms"), _step("email")])
    rid = _rid()
    first = _start(api, trigger, {"id": rid, "phone": _number()})
    sms = _sent(api, first, "sms")
    assert api.simulate(sms["provider_message_id"], "failed", code=30005).status_code == 200
    assert _health_is(api, rid, "sms", "invalid")["reason"] == "invalid_number"


def test_whatsapp_131026_marks_the_number_invalid_and_the_step_goes_to_its_alternative(
        api: Api, saved: list[str]) -> None:
    wa_step = _step("whatsapp", alternatives=["email"],
                    whatsapp_template={"name": "cart_reminder", "params": ["{{ data.ref }}"]})
    trigger = _scenario(api, saved, [wa_step, _step("sms")])
    rid, number, address = _rid(), _number(), _email()

    # Refused on send.
    assert api.http.post("/local/faults", json={"channel": "whatsapp", "mode": "reject", "count": 1}
                         ).status_code == 200
    first = _start(api, trigger, {"id": rid, "whatsapp": number, "email": address})
    assert "131026" in _step_is(api, first, 0, "failed")["reason"]
    assert _health_is(api, rid, "whatsapp", "invalid")["reason"] == "not_on_whatsapp"
    # The next cascade's WhatsApp step goes to its alternative, email, at once.
    second = _start(api, trigger, {"id": rid, "whatsapp": number, "email": address})
    _sent(api, second, "email")
    assert api.cascade(second)["steps"][0]["channel"] == "email"
    assert [m["channel"] for m in api.outbox(second)] == ["email"]

    # Reported later, in a failed status webhook.
    other = _rid()
    third = _start(api, trigger, {"id": other, "whatsapp": _number()})
    message = _sent(api, third, "whatsapp")
    assert api.simulate(message["provider_message_id"], "failed", code=131026).status_code == 200
    assert _health_is(api, other, "whatsapp", "invalid")["reason"] == "not_on_whatsapp"


@pytest.mark.parametrize(("channel", "field", "fault", "reason"), [
    ("telegram", "telegram_chat_id", "reject", "bot_blocked"),  # 403 Forbidden: bot was blocked by the user
    ("viber", "viber_id", None, "not_subscribed"),  # status 6: only subscribers can be messaged
])
def test_a_blocked_bot_or_an_unsubscribed_viber_user_is_an_invalid_contact(
        api: Api, saved: list[str], channel: str, field: str, fault: str | None, reason: str) -> None:
    trigger = _scenario(api, saved, [_step(channel), _step("email")])
    rid, contact = _rid(), str(7_000_000_000 + secrets.randbelow(10**9)) if channel == "telegram" else \
        f"hy{uuid.uuid4().hex[:10]}=="
    if fault:
        assert api.http.post("/local/faults", json={"channel": channel, "mode": fault, "count": 1}).status_code == 200
    first = _start(api, trigger, {"id": rid, field: contact, "email": _email()})
    _step_is(api, first, 0, "failed")
    assert _health_is(api, rid, channel, "invalid")["reason"] == reason
    second = _start(api, trigger, {"id": rid, field: contact, "email": _email()})
    assert _step_is(api, second, 0, "skipped")["reason"] == "invalid_contact"


def test_a_blocked_bot_bound_again_with_the_same_chat_reaches_the_customer_again(api: Api,
                                                                                 saved: list[str]) -> None:
    trigger = _scenario(api, saved, [_step("telegram"), _step("email")])
    rid, chat = _rid(), str(7_000_000_000 + secrets.randbelow(10**9))
    assert api.http.post("/local/faults", json={"channel": "telegram", "mode": "reject", "count": 1}).status_code == 200
    first = _start(api, trigger, {"id": rid, "telegram_chat_id": chat, "email": _email()})
    _step_is(api, first, 0, "failed")
    _health_is(api, rid, "telegram", "invalid")

    # The customer opens a binding link: same chat, the bot unblocked.
    link = api.http.post(f"/v1/recipients/{rid}/bind/telegram").json()["link"]
    assert api.http.post("/local/simulate", json={"open_link": link, "as": chat}).status_code == 200
    assert _health_is(api, rid, "telegram", "ok")["reason"] is None
    second = _start(api, trigger, {"id": rid, "telegram_chat_id": chat, "email": _email()})
    _sent(api, second, "telegram")


# -- inactive contacts and the report ---------------------------------------------------------------


def test_a_contact_with_no_reaction_in_its_last_5_sends_is_inactive_until_it_reacts(api: Api,
                                                                                    saved: list[str]) -> None:
    trigger = _scenario(api, saved, [_step("email")])
    rid, address = _rid(), _email()
    for n in range(5):
        cascade_id = _start(api, trigger, {"id": rid, "email": address})
        _sent(api, cascade_id, "email")
        if n < 4:
            wait_for("the send to be counted", lambda n=n: (c := _health(api, rid, "email")) is not None
                     and c["sends_without_reaction"] == n + 1)
            assert _health(api, rid, "email")["health"] == "ok"  # type: ignore[index]
    card = _health_is(api, rid, "email", "inactive")
    assert (card["reason"], card["sends_without_reaction"]) == ("no_reaction", 5) and card["since"]
    row = wait_for("the report to list the contact", lambda: next(
        (r for r in _report_rows(api, state="inactive", limit=50) if r["recipient_id"] == rid), None))
    assert row == {"recipient_id": rid, "channel": "email", "contact": card["contact"], "state": "inactive",
                   "reason": "no_reaction", "since": card["since"], "sends_without_reaction": 5}
    assert address not in str(row)

    # The customer opens the next email: active again, off the report.
    last = _start(api, trigger, {"id": rid, "email": address})
    assert api.simulate(_sent(api, last, "email")["provider_message_id"], "read").status_code == 200
    assert _health_is(api, rid, "email", "ok")["sends_without_reaction"] == 0
    wait_for("the report to drop the contact",
             lambda: all(r["recipient_id"] != rid for r in _report_rows(api, state="inactive", limit=50)))


def test_the_contacts_report_pages_with_a_cursor_and_exports_csv(api: Api, saved: list[str]) -> None:
    trigger = _scenario(api, saved, [_step("email")])
    rids = [_rid(), _rid()]
    for rid in rids:
        cascade_id = _start(api, trigger, {"id": rid, "email": _email()})
        assert api.simulate(_sent(api, cascade_id, "email")["provider_message_id"], "failed").status_code == 200
        _health_is(api, rid, "email", "invalid")

    rows = _report_rows(api, limit=3)  # a few rows a page: every page hands on its cursor
    mine = [r for r in rows if r["recipient_id"] in rids]
    assert [(r["channel"], r["state"], r["reason"]) for r in mine] == [("email", "invalid", "hard_bounce")] * 2
    states = [r["state"] for r in rows]
    assert states == sorted(states, key=("invalid", "inactive").index)  # invalid ones first
    assert len({(r["recipient_id"], r["channel"]) for r in rows}) == len(rows)  # no row twice

    table: list[dict[str, str]] = []
    params: dict[str, Any] = {"format": "csv", "state": "invalid", "limit": 3}
    while True:  # the CSV pages too: the next page's cursor is in a header
        resp = api.http.get("/v1/reports/contacts", params=params)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        page = list(csv.DictReader(io.StringIO(resp.text)))
        assert resp.text.splitlines()[0] == "recipient_id,channel,contact,state,reason,since,sends_without_reaction"
        table.extend(page)
        if "x-next-cursor" not in resp.headers:
            break
        params["cursor"] = resp.headers["x-next-cursor"]
    assert {r["state"] for r in table} == {"invalid"}
    found = {r["recipient_id"]: r for r in table}
    assert all(found[rid]["reason"] == "hard_bounce" and "***@example.com" in found[rid]["contact"] for rid in rids)

    for bad in ({"cursor": "not-a-cursor"}, {"state": "stale"}, {"limit": 0}, {"format": "xml"}):
        resp = api.http.get("/v1/reports/contacts", params=bad)
        assert resp.status_code == 422, resp.text
        assert resp.json()["details"][0]["field"] == next(iter(bad))
