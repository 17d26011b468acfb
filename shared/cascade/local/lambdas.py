"""Run the real handlers in-process whenever moto invokes a Lambda function: a direct
``lambda.invoke``, the state machine's ``lambda:invoke`` tasks, and SNS → Lambda subscriptions.
Concurrent invocations run as on Lambda: each in an execution environment of its own."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass
class FunctionSpec:
    code_dir: Path
    handler: str


class _Pool:
    """A function's execution environments. Each is the handler module loaded on its own (its own
    module globals: a Powertools app, its current event) and serves one invocation at a time; an
    invocation that finds none free loads a new one (a cold start), as Lambda scales out. The
    ``cascade`` package itself is one per process: what it keeps per invocation (the logger's
    keys) is kept per thread (see :mod:`cascade.observability`)."""

    def __init__(self, name: str, spec: FunctionSpec) -> None:
        self.name, self.spec = name, spec
        self.idle: list[ModuleType] = []
        self.loaded = 0
        self.lock = threading.Lock()

    def _load(self) -> ModuleType:
        with self.lock:
            self.loaded += 1
            number = self.loaded
        file_name, _ = self.spec.handler.rsplit(".", 1)
        path = self.spec.code_dir / f"{file_name.replace('.', '/')}.py"
        mod_spec = importlib.util.spec_from_file_location(f"lambda_{self.name.replace('-', '_')}_{number}", path)
        assert mod_spec and mod_spec.loader
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        return module

    @contextmanager
    def environment(self) -> Iterator[Callable[..., Any]]:
        """The handler of a free environment, held for one invocation."""
        with self.lock:
            module = self.idle.pop() if self.idle else None
        _invocation.cold_start = module is None  # what the logger reports as this invocation's cold_start
        if module is None:
            module = self._load()
        try:
            yield getattr(module, self.spec.handler.rsplit(".", 1)[1])
        finally:
            with self.lock:
                self.idle.append(module)


log = logging.getLogger("cascade.local.lambdas")
REGISTRY: dict[str, FunctionSpec] = {}
_pools: dict[str, _Pool] = {}
_lock = threading.Lock()
# Per thread: whether the invocation running on it is its environment's first (Lambda's cold start).
_invocation = threading.local()


class LocalContext:
    """What a handler sees as its Lambda context."""

    def __init__(self, name: str, arn: str, memory: int, timeout_s: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    @classmethod
    def of(cls, function: Any) -> LocalContext:
        """The context of an invocation of ``function`` (moto's record of it: ARN, memory, timeout)."""
        return cls(function.function_name, function.function_arn, int(function.memory_size or 128),
                   int(function.timeout or 3))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _pool(name: str) -> _Pool:
    with _lock:
        pool = _pools.get(name)
        if pool is None or pool.spec is not REGISTRY[name]:
            pool = _pools[name] = _Pool(name, REGISTRY[name])
        return pool


def environments() -> dict[str, int]:
    """Execution environments loaded so far, per function."""
    with _lock:
        return {name: pool.loaded for name, pool in _pools.items()}


def _invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> str:
    if self.function_name not in REGISTRY:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": "ResourceNotFound", "errorMessage": f"no local code for {self.function_name}"})
    event = json.loads(body) if body else {}
    context = LocalContext.of(self)
    _begin(context)
    try:
        with _pool(self.function_name).environment() as handler:
            result = handler(event, context)
    except Exception as exc:
        # What Lambda's runtime writes to the function's log for an error the handler let through.
        log.error("%s: unhandled %s", self.function_name, type(exc).__name__, exc_info=exc)
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})
    return json.dumps(result)


def run(function_name: str, event: dict[str, Any]) -> Any:
    """Run a function's handler in this process (an event source mapping's invocation), with the
    context Lambda gives it: the function's own ARN, memory and timeout."""
    from moto.awslambda.models import lambda_backends

    from cascade.local.deploy import ACCOUNT

    function = lambda_backends[ACCOUNT][os.environ["AWS_REGION"]].get_function(function_name)
    context = LocalContext.of(function)
    _begin(context)
    with _pool(function_name).environment() as handler:
        return handler(event, context)


def _begin(context: LocalContext) -> None:
    """This invocation's keys on this thread before its handler adds its own: what the runtime logs
    for it (an environment that fails to load, an error the handler let through) then names this
    function and request, not the invocation this thread ran before."""
    from cascade.observability import logger

    logger.clear_state()
    logger.append_keys(function_name=context.function_name, function_memory_size=context.memory_limit_in_mb,
                       function_arn=context.invoked_function_arn, function_request_id=context.aws_request_id)


def share_environment(envs: Any) -> None:
    """All functions run in this one process and share its module caches (settings are read
    once), so every function's variables go into the environment up front. They must agree."""
    merged: dict[str, str] = {}
    for env in envs:
        for key, value in env.items():
            if merged.setdefault(key, value) != value:
                raise ValueError(f"functions disagree on {key}; the local stack runs them in one process")
    os.environ.update(merged)


def _cold_start() -> bool:
    """Powertools' logger asks once per invocation; it keeps one flag per process, Lambda has one
    per execution environment, and here each environment is a module in this process."""
    cold = bool(getattr(_invocation, "cold_start", False))
    _invocation.cold_start = False
    return cold


def install() -> None:
    from moto.awslambda.models import LambdaFunction

    LambdaFunction.invoke = _invoke  # type: ignore[method-assign]
    powertools_logger: Any = importlib.import_module("aws_lambda_powertools.logging.logger")
    powertools_logger._is_cold_start = _cold_start


__all__ = ["REGISTRY", "FunctionSpec", "LocalContext", "environments", "install", "run", "share_environment"]
