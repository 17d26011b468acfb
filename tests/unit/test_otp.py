"""The OTP preset's shape, its ttl arithmetic, and keeping the code out of fingerprints and errors."""

from __future__ import annotations

import pytest

from cascade.models import RecipientIn
from cascade.planning import body_hash, capped_waits, expired, real_seconds, ttl_seconds, workflow_input
from cascade.rendering import URL, render, render_string
from cascade.scenarios import Scenario, presets
from cascade.secret_data import MASK, scrub, split

CODE = "482915"


def otp() -> Scenario:
    return presets()["otp"]


def context(code: object = CODE) -> dict[str, object]:
    return {"recipient": dict.fromkeys(RecipientIn.model_fields), "data": {"request_id": "r-1", "code": code},
            "event": {"type": "otp.requested"}, "cascade": {"tried": []}}


def test_the_otp_preset_falls_back_fast_is_urgent_sterile_and_keeps_the_code_secret() -> None:
    s = otp()
    assert (s.triggers, s.correlation, s.purpose) == (["otp.requested"], "request_id", "transactional")
    assert s.urgent and not s.track_links and s.secret_data == ["code"] and s.ttl == 180
    assert s.success == ["event:otp.verified"]
    assert [s.channels for s in s.steps] == [["sms"], ["telegram", "whatsapp"], ["voice"]]
    assert [step.wait for step in s.steps][:2] == [45, 45]
    template = s.steps[1].whatsapp_template
    assert template is not None and template.name == "otp_code"
    assert render_string(template.params[0], context()) == CODE


@pytest.mark.parametrize("locale", ["ru", "uk", "en", "kk"])
def test_every_message_carries_the_code_and_no_link_and_the_call_reads_it_twice(locale: str) -> None:
    texts = [render(step, locale, context())[1] for step in otp().steps]
    assert all(CODE in text for text in texts[:2])
    assert all(not URL.search(text) and "www" not in text for text in texts)
    assert texts[2].count("4 8 2 9 1 5") == 2 and CODE not in texts[2]  # digit by digit, twice
    assert len(texts[0]) <= 70  # one SMS part even in UCS-2 (Cyrillic)


def test_a_numeric_code_is_read_digit_by_digit_too() -> None:
    _, text = render(otp().steps[2], "en", context(482915))
    assert text.count("4 8 2 9 1 5") == 2


def test_the_waits_are_cut_to_the_ttl_and_the_workflow_gets_them() -> None:
    assert capped_waits(otp()) == [45, 45, 90]  # the call's 2 min wait is cut: 3 min in all
    assert workflow_input("c_1", otp(), 1)["waits"] == [45, 45, 90, 60]
    # Sped up, every timer is still at least a whole second.
    assert workflow_input("c_1", otp(), 60)["waits"] == [1, 1, 2, 60]


def test_the_ttl_holds_on_aws_and_stretches_only_to_the_local_stacks_whole_second_timers() -> None:
    assert ttl_seconds(otp(), 1) == 180
    assert ttl_seconds(otp(), 14400) == 3 * 14400  # three 1 s timers at 14400x
    without = otp().model_copy(update={"ttl": None})
    assert ttl_seconds(without, 1) is None and capped_waits(without) == [45, 45, 120]
    assert not expired(without, 3, 10**9, 1)


def test_expiry_on_the_cascade_clock() -> None:
    s = otp()
    assert not expired(s, 1, 45, 1) and not expired(s, 2, 90, 1)
    assert expired(s, 2, 180, 1)  # time is up whatever step the cascade is on
    assert expired(s, 3, 179, 1)  # asked for the step after the last, cut short by the ttl: expired
    # A ttl longer than all the waits: running out of steps is `exhausted`, not expired.
    roomy = s.model_copy(update={"ttl": 3600})
    assert not expired(roomy, 3, 210, 1) and expired(roomy, 2, 3600, 1)
    # A ttl that ends inside the second step: the third is never reached.
    short = s.model_copy(update={"ttl": 60})
    assert capped_waits(short) == [45, 15, 0]
    assert expired(short, 2, 60, 1) and not expired(short, 1, 45, 1)
    assert real_seconds(0, 1) == 1  # Step Functions needs a timer of at least a second


def test_the_idempotency_fingerprint_is_not_computed_over_the_code() -> None:
    event = {"type": "otp.requested", "idempotency_key": "k", "recipient": {"id": "c1", "phone": "+77010000000"},
             "data": {"request_id": "r-1", "code": CODE}}
    other_code = {**event, "data": {**event["data"], "code": "000000"}}
    no_code = {**event, "data": {"request_id": "r-1"}}
    fingerprint = body_hash(event, ["code"])
    # Hashing the code would let a million tries recover it; the fingerprint is that of the event without it.
    assert fingerprint == body_hash(other_code, ["code"]) == body_hash(no_code)
    assert fingerprint != body_hash(event)
    assert body_hash({**event, "data": {**event["data"], "request_id": "r-2"}}, ["code"]) != fingerprint


def test_split_takes_the_secret_fields_out_and_scrub_masks_them_in_any_form() -> None:
    clear, secret = split({"request_id": "r-1", "code": CODE}, ["code", "pin"])
    assert clear == {"request_id": "r-1"} and secret == {"code": CODE}
    assert scrub(f"template: TypeError: {CODE} and 4 8 2 9 1 5", secret) == f"template: TypeError: {MASK} and {MASK}"
    assert scrub("nothing to hide", {}) == "nothing to hide"
