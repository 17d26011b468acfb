"""A circuit breaker per channel, shared by every Lambda container through DynamoDB.

A provider that fails ``threshold`` sends in a row (each send already retried) is *open*: new
steps on that channel are skipped at once (reason ``provider_down``) and the cascade moves to its
next channel instead of waiting out a timer on a message that never left. After the cooldown the
circuit is *half-open*: one send is let through as a trial (claimed with a conditional write, so
concurrent steps don't all pile onto a sick provider); its success closes the circuit, its
failure opens it for another cooldown.

Cost: the state is read at most once per ``CONFIG_CACHE_SECONDS`` per container, not once per
step (:mod:`cascade.hot_cache`); writes only while a provider is failing. A circuit that opens or
closes in one container is seen by the others within those seconds.

Opening a circuit also prints one CloudWatch metric (``Cascade/CircuitOpened``, dimensions
``service`` and ``channel``) in the embedded metric format: CloudWatch Logs turns the log line into
the metric the template's ``CircuitOpen<Channel>Alarm`` watches, with no API call."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cascade.observability import logger
from cascade.store import CascadeStore

METRIC_NAMESPACE = "Cascade"
CIRCUIT_OPENED = "CircuitOpened"


@dataclass(frozen=True)
class CircuitState:
    failures: int = 0
    open_until: int = 0


class Circuit:
    def __init__(self, store: CascadeStore, threshold: int, cooldown_seconds: int, trial_seconds: int = 120) -> None:
        self.store = store
        self.threshold = threshold
        self.cooldown = cooldown_seconds
        self.trial_seconds = trial_seconds  # a trial that never reported back frees its slot after this

    def state(self, channel: str) -> CircuitState:
        item: dict[str, Any] = self.store.get_circuit(channel) or {}
        return CircuitState(int(item.get("failures", 0)), int(item.get("open_until", 0)))

    def allows(self, channel: str, state: CircuitState, now: float | None = None) -> bool:
        """May a new step send on ``channel`` now?"""
        now = time.time() if now is None else now
        if state.failures < self.threshold:
            return True  # closed
        if now < state.open_until:
            return False  # open
        # Half-open: only the one step that claims the trial goes.
        return self.store.claim_circuit_trial(channel, int(now), int(now) - self.trial_seconds)

    def succeeded(self, channel: str, state: CircuitState) -> None:
        if state.failures:  # only a circuit that was counting failures needs a write
            self.store.close_circuit(channel)
            logger.info("provider recovered", channel=channel)

    def failed(self, channel: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        failures = self.store.count_circuit_failure(channel)
        if failures >= self.threshold:
            self.store.open_circuit(channel, int(now) + self.cooldown)
            logger.warning("provider down: circuit open", channel=channel, failures=failures,
                           cooldown_s=self.cooldown)
            _count_opened(channel)


def _count_opened(channel: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=CIRCUIT_OPENED, unit=MetricUnit.Count, value=1, namespace=METRIC_NAMESPACE,
                       default_dimensions={"service": "cascade"}) as metric:
        metric.add_dimension(name="channel", value=channel)


def default_circuit(store: CascadeStore) -> Circuit:
    from cascade.settings import settings

    cfg = settings()
    return Circuit(store, cfg.circuit_failure_threshold, cfg.circuit_cooldown_seconds)


__all__ = ["CIRCUIT_OPENED", "METRIC_NAMESPACE", "Circuit", "CircuitState", "default_circuit"]
