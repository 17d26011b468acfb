"""The circuit breaker's states against a real (moto) DynamoDB table: closed, open, half-open."""

from __future__ import annotations

import pytest

from cascade.circuit import Circuit
from cascade.store import CascadeStore


@pytest.fixture
def circuit(store: CascadeStore) -> Circuit:
    return Circuit(store, threshold=3, cooldown_seconds=60, trial_seconds=30)


def test_a_provider_opens_after_failures_in_a_row_and_a_trial_closes_it(circuit: Circuit) -> None:
    t = 1_000_000.0
    for _ in range(2):
        circuit.failed("sms", now=t)
    assert circuit.allows("sms", circuit.state("sms"), now=t)  # 2 < 3: still closed
    circuit.failed("sms", now=t)
    state = circuit.state("sms")
    assert not circuit.allows("sms", state, now=t + 59)  # open for the cooldown
    # Half-open: exactly one step gets the trial; the others keep skipping.
    assert circuit.allows("sms", state, now=t + 61)
    assert not circuit.allows("sms", state, now=t + 62)
    circuit.succeeded("sms", state)
    assert circuit.state("sms").failures == 0
    assert circuit.allows("sms", circuit.state("sms"), now=t + 63)


def test_a_failed_trial_opens_the_circuit_again(circuit: Circuit) -> None:
    t = 2_000_000.0
    for _ in range(3):
        circuit.failed("email", now=t)
    assert circuit.allows("email", circuit.state("email"), now=t + 61)
    circuit.failed("email", now=t + 62)
    assert not circuit.allows("email", circuit.state("email"), now=t + 100)
    assert circuit.allows("email", circuit.state("email"), now=t + 123)


def test_a_trial_that_never_reports_back_frees_its_slot(circuit: Circuit) -> None:
    t = 3_000_000.0
    for _ in range(3):
        circuit.failed("viber", now=t)
    state = circuit.state("viber")
    assert circuit.allows("viber", state, now=t + 61)
    assert not circuit.allows("viber", state, now=t + 80)
    assert circuit.allows("viber", state, now=t + 92)  # 31 s later: the stuck trial is given up


def test_successes_cost_no_writes_while_the_circuit_is_closed(circuit: Circuit) -> None:
    circuit.succeeded("push", circuit.state("push"))
    assert circuit.store.get_circuit("push") is None
    # Failures of one channel leave the others alone.
    circuit.failed("push")
    assert circuit.state("telegram").failures == 0
