"""The local stack under load, and its memory: part 5 of ``make bench``, or on its own
``python -m tests.bench_load [--cascades N] [--clients 3 32]``.

The stack starts in this process (as ``make run`` does). A warm-up loads every function; then
``N`` cascades (``delivery-failed``: three SMS over 26 cascade hours, a few seconds at this scale)
go through the public API from 3 clients, then ``N`` more from 32, each client posting events on
its own keep-alive connection as fast as it is answered. A run ends when no execution is running
any more; then every cascade is read back (``GET /v1/cascades/{id}``). Printed per run: cascades
per second from the first POST to the last execution's end, POST latency, errors (every answer
that was not a 2xx, every cascade that did not end ``exhausted``, every warning or error the stack
logged: all must be 0), the aggregator's lag (Lambda's IteratorAge: the oldest record's age when
its batch was handed over; the most records waiting; how long the stream took to drain once the
executions had ended), and memory: resident set size and CPython's allocated blocks after the
warm-up, when each run has ended, and at the end once the stack has been idle for a moment.
What memory still grows per cascade is what the services keep on AWS too: the table's items and
the executions' histories. Also printed: a request's time on a kept-alive connection."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx

ROOT: Final = Path(__file__).resolve().parent.parent
ARTIFACT: Final = ROOT / "test-artifacts" / "bench-load.json"
API_KEY: Final = "bench-key"
TIME_SCALE: Final = 86400.0  # one cascade day per real second
DEFAULT_CASCADES: Final = 2_000
CLIENTS: Final = (3, 32)
WARM_UP: Final = 40
PHASE_DEADLINE_S: Final = 1800.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Memory:
    rss_mb: float
    blocks: int

    @staticmethod
    def now(settle_s: float = 0.0) -> Memory:
        if settle_s:
            time.sleep(settle_s)
        gc.collect()
        return Memory(rss_mb(), sys.getallocatedblocks())


@dataclass
class Phase:
    clients: int
    cascades: int
    seconds: float = 0.0
    cascades_per_s: float = 0.0
    post_p50_ms: float = 0.0
    post_p95_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)
    aggregator_max_age_s: float = 0.0
    aggregator_max_queue: int = 0
    drain_s: float = 0.0
    memory_before: Memory | None = None
    memory_ended: Memory | None = None

    @property
    def error_count(self) -> int:
        # Every cascade here ends exhausted: anything else (failed, or still running) is an error.
        return sum(self.errors.values()) + self.cascades - self.ended.get("exhausted", 0)


class Console:
    """Counts what the stack writes as a warning or worse, and uncaught exceptions in threads."""

    def __init__(self) -> None:
        self.records: Counter[str] = Counter()
        self.samples: list[str] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        console = self

        class Counting(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                error = record.exc_info[1] if record.exc_info else None
                cause = f" ({type(error).__name__}: {error})" if error else ""
                console.note(f"{record.levelname} {record.name}: {record.getMessage()}{cause}")

        handler = Counting(logging.WARNING)
        for name in ("cascade", "cascade.local", ""):
            logging.getLogger(name).addHandler(handler)
        previous = threading.excepthook

        def hook(args: Any) -> None:
            console.note(f"uncaught {args.exc_type.__name__} in a thread: {args.exc_value}")
            previous(args)

        threading.excepthook = hook

    def note(self, line: str) -> None:
        kind = line.split(":", 1)[0]
        with self._lock:
            self.records[kind] += 1
            if self.records[kind] <= 2 and len(self.samples) < 12:  # a couple of each kind
                self.samples.append(line[:400])


def _event() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "events" / "delivery-failed.json").read_text(encoding="utf-8"))
    body.pop("idempotency_key", None)
    suffix = uuid.uuid4().hex[:10]
    body["recipient"]["id"] = f"load-{suffix}"
    body["data"]["order_id"] = f"load-{suffix}"
    return body


def _post(url: str, count: int, out: dict[str, Any], lock: threading.Lock) -> None:
    """One client: ``count`` events on one keep-alive connection, as fast as it is answered."""
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    ids: list[str] = []
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for _ in range(count):
            started = time.perf_counter()
            try:
                resp = http.post("/v1/events", json=_event())
            except httpx.HTTPError as exc:
                errors[f"POST {type(exc).__name__}"] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if resp.status_code == 202:
                ids.append(str(resp.json()["cascade_id"]))
            else:
                errors[f"POST {resp.status_code}"] += 1
    with lock:
        out["errors"].update(errors)
        out["latencies"].extend(latencies)
        out["ids"].extend(ids)


def _read(url: str, ids: list[str], out: dict[str, Any], lock: threading.Lock) -> None:
    """One client: how each of ``ids`` ended, as GET /v1/cascades/{id} says."""
    errors: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for cascade_id in ids:
            try:
                resp = http.get(f"/v1/cascades/{cascade_id}")
            except httpx.HTTPError as exc:
                errors[f"GET {type(exc).__name__}"] += 1
                continue
            if resp.status_code != 200:
                errors[f"GET {resp.status_code}"] += 1
                continue
            ended[str(resp.json().get("status"))] += 1
    with lock:
        out["errors"].update(errors)
        out["ended"].update(ended)


def _running(sfn: Any, state_machine_arn: str) -> int:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
    return sum(len(page["executions"]) for page in pages)


def _together(target: Any, jobs: list[tuple[Any, ...]], aggregator: Any, phase: Phase) -> None:
    threads = [threading.Thread(target=target, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        phase.aggregator_max_queue = max(phase.aggregator_max_queue, aggregator.pending.qsize())
        time.sleep(0.25)


def _aggregator() -> Any:
    from cascade.local import streams

    return next(m for m in streams.MAPPINGS.values() if "Aggregator" in m.function_name)


def run_phase(stack: Any, cascades: int, clients: int) -> Phase:
    """``cascades`` posted by ``clients`` at once; done when no execution is running any more."""
    import boto3

    from cascade.local import streams

    phase = Phase(clients=clients, cascades=cascades, memory_before=Memory.now())
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    aggregator = _aggregator()
    aggregator.max_iterator_age_s = 0.0
    out: dict[str, Any] = {"errors": Counter(), "latencies": [], "ended": Counter(), "ids": []}
    lock = threading.Lock()
    shares = [cascades // clients + (1 if i < cascades % clients else 0) for i in range(clients)]
    started = time.monotonic()
    _together(_post, [(stack.url, share, out, lock) for share in shares], aggregator, phase)
    deadline = time.monotonic() + PHASE_DEADLINE_S
    while _running(sfn, stack.state_machine_arn) and time.monotonic() < deadline:
        phase.aggregator_max_queue = max(phase.aggregator_max_queue, aggregator.pending.qsize())
        time.sleep(0.5)
    phase.seconds = time.monotonic() - started
    drain_started = time.monotonic()
    streams.wait_idle(timeout=PHASE_DEADLINE_S)
    phase.drain_s = time.monotonic() - drain_started
    ids = out["ids"]
    _together(_read, [(stack.url, ids[i::clients], out, lock) for i in range(clients)], aggregator, phase)
    phase.cascades_per_s = len(ids) / phase.seconds
    latencies = sorted(out["latencies"]) or [0.0]
    phase.post_p50_ms = statistics.median(latencies)
    phase.post_p95_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    phase.errors = dict(out["errors"])
    phase.ended = dict(out["ended"])
    phase.aggregator_max_age_s = getattr(aggregator, "max_iterator_age_s", 0.0)
    phase.memory_ended = Memory.now()
    return phase


def keep_alive_ms(url: str, requests: int = 50) -> tuple[float, float]:
    """Median time of a request on a kept-alive connection: one the gateway answers itself (an
    unknown route), and one through a Lambda invocation (a cascade that does not exist)."""
    times: dict[str, list[float]] = {"gateway": [], "lambda": []}
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for _ in range(requests):
            for kind, path in (("gateway", "/v1/no-such-route"), ("lambda", "/v1/cascades/c_000000000000000000000000")):
                started = time.perf_counter()
                http.get(path)
                times[kind].append((time.perf_counter() - started) * 1000)
    return statistics.median(times["gateway"]), statistics.median(times["lambda"])


@dataclass
class LoadReport:
    cascades_per_phase: int
    phases: list[Phase]
    memory_start: Memory
    memory_end: Memory
    environments: dict[str, int]
    console: dict[str, int]
    console_samples: list[str]
    keep_alive_gateway_ms: float = 0.0
    keep_alive_lambda_ms: float = 0.0

    @property
    def errors(self) -> int:
        return sum(p.error_count for p in self.phases) + sum(self.console.values())


def measure_load(cascades: int = DEFAULT_CASCADES, clients: tuple[int, ...] = CLIENTS) -> LoadReport:
    from cascade.local import lambdas
    from cascade.local.stack import LocalStack
    from cascade.observability import logger

    console = Console()
    now = datetime.now(UTC)  # the cascades' day starts at 10:00 UTC, as in the tests: no run starts at night
    shift = (now.replace(hour=10, minute=0, second=0, microsecond=0) - now).total_seconds()
    stack = LocalStack(port=0, api_key=API_KEY, time_scale=TIME_SCALE, stack_name="cascade-load",
                       clock_shift_seconds=shift).start()
    try:
        logger.setLevel(logging.WARNING)  # the handlers' INFO lines would bury the report
        console.install()
        run_phase(stack, WARM_UP, 4)  # every function loaded, caches filled
        gateway_ms, lambda_ms = keep_alive_ms(stack.url)
        start = Memory.now(settle_s=1.0)
        phases = [run_phase(stack, cascades, n) for n in clients]
        end = Memory.now(settle_s=3.0)
        environments = getattr(lambdas, "environments", dict)()  # (a stack without environment pools: {})
        return LoadReport(cascades, phases, start, end, environments, dict(console.records),
                          console.samples, gateway_ms, lambda_ms)
    finally:
        stack.stop()


def report(r: LoadReport) -> str:
    lines = [f"5. The local stack under load: {r.cascades_per_phase:,} delivery-failed cascades per run "
             f"(3 SMS each), time scale {TIME_SCALE:g}x",
             f"   {'clients':>7}{'seconds':>9}{'cascades/s':>12}{'POST p50':>10}{'p95 ms':>8}{'errors':>8}"
             f"{'agg. max age':>14}{'max queue':>11}{'drain s':>9}{'RSS MB':>9}{'blocks':>11}"]
    for p in r.phases:
        ended = p.memory_ended or Memory(0, 0)
        lines.append(f"   {p.clients:>7}{p.seconds:>9.1f}{p.cascades_per_s:>12.1f}{p.post_p50_ms:>10.0f}"
                     f"{p.post_p95_ms:>8.0f}{p.error_count:>8}{p.aggregator_max_age_s:>13.1f}s"
                     f"{p.aggregator_max_queue:>11}{p.drain_s:>9.1f}{ended.rss_mb:>9.0f}{ended.blocks:>11,}")
        if p.errors or set(p.ended) != {"exhausted"}:
            lines.append(f"          answers not 2xx: {p.errors or 'none'}; cascades ended: {p.ended}")
    total = r.cascades_per_phase * len(r.phases)
    grown_kb = (r.memory_end.rss_mb - r.memory_start.rss_mb) * 1024 / total
    blocks = (r.memory_end.blocks - r.memory_start.blocks) / total
    lines += [f"   memory after warm-up {r.memory_start.rss_mb:.0f} MB RSS, {r.memory_start.blocks:,} blocks; "
              f"at the end {r.memory_end.rss_mb:.0f} MB, {r.memory_end.blocks:,} blocks: "
              f"{grown_kb:+.1f} KB RSS and {blocks:+.1f} blocks per cascade",
              "   execution environments loaded: " + ", ".join(f"{k.rsplit('-', 1)[-1]} {v}"
                                                           for k, v in r.environments.items()),
              f"   a request on a kept-alive connection, idle stack (median of 50): {r.keep_alive_gateway_ms:.1f} ms "
              f"answered by the gateway, {r.keep_alive_lambda_ms:.1f} ms through a Lambda invocation",
              f"   console warnings and errors: {r.console or 'none'}   errors in all: {r.errors}"]
    lines += [f"     {line}" for line in r.console_samples]
    return "\n".join(lines)


def write(r: LoadReport) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(asdict(r), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cascades", type=int, default=DEFAULT_CASCADES, help="cascades per run (default 2,000)")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="clients per run (default 3 32)")
    args = parser.parse_args(argv)
    result = measure_load(args.cascades, tuple(args.clients))
    print(report(result))
    write(result)
    print(f"\nwritten to {ARTIFACT.relative_to(ROOT)}")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
