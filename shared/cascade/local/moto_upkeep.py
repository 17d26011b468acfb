"""What moto keeps, or trips over, that a long-running local stack must not.

moto is built for tests that last seconds. ``make run`` and the load benchmark run it for hours
and thousands of cascades, from many threads at once:

- **Every model object ever made is kept.** moto's ``BaseModel`` appends each instance to a
  class-wide list (for its ``/moto-api/data.json`` page): every stream record, every copy of an
  item an update makes, every SMS, every execution's parts. Nothing here reads that page, so
  instances are no longer listed, and they go when moto drops them (S3's, which its reset
  uses, still are).
- **Every Step Functions worker thread is kept** in ``TMP_THREADS`` (a list nothing reads) long
  after it ended, with what its closure held. Here the list keeps only live threads.
- **A callback finds its task by asking every execution ever started**, and fails with an
  ``AttributeError`` (a 500) on one that is running but has not built its environment yet. Here
  only running executions with an environment are asked; a token nobody waits for is
  ``TaskTimedOut`` or ``InvalidToken``, as on AWS.
- **Each Task state builds a new boto3 client** to call Lambda or DynamoDB (tens of milliseconds
  of CPU each, and its own connections). Here the state machine's tasks share one client per
  service (moto's own settings; its credentials are fixed, whatever the state's).

Times at which a thread is stuck, or memory that never comes back, are what the load benchmark
(``tests/bench_load.py``) measures."""

from __future__ import annotations

import functools
import importlib
import threading
from typing import Any

_installed = False
_lock = threading.Lock()

_THREAD_LISTS = (
    "moto.stepfunctions.parser.utils",
    "moto.stepfunctions.parser.asl.component.program.program",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback",
    "moto.stepfunctions.parser.backend.execution_worker",
)


class _LiveThreads(list[threading.Thread]):
    """moto's ``TMP_THREADS``: each append first lets go of the threads that have ended."""

    def append(self, thread: threading.Thread) -> None:
        self[:] = [t for t in self if t.is_alive()]
        super().append(thread)


def _untrack_models() -> None:
    from moto.core.common_models import BaseModel

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        instance: Any = object.__new__(cls)
        if cls.__module__.startswith("moto.s3."):  # S3's reset closes its keys' files through the list
            cls.instances_tracked.append(instance)  # type: ignore[attr-defined]
        return instance

    BaseModel.__new__ = __new__  # type: ignore[method-assign]
    from moto.core.model_instances import model_data

    for models in model_data.values():  # what was listed before now
        for model in models.values():
            if not model.__module__.startswith("moto.s3."):
                model.instances_tracked = []  # type: ignore[attr-defined]


def _prune_threads() -> None:
    live = _LiveThreads()
    for name in _THREAD_LISTS:
        module = importlib.import_module(name)
        live.extend(t for t in getattr(module, "TMP_THREADS") if t.is_alive() and t not in live)  # noqa: B009
    for name in _THREAD_LISTS:
        setattr(importlib.import_module(name), "TMP_THREADS", live)  # noqa: B010


def _callbacks() -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus, InvalidToken, TaskDoesNotExist, TaskTimedOut
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackConsumerTimeout,
        CallbackNotifyConsumerError,
        CallbackOutcomeFailure,
        CallbackOutcomeSuccess,
    )
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    def _answer(self: Any, token: str, call: Any) -> None:
        for machine in list(self.state_machines):
            for execution in list(machine.executions):
                env = getattr(execution.exec_worker, "env", None)
                if execution.status != ExecutionStatus.RUNNING or env is None:
                    continue
                try:
                    if call(env.callback_pool_manager):
                        return
                except CallbackNotifyConsumerError as error:
                    if isinstance(error, CallbackConsumerTimeout):
                        raise TaskTimedOut("the task has timed out") from None
                    raise TaskDoesNotExist("the task does not exist") from None
        raise InvalidToken()

    def send_task_success(self: Any, task_token: str, outcome: str) -> Any:
        result = CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
        _answer(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))

    def send_task_failure(self: Any, task_token: str, error: Any = None, cause: Any = None) -> Any:
        from moto.stepfunctions.parser.api import SendTaskFailureOutput

        result = CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        _answer(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))
        return SendTaskFailureOutput()

    def send_task_heartbeat(self: Any, task_token: str) -> Any:
        _answer(self, task_token, lambda pool: pool.heartbeat(callback_id=task_token))

    StepFunctionsParserBackend.send_task_success = send_task_success  # type: ignore[method-assign]
    StepFunctionsParserBackend.send_task_failure = send_task_failure  # type: ignore[method-assign]
    StepFunctionsParserBackend.send_task_heartbeat = send_task_heartbeat  # type: ignore[method-assign]


_CLIENT_USERS = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
)


@functools.cache
def _task_client(region: str, service: str) -> Any:
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    return boto3.client(service_name=service, region_name=region, aws_access_key_id="ak",
                        aws_secret_access_key="sk",  # noqa: S106 - moto's fixed stand-in, as it sets it
                        endpoint_url=f"http://127.0.0.1:{moto_server_port()}",
                        config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                                      connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                                      read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS, max_pool_connections=128))


def _shared_task_clients() -> None:
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        return _task_client(region, service)

    for name in _CLIENT_USERS:
        setattr(importlib.import_module(name), "boto_client_for", boto_client_for)  # noqa: B010


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    _untrack_models()
    _prune_threads()
    _callbacks()
    _shared_task_clients()


__all__ = ["install"]
