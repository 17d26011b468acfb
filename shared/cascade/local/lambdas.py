"""Run the real handlers in-process whenever moto invokes a Lambda function: a direct
``lambda.invoke``, the state machine's ``lambda:invoke`` tasks, and SNS → Lambda subscriptions."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass
class FunctionSpec:
    code_dir: Path
    handler: str


REGISTRY: dict[str, FunctionSpec] = {}
_modules: dict[str, ModuleType] = {}
_lock = threading.Lock()


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

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _module(name: str, spec: FunctionSpec) -> ModuleType:
    with _lock:
        if name not in _modules:
            file_name, _ = spec.handler.rsplit(".", 1)
            path = spec.code_dir / f"{file_name.replace('.', '/')}.py"
            mod_spec = importlib.util.spec_from_file_location(f"lambda_{name.replace('-', '_')}", path)
            assert mod_spec and mod_spec.loader
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
            _modules[name] = module
        return _modules[name]


def _invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> str:
    spec = REGISTRY.get(self.function_name)
    if spec is None:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": "ResourceNotFound", "errorMessage": f"no local code for {self.function_name}"})
    event = json.loads(body) if body else {}
    module = _module(self.function_name, spec)
    context = LocalContext(self.function_name, self.function_arn, int(self.memory_size or 128), int(self.timeout or 3))
    try:
        result = getattr(module, spec.handler.rsplit(".", 1)[1])(event, context)
    except Exception as exc:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})
    return json.dumps(result)


def run(function_name: str, event: dict[str, Any]) -> Any:
    """Run a function's handler in this process (an event source mapping's invocation)."""
    spec = REGISTRY[function_name]
    module = _module(function_name, spec)
    context = LocalContext(function_name, f"arn:aws:lambda:local:function:{function_name}", 512, 60)
    return getattr(module, spec.handler.rsplit(".", 1)[1])(event, context)


def share_environment(envs: Any) -> None:
    """All functions run in this one process and share its module caches (settings are read
    once), so every function's variables go into the environment up front. They must agree."""
    merged: dict[str, str] = {}
    for env in envs:
        for key, value in env.items():
            if merged.setdefault(key, value) != value:
                raise ValueError(f"functions disagree on {key}; the local stack runs them in one process")
    os.environ.update(merged)


def install() -> None:
    from moto.awslambda.models import LambdaFunction

    LambdaFunction.invoke = _invoke  # type: ignore[method-assign]


__all__ = ["REGISTRY", "FunctionSpec", "LocalContext", "install", "run", "share_environment"]
